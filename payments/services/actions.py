"""3-D Secure: a payment the bank holds until the cardholder authenticates (requires_action).

No worker waits for the shopper. The job that got the bank's "authenticate first" records requires_action and
ends. What follows is driven by three things, each safe to repeat:

- the bank's callback (payments/callbacks.py, signature verified) says the cardholder has answered:
  `payment_action_reported` keeps that on the payment and queues the payment's job. The callback's own claims
  (succeeded, failed) are not believed: the job asks the bank, by charging with the payment's one idempotency key,
  which the bank answers with the authenticated charge (debited once, whatever the number of calls) or a decline
  (authentication_failed). A callback that overtakes the worker (the payment still `processing`) is kept too, and
  the worker queues the job itself as it records requires_action;
- the job (`payment_action_continue`, from payment_process): resume (requires_action → processing, the charge with
  the same key, its answer recorded as any charge's), or, past PAYMENTS_ACTION_TIMEOUT with no answer, expire;
- the reconciler, past recheck_at: queues the job again (a lost job, a lost callback, the timeout).

Expiring and canceling void the authentication at the bank *first* (`charge_abandon`), so a shopper who answers
afterwards is refused by the bank and nothing is ever charged for a payment we show as failed or canceled; if the
shopper answered just before, the bank says so and the payment resumes instead.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import partial

import structlog
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payments.gateway import ChargeResult, decline_message, get_gateway
from payments.models import Payment, PaymentStatus
from payments.recording import GatewayCall, RecordedKind
from payments.services.dispatch import payment_enqueue
from payments.services.recording import gateway_call_recorded
from payments.services.transitions import TransitionNotAllowed, payment_transition, recheck_at_for

logger = structlog.get_logger(__name__)

AUTHENTICATION_EXPIRED = "authentication_expired"
PAYMENT_CANCELED = "payment_canceled"
# A payment the bank has reported on may still be waiting for the report's job: these are the states in which the
# report is kept (processing: the worker has not recorded requires_action yet; unknown: a settle may find it).
_REPORT_KEPT_IN = (PaymentStatus.PROCESSING, PaymentStatus.REQUIRES_ACTION, PaymentStatus.UNKNOWN)


def payment_id_for_gateway_key(idempotency_key: str):
    """The payment a charge idempotency key belongs to (Payment.gateway_idempotency_key), or None."""
    prefix = "payment-"
    if not idempotency_key.startswith(prefix):
        return None
    raw = idempotency_key.removeprefix(prefix)
    return Payment.objects.filter(pk=raw).values_list("pk", flat=True).first() if _is_uuid(raw) else None


def _is_uuid(raw: str) -> bool:
    try:
        uuid.UUID(raw)
    except ValueError:
        return False
    return True


def payment_action_reported(*, payment_id) -> bool:
    """The bank (a verified callback) says the cardholder has answered. Returns whether the payment's job was
    asked for (the payment waits in requires_action); a payment in any other state has the report kept for the
    worker that holds it, or has an outcome already (a repeated callback), and nothing else happens."""
    now = timezone.now()
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(pk=payment_id).first()
        if payment is None or payment.status not in _REPORT_KEPT_IN:
            return False
        payment.action_reported_at = now
        fields = ["action_reported_at"]
        waiting = payment.status == PaymentStatus.REQUIRES_ACTION
        if waiting:
            # If the job queued below is lost (Redis down), the reconciler queues it again after the grace.
            payment.recheck_at = now + timedelta(seconds=settings.PAYMENTS_PENDING_GRACE)
            fields.append("recheck_at")
        # Not updated_at: nothing the status document shows has changed, and no one is told of anything.
        Payment.objects.filter(pk=payment.pk).update(**{name: getattr(payment, name) for name in fields})
        if waiting:
            transaction.on_commit(partial(payment_enqueue, payment_id=payment.pk, unless_queued=True))
    logger.info("the bank reported the cardholder's answer", payment_id=str(payment_id), status=payment.status)
    return waiting


def requires_action_changes(payment: Payment, result: ChargeResult) -> dict:
    """What recording requires_action writes besides the status: the challenge, and the deadline. Entering the
    state again (a settle after a lost worker) keeps the first deadline: the shopper's time is not extended."""
    expires_at = payment.next_action_expires_at or recheck_at_for(PaymentStatus.REQUIRES_ACTION)
    return {
        "next_action_url": result.next_action_url,
        "next_action_expires_at": expires_at,
        "recheck_at": expires_at,
        "gateway_reference": result.reference,
    }


def after_requires_action_recorded(payment: Payment) -> None:
    """Called by the job once requires_action is committed: if the bank's report came first (it overtook us), the
    job is queued now rather than at the reconciler's next look."""
    if payment.status == PaymentStatus.REQUIRES_ACTION and payment.action_reported_at is not None:
        logger.info("the bank's report came before requires_action was recorded; resuming", payment_id=str(payment.pk))
        payment_enqueue(payment_id=payment.pk, unless_queued=True)


