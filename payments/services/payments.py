from __future__ import annotations

import random
import time
import uuid
from functools import partial

import structlog
from django.conf import settings
from django.db import transaction

from payments.currencies import validate_amount
from payments.gateway import (
    ChargeResult,
    GatewayError,
    GatewayUnavailable,
    decline_message,
    get_gateway,
    release_database_connection,
)
from payments.metrics import payment_accepted_count
from payments.models import Actor, Payment, PaymentEvent, PaymentStatus
from payments.recording import GatewayCall, RecordedKind
from payments.services import actions
from payments.services.cards import TokenizedCard
from payments.services.dispatch import payment_enqueue
from payments.services.recording import gateway_call_recorded
from payments.services.risk import payment_risk_assess
from payments.services.transitions import TransitionNotAllowed, payment_transition, recheck_at_for

logger = structlog.get_logger(__name__)


def payment_create(
    *,
    amount: int,
    currency: str,
    card: TokenizedCard,
    actor: str,
    actor_user=None,
    owner_user=None,
    owner_guest_id: uuid.UUID | None = None,
    idempotency_key: str = "",
    order=None,
    description: str = "",
    metadata: dict | None = None,
) -> Payment:
    """Record a pending payment and queue it for a worker once the record is committed.

    The enqueue waits for the commit so that a worker can never pick up a payment it cannot yet read, and a
    rolled-back checkout leaves no job behind. If the enqueue fails, the payment is still durable and the
    reconciler re-drives it after PAYMENTS_PENDING_GRACE.

    An `idempotency_key` already on one of this owner's payments makes the INSERT fail (IntegrityError): the
    caller answers with the first payment instead.
    """
    validate_amount(amount, currency)
    # No savepoint (services/transitions.py): both callers (the API's idempotent write, the checkout) hold a
    # transaction that must roll back whole if this fails.
    with transaction.atomic(savepoint=False):
        payment = Payment.objects.create(
            order=order,
            owner_user=owner_user,
            owner_guest_id=owner_guest_id,
            amount=amount,
            currency=currency,
            description=description,
            metadata=metadata or {},
            idempotency_key=idempotency_key,
            status=PaymentStatus.PENDING,
            seq=1,
            recheck_at=recheck_at_for(PaymentStatus.PENDING),
            card_token=card.token,
            card_brand=card.brand,
            card_last4=card.last4,
            card_exp_month=card.exp_month,
            card_exp_year=card.exp_year,
            card_fingerprint=card.fingerprint,
        )
        PaymentEvent.objects.create(
            payment=payment,
            seq=1,
            from_status="",
            to_status=PaymentStatus.PENDING,
            actor=actor,
            actor_user=actor_user,
            reason="payment recorded",
        )
        transaction.on_commit(partial(_payment_recorded, payment))
        # Counted once it is durable: a submit that rolls back (a lost key race, sold out) was never accepted.
        # Robust: a metric that fails is logged, never an error for a payment already committed.
        transaction.on_commit(partial(payment_accepted_count, actor), robust=True)
    return payment


def _payment_recorded(payment: Payment) -> None:
    # After commit: a payment whose transaction rolled back (an Idempotency-Key's race) was never recorded.
    logger.info(
        "payment recorded",
        payment_id=str(payment.id),
        amount=payment.amount,
        currency=payment.currency,
        card_brand=payment.card_brand,
        order_id=payment.order_id,
    )
    payment_enqueue(payment_id=payment.id)


