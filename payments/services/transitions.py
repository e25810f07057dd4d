from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from payments.models import ALLOWED_TRANSITIONS, Payment, PaymentEvent, PaymentStatus
from payments.realtime import payment_push_status
from payments.selectors import payment_status_payload


class TransitionNotAllowed(Exception):
    def __init__(self, payment: Payment, to_status: str):
        super().__init__(f"payment {payment.id}: {payment.status} → {to_status} is not allowed")
        self.payment = payment
        self.to_status = to_status


def payment_transition(
    *,
    payment_id,
    to_status: str,
    actor: str,
    reason: str = "",
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> Payment:
    """The one way a payment's status changes.

    Locks the row, re-checks the move against ALLOWED_TRANSITIONS *after* locking (another worker may
    have moved it while we waited), saves only what changed, appends the numbered PaymentEvent, and
    pushes the new status document once the transaction has committed, so no one is told of a state
    that could still roll back.
    """
    changes = changes or {}
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        from_status = payment.status
        if to_status not in ALLOWED_TRANSITIONS[from_status]:
            raise TransitionNotAllowed(payment, to_status)

        payment.status = to_status
        payment.seq += 1
        if to_status == PaymentStatus.PROCESSING:
            payment.attempts += 1
        for name, value in changes.items():
            setattr(payment, name, value)
        payment.save(update_fields=["status", "seq", "attempts", "updated_at", *changes])

        PaymentEvent.objects.create(
            payment=payment,
            seq=payment.seq,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
            data=data or {},
        )
        transaction.on_commit(partial(payment_push_status, payment_status_payload(payment)))
    return payment
