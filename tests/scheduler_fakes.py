"""A local HTTP server on loopback playing the scheduling systems frontdesk talks to.

- ``/fhir``: a small FHIR R4 server — search with paging (``Bundle.link`` next), ``_include``
  (switchable), versioned resources with ETags, ``If-Match`` (412 when stale), conditional
  create (``If-None-Exist``), and injected faults (500s, slow answers, an EHR edit that lands
  between our read and our write).
- ``/feed.ics``: an iCalendar feed with ETag / Last-Modified (304 when unchanged).
- ``/calendly/scheduled_events/{uuid}``: the Calendly API's scheduled event.
- ``/acuity/appointments/{id}``: the Acuity API's appointment (HTTP Basic auth).
"""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass
class Fault:
    """What to do to the next request matching ``method`` and ``path`` (a prefix)."""

    method: str
    path: str
    # "500"; "slow" (wait, then handle); "late" (handle, then wait before answering: the
    # change is made but the client gives up on the answer); "edit" (apply ``edit`` to the
    # resource as the EHR would, then handle: our If-Match is stale)
    kind: str
    edit: Callable[[dict[str, Any]], None] | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: Any = None


@dataclass
class FakeState:
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    page_size: int = 2
    include_supported: bool = True
    slow_seconds: float = 1.0
    clock: datetime = field(default_factory=lambda: datetime(2026, 11, 1, 12, tzinfo=UTC))
    feed: bytes = b""
    feed_etag: str = '"v1"'
    feed_last_modified: str = "Sun, 01 Nov 2026 12:00:00 GMT"
    calendly_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    acuity_appointments: dict[str, dict[str, Any]] = field(default_factory=dict)
    acuity_auth: tuple[str, str] = ("12345", "acuity-api-key-789")
    lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Store ``resource`` as the EHR would (new version, new lastUpdated)."""
        key = (resource["resourceType"], resource["id"])
        version = self.versions.get(key, 0) + 1
        self.versions[key] = version
        self.clock += timedelta(seconds=1)
        stored = copy.deepcopy(resource)
        stored["meta"] = {
            "versionId": str(version),
            "lastUpdated": self.clock.isoformat().replace("+00:00", "Z"),
        }
        self.resources[key] = stored
        return stored

    def get(self, kind: str, resource_id: str) -> dict[str, Any]:
        return self.resources[(kind, resource_id)]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for (k, _), r in sorted(self.resources.items()) if k == kind]

    def writes(self, method: str = "PUT") -> list[Seen]:
        return [s for s in self.log if s.method == method]


class _Handler(BaseHTTPRequestHandler):
    state: FakeState
    base: str

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # --- plumbing ---

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        if getattr(self, "late", False):
            time.sleep(self.state.slow_seconds)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.state.lock:
            for index, fault in enumerate(self.state.faults):
                if fault.method == method and path.startswith(fault.path):
                    return self.state.faults.pop(index)
        return None

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query)
        body = self._body() if method in ("PUT", "POST") else None
        with self.state.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.state.log.append(Seen(method, parts.path, query, headers, body))
        fault = self._fault(method, parts.path)
        if fault is not None and fault.kind == "500":
            self._send(500, {"resourceType": "OperationOutcome"})
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(self.state.slow_seconds)
        self.late = fault is not None and fault.kind == "late"
        if fault is not None and fault.kind == "edit" and fault.edit is not None:
            segments = parts.path.strip("/").split("/")
            with self.state.lock:
                resource = copy.deepcopy(self.state.get(segments[1], segments[2]))
                fault.edit(resource)
                self.state.put(resource)
        try:
            if parts.path == "/feed.ics":
                self._feed()
            elif parts.path.startswith("/calendly/scheduled_events/"):
                self._calendly(parts.path.rsplit("/", 1)[-1])
            elif parts.path.startswith("/acuity/appointments/"):
                self._acuity(parts.path.rsplit("/", 1)[-1])
            elif parts.path.startswith("/fhir/"):
                self._fhir(method, parts.path.removeprefix("/fhir/").split("/"), query, body)
            else:
                self._send(404, {"resourceType": "OperationOutcome"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout we caused on purpose)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    # --- the feed and Calendly ---

    def _feed(self) -> None:
        state = self.state
        if self.headers.get("If-None-Match") == state.feed_etag:
            self._send(304, None, {"ETag": state.feed_etag})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("ETag", state.feed_etag)
        self.send_header("Last-Modified", state.feed_last_modified)
        self.send_header("Content-Length", str(len(state.feed)))
        self.end_headers()
        self.wfile.write(state.feed)

    def _calendly(self, uuid: str) -> None:
        if self.headers.get("Authorization") != "Bearer calendly-token":
            self._send(401, {"title": "Unauthenticated"})
        elif uuid not in self.state.calendly_events:
            self._send(404, {"title": "Resource Not Found"})
        else:
            self._send(200, {"resource": self.state.calendly_events[uuid]})

    def _acuity(self, appointment_id: str) -> None:
        user, key = self.state.acuity_auth
        expected = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._send(401, {"status_code": 401, "error": "unauthorized"})
        elif appointment_id not in self.state.acuity_appointments:
            self._send(404, {"status_code": 404, "error": "not_found"})
        else:
            self._send(200, self.state.acuity_appointments[appointment_id])

    # --- FHIR ---

    def _fhir(
        self, method: str, segments: list[str], query: list[tuple[str, str]], body: Any
    ) -> None:
        state = self.state
        if method == "GET" and segments == ["Appointment"]:
            self._search(query)
        elif method == "GET" and len(segments) == 2:
            with state.lock:
                resource = state.resources.get((segments[0], segments[1]))
            if resource is None:
                self._send(404, {"resourceType": "OperationOutcome"})
                return
            version = resource["meta"]["versionId"]
            self._send(200, resource, {"ETag": f'W/"{version}"'})
        elif method == "PUT" and len(segments) == 2:
            with state.lock:
                key = (segments[0], segments[1])
                current = state.versions.get(key)
                wanted = self.headers.get("If-Match")
                if current is None or (wanted and wanted != f'W/"{current}"'):
                    status, answer = 412, {"resourceType": "OperationOutcome"}
                    headers: dict[str, str] = {}
                else:
                    answer = state.put(body)
                    status = 200
                    headers = {"ETag": f'W/"{answer["meta"]["versionId"]}"'}
            self._send(status, answer, headers)
        elif method == "POST" and len(segments) == 1:
            condition = self.headers.get("If-None-Exist", "")
            system, _, value = condition.removeprefix("identifier=").partition("|")
            with state.lock:
                for existing in state.of_type(segments[0]):
                    for identifier in existing.get("identifier") or []:
                        if identifier.get("system") == system and identifier.get("value") == value:
                            self._send(200, existing)
                            return
                body["id"] = f"c{len(state.of_type(segments[0])) + 1}"
                created = state.put(body)
            self._send(201, created)
        else:
            self._send(400, {"resourceType": "OperationOutcome"})

    def _search(self, query: list[tuple[str, str]]) -> None:
        state = self.state
        params: dict[str, list[str]] = {}
        for name, value in query:
            params.setdefault(name, []).append(value)
        since = params.get("_lastUpdated", [None])[0]
        offset = int(params.get("_offset", ["0"])[0])
        with state.lock:
            matches = []
            for resource in state.of_type("Appointment"):
                updated = resource["meta"]["lastUpdated"]
                if since and _instant(updated) < _instant(since.removeprefix("ge")):
                    continue
                start = resource.get("start")
                if start and not _in_window(start, params.get("date", [])):
                    continue
                matches.append(resource)
            page = matches[offset : offset + state.page_size]
            entries: list[dict[str, Any]] = [
                {"fullUrl": f"{self.base}/fhir/Appointment/{r['id']}", "resource": r} for r in page
            ]
            if state.include_supported and "_include" in params:
                seen: set[str] = set()
                for resource in page:
                    for participant in resource.get("participant", []):
                        ref = participant.get("actor", {}).get("reference", "")
                        if ref.startswith("Patient/") and ref not in seen:
                            seen.add(ref)
                            patient = state.resources.get(("Patient", ref.split("/")[1]))
                            if patient is not None:
                                entries.append({"resource": patient, "search": {"mode": "include"}})
        links = [{"relation": "self", "url": f"{self.base}/fhir/Appointment"}]
        if offset + state.page_size < len(matches):
            rest = [(k, v) for k, v in query if k != "_offset"]
            rest.append(("_offset", str(offset + state.page_size)))
            links.append(
                {"relation": "next", "url": f"{self.base}/fhir/Appointment?{urlencode(rest)}"}
            )
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(matches),
            "link": links,
            "entry": entries,
        }
        self._send(200, bundle)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _in_window(start: str, conditions: list[str]) -> bool:
    moment = _instant(start)
    for condition in conditions:
        if condition.startswith("ge") and moment < _instant(condition[2:]):
            return False
        if condition.startswith("lt") and moment >= _instant(condition[2:]):
            return False
    return True


@contextmanager
def fake_schedulers() -> Iterator[tuple[str, FakeState]]:
    """(base URL, state) of a fresh server on 127.0.0.1; stopped on exit."""
    state = FakeState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    handler.base = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fhir_patient(patient_id: str, name: str, phone: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "name": [{"use": "official", "family": name.split()[-1], "given": name.split()[:-1]}],
        "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
    }


def fhir_appointment(
    appointment_id: str, patient_id: str, start: datetime, *, status: str = "booked"
) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": appointment_id,
        "status": status,
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": (start + timedelta(minutes=50)).isoformat().replace("+00:00", "Z"),
        "participant": [
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "needs-action"},
            {
                "actor": {"reference": "Practitioner/dr1", "display": "Dr. Ada Lovelace"},
                "status": "accepted",
            },
        ],
    }
