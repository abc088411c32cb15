"""The HTTP settings integrations share; tests hand in short timeouts and no sleeping."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from frontdesk.adapters.schedulers import acuity
from frontdesk.adapters.schedulers.calendly import API_BASE
from frontdesk.adapters.schedulers.fhir import FhirClient


@dataclass
class HttpClients:
    http: httpx.Client | None = None  # one shared client (connection reuse); None: per call
    fhir_timeout: float = 10.0
    fhir_attempts: int = 4
    fhir_backoff: float = 0.5
    sleep: Callable[[float], None] | None = None
    calendly_api: str = API_BASE
    acuity_api: str = acuity.API_BASE

    def fhir(self, base_url: str, token: str | None) -> FhirClient:
        extra: dict[str, Any] = {} if self.sleep is None else {"sleep": self.sleep}
        return FhirClient(
            base_url,
            token,
            client=self.http,
            timeout=self.fhir_timeout,
            attempts=self.fhir_attempts,
            backoff=self.fhir_backoff,
            **extra,
        )
