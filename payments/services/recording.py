"""The flight recorder's writes (models in payments/recording.py, read by payments/timeline.py).

Every write here is short and on its own: in autocommit, after the work it describes, never inside a payment's
transaction and never across a bank call. A recorder write that fails is logged and forgotten: the recorder
describes the payment's life, it must never change it (a job must not stop between the bank's answer and
recording that answer because a row about the call could not be written).
"""

from __future__ import annotations

import contextvars
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from rq import get_current_job

from payments.gateway import GatewayTimeout, GatewayUnavailable, release_database_connection
from payments.metrics import gateway_call_observed
from payments.recording import GatewayCall, IdempotentReplay, JobAttempt, StatusPush

logger = logging.getLogger(__name__)

# A job's pushes are kept on its attempt; a job makes one per payment transition (two or three), so this bound
# is never reached unless something loops.
MAX_PUSHES_PER_ATTEMPT = 20
MAX_ERROR_LENGTH = 300


def _write(what: str, write) -> object | None:
    """Run one recorder write; on a database error log it and go on. Inside a caller's transaction (a test's, an
    admin request's) it runs in a savepoint, so that its failure cannot poison that transaction."""
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return write()
        return write()
    except DatabaseError as error:
        logger.warning("flight recorder: could not record %s (%s)", what, type(error).__name__)
        return None
    except Exception:  # a bug of the recorder's own must not become the payment's
        logger.exception("flight recorder: could not record %s", what)
        return None


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        return None


def _error_text(error: BaseException, *secrets: str) -> str:
    text = f"{type(error).__name__}: {error}"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text[:MAX_ERROR_LENGTH]


# --- job attempts ---------------------------------------------------------------------------------------------


@dataclass
class AttemptInProgress:
    """The attempt a job thread is running: gateway calls name it, pushes are collected on it."""

    id: int | None
    started_at: datetime
    started: float  # time.monotonic()
    outcome: str = ""  # what the job says it left its payment or refund in
    pushes: list[dict] = field(default_factory=list)


# RQ runs one job at a time on a thread (infrastructure/overrides/rq_worker.py): a context variable is that
# thread's current attempt.
_current_attempt: contextvars.ContextVar[AttemptInProgress | None] = contextvars.ContextVar(
    "payments_job_attempt", default=None
)


def current_attempt() -> AttemptInProgress | None:
    return _current_attempt.get()


@contextmanager
def job_attempt_recorded(*, kind: str, object_id) -> Iterator[AttemptInProgress]:
    """Record one run of a job around it: a row when it starts, completed when it ends, with the outcome the job
    sets on it (`attempt.outcome`) or the exception it raised (which is raised on, unchanged)."""
    job = get_current_job()  # None when not run by an RQ worker (a test, a command): no worker name then
    attempt = AttemptInProgress(id=None, started_at=timezone.now(), started=time.monotonic())
    object_uuid = _as_uuid(object_id)
    if object_uuid is not None:
        row = _write(
            "a job attempt",
            lambda: JobAttempt.objects.create(
                kind=kind,
                object_id=object_uuid,
                job_id=(getattr(job, "id", "") or "")[:80],
                worker=(getattr(job, "worker_name", "") or "")[:200],
                started_at=attempt.started_at,
            ),
        )
        attempt.id = getattr(row, "pk", None)
    token = _current_attempt.set(attempt)
    outcome, error_text = "", ""
    try:
        yield attempt
        outcome = attempt.outcome[:20]
    except BaseException as error:
        outcome, error_text = "error", _error_text(error)
        raise
    finally:
        _current_attempt.reset(token)
        _job_attempt_finish(attempt, outcome=outcome, exception=error_text)


def _job_attempt_finish(attempt: AttemptInProgress, *, outcome: str, exception: str) -> None:
    if attempt.id is None:
        return
    duration_ms = (time.monotonic() - attempt.started) * 1000
    # The end as the start's clock plus the measured duration: the two timestamps of one attempt never disagree
    # with its duration, even if the wall clock is stepped meanwhile.
    finished_at = attempt.started_at + timedelta(milliseconds=duration_ms)
    _write(
        "the end of a job attempt",
        lambda: JobAttempt.objects.filter(pk=attempt.id).update(
            finished_at=finished_at,
            duration_ms=round(duration_ms, 3),
            outcome=outcome,
            exception=exception,
            pushes=attempt.pushes[:MAX_PUSHES_PER_ATTEMPT],
        ),
    )


