from __future__ import annotations

import logging
import uuid
from functools import partial

from django.db import transaction

from payments.gateway import CardToken, GatewayUnavailable, decline_message, get_gateway
from payments.models import Actor, Payment, PaymentEvent, PaymentStatus
from payments.services.dispatch import payment_enqueue
from payments.services.transitions import TransitionNotAllowed, payment_transition

logger = logging.getLogger(__name__)


def payment_create(
    *,
    amount: int,
    currency: str,
    card: CardToken,
    actor: str,
    owner_user=None,
    owner_guest_id: uuid.UUID | None = None,
    order=None,
    description: str = "",
) -> Payment:
    """Record a pending payment and queue it for a worker once the record is committed.

    The enqueue waits for the commit so that a worker can never pick up a payment it cannot yet read,
    and so that a rolled-back checkout leaves no job behind.
    """
    with transaction.atomic():
        payment = Payment.objects.create(
            order=order,
            owner_user=owner_user,
            owner_guest_id=owner_guest_id,
            amount=amount,
            currency=currency,
            description=description,
            status=PaymentStatus.PENDING,
            seq=1,
            card_token=card.token,
            card_brand=card.brand,
            card_last4=card.last4,
            card_exp_month=card.exp_month,
            card_exp_year=card.exp_year,
        )
        PaymentEvent.objects.create(
            payment=payment,
            seq=1,
            from_status="",
            to_status=PaymentStatus.PENDING,
            actor=actor,
            reason="payment recorded",
        )
        transaction.on_commit(partial(payment_enqueue, payment_id=payment.id))
    return payment


def payment_process(*, payment_id) -> Payment:
    """The worker's job: risk and the bank call, in two short transactions around the slow part.

    tx 1 takes the payment (pending → processing); the gateway call runs outside any transaction, so no
    row lock is held while the bank thinks; tx 2 records the answer. Safe to run twice: a payment that is
    no longer pending is left as it is.
    """
    try:
        payment = payment_transition(
            payment_id=payment_id,
            to_status=PaymentStatus.PROCESSING,
            actor=Actor.WORKER,
            reason="worker took the payment",
        )
    except TransitionNotAllowed as refused:
        logger.info("payment %s is %s; nothing to do", payment_id, refused.payment.status)
        return refused.payment

    try:
        result = get_gateway().charge(
            token=payment.card_token,
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=payment.gateway_idempotency_key,
        )
    except GatewayUnavailable:
        # The request never reached the bank, so nothing was charged: failing is the honest answer.
        return payment_transition(
            payment_id=payment_id,
            to_status=PaymentStatus.FAILED,
            actor=Actor.WORKER,
            reason="gateway unavailable",
            changes={
                "failure_code": "processing_error",
                "failure_message": decline_message("processing_error"),
            },
        )
    except Exception:
        # Anything else and we cannot know whether the bank charged: say so, never "failed".
        logger.exception("gateway call for payment %s ended without an answer", payment_id)
        return payment_transition(
            payment_id=payment_id,
            to_status=PaymentStatus.UNKNOWN,
            actor=Actor.WORKER,
            reason="gateway answer not received",
        )

    if result.approved:
        return payment_transition(
            payment_id=payment_id,
            to_status=PaymentStatus.SUCCEEDED,
            actor=Actor.WORKER,
            reason="charged",
            changes={"gateway_reference": result.reference},
        )
    return payment_transition(
        payment_id=payment_id,
        to_status=PaymentStatus.FAILED,
        actor=Actor.WORKER,
        reason=f"declined: {result.decline_code}",
        changes={
            "gateway_reference": result.reference,
            "failure_code": "card_declined",
            "decline_code": result.decline_code,
            "failure_message": decline_message(result.decline_code),
        },
    )
