"""Sending the outbox's emails (checkout.models.ShopperEmail): at most once each, retried while nothing reached the
mail server.

- The job (`shopper_email_send_job`, RQ queue `emails`, job id `email-<row id>`) claims the row with one
  conditional UPDATE (`queued → sending`, attempts + 1): of two runs at once (a job queued twice, the reconciler's
  copy) one claims it and the other does nothing, and a row already sent is never claimed again.
- It connects to the mail server before anything is handed over. Failing to connect (refused, a timeout, TLS,
  login), or a refusal by the server (sender, recipients, data refused with an SMTP error code) means the server
  did not take the email: the row goes back to `queued` with the error, and the reconciler queues its next try
  after a backoff, up to EMAIL_SEND_ATTEMPTS tries, then `failed`.
- Any other error once the message was being handed over (the connection dropped mid-DATA, a timeout waiting for
  the server's answer) may have come after the server took it: the row stays in `sending` with the error. It is
  never sent again automatically (a second receipt is worse than a missing one, which the shopper can ask for);
  staff see it in the admin's list of shopper emails. So does a row whose worker was killed mid-send.
- A `queued` row past `recheck_at` (its job was lost: Redis down when the change committed, or the job never ran)
  is queued again by the reconciler's housekeeping (`shopper_emails_redrive`).

Why a queue of its own: a slow or stalled mail server (each SMTP step waits up to EMAIL_TIMEOUT) must not take the
threads payments need. Only EMAIL_WORKER_THREADS threads of each worker process take email jobs, and they take
payment jobs first (payments/management/commands/payments_worker.py).
"""

from __future__ import annotations

import smtplib
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.mail import get_connection
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone
from structlog.contextvars import bound_contextvars

from checkout.email_content import shopper_email_message
from checkout.models import ShopperEmail, ShopperEmailStatus
from infrastructure.redaction import redact_card_data
from payments.services.dispatch import side_job_enqueue, side_queue

logger = structlog.get_logger(__name__)

EMAILS_QUEUE = "emails"
EMAIL_JOB = "checkout.outbox.shopper_email_send_job"
LAST_ERROR_MAX = 200

# The server answered "no" to the sender, the recipients or the message: it did not take the email.
_REFUSED = (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError)


def email_job_id(email_id) -> str:
    return f"email-{email_id}"


def job_grace_end():
    """When a queued email whose job has not run is presumed to have lost its job."""
    return timezone.now() + timedelta(seconds=settings.EMAIL_JOB_GRACE)


def _retry_at(attempts: int):
    return timezone.now() + timedelta(seconds=settings.EMAIL_RETRY_BASE * 2 ** max(attempts - 1, 0))


def emails_queue():
    return side_queue(EMAILS_QUEUE)


def shopper_email_enqueue(*, email_id, unless_queued: bool = False) -> bool:
    """Queue the email's job (payments.services.dispatch.side_job_enqueue: a Redis failure is logged, and the
    reconciler re-drives the row)."""
    return side_job_enqueue(
        EMAILS_QUEUE,
        EMAIL_JOB,
        email_id,
        job_id=email_job_id(email_id),
        unless_queued=unless_queued,
        job_timeout=settings.EMAIL_TIMEOUT * 6,  # connect, TLS, login, send, quit: each bounded by EMAIL_TIMEOUT
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
    )


def _error_text(error: BaseException) -> str:
    return redact_card_data(f"{type(error).__name__}: {error}")[:LAST_ERROR_MAX]


def _claim(email_id) -> bool:
    claimed = ShopperEmail.objects.filter(pk=email_id, status=ShopperEmailStatus.QUEUED).update(
        status=ShopperEmailStatus.SENDING, attempts=F("attempts") + 1, recheck_at=None
    )
    return claimed == 1


def _not_taken(email: ShopperEmail, error: BaseException) -> str:
    """The server did not take it: try again later, or give up after EMAIL_SEND_ATTEMPTS."""
    attempts = email.attempts + 1  # the claim's increment, which the row we read before it did not see
    given_up = attempts >= settings.EMAIL_SEND_ATTEMPTS
    status = ShopperEmailStatus.FAILED if given_up else ShopperEmailStatus.QUEUED
    ShopperEmail.objects.filter(pk=email.pk, status=ShopperEmailStatus.SENDING).update(
        status=status, last_error=_error_text(error), recheck_at=None if given_up else _retry_at(attempts)
    )
    logger.warning("email not taken by the mail server", email_id=email.pk, attempts=attempts, status=status)
    return status


def shopper_email_send(*, email_id) -> str:
    """Send one outbox email, at most once. Returns the status the row is left in (or found in)."""
    email = ShopperEmail.objects.filter(pk=email_id).first()
    if email is None or email.status != ShopperEmailStatus.QUEUED:
        return email.status if email else "missing"
    # Rendered before the claim: a template or data error is ours, and leaves the row queued for the next try.
    try:
        connection = get_connection(fail_silently=False)
        message = shopper_email_message(email, connection=connection)
    except Exception as error:
        if not _claim(email_id):
            return ShopperEmail.objects.values_list("status", flat=True).get(pk=email_id)
        logger.exception("email could not be rendered", email_id=email_id)
        return _not_taken(email, error)
    if not _claim(email_id):  # another run has it, or has sent it
        return ShopperEmail.objects.values_list("status", flat=True).get(pk=email_id)
    try:
        connection.open()
    except (OSError, smtplib.SMTPException) as error:  # nothing was handed over
        return _not_taken(email, error)
    try:
        message.send()
    except _REFUSED as error:
        _close_quietly(connection)
        return _not_taken(email, error)
    except Exception as error:
        # The server may have taken it: never sent again automatically; staff see the row in `sending`.
        ShopperEmail.objects.filter(pk=email_id).update(last_error=_error_text(error))
        logger.exception("email outcome unknown: left in sending, not retried", email_id=email_id)
        _close_quietly(connection)
        return ShopperEmailStatus.SENDING
    ShopperEmail.objects.filter(pk=email_id, status=ShopperEmailStatus.SENDING).update(
        status=ShopperEmailStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    _close_quietly(connection)  # after the server took it: a failed QUIT changes nothing
    return ShopperEmailStatus.SENT


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # noqa: BLE001 - the outcome is recorded; a failing goodbye must not change it
        logger.warning("closing the mail connection failed", exc_info=True)


def shopper_email_send_job(email_id: int) -> str:
    """The RQ job: the id only (no address or content reaches Redis)."""
    with bound_contextvars(email_id=email_id):
        close_old_connections()
        try:
            status = shopper_email_send(email_id=email_id)
        finally:
            close_old_connections()
        logger.info("email job done", status=status)
        return status


def shopper_emails_redrive(*, limit: int = 200) -> dict[str, int]:
    """Reconciler housekeeping: queue again the queued emails past `recheck_at` (a lost job, or the next try after
    a failure), and look again later in case this job is lost too."""
    now = timezone.now()
    due = ShopperEmail.objects.filter(status=ShopperEmailStatus.QUEUED, recheck_at__lte=now)
    queued = 0
    for email_id in due.order_by("recheck_at").values_list("pk", flat=True)[:limit]:
        ShopperEmail.objects.filter(pk=email_id, status=ShopperEmailStatus.QUEUED).update(recheck_at=job_grace_end())
        if shopper_email_enqueue(email_id=email_id, unless_queued=True):
            queued += 1
    return {"shopper_emails_requeued": queued}
