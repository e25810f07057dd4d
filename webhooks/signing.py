"""The `Webhook-Signature` header (docs/webhooks.md, "Verifying a delivery").

`t=<unix seconds>,v1=<hex>`: v1 is HMAC-SHA256 keyed by the endpoint's secret over `<t>.<the raw body>`. While a
rotated-out secret is still in its grace period, it signs too, as a second `v1=`: a receiver that has not yet
switched to the new secret still verifies. The timestamp is inside what is signed, so a captured delivery replayed
later fails a receiver's tolerance on `t` (5 minutes in the docs' snippet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix that marks a secret, not one
SIGNATURE_HEADER = "Webhook-Signature"


def secret_new() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(signing_secrets: list[str], body: bytes, timestamp: int) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature(secret, timestamp, body)}" for secret in signing_secrets)])


def signing_secrets(endpoint) -> list[str]:
    """The endpoint's secret, and the previous one while its grace period after a rotation lasts."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > timezone.now():
        found.append(endpoint.previous_secret)
    return found
