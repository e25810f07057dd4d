"""Putting payment and refund jobs on the queue. Jobs carry an id only: no card data ever reaches Redis.

A job also carries, in its meta, the id of the request that queued it (when one did), so that the worker's log
lines for it show the same request id as the web server's (infrastructure/logs.py). Not an argument: the job's
signature and id stay what every enqueuer (the reconciler, make chaos, make bench) already uses.
"""

from __future__ import annotations

import functools
import logging

import django_rq
import redis
from django.conf import settings
from redis.exceptions import RedisError
from structlog.contextvars import get_contextvars

logger = logging.getLogger(__name__)

PAYMENTS_QUEUE = "payments"
PAYMENT_JOB = "payments.jobs.payment_process_job"
REFUND_JOB = "payments.jobs.refund_process_job"


def payment_job_id(payment_id) -> str:
    return f"payment-{payment_id}"


def refund_job_id(refund_id) -> str:
    return f"refund-{refund_id}"


# How long the accept path (and the reconciler) may wait for Redis to answer an enqueue or a queue count.
# django-rq's connection has no socket timeout at all: while Redis was paused (SIGSTOP, a stalled host) every
# POST /api/v1/payments and refund waited for it, holding its thread and database connection, and clients timed
# out (make chaos, docs/reliability.md). Past this the enqueue is given up (the record is durable; the reconciler
# queues it) and load shedding lets the request in.
ENQUEUE_SOCKET_TIMEOUT = 1.0
ENQUEUE_CONNECT_TIMEOUT = 1.0


@functools.cache
def payments_queue():
    """One queue, and so one Redis connection pool, per process: django_rq.get_queue builds a new client on
    every call, which cost a connection per enqueue on the accept path (make bench's profile). Only short
    commands go through it (the workers' blocking dequeue has its own connection,
    infrastructure/overrides/rq_worker.py)."""
    connection = redis.Redis.from_url(
        settings.RQ_QUEUES[PAYMENTS_QUEUE]["URL"],
        socket_timeout=ENQUEUE_SOCKET_TIMEOUT,
        socket_connect_timeout=ENQUEUE_CONNECT_TIMEOUT,
    )
    return django_rq.get_queue(PAYMENTS_QUEUE, connection=connection)


@functools.cache
def side_queue(name: str):
    """A queue of the reactions to a status change (`emails`, `webhooks`), one per process, with the payments
    queue's short Redis timeouts: a change's commit never waits on a stalled Redis for its side effects."""
    connection = redis.Redis.from_url(
        settings.RQ_QUEUES[name]["URL"],
        socket_timeout=ENQUEUE_SOCKET_TIMEOUT,
        socket_connect_timeout=ENQUEUE_CONNECT_TIMEOUT,
    )
    return django_rq.get_queue(name, connection=connection)


def side_job_enqueue(queue_name: str, func: str, row_id, *, job_id: str, unless_queued: bool, **options) -> bool:
    """Queue the job that acts on one outbox row (an email, a webhook delivery); on a Redis failure log and return
    False: the row is durable and the reconciler re-drives it. Queuing it twice is harmless (the job's claim lets
    one run act), only wasteful, hence `unless_queued`. `options` as `Queue.enqueue` takes them (job_timeout…)."""
    try:
        queue = side_queue(queue_name)
        if unless_queued and _waiting_in_queue(queue, job_id):
            return False
        queue.enqueue(func, int(row_id), job_id=job_id, description=f"{func.rsplit('.', 1)[1]} {row_id}", **options)
        return True
    except RedisError:
        logger.exception("could not enqueue %s; the reconciler queues it later", job_id)
        return False


def job_options(func: str, object_id, *, job_id: str) -> dict:
    """The options of every job on the payments queue, as `Queue.enqueue` takes them: its own id, the job
    timeout, how long RQ keeps its result and its failure, a description naming the job and its object, and the
    id of the request being served, if any (the worker binds it to the job's log lines)."""
    options = {
        "job_id": job_id,
        "job_timeout": settings.PAYMENTS_JOB_TIMEOUT,
        "result_ttl": 24 * 3600,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"{func.rsplit('.', 1)[1]} {object_id}",
    }
    request_id = get_contextvars().get("request_id")
    if request_id:
        options["meta"] = {"request_id": request_id}
    return options


