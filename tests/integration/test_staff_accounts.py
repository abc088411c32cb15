"""Staff accounts over real HTTP and a real database: sign-in, lockout, TOTP, sessions, CSRF,
roles and what a clinician may see."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
import time_machine
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import make_settings
from frontdesk.adapters.credentials import HashParameters, hash_password, totp_code, totp_step
from frontdesk.adapters.db.models import Appointment, AuditEvent, Clinician, Patient
from frontdesk.adapters.db.staff_models import SignInThrottle, StaffSession, StaffUser
from frontdesk.bootstrap import Runtime, build_runtime
from frontdesk.config import Settings
from frontdesk.services import practices, signin, staff
from frontdesk.web.access import current_staff
from frontdesk.web.app import create_app
from staff_support import FAST_HASHING, PASSWORD, add_staff, csrf_token, sign_in, signed_in

T0 = datetime(2026, 11, 30, 15, 0, 10, tzinfo=UTC)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, **FAST_HASHING)


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def audit_actions(runtime: Runtime) -> list[tuple[str, dict[str, Any]]]:
    with runtime.transaction() as session:
        return [
            (e.action, e.details)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


# --- signing in ----------------------------------------------------------------------------------


def test_pages_need_a_session_and_sign_in_opens_one(
    app_client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime, "Desk@Example.com", "front_desk", name="Dana Desk")
    page = app_client.get("/?practice=default", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Fpractice%3Ddefault"
    as_json = app_client.get("/", headers={"Accept": "application/json"})
    assert as_json.status_code == 401
    assert as_json.json()["error"]["code"] == "unauthorized"
    assert app_client.get("/outbox", follow_redirects=False).status_code == 303

    # The email is case-insensitive; the session cookie is HttpOnly, SameSite=Lax, not Secure
    # on plain http, and only its hash is stored.
    response = sign_in(app_client, "desk@EXAMPLE.com", next_url="/outbox")
    assert response.status_code == 303 and response.headers["location"] == "/outbox"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("frontdesk_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    token = app_client.cookies["frontdesk_session"]
    with runtime.transaction() as session:
        stored = session.scalars(select(StaffSession)).one()
        assert stored.token_hash != token and len(stored.token_hash) == 64
        user = session.scalars(select(StaffUser)).one()
        assert user.last_login_at is not None and user.email == "desk@example.com"
    home = app_client.get("/")
    assert home.status_code == 200 and "Dana Desk" in home.text and "My Practice" in home.text
    actions = audit_actions(runtime)
    assert [a for a, _ in actions] == ["staff.created", "staff.signed_in"]
    assert actions[-1][1] == {"ip": "testclient"}


def test_the_cookie_is_secure_and_host_only_behind_https(
    database_url: str, runtime: Runtime
) -> None:
    settings = make_settings(database_url, public_url="https://desk.example.org", **FAST_HASHING)
    add_staff(runtime, "secure@example.com")
    secure = build_runtime(settings)
    try:
        with TestClient(create_app(settings, secure), base_url="https://testserver") as client:
            response = sign_in(client, "secure@example.com")
            assert response.status_code == 303, response.text
            cookie = next(
                c for c in response.headers.get_list("set-cookie") if "frontdesk_session=" in c
            )
            assert cookie.startswith("__Host-frontdesk_session=")
            assert "Secure" in cookie and "Path=/" in cookie and "Domain" not in cookie
            assert client.get("/").status_code == 200
    finally:
        secure.dispose()


def test_a_wrong_password_and_an_unknown_email_look_the_same(
    app_client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime, "known@example.com")
    wrong = sign_in(app_client, "known@example.com", "not the password at all")
    unknown = sign_in(app_client, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert signin.FAILED.replace("'", "&#39;") in wrong.text
    assert wrong.text.replace("known@", "X@") == unknown.text.replace("nobody@", "X@").replace(
        csrf_token(unknown.text), csrf_token(wrong.text)
    )
    assert "frontdesk_session" not in app_client.cookies
    actions = audit_actions(runtime)
    failures = [d for a, d in actions if a == "staff.sign_in_failed"]
    assert failures == [
        {"reason": "bad_password", "ip": "testclient"},
        {"reason": "unknown_account", "ip": "testclient"},
    ]
    assert "not the password" not in str(actions)


def test_an_unknown_email_takes_as_long_as_a_wrong_password(runtime: Runtime) -> None:
    """The dummy hash: without it an unknown email answers at once, and says it is unknown."""
    params = {
        "staff_password_time_cost": 2,
        "staff_password_memory_kib": 16384,
        "staff_password_parallelism": 1,
    }
    settings = make_settings(runtime.settings.database_url, **params)
    add_staff(runtime, "timed@example.com")  # cheap hash; verification uses its own cost
    with runtime.transaction() as session:
        user = session.scalars(select(StaffUser)).one()
        user.password_hash = hash_password(PASSWORD, staff.hash_parameters(settings))

    def timed(email: str, n: int) -> float:
        started = time.perf_counter()
        result = signin.sign_in(
            runtime,
            settings=settings,
            email=email,
            password="wrong password here",
            code="",
            ip=f"198.51.100.{n}",
            now=T0 + timedelta(hours=n),  # an hour apart: no lockout in the way
        )
        assert not result.ok
        return time.perf_counter() - started

    # Interleaved, and the fastest of each kept: the machine's other load only adds time.
    known, unknown = [], []
    for n in range(7):
        known.append(timed("timed@example.com", 2 * n))
        unknown.append(timed("untimed@example.com", 2 * n + 1))
    fastest_known, fastest_unknown = min(known), min(unknown)
    assert fastest_unknown > fastest_known * 0.6, (known, unknown)
    assert fastest_known > fastest_unknown * 0.6, (known, unknown)


def test_sign_in_rotates_the_session(app_client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    signed_in(app_client)
    first = app_client.cookies["frontdesk_session"]
    signed_in(app_client)
    second = app_client.cookies["frontdesk_session"]
    assert first != second
    with runtime.transaction() as session:
        assert len(session.scalars(select(StaffSession)).all()) == 1
    stale = TestClient(app_client.app)
    stale.cookies.set("frontdesk_session", first)
    assert stale.get("/", follow_redirects=False).status_code == 303
    assert app_client.get("/").status_code == 200


def test_a_new_hash_is_stored_when_the_parameters_change(runtime: Runtime) -> None:
    add_staff(runtime)
    with runtime.transaction() as session:
        before = session.scalars(select(StaffUser.password_hash)).one()
    assert "m=1024,t=1,p=1" in before
    stronger = make_settings(
        runtime.settings.database_url,
        staff_password_time_cost=2,
        staff_password_memory_kib=2048,
        staff_password_parallelism=1,
    )
    result = signin.sign_in(
        runtime,
        settings=stronger,
        email="desk@example.com",
        password=PASSWORD,
        code="",
        ip="192.0.2.1",
        now=T0,
    )
    assert result.ok
    with runtime.transaction() as session:
        after = session.scalars(select(StaffUser.password_hash)).one()
    assert "m=2048,t=2,p=1" in after


# --- lockout -------------------------------------------------------------------------------------


def attempt(
    runtime: Runtime, email: str, password: str, now: datetime, ip: str = "192.0.2.7"
) -> signin.SignInResult:
    return signin.sign_in(
        runtime,
        settings=runtime.settings,
        email=email,
        password=password,
        code="",
        ip=ip,
        now=now,
    )


def test_lockout_after_repeated_failures_and_its_expiry(runtime: Runtime) -> None:
    add_staff(runtime, "locked@example.com")
    attempts = runtime.settings.staff_lockout_attempts
    for i in range(attempts):
        assert (
            attempt(
                runtime, "locked@example.com", "wrong password!", T0 + timedelta(seconds=i)
            ).message
            == signin.FAILED
        )
    # Locked: even the right password is refused, with the lockout message.
    later = T0 + timedelta(minutes=1)
    refused = attempt(runtime, "locked@example.com", PASSWORD, later)
    assert not refused.ok and refused.message == signin.LOCKED
    # An unknown email behaves exactly the same: it locks after as many failures.
    for i in range(attempts):
        assert (
            attempt(
                runtime, "ghost@example.com", "wrong password!", T0 + timedelta(seconds=i)
            ).message
            == signin.FAILED
        )
    assert attempt(runtime, "ghost@example.com", PASSWORD, later).message == signin.LOCKED
    # Other accounts are not affected.
    add_staff(runtime, "other@example.com")
    assert attempt(runtime, "other@example.com", PASSWORD, later).ok
    # After the cooling-off period the right password works again, and resets the count.
    # (the lockout began with the last failure, at T0 + attempts - 1 seconds)
    cooled = T0 + timedelta(minutes=runtime.settings.staff_lockout_minutes, seconds=attempts - 1)
    assert (
        attempt(runtime, "locked@example.com", PASSWORD, cooled - timedelta(seconds=1)).message
        == signin.LOCKED
    )
    assert attempt(runtime, "locked@example.com", PASSWORD, cooled).ok
    with runtime.transaction() as session:
        scopes = [t.scope for t in session.scalars(select(SignInThrottle))]
    assert scopes == []  # every lockout has passed: nothing about these emails is kept
    actions = [a for a, _ in audit_actions(runtime)]
    assert actions.count("staff.locked_out") == 2
    assert actions.count("staff.sign_in_refused") == 3


def test_counters_whose_window_passed_are_forgotten(runtime: Runtime) -> None:
    add_staff(runtime)
    assert not attempt(runtime, "guess@example.com", "wrong password!", T0).ok
    with runtime.transaction() as session:
        assert len(session.scalars(select(SignInThrottle)).all()) == 2  # the email, the address
    assert attempt(runtime, "desk@example.com", PASSWORD, T0 + timedelta(hours=1)).ok
    with runtime.transaction() as session:
        assert session.scalars(select(SignInThrottle)).all() == []


def test_lockout_per_client_address(database_url: str, runtime: Runtime) -> None:
    settings = make_settings(database_url, staff_lockout_ip_attempts=3, **FAST_HASHING)
    add_staff(runtime, "victim@example.com")

    def try_as(email: str, password: str, ip: str) -> signin.SignInResult:
        return signin.sign_in(
            runtime,
            settings=settings,
            email=email,
            password=password,
            code="",
            ip=ip,
            now=T0,
        )

    for n in range(3):  # one failure each for three emails: no account lockout
        assert (
            try_as(f"guess{n}@example.com", "wrong password!", "203.0.113.9").message
            == signin.FAILED
        )
    assert try_as("victim@example.com", PASSWORD, "203.0.113.9").message == signin.LOCKED
    assert try_as("victim@example.com", PASSWORD, "203.0.113.10").ok


def test_lockout_over_http_shows_the_same_message_for_unknown_emails(
    app_client: TestClient, runtime: Runtime
) -> None:
    add_staff(runtime, "real@example.com")
    for email in ("real@example.com", "fake@example.com"):
        for _ in range(runtime.settings.staff_lockout_attempts):
            assert sign_in(app_client, email, "wrong password!").status_code == 401
        locked = sign_in(app_client, email, PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.text


# --- two-step sign-in ----------------------------------------------------------------------------


def test_totp_enable_sign_in_and_replay_refused(
    app_client: TestClient, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    add_staff(runtime)
    signed_in(app_client)
    setup = app_client.get("/account/totp")
    secret = setup.text.split("data-totp-secret>", 1)[1].split("<", 1)[0]
    assert "otpauth://totp/" in setup.text and secret in setup.text
    token = csrf_token(setup.text)
    wrong = app_client.post(
        "/account/totp", data={"csrf_token": token, "secret": secret, "code": "000000"}
    )
    assert wrong.status_code == 422 and "does not match" in wrong.text
    step = totp_step(T0.timestamp())
    enabled = app_client.post(
        "/account/totp",
        data={"csrf_token": token, "secret": secret, "code": totp_code(secret, step)},
    )
    assert enabled.status_code == 200 and "Two-step sign-in is on" in enabled.text
    with runtime.transaction() as session:
        user = session.scalars(select(StaffUser)).one()
        assert user.totp_secret_sealed and secret not in user.totp_secret_sealed
        assert runtime.cipher.open(user.totp_secret_sealed) == secret

    fresh = TestClient(app_client.app)
    assert sign_in(fresh, code="").status_code == 401  # password alone is not enough
    # The code used to enable it is spent already; the next step's code works once.
    assert sign_in(fresh, code=totp_code(secret, step)).status_code == 401
    clock.shift(timedelta(seconds=30))
    next_code = pyotp.TOTP(secret).now()
    assert next_code == totp_code(secret, step + 1)
    assert sign_in(fresh, code=next_code).status_code == 303
    replay = TestClient(app_client.app)
    assert sign_in(replay, code=next_code).status_code == 401
    # Turning it off needs the password.
    csrf = csrf_token(fresh.get("/account").text)
    refused = fresh.post("/account/totp/disable", data={"csrf_token": csrf, "password": "nope"})
    assert refused.status_code == 422
    off = fresh.post("/account/totp/disable", data={"csrf_token": csrf, "password": PASSWORD})
    assert off.status_code == 200 and "Two-step sign-in is off" in off.text
    actions = [a for a, _ in audit_actions(runtime)]
    assert "staff.totp_enabled" in actions and "staff.totp_disabled" in actions
    assert [d["reason"] for a, d in audit_actions(runtime) if a == "staff.sign_in_failed"] == [
        "bad_code",
        "bad_code",
        "bad_code",
    ]


# --- sessions ------------------------------------------------------------------------------------


def test_idle_expiry(
    app_client: TestClient, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    add_staff(runtime)
    signed_in(app_client)
    idle = timedelta(minutes=runtime.settings.staff_session_idle_minutes)
    clock.shift(idle - timedelta(minutes=1))
    assert app_client.get("/").status_code == 200  # used: the idle clock starts again
    clock.shift(idle - timedelta(minutes=1))
    assert app_client.get("/").status_code == 200
    clock.shift(idle)
    assert app_client.get("/", follow_redirects=False).status_code == 303
    with runtime.transaction() as session:
        assert session.scalars(select(StaffSession)).all() == []


def test_absolute_expiry(
    app_client: TestClient, runtime: Runtime, clock: time_machine.Traveller
) -> None:
    add_staff(runtime)
    signed_in(app_client)
    used_every = timedelta(minutes=runtime.settings.staff_session_idle_minutes - 5)
    lifetime = timedelta(hours=runtime.settings.staff_session_max_hours)
    elapsed = timedelta(0)
    while elapsed + used_every < lifetime:
        clock.shift(used_every)
        elapsed += used_every
        assert app_client.get("/").status_code == 200, elapsed
    clock.shift(lifetime - elapsed)
    assert app_client.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(app_client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    csrf = signed_in(app_client)
    assert app_client.post("/logout", data={}).status_code == 403  # no CSRF token
    out = app_client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert "frontdesk_session" not in app_client.cookies
    with runtime.transaction() as session:
        assert session.scalars(select(StaffSession)).all() == []
    assert app_client.get("/", follow_redirects=False).status_code == 303
    assert "staff.signed_out" in [a for a, _ in audit_actions(runtime)]


# --- CSRF ----------------------------------------------------------------------------------------


def test_csrf_missing_or_wrong_is_refused(app_client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime)
    csrf = signed_in(app_client)
    form = {
        "current_password": PASSWORD,
        "new_password": "another long password",
        "confirm_password": "another long password",
    }
    missing = app_client.post("/account/password", data=form)
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf_failed"
    wrong = app_client.post("/account/password", data={**form, "csrf_token": csrf[:-2] + "xx"})
    assert wrong.status_code == 403
    as_page = app_client.post("/account/password", data=form, headers={"Accept": "text/html"})
    assert as_page.status_code == 403 and "security token" in as_page.text
    # The header works for scripts (fetch, htmx).
    ok = app_client.post("/account/password", data=form, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200 and "Password changed" in ok.text
    # The login form has its own token, tied to a cookie set with the form.
    anonymous = TestClient(app_client.app)
    anonymous.get("/login")
    forged = anonymous.post(
        "/login",
        data={"email": "desk@example.com", "password": "another long password", "csrf_token": "x"},
    )
    assert forged.status_code == 403


def test_every_state_changing_page_route_checks_the_session(app_client: TestClient) -> None:
    """CSRF is checked in ``current_staff``: every POST/PUT/PATCH/DELETE page must use it."""
    open_by_design = {"/login", "/a/{token}"}  # sign-in has its own token; links are tokens

    def uses(dependant: Any) -> bool:
        return any(d.call is current_staff or uses(d) for d in dependant.dependencies)

    unguarded = [
        route.path
        for route in app_client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, APIRoute)
        and route.methods & {"POST", "PUT", "PATCH", "DELETE"}
        and not route.path.startswith(("/api/", "/webhooks/", "/hooks/"))
        and route.path not in open_by_design
        and not uses(route.dependant)
    ]
    assert unguarded == []


def test_api_keys_need_no_csrf_and_do_not_open_pages(client: TestClient) -> None:
    assert client.get("/api/v1/templates").status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 303


# --- roles ---------------------------------------------------------------------------------------


def test_roles_on_pages(app_client: TestClient, runtime: Runtime) -> None:
    add_staff(runtime, "admin@example.com", "admin")
    add_staff(runtime, "desk@example.com", "front_desk")
    clinician_id = _clinician(runtime, "Dr. Own")
    add_staff(runtime, "doc@example.com", "clinician", clinician_id=clinician_id)

    desk = TestClient(app_client.app)
    signed_in(desk, "desk@example.com")
    assert desk.get("/admin/users").status_code == 403
    assert desk.get("/admin/users", headers={"Accept": "text/html"}).status_code == 403
    assert desk.get("/outbox").status_code == 200
    csrf = csrf_token(desk.get("/account").text)
    forbidden = desk.post(
        "/admin/users",
        data={"csrf_token": csrf, "email": "x@example.com", "display_name": "X", "role": "admin"},
    )
    assert forbidden.status_code == 403

    doc = TestClient(app_client.app)
    signed_in(doc, "doc@example.com")
    assert doc.get("/outbox").status_code == 403
    assert doc.get("/admin/users").status_code == 403
    assert doc.get("/").status_code == 200

    admin = TestClient(app_client.app)
    csrf = signed_in(admin, "admin@example.com")
    page = admin.get("/admin/users")
    assert page.status_code == 200 and "doc@example.com" in page.text
    added = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": "New@Example.com",
            "display_name": "New Person",
            "role": "front_desk",
        },
    )
    assert added.status_code == 200
    temporary = added.text.split("change it on their account page): ", 1)[1].split("<", 1)[0]
    assert sign_in(TestClient(app_client.app), "new@example.com", temporary).status_code == 303
    duplicate = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": "new@EXAMPLE.com",
            "display_name": "Again",
            "role": "front_desk",
        },
    )
    assert duplicate.status_code == 422 and "exists" in duplicate.text
    clinician_without_link = admin.post(
        "/admin/users",
        data={
            "csrf_token": csrf,
            "email": "c@example.com",
            "display_name": "C",
            "role": "clinician",
        },
    )
    assert clinician_without_link.status_code == 422

    with runtime.transaction() as session:
        ids = {u.email: u.id for u in session.scalars(select(StaffUser))}
    # Disabling signs the person out at once.
    off = admin.post(
        f"/admin/users/{ids['desk@example.com']}/active",
        data={"csrf_token": csrf, "active": "false"},
    )
    assert off.status_code == 200 and "disabled" in off.text
    assert desk.get("/", follow_redirects=False).status_code == 303
    assert sign_in(TestClient(app_client.app), "desk@example.com").status_code == 401
    # Role change, and a clinician role needs a clinician of this practice.
    changed = admin.post(
        f"/admin/users/{ids['new@example.com']}/role",
        data={"csrf_token": csrf, "role": "clinician", "clinician_id": str(clinician_id)},
    )
    assert changed.status_code == 200
    bad = admin.post(
        f"/admin/users/{ids['new@example.com']}/role",
        data={"csrf_token": csrf, "role": "clinician", "clinician_id": "99999"},
    )
    assert bad.status_code == 422
    # Reset password: a new temporary one, shown once.
    reset = admin.post(f"/admin/users/{ids['doc@example.com']}/password", data={"csrf_token": csrf})
    assert reset.status_code == 200
    assert doc.get("/", follow_redirects=False).status_code == 303
    # The last active admin cannot be disabled or demoted.
    last = admin.post(
        f"/admin/users/{ids['admin@example.com']}/active",
        data={"csrf_token": csrf, "active": "false"},
    )
    assert last.status_code == 422 and "last active admin" in last.text
    actions = [a for a, _ in audit_actions(runtime)]
    for action in ("staff.created", "staff.disabled", "staff.role_changed", "staff.password_reset"):
        assert action in actions
    assert temporary not in str(audit_actions(runtime))


def test_an_admin_cannot_touch_another_practices_users(
    app_client: TestClient, runtime: Runtime
) -> None:
    with runtime.transaction() as session:
        practices.create_practice(session, "north", practices.PracticeProfile(name="North"))
    add_staff(runtime, "a@example.com", slug="default")
    other = add_staff(runtime, "b@example.com", slug="north")
    csrf = signed_in(app_client, "a@example.com", practice="default")
    response = app_client.post(
        f"/admin/users/{other}/active", data={"csrf_token": csrf, "active": "false"}
    )
    assert response.status_code == 404
    assert "b@example.com" not in app_client.get("/admin/users").text
    # The schedule shows the signed-in person's practice, whatever the address asks for.
    assert "North" not in app_client.get("/?practice=north").text


# --- what a clinician sees -----------------------------------------------------------------------


def _clinician(runtime: Runtime, name: str) -> int:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, None)
        row = Clinician(practice_id=practice.id, match_key=name.lower(), name=name)
        session.add(row)
        session.flush()
        return row.id


def _appointment(runtime: Runtime, key: str, clinician_id: int | None, start: datetime) -> int:
    with runtime.transaction() as session:
        practice = practices.resolve_practice(session, None)
        patient = Patient(
            practice_id=practice.id, source="t", external_id=key, name=f"Patient {key}"
        )
        session.add(patient)
        session.flush()
        session.add(
            Appointment(
                practice_id=practice.id,
                source="t",
                external_id=key,
                patient_id=patient.id,
                clinician_id=clinician_id,
                start_at=start,
                end_at=start + timedelta(minutes=50),
            )
        )
        return patient.id


def test_a_clinician_sees_only_their_own_patients(app_client: TestClient, runtime: Runtime) -> None:
    mine, theirs = _clinician(runtime, "Dr. Mine"), _clinician(runtime, "Dr. Theirs")
    soon = datetime.now(UTC) + timedelta(hours=2)
    own = _appointment(runtime, "own", mine, soon)
    other = _appointment(runtime, "other", theirs, soon)
    nobody = _appointment(runtime, "nobody", None, soon)
    add_staff(runtime, "doc@example.com", "clinician", clinician_id=mine)
    add_staff(runtime, "desk@example.com", "front_desk")

    with runtime.transaction() as session:
        users = {u.email: u for u in session.scalars(select(StaffUser))}
        practice = practices.resolve_practice(session, None)

        def as_staff(user: StaffUser) -> staff.Staff:
            return staff.Staff(
                user_id=user.id,
                practice_id=practice.id,
                practice_slug=practice.slug,
                practice_name=practice.name,
                email=user.email,
                display_name=user.display_name,
                role=staff.Role(user.role),
                clinician_id=user.clinician_id,
                totp_enabled=False,
                session_id=0,
                csrf_token="",
            )

        doc, desk = as_staff(users["doc@example.com"]), as_staff(users["desk@example.com"])
        assert staff.visible_patient_ids(session, doc) == {own}
        assert staff.visible_patient_ids(session, desk) is None
        seen = set(session.scalars(select(Patient.id).where(staff.patient_filter(doc, Patient.id))))
        assert seen == {own}
        everyone = set(
            session.scalars(select(Patient.id).where(staff.patient_filter(desk, Patient.id)))
        )
        assert everyone == {own, other, nobody}
        orphan = staff.Staff(**{**doc.__dict__, "clinician_id": None})
        assert (
            set(session.scalars(select(Patient.id).where(staff.patient_filter(orphan, Patient.id))))
            == set()
        )

    doc_client = TestClient(app_client.app)
    signed_in(doc_client, "doc@example.com")
    page = doc_client.get("/").text
    assert "Patient own" in page and "Patient other" not in page and "Patient nobody" not in page
    desk_client = TestClient(app_client.app)
    signed_in(desk_client, "desk@example.com")
    page = desk_client.get("/").text
    assert "Patient own" in page and "Patient other" in page


def test_hash_parameters_come_from_settings(settings: Settings) -> None:
    assert staff.hash_parameters(settings) == HashParameters(1, 1024, 1)
