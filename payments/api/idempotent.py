"""An API write that happens at most once per (client, Idempotency-Key), whatever the timing of retries."""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, IntegrityError, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from infrastructure.problems import problem_response
from payments.links import headers_absolute, links_absolute
from payments.metrics import idempotent_replay_count
from payments.services.idempotency import (
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    Replay,
    idempotency_answer,
    idempotency_key_parse,
    idempotency_key_used,
    idempotency_record,
    request_fingerprint,
)
from payments.services.recording import idempotent_replay_record


class InvalidBody(ValidationError):
    """A well-formed request whose fields are wrong: 422 Unprocessable Content (a malformed one is a 400)."""

    status_code = 422


def _answer(request, status: int, body: dict, headers: dict) -> Response:
    """An answer as this request sees it: kept with paths (answers stored before links were absolute hold paths
    too), sent with URLs absolute for the origin that asked."""
    return Response(links_absolute(body, request), status=status, headers=headers_absolute(headers, request))


def _replayed(request, key: str, answer: Replay) -> Response:
    idempotent_replay_count()
    # On the payment's flight recorder: a replay is a request too. The replay path only, never the first write.
    idempotent_replay_record(user=request.user, key=key, status=answer.status, body=answer.body)
    return _answer(request, answer.status, answer.body, {**answer.headers, "Idempotent-Replayed": "true"})


class IdempotentWrite:
    """Usage: `early = write.start(Serializer)`; return `early` if it is not None; else do the slow work that
    writes nothing of ours (the vault call), then `return write.commit(fn)` where `fn(key)` creates the object
    with the key on it and returns (status, body, headers). If `fn` refuses for a reason of the business (a
    refund finds nothing left to refund), ask `first_answer()` before answering: a same-key request may have
    won the race, and its answer is this one's too.
    """

    def __init__(self, request):
        self.request = request
        self.key: str | None = None
        self.fingerprint: str | None = None
        self.data: dict | None = None

    def start(self, serializer_class) -> Response | None:
        """The key (400), then the body (422), then the first answer if there is one (replay or 422)."""
        try:
            self.key = idempotency_key_parse(self.request.headers.get("Idempotency-Key"))
        except IdempotencyKeyInvalid as error:
            return problem_response(
                status=400, code="idempotency_key_missing", detail=str(error), param="Idempotency-Key"
            )
        serializer = serializer_class(data=self.request.data)
        if not serializer.is_valid():
            raise InvalidBody(serializer.errors)
        self.data = dict(serializer.validated_data)
        self.data.pop("card", None)  # the raw card input; `card_details` stands for it from here on
        self.fingerprint = request_fingerprint(method=self.request.method, path=self.request.path, request=self.data)
        # Checked before anything is written: after its answer is purged a key still made its payment (or
        # refund), and must not make an object of the other kind either (two indexed lookups).
        return self.first_answer()

    def commit(self, write: Callable[[str], tuple[int, dict, dict]]) -> Response:
        """Run `write` and record its answer in one transaction. If another request with this key got there
        first, the database refuses our insert and we answer with what it answered."""
        try:
            with transaction.atomic():
                status, body, headers = write(self.key)
                idempotency_record(
                    user=self.request.user,
                    key=self.key,
                    fingerprint=self.fingerprint,
                    status=status,
                    body=body,
                    headers=headers,
                )
        except IntegrityError:
            answer = self.first_answer()
            if answer is not None:
                return answer
            raise  # not the key's constraints: a real bug, a real 500
        except DatabaseError:
            # A lock or statement timeout (another request with this key holds its row, or the database
            # stalls), or a lost connection: our transaction did not commit, or we cannot tell. Either way a
            # retry with the same key is safe, and that is what we ask for.
            return problem_response(
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "1"},
                detail="The database is busy; nothing was created. Retry with the same Idempotency-Key.",
            )
        return _answer(self.request, status, body, headers)

    def first_answer(self) -> Response | None:
        """The answer already given for this key: its replay, 422 if it answered another request (or, its
        answer purged, made something), or None if the key is unused."""
        if not idempotency_key_used(user=self.request.user, key=self.key):
            return None
        # Its stored answer, read after the key's object: the two commit together, so a same-key request that
        # committed between our reads has its answer here too; none means it was purged.
        return self._stored_answer() or problem_response(
            status=422,
            code="idempotency_key_reused",
            detail="This Idempotency-Key was used more than its retention period ago; use a new key.",
        )

    def _stored_answer(self) -> Response | None:
        try:
            answer = idempotency_answer(user=self.request.user, key=self.key, fingerprint=self.fingerprint)
        except IdempotencyKeyReused as error:
            return problem_response(status=422, code="idempotency_key_reused", detail=str(error))
        return _replayed(self.request, self.key, answer) if answer is not None else None
