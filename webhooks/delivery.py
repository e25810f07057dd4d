"""Delivering the recorded events (webhooks.models.WebhookDelivery): at least once, retried for about a day.

- The job (`webhook_deliver_job`, RQ queue `webhooks`, job id `webhook-<delivery id>`) takes its endpoint's lease
  first (one conditional UPDATE): at most one delivery to an endpoint is in flight at a time, so a receiver that
  hangs holds one worker thread for WEBHOOK_TIMEOUT per step, never all of them. A delivery that finds the lease
  taken is put back WEBHOOK_BUSY_DELAY later, and the job that holds the lease queues the endpoint's next due
  delivery when it is done.
- It claims the delivery (attempts + 1, one conditional UPDATE on the attempts it read: of two runs one wins),
  signs the body (webhooks/signing.py) and posts it to the checked address (webhooks/sending.py).
- 2xx: delivered. Anything else (another status, a redirect, no answer in time, a refused address): the attempt is
  logged (WebhookAttempt) and the next try is due after WEBHOOK_RETRY_SCHEDULE's next delay (with jitter); after the
  last, the delivery is failed. No scheduler: the reconciler's housekeeping (`webhook_deliveries_redrive`) queues
  the pending deliveries whose `next_attempt_at` has passed, which also catches jobs Redis lost.
- At least once, not at most once: a worker killed after the receiver took the event leaves the delivery pending,
  and it is sent again with the same event id. Receivers de-duplicate by it (docs/webhooks.md).
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import IntegrityError, close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone
from structlog.contextvars import bound_contextvars

from payments.services.dispatch import side_job_enqueue, side_queue
from webhooks.metrics import webhook_attempt_count
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.sending import DEADLINE_TIMEOUTS, Answer, post_pinned
from webhooks.signing import SIGNATURE_HEADER, signature_header, signing_secrets

logger = structlog.get_logger(__name__)

WEBHOOKS_QUEUE = "webhooks"
WEBHOOK_JOB = "webhooks.delivery.webhook_deliver_job"
EVENT_ID_HEADER = "Webhook-Id"


def webhook_job_id(delivery_id) -> str:
    return f"webhook-{delivery_id}"


def job_grace_end():
    """When a pending delivery whose job has not run is presumed to have lost its job."""
    return timezone.now() + timedelta(seconds=settings.WEBHOOK_JOB_GRACE)


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next try after `attempts` failed ones, with jitter (so that the deliveries a receiver's
    outage failed together do not all come back at once); None when the schedule is over."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    jitter = settings.WEBHOOK_RETRY_JITTER
    return schedule[attempts - 1] * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311 - spreading load, not secret


def _lease_seconds() -> float:
    # connect + send + read, all together bounded by DEADLINE_TIMEOUTS × WEBHOOK_TIMEOUT (webhooks/sending.py), and
    # margin: a lease outlives the delivery it covers, and a killed worker's lease runs out by itself.
    return settings.WEBHOOK_TIMEOUT * DEADLINE_TIMEOUTS + 5


def webhooks_queue():
    return side_queue(WEBHOOKS_QUEUE)


def webhook_delivery_enqueue(*, delivery_id, unless_queued: bool = False) -> bool:
    """Queue the delivery's job (payments.services.dispatch.side_job_enqueue: a Redis failure is logged, and the
    reconciler re-drives the row)."""
    return side_job_enqueue(
        WEBHOOKS_QUEUE,
        WEBHOOK_JOB,
        delivery_id,
        job_id=webhook_job_id(delivery_id),
        unless_queued=unless_queued,
        job_timeout=int(_lease_seconds()) + 10,
        result_ttl=3600,
        failure_ttl=7 * 24 * 3600,
    )


def _lease_take(endpoint_id) -> bool:
    now = timezone.now()
    taken = WebhookEndpoint.objects.filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now), pk=endpoint_id).update(
        lease_until=now + timedelta(seconds=_lease_seconds())
    )
    return taken == 1


def _lease_release(endpoint_id) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id).update(lease_until=None)


def delivery_body(delivery: WebhookDelivery) -> bytes:
    """The bytes signed and sent: the stored event, the same on every try."""
    return json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()


def _record(delivery: WebhookDelivery, attempts: int, started_at, answer: Answer) -> str:
    try:
        with transaction.atomic():
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=attempts,
                started_at=started_at,
                latency_ms=answer.latency_ms,
                status_code=answer.status_code,
                response_excerpt=answer.excerpt,
                error=answer.error,
                delivered=answer.delivered,
            )
    except IntegrityError:
        # Its endpoint was deleted (and the delivery with it) while the request was out: nothing left to record.
        logger.info("webhook attempt not recorded: the delivery is gone", delivery_id=delivery.pk)
        return "missing"
    fields = {"last_status_code": answer.status_code, "last_error": answer.error}
    if answer.delivered:
        status = DeliveryStatus.DELIVERED
        fields.update(status=status, delivered_at=timezone.now(), next_attempt_at=None)
    else:
        delay = retry_delay(attempts)
        if delay is None:
            status = DeliveryStatus.FAILED
            fields.update(status=status, next_attempt_at=None)
        else:
            status = DeliveryStatus.PENDING
            fields.update(next_attempt_at=timezone.now() + timedelta(seconds=delay))
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=attempts).update(**fields)
    outcome = "delivered" if answer.delivered else ("failed" if status == DeliveryStatus.FAILED else "retrying")
    webhook_attempt_count(outcome, answer.latency_ms)
    logger.info(
        "webhook attempt",
        delivery_id=delivery.pk,
        event_id=delivery.event_id,
        attempt=attempts,
        status_code=answer.status_code,
        latency_ms=answer.latency_ms,
        outcome=outcome,
        error=answer.error or None,
    )
    return status


def _give_up(delivery: WebhookDelivery, why: str) -> str:
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=why
    )
    webhook_attempt_count("not_sent")
    return DeliveryStatus.FAILED


def webhook_deliver(*, delivery_id) -> str:
    """One try at one delivery, if it is due and its endpoint free. Returns the status the row is left in, or "busy"
    (another delivery to the endpoint is in flight: tried again WEBHOOK_BUSY_DELAY later)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery.status if delivery else "missing"
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        return _give_up(delivery, "the endpoint is disabled")
    if not _lease_take(endpoint.pk):
        WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.PENDING).update(
            next_attempt_at=timezone.now() + timedelta(seconds=settings.WEBHOOK_BUSY_DELAY)
        )
        return "busy"
    try:
        attempts = delivery.attempts + 1
        # The claim: of two runs of one delivery, one moves attempts on; and until the next try is written, the
        # reconciler leaves it alone for the lease's length (a killed worker's delivery is then sent again).
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=DeliveryStatus.PENDING, attempts=delivery.attempts
        ).update(attempts=attempts, next_attempt_at=timezone.now() + timedelta(seconds=_lease_seconds()))
        if claimed != 1:
            return WebhookDelivery.objects.values_list("status", flat=True).get(pk=delivery.pk)
        body = delivery_body(delivery)
        timestamp = int(timezone.now().timestamp())
        headers = {
            SIGNATURE_HEADER: signature_header(signing_secrets(endpoint), body, timestamp),
            EVENT_ID_HEADER: delivery.event_id,
        }
        started_at = timezone.now()
        try:
            answer = post_pinned(endpoint.url, body, headers)
        except Exception as error:
            # A bug of ours, or a URL no check foresaw: a failed try like any other, logged and on the schedule
            # (raised, it would leave the delivery pending, claimed again and again, never failed, no try logged).
            logger.exception("webhook send raised", delivery_id=delivery.pk)
            answer = Answer(None, 0.0, error=f"not sent: {type(error).__name__}")
        return _record(delivery, attempts, started_at, answer)
    finally:
        _lease_release(endpoint.pk)
        _next_of_endpoint_enqueue(endpoint.pk, after=delivery.pk)


