"""Which status changes owe the shopper an email, and what it says.

- A shop order's payment that succeeds (`pending/processing/unknown → succeeded`): a receipt.
- A refund of a shop order's payment that succeeds: a refund notice.

The email is recorded by `shopper_email_record`, a `status_changing` receiver: in the change's own transaction, so
the row exists exactly when the change committed (a change that rolls back owes nothing). It writes one row and
talks to nothing outside. The job that sends it is queued by `shopper_email_enqueue_on_status_changed`, a
`status_changed` receiver, once the change has committed; checkout/outbox.py sends it, once, and
checkout/email_content.py says what it says.
"""

from __future__ import annotations

from dataclasses import dataclass

from checkout.models import Order, ShopperEmail, ShopperEmailKind
from checkout.outbox import job_grace_end, shopper_email_enqueue
from payments.events import PAYMENT, REFUND, StatusChange
from payments.models import PaymentStatus, RefundStatus


@dataclass(frozen=True)
class _Owed:
    key: str
    kind: str
    refund_id: str | None


def _owed_by(change: StatusChange) -> _Owed | None:
    if change.order_id is None:  # a payment made through the API, not the shop: its merchant tells its customer
        return None
    if change.kind == PAYMENT and change.to_status == PaymentStatus.SUCCEEDED:
        return _Owed(f"receipt:{change.payment_id}", ShopperEmailKind.RECEIPT, None)
    if change.kind == REFUND and change.to_status == RefundStatus.SUCCEEDED:
        return _Owed(f"refund:{change.object_id}", ShopperEmailKind.REFUND_NOTICE, change.object_id)
    return None


def shopper_email_record(sender, change: StatusChange, **kwargs) -> None:
    """status_changing: the email this change owes, if any, written with the change. The key is unique: an event
    delivered again (a re-drive, a replay from the PaymentEvent log) finds the row and adds none."""
    owed = _owed_by(change)
    if owed is None:
        return
    to = Order.objects.values_list("email", flat=True).get(pk=change.order_id)
    # INSERT … ON CONFLICT DO NOTHING: one statement in the payment's transaction, where get_or_create would take a
    # SELECT and a savepoint around its INSERT.
    ShopperEmail.objects.bulk_create(
        [
            ShopperEmail(
                key=owed.key,
                kind=owed.kind,
                order_id=change.order_id,
                payment_id=change.payment_id,
                refund_id=owed.refund_id,
                to=to,
                recheck_at=job_grace_end(),
            )
        ],
        ignore_conflicts=True,
    )


def shopper_email_enqueue_on_status_changed(sender, change: StatusChange, **kwargs) -> None:
    """status_changed: the change committed, and with it its email's row; queue the job that sends it. If Redis
    does not take it, the reconciler queues it after EMAIL_JOB_GRACE (checkout/outbox.py)."""
    owed = _owed_by(change)
    if owed is None:
        return
    email_id = ShopperEmail.objects.filter(key=owed.key).values_list("pk", flat=True).first()
    if email_id is not None:
        shopper_email_enqueue(email_id=email_id)
