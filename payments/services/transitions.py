"""The one way a payment's (or a refund's) status changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from infrastructure.redaction import redact_card_data
from payments.events import PAYMENT, REFUND, StatusChange, status_change_emit
from payments.models import (
    ALLOWED_REFUND_TRANSITIONS,
    ALLOWED_TRANSITIONS,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from payments.selectors import payment_status_payload, refund_payload

REASON_MAX_LENGTH = PaymentEvent._meta.get_field("reason").max_length


def event_reason(text: str) -> str:
    """A reason as the event keeps it: scrubbed of card data (a gateway's exception text is written here as it
    came) and cut to the column's length, so that an unusually long message can never make the change itself
    fail (a DataError on PostgreSQL would leave a payment `processing` until the reconciler came)."""
    text = redact_card_data(text)
    return text if len(text) <= REASON_MAX_LENGTH else text[: REASON_MAX_LENGTH - 1] + "…"


class TransitionNotAllowed(Exception):
    def __init__(self, obj, to_status: str):
        super().__init__(f"{type(obj).__name__} {obj.pk}: {obj.status} → {to_status} is not allowed")
        self.obj = obj
        self.to_status = to_status


def recheck_at_for(status: str):
    """When the reconciler should look again at something that has just entered `status` (None: never)."""
    seconds = {
        PaymentStatus.PENDING: settings.PAYMENTS_PENDING_GRACE,
        PaymentStatus.PROCESSING: settings.PAYMENTS_PROCESSING_LEASE,
        PaymentStatus.UNKNOWN: settings.PAYMENTS_SETTLE_RETRY,
        # The shopper's time at the bank: past it, the reconciler gives up on them (authentication_expired).
        PaymentStatus.REQUIRES_ACTION: settings.PAYMENTS_ACTION_TIMEOUT,
    }.get(status)
    return timezone.now() + timedelta(seconds=seconds) if seconds is not None else None


def payment_transition(
    *,
    payment_id,
    to_status: str,
    actor: str,
    actor_user=None,
    reason: str = "",
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    fence: dict[str, Any] | None = None,
) -> Payment:
    """Locks the row, re-checks the move against ALLOWED_TRANSITIONS *after* locking (another worker may
    have moved it while we waited), saves only what changed, appends the numbered PaymentEvent and emits the
    one StatusChange (payments/events.py): its in-transaction receivers (the order) commit with it, the others
    (the push) hear of it once committed, so no one is told of a state that could still roll back.

    `fence` is what the writer believes of the row (say, {"status": "processing", "attempts": 3}: "I still
    hold the attempt I started"). It goes into the locking query's WHERE; if the row no longer matches,
    someone else (the reconciler, a later attempt) owns it now and the move is refused, even one that
    ALLOWED_TRANSITIONS would permit from the row's current state.
    """
    changes = changes or {}
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id, **(fence or {})).first()
        if payment is None:
            raise TransitionNotAllowed(Payment.objects.get(pk=payment_id), to_status)
        from_status = payment.status
        if to_status not in ALLOWED_TRANSITIONS[from_status]:
            raise TransitionNotAllowed(payment, to_status)

        payment.status = to_status
        payment.seq += 1
        payment.recheck_at = recheck_at_for(to_status)
        if to_status == PaymentStatus.PROCESSING:
            payment.attempts += 1
        for name, value in changes.items():
            setattr(payment, name, value)
        payment.save(update_fields=["status", "seq", "attempts", "recheck_at", "updated_at", *changes])

        PaymentEvent.objects.create(
            payment=payment,
            seq=payment.seq,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            actor_user=actor_user,
            reason=event_reason(reason),
            data=data or {},
        )
        status_change_emit(
            StatusChange(
                kind=PAYMENT,
                object_id=str(payment.pk),
                payment_id=str(payment.pk),
                order_id=payment.order_id,
                from_status=from_status,
                to_status=to_status,
                seq=payment.seq,
                actor=actor,
                document=payment_status_payload(payment),
            )
        )
    return payment


def refund_transition(
    *,
    refund_id,
    to_status: str,
    actor: str,
    reason: str = "",
    changes: dict[str, Any] | None = None,
    fence: dict[str, Any] | None = None,
) -> Refund:
    """The refund counterpart of payment_transition (`fence` included), with its own StatusChange. A refund
    that succeeds adds its amount to the payment's refunded total and moves the payment to partially_refunded
    or refunded, in the same transaction (the payment's own change, and event, follow the refund's).

    Locks are always taken payment first, then refund (as refund_create does), so the two cannot deadlock.
    """
    changes = changes or {}
    payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        refund = Refund.objects.select_for_update().filter(pk=refund_id, **(fence or {})).first()
        if refund is None:
            raise TransitionNotAllowed(Refund.objects.get(pk=refund_id), to_status)
        if to_status not in ALLOWED_REFUND_TRANSITIONS[refund.status]:
            raise TransitionNotAllowed(refund, to_status)
        from_status, refund.status = refund.status, to_status
        refund.recheck_at = recheck_at_for(to_status)
        if to_status == RefundStatus.PROCESSING:
            refund.attempts += 1
        for name, value in changes.items():
            setattr(refund, name, value)
        refund.save(update_fields=["status", "attempts", "recheck_at", "updated_at", *changes])
        refund.payment = payment  # the locked row: the document reads its currency, the event its seq and order
        status_change_emit(
            StatusChange(
                kind=REFUND,
                object_id=str(refund.pk),
                payment_id=str(payment.pk),
                order_id=payment.order_id,
                from_status=from_status,
                to_status=to_status,
                seq=payment.seq,
                actor=actor,
                document=refund_payload(refund),
            )
        )

        if to_status == RefundStatus.SUCCEEDED:
            refunded = payment.amount_refunded + refund.amount
            payment_transition(
                payment_id=payment.pk,
                to_status=PaymentStatus.REFUNDED
                if refunded == payment.amount_captured
                else PaymentStatus.PARTIALLY_REFUNDED,
                actor=actor,
                # The refund's success is written by a worker, but the money went back because someone asked.
                actor_user=refund.requested_by,
                reason=reason or "refund succeeded",
                data={"refund_id": str(refund.pk), "amount": refund.amount},
                changes={"amount_refunded": refunded},
            )
    return refund
