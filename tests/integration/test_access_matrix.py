"""The role and tenancy matrix over HTTP: every route of the app, tried anonymously, as each role
of practice A, as an admin of practice B, and with API keys of A and B.

Every route must be listed in ``ROUTES`` with who may use it: a new route that is not listed
fails ``test_every_route_is_classified``, so nobody adds a page without deciding its access.
Public routes are public by design, each with the reason. Everything else must turn the
anonymous caller away (401, or a redirect to /login for pages), refuse the wrong role with 403,
and never show practice B anything of practice A's — patient names, threads, templates,
settings, keys, endpoints, documents — nor let B change A's records through A's ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import make_settings, new_api_key
from frontdesk.adapters.db.channel_models import MessageTemplate
from frontdesk.adapters.db.handoff_models import ConversationNote
from frontdesk.adapters.db.knowledge_models import KnowledgeDocument
from frontdesk.adapters.db.models import (
    ApiKey,
    Appointment,
    Clinician,
    Conversation,
    Patient,
    Practice,
    ReviewItem,
)
from frontdesk.adapters.db.staff_models import StaffUser
from frontdesk.adapters.db.webhook_models import WebhookEndpoint
from frontdesk.bootstrap import Runtime
from frontdesk.config import Settings
from frontdesk.domain.times import now_utc
from frontdesk.domain.webhooks import EndpointIn
from frontdesk.services import apikeys, knowledge, practices, templates, webchat, webhooks
from frontdesk.services.practices import PracticeProfile
from frontdesk.web.app import create_app
from integration.test_handoff import _receive
from integration.test_reminders_flow import Clock, put
from staff_support import FAST_HASHING, add_staff, signed_in

PUBLIC = "public"
STAFF = "staff"  # any signed-in person of the practice
DESK = "desk"  # admin and front desk
ADMIN = "admin"
API = "api"  # an API key of the practice; cookies do not count

# Public by design, with the reason.
PUBLIC_WHY = {
    "/healthz": "liveness probe: says ok/degraded and nothing else",
    "/metrics": "Prometheus counts by reminder state and channel, no practice or patient labels; "
    "restrict at the network in production, or set FRONTDESK_METRICS_TOKEN",
    "/login": "the sign-in form itself (CSRF double-submit cookie)",
    "/a/{token}": "one-click links in patients' messages: the unguessable token is the credential",
    "/widget.js": "the web chat script practices paste on their sites",
    "/widget/api/{slug}": "the widget: a visitor's conversation token, origin checks, rate limits",
    "/chat-demo": "the demo page for the widget",
    "/demo/scheduler/": "the demo's stand-in scheduling system: 404 outside demo mode, and "
    "every request's signature is checked",
    "/webhooks/": "providers' callbacks: each verifies the provider's signature or secret token",
    "/static": "CSS and vendored htmx",
    "/docs": "API documentation (no data)",
    "/redoc": "API documentation (no data)",
    "/openapi.json": "API schema (no data)",
}

ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): STAFF,
    ("GET", "/a/{token}"): PUBLIC,
    ("POST", "/a/{token}"): PUBLIC,
    ("GET", "/account"): STAFF,
    ("POST", "/account/password"): STAFF,
    ("GET", "/account/totp"): STAFF,
    ("POST", "/account/totp"): STAFF,
    ("POST", "/account/totp/disable"): STAFF,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}/active"): ADMIN,
    ("POST", "/admin/users/{user_id}/password"): ADMIN,
    ("POST", "/admin/users/{user_id}/role"): ADMIN,
    ("GET", "/chat-demo"): PUBLIC,
    ("GET", "/dashboard"): DESK,
    ("GET", "/dashboard.csv"): DESK,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/inbox"): STAFF,
    ("GET", "/inbox/events"): STAFF,
    ("GET", "/inbox/review"): DESK,
    ("POST", "/inbox/review/{item_id}/resolve"): DESK,
    ("GET", "/inbox/{conversation_id}"): STAFF,
    ("POST", "/inbox/{conversation_id}/appointments/{appointment_id}"): STAFF,
    ("POST", "/inbox/{conversation_id}/note"): STAFF,
    ("POST", "/inbox/{conversation_id}/reply"): STAFF,
    ("POST", "/inbox/{conversation_id}/state"): STAFF,
    ("POST", "/inbox/{conversation_id}/redeliver/{delivery_id}"): DESK,
    ("POST", "/demo/scheduler/{slug}/{rest:path}"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): STAFF,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/outbox"): DESK,
    ("POST", "/outbox/reply"): DESK,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/settings"): ADMIN,
    ("GET", "/settings/api-keys"): ADMIN,
    ("POST", "/settings/api-keys"): ADMIN,
    ("POST", "/settings/api-keys/{prefix}/revoke"): ADMIN,
    ("GET", "/settings/audit"): ADMIN,
    ("GET", "/settings/audit.csv"): ADMIN,
    ("GET", "/settings/channels"): ADMIN,
    ("POST", "/settings/channels/{channel}/{provider}"): ADMIN,
    ("GET", "/settings/knowledge"): ADMIN,
    ("POST", "/settings/knowledge"): ADMIN,
    ("POST", "/settings/knowledge/{document_id}/remove"): ADMIN,
    ("GET", "/settings/on-call"): ADMIN,
    ("POST", "/settings/on-call"): ADMIN,
    ("GET", "/settings/practice"): ADMIN,
    ("POST", "/settings/practice"): ADMIN,
    ("POST", "/settings/practice/privacy"): ADMIN,
    ("POST", "/settings/prices"): ADMIN,
    ("GET", "/settings/reminders"): ADMIN,
    ("POST", "/settings/reminders"): ADMIN,
    ("GET", "/settings/templates"): ADMIN,
    ("GET", "/settings/templates/{purpose}/{channel}/{language}"): ADMIN,
    ("POST", "/settings/templates/{purpose}/{channel}/{language}"): ADMIN,
    ("POST", "/settings/templates/{purpose}/{channel}/{language}/preview"): ADMIN,
    ("POST", "/settings/templates/{purpose}/{channel}/{language}/reset"): ADMIN,
    ("GET", "/settings/webhooks"): ADMIN,
    ("POST", "/settings/webhooks"): ADMIN,
    ("POST", "/settings/webhooks/{endpoint_id}/delete"): ADMIN,
    ("POST", "/settings/webhooks/{endpoint_id}/enabled"): ADMIN,
    ("GET", "/settings/widget"): ADMIN,
    ("GET", "/settings/actions"): ADMIN,
    ("POST", "/settings/actions"): ADMIN,
    ("POST", "/settings/actions/{name}/enabled"): ADMIN,
    ("POST", "/settings/widget"): ADMIN,
    ("GET", "/static"): PUBLIC,
    ("POST", "/webhooks/calcom/{practice_slug}"): PUBLIC,
    ("POST", "/webhooks/acuity/{practice_slug}"): PUBLIC,
    ("POST", "/webhooks/calendly/{practice_slug}"): PUBLIC,
    ("POST", "/webhooks/email/{slug}/mailgun"): PUBLIC,
    ("POST", "/webhooks/email/{slug}/sendgrid/{token}"): PUBLIC,
    ("POST", "/webhooks/generic/{practice_slug}"): PUBLIC,
    ("POST", "/webhooks/twilio/{slug}/sms"): PUBLIC,
    ("POST", "/webhooks/twilio/{slug}/status"): PUBLIC,
    ("GET", "/webhooks/whatsapp/{slug}"): PUBLIC,
    ("POST", "/webhooks/whatsapp/{slug}"): PUBLIC,
    ("GET", "/widget.js"): PUBLIC,
    ("GET", "/widget/api/{slug}/events"): PUBLIC,
    ("GET", "/widget/api/{slug}/messages"): PUBLIC,
    ("POST", "/widget/api/{slug}/messages"): PUBLIC,
    ("POST", "/widget/api/{slug}/sessions"): PUBLIC,
    ("OPTIONS", "/widget/api/{slug}/{rest:path}"): PUBLIC,
}
# Every /api/v1 route takes a practice's API key (read or write).
API_PREFIX = "/api/"
# Streams that never end on their own: tried only where they must be refused.
STREAMS = {"/inbox/events", "/widget/api/{slug}/events"}
# Routes a signed-in person must not take as a side effect of the matrix.
SESSION_ENDING = {("POST", "/logout")}


def app_routes(settings: Settings, runtime: Runtime) -> list[tuple[str, str]]:
    app = create_app(settings, runtime)
    found = []
    for route in iter_route_contexts(app.routes):
        methods = sorted((route.methods or {"GET"}) - {"HEAD"})
        found += [(m, str(route.path)) for m in methods]
    return sorted(set(found))


def kind_of(method: str, path: str) -> str:
    if path.startswith(API_PREFIX):
        return API
    return ROUTES[(method, path)]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, **FAST_HASHING)


# --- the two practices ------------------------------------------------------------------------


@dataclass
class World:
    ids: dict[str, str]
    a_markers: list[str]
    clients: dict[str, TestClient]
    csrf: dict[str, str]
    keys: dict[str, str]


A_TEMPLATE = "ALPHA-TEMPLATE-MARKER {{ first_name }}"
A_WIDGET = "ALPHA-WIDGET-TITLE"
A_DOC = "alpha-handbook.md"
A_HOOK = "https://hooks.alpha.example/frontdesk"


def _seed(runtime: Runtime) -> dict[str, str]:
    clock = Clock(now_utc() - timedelta(minutes=30))
    put(runtime, clock, clock.now + timedelta(days=3), announce=False)
    _receive(runtime, clock, "other: can I bring my partner?", "SM1")
    with runtime.transaction() as session:
        a = practices.resolve_practice(session, "default")
        a.name = "Alpha Practice"
        practices.create_practice(session, "beta", PracticeProfile(name="Beta Practice"))
        templates.save(
            session, a, purpose="reminder", channel="sms", language="en", body=A_TEMPLATE
        )
        webchat.set_widget_config(a, {"title": A_WIDGET})
        knowledge.add_document(session, a, A_DOC, b"# Parking\n\nBehind the building.")
        endpoint, _ = webhooks.create_endpoint(
            session, runtime.cipher, a, EndpointIn(url=A_HOOK), actor="test"
        )
        key, _ = apikeys.create_api_key(session, a, "alpha-sync")
        clinician = Clinician(practice_id=a.id, match_key="other", name="Dr. Other")
        session.add(clinician)
        appointment = session.scalars(select(Appointment)).one()
        review = ReviewItem(
            practice_id=a.id,
            appointment_id=appointment.id,
            patient_id=appointment.patient_id,
            kind="missed_session",
        )
        session.add(review)
        session.flush()
        return {
            "conversation_id": str(session.scalars(select(Conversation.id)).one()),
            "appointment_id": str(appointment.id),
            "patient_id": str(appointment.patient_id),
            "item_id": str(review.id),
            "endpoint_id": str(endpoint.id),
            "document_id": str(session.scalars(select(KnowledgeDocument.id)).one()),
            "prefix": key.prefix,
            "clinician": str(clinician.id),
        }


@pytest.fixture
def world(settings: Settings, runtime: Runtime) -> Iterator[World]:
    ids = _seed(runtime)
    add_staff(runtime, "a-admin@example.com", role="admin", slug="default")
    add_staff(runtime, "a-desk@example.com", role="front_desk", slug="default")
    add_staff(
        runtime,
        "a-clin@example.com",
        role="clinician",
        clinician_id=int(ids.pop("clinician")),
        slug="default",
    )
    add_staff(runtime, "b-admin@example.com", role="admin", slug="beta")
    with runtime.transaction() as session:
        ids["user_id"] = str(
            session.scalars(
                select(StaffUser.id).where(StaffUser.email == "a-admin@example.com")
            ).one()
        )
    ids |= {
        "token": "not-a-real-link-token",
        "slug": "default",
        "practice_slug": "default",
        "source": "ehr",
        "external_id": "a1",
        "purpose": "reminder",
        "channel": "sms",
        "provider": "twilio",
        "language": "en",
        "delivery_id": "1",
        "rest": "sessions",
        # Custom actions (merged after this test was written): the built-in action's name, and
        # a run id that practice B must not be able to read.
        "name": "no_show_reminder",
        "run_id": "1",
    }
    keys = {"a": new_api_key(runtime, "default"), "b": new_api_key(runtime, "beta")}
    clients: dict[str, TestClient] = {}
    csrf: dict[str, str] = {}
    opened = []
    for name in ("anonymous", "a_admin", "a_desk", "a_clin", "b_admin"):
        client = TestClient(create_app(settings, runtime))
        client.__enter__()
        opened.append(client)
        clients[name] = client
        if name != "anonymous":
            csrf[name] = signed_in(client, f"{name.replace('_', '-')}@example.com")
    markers = ["Avery", "avery@example.com", "+12025550101", "Alpha Practice", "ALPHA-TEMPLATE"]
    markers += [
        A_WIDGET,
        A_DOC,
        "hooks.alpha.example",
        "alpha-sync",
    ]  # not the prefix: a 404 echoes it
    try:
        yield World(ids, markers, clients, csrf, keys)
    finally:
        for client in opened:
            client.__exit__(None, None, None)


def concrete(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: ids[m.group(1)], path)


def call(world: World, who: str, method: str, path: str) -> httpx.Response:
    """One request as ``who``: pages get the session's CSRF token, API routes the key."""
    url = concrete(path, world.ids)
    if who.startswith("key_"):
        client = world.clients["anonymous"]
        headers = {"authorization": f"Bearer {world.keys[who[4:]]}"}
        body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        return client.request(method, url, headers=headers, follow_redirects=False, **body)
    client = world.clients[who]
    headers = {"accept": "text/html"}
    form: dict[str, Any] = {}
    if method in ("POST", "PUT", "PATCH", "DELETE") and who in world.csrf:
        form = {"data": {"csrf_token": world.csrf[who]}}
    return client.request(method, url, headers=headers, follow_redirects=False, **form)