# --- gateway calls --------------------------------------------------------------------------------------------


class GatewayCallInProgress:
    def __init__(self) -> None:
        self.outcome = ""
        self.reference = ""
        self.code = ""

    def answered(self, result) -> None:
        """The bank's answer: a ChargeResult or RefundResult, or None (an outcome lookup with no record). Never
        raises: it is called with the answer in hand, which must reach the caller whatever is wrong here."""
        try:
            if result is None:
                self.outcome = GatewayCall.Outcome.NO_RECORD
                return
            if getattr(result, "requires_action", False):
                self.outcome = GatewayCall.Outcome.REQUIRES_ACTION
            else:
                self.outcome = GatewayCall.Outcome.APPROVED if result.approved else GatewayCall.Outcome.DECLINED
            self.reference = str(result.reference or "")
            self.code = str(getattr(result, "decline_code", "") or getattr(result, "failure_code", "") or "")
        except Exception:
            logger.exception("flight recorder: could not read the bank's answer")


@contextmanager
def gateway_call_recorded(
    *, kind: str, object_id, operation: str, try_number: int = 1, redact: tuple[str, ...] = ()
) -> Iterator[GatewayCallInProgress]:
    """Time one bank call and record it once it has returned or raised (the exception goes on unchanged). The
    call itself is untouched, and made holding no database connection; the row is written after it.
    `redact`: strings (the card's vault token) that must not appear in a recorded error."""
    call = GatewayCallInProgress()
    # The previous call's record may have borrowed a connection (an outcome lookup, then the call it decides on):
    # none is held across a bank call (payments/gateway.py).
    release_database_connection()
    started_at, started = timezone.now(), time.monotonic()
    error_text = ""
    try:
        with gateway_call_observed(operation):  # and its metrics (payments/metrics.py)
            yield call
    except GatewayUnavailable as error:
        call.outcome, error_text = GatewayCall.Outcome.UNAVAILABLE, _error_text(error, *redact)
        raise
    except GatewayTimeout as error:
        call.outcome, error_text = GatewayCall.Outcome.TIMEOUT, _error_text(error, *redact)
        raise
    except BaseException as error:
        call.outcome, error_text = GatewayCall.Outcome.ERROR, _error_text(error, *redact)
        raise
    finally:
        duration_ms = round((time.monotonic() - started) * 1000, 3)
        attempt = current_attempt()
        object_uuid = _as_uuid(object_id)
        if object_uuid is not None:
            _write(
                "a gateway call",
                lambda: GatewayCall.objects.create(
                    kind=kind,
                    object_id=object_uuid,
                    attempt_id=attempt.id if attempt is not None else None,
                    operation=operation,
                    try_number=try_number,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    outcome=call.outcome or GatewayCall.Outcome.ERROR,
                    reference=call.reference[:64],
                    code=call.code[:40],
                    error=error_text,
                ),
            )


# --- pushes ---------------------------------------------------------------------------------------------------


def status_push_record(*, payment_id, seq: int, actor: str, at, duration_ms: float, ok: bool) -> None:
    """A push of a payment's status document. Made by a job: kept on its attempt, written with the attempt's end
    (no statement of its own). Made elsewhere (a cancel, the reconciler): one small row."""
    entry = {"seq": seq, "at": at.isoformat(), "ms": round(duration_ms, 3), "ok": ok}
    attempt = current_attempt()
    if attempt is not None:
        if len(attempt.pushes) < MAX_PUSHES_PER_ATTEMPT:
            attempt.pushes.append({"payment_id": str(payment_id), **entry})
        return
    payment_uuid = _as_uuid(payment_id)
    if payment_uuid is None:
        return
    _write(
        "a push",
        lambda: StatusPush.objects.create(
            payment_id=payment_uuid, seq=seq, actor=actor, at=at, duration_ms=round(duration_ms, 3), ok=ok
        ),
    )


# --- idempotent replays ---------------------------------------------------------------------------------------


def idempotent_replay_record(*, user, key: str, status: int, body: dict) -> None:
    """An API request answered with an earlier request's stored answer. The replay path only: the first request
    (the 202 that made the payment) writes nothing here, so the accept path costs what it did."""
    object_uuid = _as_uuid((body or {}).get("id"))
    if object_uuid is None or getattr(user, "pk", None) is None:
        return
    _write(
        "an idempotent replay",
        lambda: IdempotentReplay.objects.create(
            object_id=object_uuid, client_id=user.pk, key=key, at=timezone.now(), response_status=status
        ),
    )
