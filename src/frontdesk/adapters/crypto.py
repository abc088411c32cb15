"""Protection at rest for patient contact data and other secrets stored in the database.

Values are sealed with AES-256-GCM under a key derived from the deployment's secret; a keyed
hash (HMAC-SHA256, separate derived key) of the normalised value lets us find a patient by phone
or email without storing either in the clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"frontdesk", info=purpose).derive(
        secret.encode()
    )


class DecryptionFailed(Exception):
    """A sealed value could not be opened: wrong secret key, or the value was altered."""


class FieldCipher:
    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(_derive(secret, b"field-encryption"))
        self._index_key = _derive(secret, b"lookup-index")

    def seal(self, plaintext: str | None) -> str | None:
        if plaintext is None:
            return None
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _VERSION.encode())
        return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str | None) -> str | None:
        if token is None:
            return None
        version, _, body = token.partition(":")
        if version != _VERSION:
            raise DecryptionFailed(f"unknown sealed-value version {version!r}")
        try:
            raw = base64.urlsafe_b64decode(body)
        except (binascii.Error, ValueError) as exc:
            raise DecryptionFailed("sealed value is damaged (not base64)") from exc
        if len(raw) < 12 + 16:  # nonce + GCM tag: anything shorter was cut
            raise DecryptionFailed("sealed value is damaged (too short)")
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _VERSION.encode()).decode()
        except InvalidTag as exc:
            raise DecryptionFailed("sealed value does not open with this secret key") from exc

    def lookup_key(self, value: str | None) -> str | None:
        """A stable keyed hash of a normalised value, for equality lookups."""
        if value is None:
            return None
        return hmac.new(self._index_key, value.encode(), hashlib.sha256).hexdigest()[:40]


def hash_token(token: str) -> str:
    """Hash of a high-entropy token (API keys). Tokens are random, so a fast hash suffices."""
    return hashlib.sha256(token.encode()).hexdigest()
