from __future__ import annotations

import logging

import django_rq
from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

PAYMENTS_QUEUE = "payments"


def payment_enqueue(*, payment_id) -> None:
    """Put the payment's job on the queue. Runs after commit.

    The job carries only the payment id: no card data ever reaches Redis. If Redis is down the payment is
    still safely recorded as pending; we log and let the shopper have their 202.
    """
    try:
        django_rq.get_queue(PAYMENTS_QUEUE).enqueue(
            "payments.jobs.payment_process_job",
            str(payment_id),
            job_timeout=settings.PAYMENTS_JOB_TIMEOUT,
            result_ttl=24 * 3600,
            failure_ttl=7 * 24 * 3600,
            description=f"process payment {payment_id}",
        )
    except RedisError:
        logger.exception("could not enqueue payment %s; it stays pending until re-driven", payment_id)
