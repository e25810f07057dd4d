"""Reads of the payments queue's state in Redis, for /readyz and /metrics: how many jobs wait, how long the
oldest has waited, and how many RQ workers of the queue are alive.

Two round trips whatever the number of workers, on the accept path's client (`payments_queue`, 1 s socket
timeouts), so a paused Redis costs a reader about a second, never a hang. A RedisError goes to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rq import worker_registration
from rq.utils import utcparse

from payments.services.dispatch import payments_queue

# An idle worker thread beats every 2 s (infrastructure/overrides/rq_worker.py, STOP_POLL_SECONDS); one whose
# last beat is older than this is taken for dead (a killed process keeps its key for minutes). A busy worker
# does not beat while its job runs: it counts as alive for as long as RQ keeps its key (the job timeout + 60 s).
IDLE_HEARTBEAT_MAX_AGE = 30.0
# Jobs looked at from the head of the queue for the oldest one's age (a job deleted while queued has no hash).
OLDEST_JOB_PROBE = 5


@dataclass(frozen=True)
class QueueState:
    queued: int  # jobs waiting in the queue
    oldest_job_age: float  # seconds the job at the head of the queue has waited (0 when none waits)
    workers_live: int  # RQ workers of the queue that are alive (see IDLE_HEARTBEAT_MAX_AGE)
    workers_registered: int  # RQ workers registered for the queue, dead ones not yet forgotten included


def _as_text(value) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _utc(text: str) -> datetime:
    parsed = utcparse(text)  # RQ's own format; naive or aware depending on its version
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _worker_is_live(state: str | None, last_heartbeat: str | None, now: datetime) -> bool:
    if last_heartbeat is None:  # its key expired: RQ's own verdict that it is gone
        return False
    if state == "busy":
        return True
    return (now - _utc(last_heartbeat)).total_seconds() <= IDLE_HEARTBEAT_MAX_AGE


def payments_queue_state() -> QueueState:
    queue = payments_queue()
    connection = queue.connection
    workers_key = worker_registration.WORKERS_BY_QUEUE_KEY % queue.name
    with connection.pipeline(transaction=False) as pipeline:
        pipeline.llen(queue.key)
        pipeline.lrange(queue.key, 0, OLDEST_JOB_PROBE - 1)
        pipeline.smembers(workers_key)
        queued, head, worker_keys = pipeline.execute()
    job_ids = [_as_text(job_id) for job_id in head]
    worker_keys = sorted(_as_text(key) for key in worker_keys)
    with connection.pipeline(transaction=False) as pipeline:
        for job_id in job_ids:
            pipeline.hget(queue.job_class.key_for(job_id), "enqueued_at")
        for key in worker_keys:
            pipeline.hmget(key, "state", "last_heartbeat")
        answers = pipeline.execute() if job_ids or worker_keys else []
    now = datetime.now(UTC)
    enqueued = [_as_text(answer) for answer in answers[: len(job_ids)]]
    oldest = next((_utc(at) for at in enqueued if at), None)
    workers = [[_as_text(field) for field in fields] for fields in answers[len(job_ids) :]]
    return QueueState(
        queued=queued,
        oldest_job_age=max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0,
        workers_live=sum(_worker_is_live(state, beat, now) for state, beat in workers),
        workers_registered=len(worker_keys),
    )
