"""How a gateway signs the callbacks it sends us, and how we check them: what a provider's SDK does (Stripe's
`Stripe-Signature` is the model). The header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under
PAYMENTS_GATEWAY_CALLBACK_SECRET. The timestamp is inside the MAC, so an old callback cannot be dressed up as new;
one older than PAYMENTS_GATEWAY_CALLBACK_TOLERANCE is refused (replays within it are harmless: see
payments.services.actions)."""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

SIGNATURE_HEADER = "Gateway-Signature"


class SignatureInvalid(Exception):
    """The callback is not from the gateway (or is too old): nothing it says is acted on."""


def _mac(body: bytes, timestamp: int) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(settings.PAYMENTS_GATEWAY_CALLBACK_SECRET.encode(), message, hashlib.sha256).hexdigest()


def callback_signature(body: bytes, *, at: float | None = None) -> str:
    timestamp = int(time.time() if at is None else at)
    return f"t={timestamp},v1={_mac(body, timestamp)}"


def callback_signature_verify(body: bytes, header: str | None, *, now: float | None = None) -> None:
    """Raises SignatureInvalid unless `header` signs exactly `body`, recently."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise SignatureInvalid("no timestamp") from None
    now = time.time() if now is None else now
    if abs(now - timestamp) > settings.PAYMENTS_GATEWAY_CALLBACK_TOLERANCE:
        raise SignatureInvalid("signed too long ago (or in the future)")
    expected = _mac(body, timestamp)
    # Any v1 may match (a provider rolling its secret sends two); compared in constant time.
    if not any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", [])):
        raise SignatureInvalid("signature does not match")
