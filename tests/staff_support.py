"""Staff accounts for tests: add a person, sign a client in, read a page's CSRF token."""

from __future__ import annotations

import re
from typing import Any

import httpx
from fastapi.testclient import TestClient

from frontdesk.bootstrap import Runtime
from frontdesk.services import practices, staff

PASSWORD = "correct horse battery staple"
# Cheap argon2 for tests that are not about its cost (the defaults take ~0.1 s per hash).
FAST_HASHING: dict[str, Any] = {
    "staff_password_time_cost": 1,
    "staff_password_memory_kib": 1024,
    "staff_password_parallelism": 1,
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_staff(
    runtime: Runtime,
    email: str = "desk@example.com",
    role: str = "admin",
    *,
    password: str = PASSWORD,
    clinician_id: int | None = None,
    slug: str | None = None,
    name: str = "Test Person",
) -> int:
    with runtime.transaction() as session:
        user = staff.create_user(
            session,
            practices.resolve_practice(session, slug),
            email=email,
            display_name=name,
            role=role,
            password=password,
            params=staff.hash_parameters(runtime.settings),
            clinician_id=clinician_id,
            actor="test",
        )
        return user.id


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html
    return found.group(1)


def sign_in(
    client: TestClient | httpx.Client,
    email: str = "desk@example.com",
    password: str = PASSWORD,
    *,
    code: str = "",
    practice: str = "",
    next_url: str = "/",
) -> httpx.Response:
    """Fill in and post the sign-in form as a browser would (its CSRF cookie included)."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    return client.post(
        "/login",
        data={
            "email": email,
            "password": password,
            "code": code,
            "practice": practice,
            "next": next_url,
            "csrf_token": csrf_token(form.text),
        },
        follow_redirects=False,
    )


def signed_in(client: TestClient, email: str = "desk@example.com", **kwargs: Any) -> str:
    """Sign ``client`` in and return the session's CSRF token."""
    response = sign_in(client, email, **kwargs)
    assert response.status_code == 303, response.text
    return csrf_token(client.get("/account").text)
