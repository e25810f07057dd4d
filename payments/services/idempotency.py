"""Idempotency keys for API writes (Stripe's semantics, the IETF Idempotency-Key draft's header).

`idempotency_begin` claims the key for this request, or says what to do instead: replay the first
response, 409 while the first is still running, 422 if the key was used for a different request.
`idempotency_complete` must run in the same transaction as the write it answers for, so a crash leaves
either both or neither.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyKeyInvalid(Exception):
    pass


class IdempotencyKeyInFlight(Exception):
    """The first request with this key has not finished."""


class IdempotencyKeyReused(Exception):
    """The key was first used for a different request."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict
    headers: dict


def idempotency_key_parse(raw: str | None) -> str:
    """The header's value: an RFC 8941 string ("…", as the draft specifies) or a bare token."""
    value = (raw or "").strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not value:
        raise IdempotencyKeyInvalid("The Idempotency-Key header is required for this request.")
    if len(value) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid(f"The Idempotency-Key may be at most {MAX_KEY_LENGTH} characters.")
    if not value.isprintable() or not value.isascii():
        raise IdempotencyKeyInvalid("The Idempotency-Key must be printable ASCII.")
    return value


def request_fingerprint(*, method: str, path: str, body) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    secret = hashlib.sha256(f"idempotency:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


def idempotency_begin(*, user, key: str, fingerprint: str) -> IdempotencyRecord | Replay:
    now = timezone.now()
    lock = now + timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                owner_user=user,
                key=key,
                request_fingerprint=fingerprint,
                locked_until=lock,
                expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL),
            )
    except IntegrityError:
        pass  # the key is known: decide from what the first request left

    record = IdempotencyRecord.objects.get(owner_user=user, key=key)
    if record.expires_at <= now:
        IdempotencyRecord.objects.filter(pk=record.pk, expires_at__lte=now).delete()
        return idempotency_begin(user=user, key=key, fingerprint=fingerprint)
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used for a different request.")
    if record.response_status is not None:
        return Replay(status=record.response_status, body=record.response_body, headers=record.response_headers)
    # The first request died without committing anything: once its lock has run out, this one takes over.
    taken = IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True, locked_until__lte=now).update(
        locked_until=lock
    )
    if taken:
        record.locked_until = lock
        return record
    raise IdempotencyKeyInFlight("A request with this Idempotency-Key is still being processed.")


def idempotency_complete(record: IdempotencyRecord, *, status: int, body: dict, headers: dict) -> None:
    record.response_status = status
    record.response_body = body
    record.response_headers = headers
    record.locked_until = None
    record.save(update_fields=["response_status", "response_body", "response_headers", "locked_until"])


def idempotency_release(record: IdempotencyRecord) -> None:
    """The request was refused before doing anything (bad input): the key may be used again."""
    IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True).delete()


def idempotency_purge_expired(*, limit: int = 1000) -> int:
    expired = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)[:limit]
    return IdempotencyRecord.objects.filter(pk__in=list(expired)).delete()[0]