def _next_of_endpoint_enqueue(endpoint_id, *, after) -> None:
    """Hand the endpoint on: its oldest delivery that waited for the lease (due now) gets a job at once, rather than
    at the reconciler's next pass."""
    waiting = (
        WebhookDelivery.objects.filter(
            endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now()
        )
        .exclude(pk=after)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )
    if waiting is not None:
        webhook_delivery_enqueue(delivery_id=waiting, unless_queued=True)


def webhook_deliver_job(delivery_id: int) -> str:
    """The RQ job: the id only (no event, secret or URL reaches Redis)."""
    with bound_contextvars(webhook_delivery_id=delivery_id):
        close_old_connections()
        try:
            status = webhook_deliver(delivery_id=delivery_id)
        finally:
            close_old_connections()
        logger.info("webhook job done", status=status)
        return status


def webhook_redeliver(*, delivery: WebhookDelivery) -> bool:
    """Staff's "Redeliver" (and nothing else): a delivered or failed delivery goes out again, with the same event id
    and a fresh schedule of tries. Returns False when it is already pending (it will go anyway)."""
    again = WebhookDelivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.PENDING)
    if not again.update(status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=job_grace_end(), last_error=""):
        return False
    webhook_delivery_enqueue(delivery_id=delivery.pk)
    return True


def webhook_deliveries_redrive(*, limit: int = 200) -> dict[str, int]:
    """Reconciler housekeeping: queue the pending deliveries past `next_attempt_at` (a next try that is due, a lost
    job, one that waited for its endpoint's lease), and look again later in case this job is lost too."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
    queued = 0
    for delivery_id in due.order_by("next_attempt_at").values_list("pk", flat=True)[:limit]:
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            next_attempt_at=job_grace_end()
        )
        if webhook_delivery_enqueue(delivery_id=delivery_id, unless_queued=True):
            queued += 1
    # A rotated-out secret past its grace signs nothing (webhooks/signing.py); forget it.
    WebhookEndpoint.objects.filter(previous_secret_expires_at__lte=now).update(
        previous_secret="", previous_secret_expires_at=None
    )
    return {"webhook_deliveries_requeued": queued}
