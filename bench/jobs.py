"""Bench-only RQ jobs, run by the product's workers from the `payments` queue.

- `noop_job`: the queue's ceiling (scenario 4), a job that does nothing.
- `floor_job`: scenario 5's floor, what a payment's job does to tell its shopper and nothing else.
"""

from payments.realtime import payment_push_status
from payments.services.dispatch import payments_queue

FLOOR_DONE_TTL_SECONDS = 300


def noop_job(object_id: str) -> str:
    return object_id


def floor_done_key(floor_id: str) -> str:
    return f"bench:floor-done:{floor_id}"


def floor_status_document(floor_id: str) -> dict:
    """The smallest frame the shopper's client takes for an outcome (the product's has the whole status
    document)."""
    return {"id": floor_id, "status": "succeeded", "has_outcome": True, "seq": 1}


def floor_job(floor_id: str) -> str:
    """Record "done" where the floor's consumer looks after joining its group (as a payment's job commits its
    outcome, which the product's consumer reads from the database after joining), then one push through the
    product's own push path (payments.realtime) to the group the floor's socket joins."""
    payments_queue().connection.set(floor_done_key(floor_id), "1", ex=FLOOR_DONE_TTL_SECONDS)
    payment_push_status(floor_status_document(floor_id))
    return floor_id