def payment_action_continue(payment: Payment, actor: str, *, charge_and_record) -> Payment:
    """The job for a payment in requires_action: resume it once the bank has reported, expire it past its
    deadline, else nothing (a stray job: the shopper is still at the bank). `charge_and_record(payment, actor)`
    is the job's charge step (payments.services.payments), shared with a first attempt."""
    if payment.action_reported_at is not None:
        return _resume(payment, actor, charge_and_record)
    if payment.next_action_expires_at is not None and timezone.now() >= payment.next_action_expires_at:
        return _expire(payment, actor, charge_and_record)
    logger.info("payment %s waits for the cardholder; nothing to do", payment.pk)
    return payment


def _resume(payment: Payment, actor: str, charge_and_record) -> Payment:
    try:
        payment = payment_transition(
            payment_id=payment.pk,
            to_status=PaymentStatus.PROCESSING,
            actor=actor,
            reason="the bank reported the cardholder's answer; charging with the same key",
            changes={"action_reported_at": None},
            fence={"status": PaymentStatus.REQUIRES_ACTION},
        )
    except TransitionNotAllowed as refused:
        logger.info("payment %s was resumed or ended meanwhile (%s)", payment.pk, refused.obj.status)
        return refused.obj
    return charge_and_record(payment, actor)


def _abandon_at_bank(payment: Payment, decline_code: str) -> ChargeResult | None:
    with gateway_call_recorded(
        kind=RecordedKind.PAYMENT, object_id=payment.pk, operation=GatewayCall.Operation.CHARGE_ABANDON
    ) as call:
        result = get_gateway().charge_abandon(
            idempotency_key=payment.gateway_idempotency_key, decline_code=decline_code
        )
        call.answered(result)
    return result


def _voided(result: ChargeResult | None, decline_code: str) -> bool:
    # None: the bank knows nothing of the key, so nothing can be charged with it either.
    return result is None or (
        not result.approved and not result.requires_action and result.decline_code == decline_code
    )


def _expire(payment: Payment, actor: str, charge_and_record) -> Payment:
    try:
        result = _abandon_at_bank(payment, AUTHENTICATION_EXPIRED)
    except Exception as error:
        logger.warning("payment %s: could not void the authentication (%r); trying again later", payment.pk, error)
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.REQUIRES_ACTION).update(
            recheck_at=timezone.now() + timedelta(seconds=settings.PAYMENTS_SETTLE_RETRY)
        )
        return payment
    if not _voided(result, AUTHENTICATION_EXPIRED):
        # The shopper answered at the last moment (and the callback is late, or lost): resume.
        return _resume(payment, actor, charge_and_record)
    try:
        return payment_transition(
            payment_id=payment.pk,
            to_status=PaymentStatus.FAILED,
            actor=actor,
            reason="the cardholder did not authenticate in time",
            changes={
                "failure_code": "card_declined",
                "decline_code": AUTHENTICATION_EXPIRED,
                "failure_message": decline_message(AUTHENTICATION_EXPIRED),
                "gateway_reference": result.reference if result is not None else payment.gateway_reference,
            },
            fence={"status": PaymentStatus.REQUIRES_ACTION},
        )
    except TransitionNotAllowed as refused:
        return refused.obj


def payment_action_cancel(*, payment: Payment, actor: str, actor_user=None, reason: str) -> Payment:
    """requires_action → canceled, once the bank has voided the authentication. Refused (TransitionNotAllowed)
    when the bank cannot be reached, or the shopper has answered already (the payment then resumes)."""
    try:
        result = _abandon_at_bank(payment, PAYMENT_CANCELED)
    except Exception as error:
        logger.warning("payment %s: could not void the authentication (%r); not canceled", payment.pk, error)
        raise TransitionNotAllowed(payment, PaymentStatus.CANCELED) from error
    if not _voided(result, PAYMENT_CANCELED):
        payment_action_reported(payment_id=payment.pk)
        raise TransitionNotAllowed(Payment.objects.get(pk=payment.pk), PaymentStatus.CANCELED)
    # If the resume job took the payment meanwhile, this is refused; the bank's answer to its charge is the void
    # (declined payment_canceled), so it fails, and nothing is charged either way.
    return payment_transition(
        payment_id=payment.pk,
        to_status=PaymentStatus.CANCELED,
        actor=actor,
        actor_user=actor_user,
        reason=reason,
        changes={"gateway_reference": result.reference if result is not None else payment.gateway_reference},
        fence={"status": PaymentStatus.REQUIRES_ACTION},
    )
