"""RQ jobs: thin adapters that take ids and call one service."""

import functools

from django.db import close_old_connections

from payments.models import Actor
from payments.services.payments import payment_process
from payments.services.refunds import refund_process


def _fresh_connections(func):
    # Workers are long-lived processes outside Django's request cycle: drop connections the database may
    # have closed while we idled, before and after every job.
    @functools.wraps(func)
    def wrapper(object_id: str) -> str:
        close_old_connections()
        try:
            return func(object_id)
        finally:
            close_old_connections()

    return wrapper


@_fresh_connections
def payment_process_job(payment_id: str) -> str:
    return payment_process(payment_id=payment_id, actor=Actor.WORKER).status


@_fresh_connections
def refund_process_job(refund_id: str) -> str:
    return refund_process(refund_id=refund_id, actor=Actor.WORKER).status
