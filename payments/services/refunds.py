from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from django.db.models import Sum
from structlog.contextvars import bound_contextvars

from payments.gateway import GatewayUnavailable, RefundResult, get_gateway, release_database_connection
from payments.models import (
    REFUNDABLE_STATUSES,
    UNSETTLED_REFUND_STATUSES,
    Payment,
    Refund,
    RefundStatus,
)
from payments.recording import GatewayCall, RecordedKind
from payments.services.dispatch import refund_enqueue
from payments.services.recording import gateway_call_recorded
from payments.services.transitions import TransitionNotAllowed, recheck_at_for, refund_transition

logger = logging.getLogger(__name__)


class RefundNotAllowed(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def refund_amount_available(payment: Payment) -> int:
    """What may still be refunded: the capture, less refunds done and refunds still under way."""
    in_flight = (
        payment.refunds.filter(status__in=UNSETTLED_REFUND_STATUSES).aggregate(total=Sum("amount"))["total"] or 0
    )
    return payment.amount_captured - payment.amount_refunded - in_flight


def refund_amount_check(payment: Payment, amount: int | None = None) -> int:
    """What a refund of `amount` (None: all that is left) of this payment would be, or RefundNotAllowed.

    refund_create asks it under the payment's lock; a confirmation page may ask it beforehand to show what
    will happen."""
    if payment.status not in REFUNDABLE_STATUSES:
        raise RefundNotAllowed("payment_not_refundable", f"A {payment.status} payment cannot be refunded.")
    available = refund_amount_available(payment)
    amount = available if amount is None else amount
    if amount <= 0 or available <= 0:
        raise RefundNotAllowed("nothing_to_refund", "Nothing is left to refund on this payment.")
    if amount > available:
        raise RefundNotAllowed(
            "refund_exceeds_capture", f"Only {available} of {payment.amount_captured} can still be refunded."
        )
    return amount


def refund_create(
    *,
    payment_id,
    actor: str,
    requested_by=None,
    amount: int | None = None,
    reason: str = "",
    idempotency_key: str = "",
) -> Refund:
    """Record a pending refund (by default, of everything still refundable) and queue it after commit.

    The payment row is locked while the amount is checked and the refund recorded, so two refunds asked for
    at once can never add up to more than was captured.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        amount = refund_amount_check(payment, amount)
        refund = Refund.objects.create(
            payment=payment,
            amount=amount,
            actor=actor,
            requested_by=requested_by,
            idempotency_key=idempotency_key,
            reason=reason,
            status=RefundStatus.PENDING,
            recheck_at=recheck_at_for(RefundStatus.PENDING),
        )
        transaction.on_commit(partial(refund_enqueue, refund_id=refund.pk))
    return refund


def refund_process(*, refund_id, actor: str) -> Refund:
    """The refund's job, like the payment's: tx 1, the bank call outside any transaction, tx 2. An unknown
    refund is settled by asking the bank about its key, then (if it has no record) asking again with it."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    # Its lines carry the payment's id too: one grep of a payment's id shows its refunds' lives.
    with bound_contextvars(payment_id=str(refund.payment_id), refund_id=str(refund.pk)):
        return _refund_process(refund, actor)


def _refund_process(refund: Refund, actor: str) -> Refund:
    gateway = get_gateway()
    if refund.status == RefundStatus.PENDING:
        try:
            refund = refund_transition(refund_id=refund.pk, to_status=RefundStatus.PROCESSING, actor=actor)
        except TransitionNotAllowed as refused:
            return refused.obj
        lookup_first = False
        # As for payments: tx 2 writes only while this attempt still holds the refund (see payment_process).
        fence = {"status": RefundStatus.PROCESSING, "attempts": refund.attempts}
    elif refund.status == RefundStatus.UNKNOWN:
        lookup_first = True
        fence = None  # settling: the bank's answer for the key is the same for every asker
    else:
        return refund

    release_database_connection()
    try:
        result = None
        if lookup_first:
            with gateway_call_recorded(
                kind=RecordedKind.REFUND, object_id=refund.pk, operation=GatewayCall.Operation.REFUND_OUTCOME
            ) as call:
                result = gateway.refund_outcome(idempotency_key=refund.gateway_idempotency_key)
                call.answered(result)
        if result is None:
            with gateway_call_recorded(
                kind=RecordedKind.REFUND, object_id=refund.pk, operation=GatewayCall.Operation.REFUND
            ) as call:
                result = gateway.refund(
                    charge_reference=refund.payment.gateway_reference,
                    amount=refund.amount,
                    idempotency_key=refund.gateway_idempotency_key,
                )
                call.answered(result)
    except GatewayUnavailable:
        if lookup_first:
            return _still_unknown(refund)
        return _record(
            refund,
            RefundStatus.FAILED,
            actor,
            "gateway unavailable",
            fence,
            failure_code="processing_error",
            failure_message="We could not reach the bank; nothing was refunded. Try again.",
        )
    except Exception as error:
        logger.warning("refund %s: no answer from the gateway (%r)", refund.pk, error)
        if lookup_first:
            return _still_unknown(refund)
        return _record(refund, RefundStatus.UNKNOWN, actor, f"no answer from the gateway: {error!r}", fence)
    return _record_result(refund, result, actor, fence)


def _record_result(refund: Refund, result: RefundResult, actor: str, fence) -> Refund:
    if result.approved:
        return _record(refund, RefundStatus.SUCCEEDED, actor, "refunded", fence, gateway_reference=result.reference)
    return _record(
        refund,
        RefundStatus.FAILED,
        actor,
        f"refused: {result.failure_code}",
        fence,
        gateway_reference=result.reference,
        failure_code=result.failure_code,
        failure_message="The bank refused the refund.",
    )


def _record(refund: Refund, to_status: str, actor: str, reason: str, fence, **changes) -> Refund:
    try:
        return refund_transition(
            refund_id=refund.pk, to_status=to_status, actor=actor, reason=reason, changes=changes, fence=fence
        )
    except TransitionNotAllowed as refused:
        return refused.obj


def _still_unknown(refund: Refund) -> Refund:
    Refund.objects.filter(pk=refund.pk, status=RefundStatus.UNKNOWN).update(
        recheck_at=recheck_at_for(RefundStatus.UNKNOWN)
    )
    return refund
