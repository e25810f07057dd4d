"""RQ jobs: thin adapters that take ids and call one service. Each run is recorded as a JobAttempt (the flight
recorder, payments/services/recording.py), in writes of its own before and after the service runs."""

import functools

from django.db import close_old_connections

from payments.models import Actor
from payments.recording import RecordedKind
from payments.services.payments import payment_process
from payments.services.recording import job_attempt_recorded
from payments.services.refunds import refund_process


def _job(kind: str):
    def decorate(func):
        # Workers are long-lived processes outside Django's request cycle: drop connections the database may
        # have closed while we idled, before and after every job.
        @functools.wraps(func)
        def wrapper(object_id: str) -> str:
            close_old_connections()
            try:
                with job_attempt_recorded(kind=kind, object_id=object_id) as attempt:
                    attempt.outcome = func(object_id)
                    return attempt.outcome
            finally:
                close_old_connections()

        return wrapper

    return decorate


@_job(RecordedKind.PAYMENT)
def payment_process_job(payment_id: str) -> str:
    return payment_process(payment_id=payment_id, actor=Actor.WORKER).status


@_job(RecordedKind.REFUND)
def refund_process_job(refund_id: str) -> str:
    return refund_process(refund_id=refund_id, actor=Actor.WORKER).status
