"""RQ jobs: thin adapters that take ids and call one service."""

from django.db import close_old_connections

from payments.services.payments import payment_process


def payment_process_job(payment_id: str) -> str:
    # Workers are long-lived processes outside Django's request cycle: drop connections the database
    # may have closed while we idled, before and after the job.
    close_old_connections()
    try:
        return payment_process(payment_id=payment_id).status
    finally:
        close_old_connections()
