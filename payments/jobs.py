"""RQ jobs: thin adapters that take ids and call one service. Each run is recorded as a JobAttempt (the flight
recorder, payments/services/recording.py), in writes of its own before and after the service runs."""

import functools
import time

import structlog
from django.db import close_old_connections
from structlog.contextvars import bound_contextvars

from payments.models import Actor
from payments.recording import RecordedKind
from payments.services.payments import payment_process
from payments.services.recording import job_attempt_recorded
from payments.services.refunds import refund_process

logger = structlog.get_logger(__name__)


def _job(kind: str, id_name: str):
    """A job's adapter: every line logged while it runs carries the id of its object (`payment_id`,
    `refund_id`), the run is recorded as a JobAttempt, and it ends with one line saying what it left the object
    in and how long it took.

    Workers are long-lived processes outside Django's request cycle: connections the database may have closed
    while we idled are dropped before and after every job."""

    def decorate(func):
        @functools.wraps(func)
        def wrapper(object_id: str) -> str:
            started = time.monotonic()
            with bound_contextvars(**{id_name: str(object_id)}):
                close_old_connections()
                try:
                    with job_attempt_recorded(kind=kind, object_id=object_id) as attempt:
                        attempt.outcome = func(object_id)
                        status = attempt.outcome
                finally:
                    close_old_connections()
                logger.info("job done", status=status, duration_ms=round((time.monotonic() - started) * 1000, 1))
                return status

        return wrapper

    return decorate


@_job(RecordedKind.PAYMENT, "payment_id")
def payment_process_job(payment_id: str) -> str:
    return payment_process(payment_id=payment_id, actor=Actor.WORKER).status


@_job(RecordedKind.REFUND, "refund_id")
def refund_process_job(refund_id: str) -> str:
    return refund_process(refund_id=refund_id, actor=Actor.WORKER).status
