"""One event per status change, and who reacts to it.

Every status change of a payment or a refund goes through payments.services.transitions, which emits one
`StatusChange` carrying the status document. Reactions subscribe to it; the transition calls none of them:

- `status_changing` receivers run inside the transition's transaction, once the row and its PaymentEvent are
  written: what must commit or roll back with the change (the order's state, so that an order and its payment
  never disagree after a commit). They must not talk to the outside; an exception aborts the change.
- `status_changed` receivers run once that transaction has committed, each on its own (one that fails is logged
  and the others still run): everything that talks to the outside, the WebSocket push and the metrics today,
  receipts and webhooks next. A change that rolls back is never announced. Each receiver is called once per
  event in the process that made the change; (kind, object_id, seq) lets one that records what it did stay
  idempotent.

Receivers connect in their app's AppConfig.ready(); docs/architecture.md lists them and says why each runs
where it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import structlog
from django.db import transaction
from django.dispatch import Signal

logger = structlog.get_logger(__name__)

PAYMENT = "payment"
REFUND = "refund"


@dataclass(frozen=True)
class StatusChange:
    kind: str  # PAYMENT or REFUND
    object_id: str  # the payment's or the refund's id
    payment_id: str
    order_id: int | None  # the shop's order the payment pays for, if any
    from_status: str
    to_status: str
    seq: int  # the payment's seq after the change (a refund's change does not move it)
    actor: str
    document: dict  # the status document every channel sends (payment_status_payload, refund_payload)


# Keyword argument of both: change (a StatusChange).
status_changing = Signal()
status_changed = Signal()


def status_change_emit(change: StatusChange) -> None:
    """Called by the transitions, inside their transaction, once per status change."""
    status_changing.send(sender=StatusChange, change=change)
    transaction.on_commit(partial(_announce, change))


def _announce(change: StatusChange) -> None:
    logger.info(
        f"{change.kind} status changed",
        payment_id=change.payment_id,
        **({"refund_id": change.object_id} if change.kind == REFUND else {}),
        from_status=change.from_status,
        to_status=change.to_status,
        seq=change.seq,
        actor=change.actor,
    )
    for receiver, result in status_changed.send_robust(sender=StatusChange, change=change):
        if isinstance(result, Exception):
            logger.error(
                "status_changed receiver %s failed for %s %s seq %s",
                getattr(receiver, "__qualname__", receiver),
                change.kind,
                change.object_id,
                change.seq,
                exc_info=result,
            )
