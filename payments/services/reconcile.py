"""The reconciler: finds what the happy path left behind and drives it to a final state.

Each payment and refund that is not settled carries `recheck_at`. Past it:
- pending: the job was lost (Redis down at submit, a worker killed before it took the job): enqueue again,
  unless a job for it is still waiting in the queue;
- processing: the worker's lease ran out (a worker SIGKILLed mid-call): the bank may or may not have charged,
  so the payment becomes unknown, and a job is queued to settle it;
- unknown: queue another settle job (it asks the bank about the payment's idempotency key);
- requires_action (payments only): either the bank reported the cardholder's answer and the job that resumes
  the payment was lost, or the shopper's time (PAYMENTS_ACTION_TIMEOUT) is up: queue the job, which resumes or
  expires it (payments.services.actions). The job decides which, from the payment, under its lock.
Everything it queues is safe to run twice, so two reconcilers at once do no harm.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone
from structlog.contextvars import bound_contextvars

from payments.metrics import reconciler_pass_count
from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.dispatch import payment_enqueue, refund_enqueue
from payments.services.idempotency import idempotency_purge_expired
from payments.services.transitions import TransitionNotAllowed, payment_transition, recheck_at_for, refund_transition

logger = structlog.get_logger(__name__)
# Payments and refunds share these three unsettled states (same names in both machines).
UNSETTLED = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.UNKNOWN)
PAYMENT_UNSETTLED = (*UNSETTLED, PaymentStatus.REQUIRES_ACTION)


@dataclass(frozen=True)
class _Unsettled:
    """One kind of record the reconciler drives: how to find it, mark it unknown, and queue its job."""

    name: str
    model: type
    id_field: str  # the name its id has in log lines
    mark_unknown: Callable[..., object]
    enqueue: Callable[..., bool]
    statuses: tuple[str, ...] = UNSETTLED


def _mark_payment_unknown(object_id):
    payment_transition(
        payment_id=object_id,
        to_status=PaymentStatus.UNKNOWN,
        actor=Actor.RECONCILER,
        reason="the worker's lease ran out before it recorded an answer",
    )


def _mark_refund_unknown(object_id):
    refund_transition(
        refund_id=object_id,
        to_status=RefundStatus.UNKNOWN,
        actor=Actor.RECONCILER,
        reason="the worker's lease ran out before it recorded an answer",
    )


KINDS = (
    _Unsettled(
        "payments",
        Payment,
        "payment_id",
        _mark_payment_unknown,
        lambda object_id: payment_enqueue(payment_id=object_id, unless_queued=True),
        PAYMENT_UNSETTLED,
    ),
    _Unsettled(
        "refunds",
        Refund,
        "refund_id",
        _mark_refund_unknown,
        lambda object_id: refund_enqueue(refund_id=object_id, unless_queued=True),
    ),
)


def _drive(kind: _Unsettled, *, now, limit: int, done: Counter) -> None:
    due = kind.model.objects.filter(status__in=kind.statuses, recheck_at__lte=now).order_by("recheck_at")
    for object_id, status in due.values_list("id", "status")[:limit]:
        # Every line about it (its transition, the enqueue) carries its id: `grep <payment id>` finds them.
        with bound_contextvars(**{kind.id_field: str(object_id)}):
            try:
                _drive_one(kind, object_id, status, done)
            except DatabaseError as error:
                # One row held by a stalled transaction (a worker paused inside tx 2) must not stall the rest: its
                # lock wait times out, and the next pass tries it again.
                logger.warning("reconciler: %s %s skipped this pass (%s)", kind.name, object_id, type(error).__name__)
                done[f"{kind.name}_skipped_busy"] += 1


def _drive_one(kind: _Unsettled, object_id, status: str, done: Counter) -> None:
    if status == PaymentStatus.PROCESSING:
        try:
            kind.mark_unknown(object_id)
            done[f"{kind.name}_lease_expired"] += 1
        except TransitionNotAllowed:
            return  # the worker answered in the meantime
    # Look again later in any case: if the job we queue now is lost too, the next pass re-drives it.
    if status == PaymentStatus.REQUIRES_ACTION:
        # Its recheck time was the shopper's deadline, or the report's grace: the job decides which (it reads
        # next_action_expires_at, not this), and the next look is a settle retry away.
        waiting, next_look = status, timezone.now() + timedelta(seconds=settings.PAYMENTS_SETTLE_RETRY)
    else:
        waiting = PaymentStatus.PENDING if status == PaymentStatus.PENDING else PaymentStatus.UNKNOWN
        next_look = recheck_at_for(waiting)
    kind.model.objects.filter(pk=object_id, status=waiting).update(recheck_at=next_look)
    if kind.enqueue(object_id):
        done[f"{kind.name}_requeued"] += 1
        logger.info("reconciler: queued its job again", found=status)


class NothingToAsk(Exception):
    """A staff user asked the bank about a payment that is not unknown or stuck: nothing was done."""


def payment_ask_bank_now(*, payment_id, actor_user) -> bool:
    """What the reconciler does for an unsettled payment past its recheck time, done now for one payment on a staff
    user's word: a pending payment's job, or an unknown payment's settle job (which asks the bank about the
    payment's idempotency key), goes to the head of the queue; a processing payment whose worker's lease has run
    out becomes unknown first (the transition names the staff user) and is then settled the same way.

    Refused (NothingToAsk) for a payment with an outcome, and for one a live worker still holds: its lease is what
    stops two askers charging at once, so staff wait for it as the reconciler does. Returns whether the job was
    queued (False: Redis did not take it; the reconciler queues it on its next pass)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status == PaymentStatus.PROCESSING:
        try:
            payment_transition(
                payment_id=payment.pk,
                to_status=PaymentStatus.UNKNOWN,
                actor=Actor.STAFF,
                actor_user=actor_user,
                reason="the worker's lease ran out before it recorded an answer; staff asked the bank now",
                # The lease is the fence, checked under the row's lock: a live worker's payment is not taken.
                fence={"status": PaymentStatus.PROCESSING, "recheck_at__lte": timezone.now()},
            )
        except TransitionNotAllowed as refused:
            if refused.obj.status == PaymentStatus.PROCESSING:
                until = f"{refused.obj.recheck_at:%H:%M:%S} UTC" if refused.obj.recheck_at else "its lease ends"
                raise NothingToAsk(f"a worker holds it until {until}; ask again after that") from None
            raise NothingToAsk(f"it is {refused.obj.status} now") from None
    elif payment.status not in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
        raise NothingToAsk(f"it is {payment.status}: there is nothing to ask")
    # As the reconciler: look again later in any case, in case this job is lost too.
    waiting = PaymentStatus.PENDING if payment.status == PaymentStatus.PENDING else PaymentStatus.UNKNOWN
    Payment.objects.filter(pk=payment.pk, status=waiting).update(recheck_at=recheck_at_for(waiting))
    return payment_enqueue(payment_id=payment.pk, at_front=True)


# Housekeeping of higher apps, run on each pass: they register here (in their AppConfig.ready) because this
# app may not import them. Each task returns {counter name: count}.
_HOUSEKEEPING: list[Callable[[], dict[str, int]]] = []


def reconcile_housekeeping_register(task: Callable[[], dict[str, int]]) -> None:
    if task not in _HOUSEKEEPING:
        _HOUSEKEEPING.append(task)


def payments_reconcile(*, limit: int = 500) -> Counter:
    now = timezone.now()
    done: Counter = Counter()
    for kind in KINDS:
        _drive(kind, now=now, limit=limit, done=done)
    # Idempotency keys are kept IDEMPOTENCY_KEY_TTL (24 h); past that their records are housekeeping.
    purged = idempotency_purge_expired()
    if purged:
        done["idempotency_keys_purged"] = purged
    for task in _HOUSEKEEPING:
        done.update({name: count for name, count in task().items() if count})
    if done:
        logger.info("reconciler: %s", dict(done))
    reconciler_pass_count(done)
    return done
