"""Unsubscribe links: a token naming a user and a kind of mail, signed so it works without signing in.

The key is derived from the JWT secret for this purpose alone, so an unsubscribe token is never
an access token and a leaked one can only turn one kind of mail off for one user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from reelhouse.notifications.models import NotificationKind

_KEY_PURPOSE = b"reelhouse/notifications/unsubscribe/v1"


class InvalidUnsubscribeToken(Exception):
    """The token is malformed or was not signed by us."""


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    user_id: uuid.UUID
    kind: NotificationKind


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeTokens:
    def __init__(self, jwt_secret: str) -> None:
        self._key = hmac.new(jwt_secret.encode(), _KEY_PURPOSE, hashlib.sha256).digest()

    def _signature(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def issue(self, user_id: uuid.UUID, kind: NotificationKind) -> str:
        payload = f"{user_id.hex}:{kind.value}".encode()
        return f"{_b64(payload)}.{_b64(self._signature(payload))}"

    def verify(self, token: str) -> UnsubscribeRequest:
        try:
            encoded_payload, encoded_signature = token.split(".", 1)
            payload, signature = _unb64(encoded_payload), _unb64(encoded_signature)
        except ValueError:
            raise InvalidUnsubscribeToken() from None
        if not hmac.compare_digest(signature, self._signature(payload)):
            raise InvalidUnsubscribeToken()
        try:
            user_hex, kind = payload.decode().split(":", 1)
            return UnsubscribeRequest(user_id=uuid.UUID(hex=user_hex), kind=NotificationKind(kind))
        except ValueError:
            raise InvalidUnsubscribeToken() from None
