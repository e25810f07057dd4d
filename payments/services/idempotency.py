"""Idempotency keys for API writes (Stripe's semantics, the IETF Idempotency-Key draft's header).

There is no claim and no lock timer. A write and the record of its answer commit in one transaction, and the
object the write creates (a Payment or a Refund) carries the key under a unique constraint per client: a
second request with the same key, however late and however the first one stalled, cannot insert a second
object. It finds the first one's answer instead (`idempotency_answer`), or, while the first one's
transaction is still open, waits for it on the unique index (bounded by the database's lock timeout).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from payments.cards import CardDetails, card_fingerprint
from payments.models import IdempotencyRecord, Payment, Refund

MAX_KEY_LENGTH = 255
# The header's value, as the OpenAPI document states it (payments/api/docs.py) and idempotency_key_parse reads it:
# a bare key, or an RFC 8941 string (the IETF draft's form: `"…"`, with `\"` and `\\` its only escapes). Either way
# the key is 1 to 255 printable ASCII characters; a bare key does not both begin and end with `"` (that is a
# quoted one), nor begin or end with a space (HTTP strips those). One pattern, ECMA-262 and Python alike, so the
# document and the server cannot disagree; the longest value it allows is a quoted key with every character
# escaped.
_KEY_CHARACTER = r"[ -~]"
_EDGE_CHARACTER = r"[!-~]"  # not a space
_STRING_CHARACTER = r'(?:[ !#-\[\]-~]|\\["\\])'  # RFC 8941: printable ASCII but " and \, or \" or \\
IDEMPOTENCY_KEY_PATTERN = (
    r"^(?:"
    rf"[!#-~](?:{_KEY_CHARACTER}{{0,{MAX_KEY_LENGTH - 2}}}{_EDGE_CHARACTER})?"  # bare, not beginning with "
    rf'|"(?:{_KEY_CHARACTER}{{0,{MAX_KEY_LENGTH - 2}}}[!#-~])?'  # bare, beginning but not ending with "
    rf'|"{_STRING_CHARACTER}{{1,{MAX_KEY_LENGTH}}}"'  # quoted
    r")$"
)
IDEMPOTENCY_KEY_MAX_HEADER_LENGTH = 2 + 2 * MAX_KEY_LENGTH
_QUOTED_KEY = re.compile(rf'"({_STRING_CHARACTER}*)"')
_ESCAPE = re.compile(r'\\(["\\])')


class IdempotencyKeyInvalid(Exception):
    pass


class IdempotencyKeyReused(Exception):
    """The key was first used for a different request."""


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict
    headers: dict


def idempotency_key_parse(raw: str | None) -> str:
    """The header's value (IDEMPOTENCY_KEY_PATTERN): an RFC 8941 string ("…", as the draft specifies) or a bare key."""
    value = (raw or "").strip(" \t")  # HTTP's optional whitespace; a server may have left it on
    quoted = _QUOTED_KEY.fullmatch(value)
    if quoted is not None:
        value = _ESCAPE.sub(r"\1", quoted.group(1))
    elif len(value) >= 2 and value[0] == value[-1] == '"':
        raise IdempotencyKeyInvalid(
            'A quoted Idempotency-Key must be a valid string: printable ASCII, with \\" and \\\\ its only escapes.'
        )
    if not value:
        raise IdempotencyKeyInvalid("The Idempotency-Key header is required for this request.")
    if len(value) > MAX_KEY_LENGTH:
        raise IdempotencyKeyInvalid(f"The Idempotency-Key may be at most {MAX_KEY_LENGTH} characters.")
    if not value.isprintable() or not value.isascii():
        raise IdempotencyKeyInvalid("The Idempotency-Key must be printable ASCII.")
    return value


def _canonical(value):
    """JSON for what json cannot encode. A card stands in only as its fingerprint and expiry: nothing derived
    from the CVC, and nothing from the number but the keyed fingerprint we keep anyway, is ever hashed here."""
    if isinstance(value, CardDetails):
        return {"card": card_fingerprint(value.number), "exp": [value.exp_month, value.exp_year]}
    return str(value)


def request_fingerprint(*, method: str, path: str, request: dict) -> str:
    """Tells a retry of one request from another request under the same key.

    `request` is the *validated* request; the raw card input (number and CVC) must not be in it.
    """
    if "card" in request:
        raise ValueError("fingerprint the validated request: the raw card (number, CVC) must not be hashed")
    canonical = json.dumps([method, path, request], sort_keys=True, separators=(",", ":"), default=_canonical)
    secret = hashlib.sha256(f"idempotency:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(secret, canonical.encode(), hashlib.sha256).hexdigest()


def idempotency_answer(*, user, key: str, fingerprint: str) -> Replay | None:
    """The first answer given for this (client, key), or None if the key has not been used (or its record has
    been purged). Raises IdempotencyKeyReused if it answered a different request."""
    record = IdempotencyRecord.objects.filter(owner_user=user, key=key).first()
    if record is None:
        return None
    if record.request_fingerprint != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was already used for a different request.")
    return Replay(status=record.response_status, body=record.response_body, headers=record.response_headers)


@functools.cache
def _key_used_sql() -> str:
    record, payment, refund = IdempotencyRecord._meta, Payment._meta, Refund._meta

    def exists(meta, owner: str, key: str) -> str:
        table, owner_column, key_column = (
            connection.ops.quote_name(name)
            for name in (meta.db_table, meta.get_field(owner).column, meta.get_field(key).column)
        )
        # Names from the models, values as parameters.
        return f"EXISTS (SELECT 1 FROM {table} WHERE {owner_column} = %s AND {key_column} = %s)"  # noqa: S608

    return (
        f"SELECT {exists(record, 'owner_user', 'key')} OR {exists(payment, 'owner_user', 'idempotency_key')}"
        f" OR {exists(refund, 'requested_by', 'idempotency_key')}"
    )


def idempotency_key_used(*, user, key: str) -> bool:
    """Whether this client's key has a stored answer or made a payment or a refund: the accept path's only
    read before it writes, one indexed statement that a fresh key (the common case) answers False.

    One key, one object of either kind: after its answer is purged, a payment's key cannot make a refund
    either, so the key's objects are asked about too, not only its stored answer.

    SQL written out (both backends run it): the ORM spent 2 ms compiling this query's three EXISTS for every
    payment, ten times what the database spends answering it (make bench's profile, docs/benchmarks.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(_key_used_sql(), [user.pk, key, user.pk, key, user.pk, key])
        return bool(cursor.fetchone()[0])


def idempotency_record(*, user, key: str, fingerprint: str, status: int, body: dict, headers: dict) -> None:
    """Call inside the write's transaction: the answer commits with the write, or neither does. Its unique
    constraint (and the created object's) refuses a second write for the key with an IntegrityError."""
    IdempotencyRecord.objects.create(
        owner_user=user,
        key=key,
        request_fingerprint=fingerprint,
        response_status=status,
        response_body=body,
        response_headers=headers,
        expires_at=timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL),
    )


def idempotency_purge_expired(*, limit: int = 1000) -> int:
    """Forget stored answers past their TTL. The key stays on its payment or refund, so a retry after this
    still cannot create a second one (it is told the key is spent, see the API docs)."""
    expired = IdempotencyRecord.objects.filter(expires_at__lte=timezone.now()).values_list("pk", flat=True)[:limit]
    return IdempotencyRecord.objects.filter(pk__in=list(expired)).delete()[0]