def refused_anonymously(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    return response.status_code == 303 and response.headers["location"].startswith("/login")


# --- the tests --------------------------------------------------------------------------------


def test_every_route_is_classified(settings: Settings, runtime: Runtime) -> None:
    routes = app_routes(settings, runtime)
    unlisted = [r for r in routes if not r[1].startswith(API_PREFIX) and r not in ROUTES]
    assert unlisted == [], f"decide who may use these routes and list them in ROUTES: {unlisted}"
    gone = [r for r in ROUTES if r not in routes]
    assert gone == [], f"these routes no longer exist: {gone}"
    for method, path in routes:
        if kind_of(method, path) == PUBLIC:
            assert any(path.startswith(p) for p in PUBLIC_WHY), (method, path)


def test_anonymous_callers_are_turned_away(
    settings: Settings, runtime: Runtime, world: World
) -> None:
    for method, path in app_routes(settings, runtime):
        if kind_of(method, path) == PUBLIC:
            continue
        response = call(world, "anonymous", method, path)
        assert refused_anonymously(response), (method, path, response.status_code)
        if path.startswith(API_PREFIX):
            assert response.status_code == 401, (method, path)
            # A signed-in browser's cookie is not an API credential (no CSRF on the API).
            assert call(world, "a_admin", method, path).status_code == 401, (method, path)


def test_roles_get_403_where_they_must(settings: Settings, runtime: Runtime, world: World) -> None:
    refused = {DESK: ["a_clin"], ADMIN: ["a_desk", "a_clin"]}
    checked = 0
    for method, path in app_routes(settings, runtime):
        for who in refused.get(kind_of(method, path), []):
            response = call(world, who, method, path)
            assert response.status_code == 403, (who, method, path, response.status_code)
            assert "Avery" not in response.text
            checked += 1
    assert checked > 60
    # ... and the roles that may, can (the markers below are really there to be leaked).
    a = world.ids
    assert "Avery" in call(world, "a_desk", "GET", f"/inbox/{a['conversation_id']}").text
    assert "ALPHA-TEMPLATE" in call(world, "a_admin", "GET", "/settings/templates").text
    assert A_DOC in call(world, "a_admin", "GET", "/settings/knowledge").text
    assert "Avery" in call(world, "key_a", "GET", "/api/v1/patients").text


def test_a_clinician_sees_only_their_own_patients_threads(world: World) -> None:
    thread = world.ids["conversation_id"]
    assert "Avery" not in call(world, "a_clin", "GET", "/inbox").text
    for method, path in [
        ("GET", "/inbox/{conversation_id}"),
        ("POST", "/inbox/{conversation_id}/note"),
        ("POST", "/inbox/{conversation_id}/reply"),
        ("POST", "/inbox/{conversation_id}/state"),
        ("POST", "/inbox/{conversation_id}/appointments/{appointment_id}"),
    ]:
        response = call(world, "a_clin", method, path)
        assert response.status_code in (404, 422), (path, response.status_code, thread)
        assert "Avery" not in response.text


# Unsafe methods that only read (a read-only key may use them).
READING_POSTS = {
    ("POST", "/api/v1/knowledge/ask"),
    ("POST", "/api/v1/templates/preview"),
    ("POST", "/api/v1/actions/validate"),  # checks a spec, stores nothing
}


def test_a_read_only_key_cannot_change_anything(
    settings: Settings, runtime: Runtime, world: World
) -> None:
    world.keys["a_read"] = new_api_key(runtime, "default", can_write=False)
    tried = 0
    for method, path in app_routes(settings, runtime):
        if not path.startswith(API_PREFIX):
            continue
        response = call(world, "key_a_read", method, path)
        if method == "GET" or (method, path) in READING_POSTS:
            assert response.status_code != 403, (method, path)
        else:
            assert response.status_code == 403, (method, path, response.status_code)
            tried += 1
    assert tried > 20


# Path parameters that name one of A's rows: B must get 404 and change nothing.
A_ROW_IDS = {
    "conversation_id",
    "appointment_id",
    "patient_id",
    "item_id",
    "user_id",
    "prefix",
    "endpoint_id",
    "document_id",
    "delivery_id",
}


def test_practice_b_never_sees_or_touches_practice_a(
    settings: Settings, runtime: Runtime, world: World
) -> None:
    tried = 0
    for method, path in app_routes(settings, runtime):
        kind = kind_of(method, path)
        if kind == PUBLIC or path in STREAMS or (method, path) in SESSION_ENDING:
            continue
        who = "key_b" if kind == API else "b_admin"
        response = call(world, who, method, path)
        tried += 1
        leaked = [m for m in world.a_markers if m in response.text]
        assert leaked == [], (method, path, response.status_code, leaked)
        names_a_row = set(re.findall(r"\{(\w+)", path)) & A_ROW_IDS
        if names_a_row:
            # Form posts may fail validation first (422): either way nothing of A's is done.
            assert response.status_code in (404, 422), (method, path, response.status_code)
    assert tried > 90

    # A's records are as they were.
    a = world.ids
    with runtime.transaction() as session:
        assert session.scalars(select(ConversationNote)).all() == []
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == a["prefix"])).one()
        assert key.revoked_at is None
        endpoint = session.get(WebhookEndpoint, int(a["endpoint_id"]))
        assert endpoint is not None and endpoint.enabled
        assert session.get(KnowledgeDocument, int(a["document_id"])) is not None
        assert session.scalars(select(MessageTemplate)).one().body == A_TEMPLATE
        user = session.get(StaffUser, int(a["user_id"]))
        assert user is not None and user.active and user.role == "admin"
        review = session.get(ReviewItem, int(a["item_id"]))
        assert review is not None and review.state == "open"
        patient = session.get(Patient, int(a["patient_id"]))
        assert patient is not None
        a_practice = session.scalars(select(Practice).where(Practice.slug == "default")).one()
        assert a_practice.name == "Alpha Practice"
        assert webchat.widget_config(a_practice).title == A_WIDGET
    # A's admin still signs in with their password (B did not reset it).
    assert call(world, "a_admin", "GET", "/settings/practice").status_code == 200
