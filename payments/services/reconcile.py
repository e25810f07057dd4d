"""The reconciler: finds what the happy path left behind and drives it to a final state.

Each payment and refund that is not settled carries `recheck_at`. Past it:
- pending: the job was lost (Redis down at submit, a worker killed before it took the job): enqueue again,
  unless a job for it is still waiting in the queue;
- processing: the worker's lease ran out (a worker SIGKILLed mid-call): the bank may or may not have charged,
  so the payment becomes unknown, and a job is queued to settle it;
- unknown: queue another settle job (it asks the bank about the payment's idempotency key).
Everything it queues is safe to run twice, so two reconcilers at once do no harm.
"""

from __future__ import annotations

import logging
from collections import Counter

from django.utils import timezone

from payments.models import Actor, Payment, PaymentStatus, Refund, RefundStatus
from payments.services.dispatch import payment_enqueue, refund_enqueue
from payments.services.idempotency import idempotency_purge_expired
from payments.services.transitions import TransitionNotAllowed, payment_transition, recheck_at_for, refund_transition

logger = logging.getLogger(__name__)
UNSETTLED = (PaymentStatus.PENDING, PaymentStatus.PROCESSING, PaymentStatus.UNKNOWN)


def payments_reconcile(*, limit: int = 500) -> Counter:
    now = timezone.now()
    done: Counter = Counter()
    due = Payment.objects.filter(status__in=UNSETTLED, recheck_at__lte=now).order_by("recheck_at")
    for payment_id, status in due.values_list("id", "status")[:limit]:
        if status == PaymentStatus.PROCESSING:
            try:
                payment_transition(
                    payment_id=payment_id,
                    to_status=PaymentStatus.UNKNOWN,
                    actor=Actor.RECONCILER,
                    reason="the worker's lease ran out before it recorded an answer",
                )
                done["lease_expired"] += 1
            except TransitionNotAllowed:
                continue  # the worker answered in the meantime
        # Look again later in any case: if the job we queue now is lost too, the next pass re-drives it.
        Payment.objects.filter(pk=payment_id, status__in=(PaymentStatus.PENDING, PaymentStatus.UNKNOWN)).update(
            recheck_at=recheck_at_for(status if status == PaymentStatus.PENDING else PaymentStatus.UNKNOWN)
        )
        if payment_enqueue(payment_id=payment_id, unless_queued=True):
            done["payments_requeued"] += 1

    refunds_due = Refund.objects.filter(status__in=UNSETTLED, recheck_at__lte=now).order_by("recheck_at")
    for refund_id, status in refunds_due.values_list("id", "status")[:limit]:
        if status == RefundStatus.PROCESSING:
            try:
                refund_transition(
                    refund_id=refund_id,
                    to_status=RefundStatus.UNKNOWN,
                    actor=Actor.RECONCILER,
                    reason="the worker's lease ran out",
                )
            except TransitionNotAllowed:
                continue
        Refund.objects.filter(pk=refund_id, status__in=(RefundStatus.PENDING, RefundStatus.UNKNOWN)).update(
            recheck_at=recheck_at_for(status if status == RefundStatus.PENDING else RefundStatus.UNKNOWN)
        )
        if refund_enqueue(refund_id=refund_id, unless_queued=True):
            done["refunds_requeued"] += 1
    # Idempotency keys are kept IDEMPOTENCY_KEY_TTL (24 h); past that their records are housekeeping.
    purged = idempotency_purge_expired()
    if purged:
        done["idempotency_keys_purged"] = purged
    if done:
        logger.info("reconciler: %s", dict(done))
    return done
