"""SMS through Twilio's REST API (httpx), Twilio's webhooks (inbound SMS, status callbacks) and
their signature, checked with the official SDK's RequestValidator."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from twilio.request_validator import RequestValidator, get_signature_algorithm

from frontdesk.adapters.channels.base import (
    DeliveryStatus,
    InboundMessage,
    OutboundMessage,
    SendResult,
    StatusUpdate,
    delivery_error,
)
from frontdesk.adapters.channels.config import TwilioSettings
from frontdesk.domain.channels import Channel
from frontdesk.domain.errors import (
    ChannelMisconfigured,
    DeliveryError,
    PermanentError,
    RecipientOptedOut,
    TransientError,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
TWIML_CONTENT_TYPE = "text/xml"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

#: Twilio error codes: the recipient has opted out (replied STOP) — record it, do not retry.
OPTED_OUT_CODES = frozenset({"21610"})
#: Twilio error codes that mean our account or sender is set up wrong.
MISCONFIGURED_CODES = frozenset(
    {"20003", "20005", "20404", "21212", "21606", "21659", "21703", "21705", "30032", "30034"}
)
#: Twilio error codes worth retrying later.
TRANSIENT_CODES = frozenset({"20429", "20500", "20503", "30001"})

_STATUS = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "partially_delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}


def empty_twiml() -> str:
    """The answer to an inbound-message webhook when we reply later (or not at all)."""
    return EMPTY_TWIML


def normalise_status(raw: str) -> DeliveryStatus | None:
    return _STATUS.get(raw.strip().lower())


class _MultiParams:
    """Form parameters with repeated names, in the shape RequestValidator reads (``getall``)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __iter__(self) -> Any:
        return iter(self._values)

    def getall(self, name: str) -> list[str]:
        return self._values[name]


def verify_twilio_signature(
    url: str,
    form_params: Mapping[str, str] | Iterable[tuple[str, str]],
    signature: str | None,
    auth_token: str,
    *,
    signature_settings: str | None = None,
) -> bool:
    """Whether ``X-Twilio-Signature`` matches: ``url`` is the full public URL Twilio called
    (scheme, host, port, path and query exactly as configured at Twilio, not as seen behind a
    proxy), ``form_params`` every POST parameter received (pairs when names repeat).

    ``signature_settings`` is the ``X-Twilio-Webhooks-Signature-Settings`` header, present when
    the webhook is signed with a shared key (then ``auth_token`` is that key's secret and the
    algorithm may be HMAC-SHA256); without it the signature is HMAC-SHA1 with the auth token."""
    if not signature or not auth_token:
        return False
    params: Any
    if hasattr(form_params, "multi_items"):  # Starlette's FormData keeps repeated names
        params = _MultiParams(form_params.multi_items())
    elif isinstance(form_params, Mapping):
        params = dict(form_params)
    else:
        params = _MultiParams(form_params)
    algorithm = get_signature_algorithm(signature_settings)
    return bool(RequestValidator(auth_token).validate(url, params, signature, algorithm))