def payment_cancel(*, payment_id, actor: str, actor_user=None, reason: str = "canceled") -> Payment:
    """pending → canceled; requires_action → canceled once the bank has voided the cardholder's authentication
    (payments.services.actions); refused (TransitionNotAllowed) while a worker holds the payment."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        return actions.payment_action_cancel(payment=payment, actor=actor, actor_user=actor_user, reason=reason)
    return payment_transition(
        payment_id=payment_id, to_status=PaymentStatus.CANCELED, actor=actor, actor_user=actor_user, reason=reason
    )


def payment_process(*, payment_id, actor: str = Actor.WORKER) -> Payment:
    """The job for a payment, whatever state it is found in; safe to run any number of times.

    pending: risk checks, then tx 1 (pending → processing), then the bank call outside any transaction, then
    tx 2 records the answer. unknown: settle it by asking the bank. requires_action: resume it once the bank has
    reported the cardholder's answer, or expire it past its deadline (payments.services.actions). Anything else:
    nothing to do (a live worker holds it, or it is final).
    """
    payment = Payment.objects.get(pk=payment_id)
    if payment.status == PaymentStatus.PENDING:
        return _process_pending(payment, actor)
    if payment.status == PaymentStatus.UNKNOWN:
        return _settle_unknown(payment, actor)
    if payment.status == PaymentStatus.REQUIRES_ACTION:
        return actions.payment_action_continue(payment, actor, charge_and_record=_charge_and_record)
    logger.info("payment %s is %s; nothing to do", payment_id, payment.status)
    return payment


def _process_pending(payment: Payment, actor: str) -> Payment:
    refusal = payment_risk_assess(payment)  # reads only, outside any transaction
    try:
        if refusal is None:
            payment = _take(payment, actor)
        else:
            # Taking the payment and recording a risk refusal commit together: a worker that dies in between
            # leaves it pending (and re-driven), never processing with no bank call that should be made.
            with transaction.atomic():
                payment = _take(payment, actor)
                return payment_transition(
                    payment_id=payment.pk,
                    to_status=PaymentStatus.FAILED,
                    actor=actor,
                    reason=f"risk: {refusal.rule}",
                    data={"risk_rule": refusal.rule, "detail": refusal.detail},
                    changes={
                        "failure_code": "risk_declined",
                        "decline_code": refusal.decline_code,
                        "failure_message": decline_message(refusal.decline_code),
                    },
                )
    except TransitionNotAllowed as refused:
        logger.info("payment %s was taken or ended meanwhile (%s)", payment.pk, refused.obj.status)
        return refused.obj
    return _charge_and_record(payment, actor)


def _charge_and_record(payment: Payment, actor: str) -> Payment:
    """The bank call of a payment this attempt has just moved to processing (from pending, or resumed from
    requires_action), outside any transaction, then tx 2."""
    # tx 2 writes only while this attempt still holds the payment. A worker paused past its lease (SIGSTOP, a
    # stalled VM) wakes to find the reconciler has made it unknown, or settled it: its late answer is dropped,
    # even where the state machine alone would allow it (unknown → failed).
    ours = {"status": PaymentStatus.PROCESSING, "attempts": payment.attempts}
    try:
        result, tries = _charge_with_retries(payment)
    except GatewayUnavailable as error:
        # Every try failed before reaching the bank, so nothing was charged: failing is the honest answer.
        return _record(
            payment,
            PaymentStatus.FAILED,
            actor,
            reason=f"gateway unavailable: {error}",
            failure_code="processing_error",
            decline_code="",
            fence=ours,
        )
    except Exception as error:  # GatewayTimeout, the job's own timeout, anything: we cannot know
        logger.warning("payment %s: no answer from the gateway (%r); outcome unknown", payment.pk, error)
        return _record(
            payment, PaymentStatus.UNKNOWN, actor, reason=f"no answer from the gateway: {error!r}", fence=ours
        )
    return _record_charge_result(payment, result, actor, tries=tries, fence=ours)


def _take(payment: Payment, actor: str) -> Payment:
    return payment_transition(
        payment_id=payment.pk, to_status=PaymentStatus.PROCESSING, actor=actor, reason="worker took it"
    )


def _settle_unknown(payment: Payment, actor: str) -> Payment:
    """Ask the bank what it did with this payment's key; if it has no record, ask it to charge with the same
    key, which it does at most once: so a call still in flight from a lost worker can never make it twice."""
    gateway = get_gateway()
    release_database_connection()
    try:
        with gateway_call_recorded(
            kind=RecordedKind.PAYMENT, object_id=payment.pk, operation=GatewayCall.Operation.CHARGE_OUTCOME
        ) as call:
            result = gateway.charge_outcome(idempotency_key=payment.gateway_idempotency_key)
            call.answered(result)
        tries = 0
        if result is None:
            result, tries = _charge_with_retries(payment)
    except Exception as error:
        logger.warning("payment %s: still no answer (%r); asking again later", payment.pk, error)
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.UNKNOWN).update(
            recheck_at=recheck_at_for(PaymentStatus.UNKNOWN)
        )
        return payment
    return _record_charge_result(payment, result, actor, tries=tries, reason_prefix="settled: ")


def _charge_with_retries(payment: Payment) -> tuple[ChargeResult, int]:
    gateway = get_gateway()
    retries = settings.PAYMENTS_GATEWAY_RETRIES
    for attempt in range(retries + 1):
        release_database_connection()
        try:
            with gateway_call_recorded(
                kind=RecordedKind.PAYMENT,
                object_id=payment.pk,
                operation=GatewayCall.Operation.CHARGE,
                try_number=attempt + 1,
                redact=(payment.card_token,),
            ) as call:
                result = gateway.charge(
                    token=payment.card_token,
                    amount=payment.amount,
                    currency=payment.currency,
                    idempotency_key=payment.gateway_idempotency_key,
                    return_url=action_return_url(payment),
                )
                call.answered(result)
            return result, attempt + 1
        except GatewayUnavailable:
            if attempt == retries:
                raise
            delay = min(settings.PAYMENTS_GATEWAY_BACKOFF_CAP, settings.PAYMENTS_GATEWAY_BACKOFF_BASE * 2**attempt)
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter spreads retries, it guards nothing
            logger.info("payment %s: gateway unavailable, retry %d in %.2f s", payment.pk, attempt + 1, delay)
            # The failed try's record borrowed a connection: no sleeping with it.
            release_database_connection()
            time.sleep(delay)
    raise GatewayError("unreachable")  # the loop returns or raises


def action_return_url(payment: Payment) -> str:
    """Where the bank's authentication page sends the shopper back: a shop's payment (it has an order) to its wait
    page, which shows the outcome live. An API client's payment has no page of ours to go back to: the bank's
    page ends on its own, and the client follows the status document."""
    if payment.order_id is None:
        return ""
    return settings.PAYMENTS_ACTION_RETURN_PATH.format(payment_id=payment.id)


def _record_charge_result(
    payment, result: ChargeResult, actor, *, tries: int, reason_prefix: str = "", fence=None
) -> Payment:
    if result.requires_action:
        # The job ends here: no worker thread waits for the shopper. The bank's report (or the deadline) brings
        # the payment back to a job.
        payment = _record(
            payment,
            PaymentStatus.REQUIRES_ACTION,
            actor,
            reason=f"{reason_prefix}the bank asks the cardholder to authenticate (3-D Secure)",
            data={"gateway_tries": tries},
            changes=actions.requires_action_changes(payment, result),
            fence=fence,
        )
        actions.after_requires_action_recorded(payment)
        return payment
    if result.approved:
        return _record(
            payment,
            PaymentStatus.SUCCEEDED,
            actor,
            reason=f"{reason_prefix}charged",
            data={"gateway_tries": tries},
            changes={"gateway_reference": result.reference, "amount_captured": payment.amount},
            fence=fence,
        )
    return _record(
        payment,
        PaymentStatus.FAILED,
        actor,
        reason=f"{reason_prefix}declined: {result.decline_code}",
        data={"gateway_tries": tries},
        failure_code="card_declined",
        decline_code=result.decline_code,
        changes={"gateway_reference": result.reference},
        fence=fence,
    )


def _record(
    payment, to_status, actor, *, reason, data=None, changes=None, failure_code="", decline_code="", fence=None
):
    """tx 2: write the outcome, unless someone (the reconciler, another worker) already did or owns it now."""
    changes = dict(changes or {})
    if failure_code:
        changes |= {
            "failure_code": failure_code,
            "decline_code": decline_code,
            "failure_message": decline_message(decline_code or failure_code),
        }
    try:
        return payment_transition(
            payment_id=payment.pk,
            to_status=to_status,
            actor=actor,
            reason=reason,
            data=data,
            changes=changes,
            fence=fence,
        )
    except TransitionNotAllowed as refused:
        logger.info("payment %s already %s; not recording %s", payment.pk, refused.obj.status, to_status)
        return refused.obj