def _waiting_in_queue(queue, job_id: str) -> bool:
    # Ask the queue's list itself, not the job's status: a worker killed between popping a job and marking
    # it started leaves a job that says "queued" but is in no queue any more.
    return queue.connection.lpos(queue.key, job_id) is not None


def _enqueue(func: str, object_id, job_id: str, *, unless_queued: bool, at_front: bool = False) -> bool:
    """Enqueue; on a Redis failure log and return False (the record is durable; the reconciler re-drives).

    One job id per object, so the reconciler can see whether its job is still waiting in the queue. A job
    that runs twice is harmless (every job re-checks the state it finds) but wasteful, hence `unless_queued`.
    `at_front` (a staff user asking about one payment now, on a day the queue is long) puts the job at the head of
    the queue; a copy already waiting further back is then taken out, so the job runs once (or, if a worker took
    one copy in between, twice: harmless).
    """
    try:
        queue = payments_queue()
        if unless_queued and not at_front and _waiting_in_queue(queue, job_id):
            return False
        # One round trip: RQ sends the queue's registration and the job in two otherwise.
        with queue.connection.pipeline() as pipeline:
            queue.enqueue(
                func,
                str(object_id),
                pipeline=pipeline,
                at_front=at_front,
                **job_options(func, object_id, job_id=job_id),
            )
            pipeline.execute()
        # Added first, removed second: the job is never in no list at all. (RQ's enqueue opens its own MULTI, so
        # the removal cannot share the pipeline.)
        if at_front and queue.connection.lpos(queue.key, job_id, rank=2) is not None:
            queue.connection.lrem(queue.key, -1, job_id)
        return True
    except RedisError:
        logger.exception("could not enqueue %s; it is re-driven by the reconciler", job_id)
        return False


def payment_enqueue(*, payment_id, unless_queued: bool = False, at_front: bool = False) -> bool:
    return _enqueue(PAYMENT_JOB, payment_id, payment_job_id(payment_id), unless_queued=unless_queued, at_front=at_front)


def refund_enqueue(*, refund_id, unless_queued: bool = False) -> bool:
    return _enqueue(REFUND_JOB, refund_id, refund_job_id(refund_id), unless_queued=unless_queued)


def payments_backlog() -> int | None:
    """Jobs waiting in the queue, or None when Redis cannot say (then nobody is turned away: the payment
    is durable without Redis, and the reconciler queues it later)."""
    try:
        return payments_queue().count
    except RedisError:
        return None


class QueueUnavailable(Exception):
    """Redis did not answer a question about the queue."""


_JOB_FUNCTIONS = {"payment": PAYMENT_JOB, "refund": REFUND_JOB}


def failed_jobs_among(job_ids: list[str]) -> set[str]:
    """Which of these job ids are in the payments queue's failed job registry (one round trip)."""
    if not job_ids:
        return set()
    try:
        queue = payments_queue()
        with queue.connection.pipeline(transaction=False) as pipeline:
            for job_id in job_ids:
                pipeline.zscore(queue.failed_job_registry.key, job_id)
            scores = pipeline.execute()
    except RedisError as error:
        raise QueueUnavailable(str(error)) from error
    return {job_id for job_id, score in zip(job_ids, scores, strict=True) if score is not None}


def failed_job_requeue(*, job_id: str) -> bool:
    """Take a failed payment or refund job out of the failed job registry and queue it again through the same
    path as every other enqueue (a fresh job: the options of today, the id of always). False when it is no longer
    there (someone re-queued it first, or it expired): the ZREM decides, so two staff users re-queue it once.

    If Redis fails between the two steps the job is in neither place; the record is durable and the reconciler
    re-drives it, as after any lost enqueue."""
    kind, _, object_id = job_id.partition("-")
    func = _JOB_FUNCTIONS.get(kind)
    if func is None or not object_id:
        raise ValueError(f"{job_id!r} is not a payment or refund job")
    try:
        queue = payments_queue()
        if not queue.connection.zrem(queue.failed_job_registry.key, job_id):
            return False
    except RedisError as error:
        raise QueueUnavailable(str(error)) from error
    return _enqueue(func, object_id, job_id, unless_queued=True)