def parse_inbound(form: Mapping[str, str], *, received_at: datetime) -> InboundMessage:
    """An inbound SMS from Twilio's incoming-message webhook form. Unknown fields are kept out;
    ``OptOutType`` (Advanced Opt-Out), ``NumMedia`` and the media URLs go in ``extras``."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid") or ""
    if not sid:
        raise ValueError("MessageSid is missing")
    body = form.get("Body", "")
    extras: dict[str, str] = {}
    for name in ("OptOutType", "NumMedia", "NumSegments", "MessagingServiceSid", "AccountSid"):
        if form.get(name):
            extras[name] = form[name]
    media = int(form.get("NumMedia") or 0) if (form.get("NumMedia") or "0").isdigit() else 0
    for index in range(media):
        for prefix in ("MediaUrl", "MediaContentType"):
            value = form.get(f"{prefix}{index}")
            if value:
                extras[f"{prefix}{index}"] = value
    return InboundMessage(
        channel=Channel.SMS,
        from_address=form.get("From", ""),
        to_address=form.get("To", ""),
        text=body.strip(),
        raw_text=body,
        provider_message_id=sid,
        received_at=received_at,
        button_payload=form.get("ButtonPayload") or None,
        extras=extras,
    )


def parse_status_callback(form: Mapping[str, str]) -> StatusUpdate:
    """A status callback (``MessageSid``, ``MessageStatus``, ``ErrorCode``). Twilio sends no
    timestamp: the caller records when it arrived."""
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not sid:
        raise ValueError("MessageSid is missing")
    raw = form.get("MessageStatus") or form.get("SmsStatus") or ""
    error_code = (form.get("ErrorCode") or "").strip() or None
    return StatusUpdate(
        provider_message_id=sid,
        status=normalise_status(raw),
        raw_status=raw,
        error_code=error_code,
        recipient_opted_out=error_code in OPTED_OUT_CODES,
    )


def _error_from_response(response: httpx.Response) -> DeliveryError:
    code: str | None = None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("code") is not None:
        code = str(payload["code"])
    status = response.status_code
    # Twilio's message text may quote the phone number: keep only the code and HTTP status.
    what = f"Twilio refused the message (HTTP {status}, error {code or 'none'})"
    if code in OPTED_OUT_CODES:
        return delivery_error(RecipientOptedOut, what, code)
    if status == 429 or status >= 500 or code in TRANSIENT_CODES:
        return delivery_error(TransientError, what, code)
    if status in (401, 403) or code in MISCONFIGURED_CODES:
        return delivery_error(ChannelMisconfigured, what, code)
    if status == 404:
        return delivery_error(ChannelMisconfigured, what, code)
    return delivery_error(PermanentError, what, code)


class TwilioSmsChannel:
    """Sends SMS with ``POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json``.

    Twilio has no idempotency key for message creation: a request that timed out after Twilio
    accepted it and is retried may send twice. We keep the window small (one request, no
    automatic retries) and let the dispatcher's outbox record the SID once one is returned."""

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._settings = settings
        self._client = client or httpx.Client(timeout=settings.timeout_seconds)
        self._clock = clock or (lambda: datetime.now(UTC))

    def close(self) -> None:
        self._client.close()

    @property
    def messages_url(self) -> str:
        base = self._settings.base_url.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self._settings.account_sid}/Messages.json"

    def _auth(self) -> tuple[str, str]:
        settings = self._settings
        if settings.api_key_sid and settings.api_key_secret:
            return settings.api_key_sid, settings.api_key_secret.get_secret_value()
        return settings.account_sid, settings.auth_token.get_secret_value()

    def request_form(self, message: OutboundMessage) -> dict[str, str]:
        settings = self._settings
        form = {"To": message.to, "Body": message.body}
        if settings.messaging_service_sid:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        else:
            assert settings.from_number is not None  # the settings validator ensures one
            form["From"] = settings.from_number
        callback = message.status_callback_url or settings.status_callback_url
        if callback:
            form["StatusCallback"] = callback
        return form

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            response = self._client.post(
                self.messages_url,
                data=self.request_form(message),
                auth=self._auth(),
                headers={"Accept": "application/json"},
                timeout=self._settings.timeout_seconds,
            )
        except httpx.TimeoutException as exc:
            raise delivery_error(TransientError, "Twilio did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise delivery_error(
                TransientError, f"could not reach Twilio: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 300:
            error = _error_from_response(response)
            raise error from httpx.HTTPStatusError(
                f"HTTP {response.status_code}", request=response.request, response=response
            )
        try:
            payload = response.json()
            sid = str(payload["sid"])
        except (ValueError, KeyError, TypeError) as exc:
            raise delivery_error(TransientError, "Twilio's answer had no message SID") from exc
        status = normalise_status(str(payload.get("status") or "queued"))
        if status not in (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED):
            status = DeliveryStatus.QUEUED
        return SendResult(provider_message_id=sid, status=status.value)
