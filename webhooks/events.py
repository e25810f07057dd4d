"""Which status changes owe which endpoints an event, recorded with the change and queued once it committed.

- `webhook_deliveries_record`, a `status_changing` receiver: in the change's own transaction, one row per endpoint
  of the payment's owner that wants the event (WebhookDelivery), so a delivery exists exactly when its change
  committed. It costs one cheap indexed SELECT for a payment made through the API whose owner has no endpoint, one
  more (an INSERT … ON CONFLICT DO NOTHING) when it has some, and nothing at all for a shop payment.
- `webhook_deliveries_enqueue_on_status_changed`, a `status_changed` receiver: queues each row's job. If Redis does
  not take one, the reconciler queues it after WEBHOOK_JOB_GRACE (webhooks/delivery.py).

Shop payments (an `order_id`, paid by a guest through the checkout form) have no API client to tell: they owe no
webhook (docs/webhooks.md, "Whose events").
"""

from __future__ import annotations

import uuid

from django.utils import timezone

from payments.events import PAYMENT, REFUND, StatusChange
from payments.models import Payment
from webhooks.delivery import job_grace_end, webhook_delivery_enqueue
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint


def event_type_for(change: StatusChange) -> str | None:
    """The event a change is, if it is one endpoints may ask for (`payment.pending` is not: the API's 202 said it)."""
    name = f"{'payment' if change.kind == PAYMENT else 'refund'}.{change.to_status}"
    return name if name in EventType.values else None


def event_key_for(change: StatusChange) -> str:
    """Names the change: a payment's seq is unique to each of its changes; a refund's status is entered once."""
    if change.kind == REFUND:
        return f"refund:{change.object_id}:{change.to_status}"
    return f"payment:{change.payment_id}:{change.seq}"


def event_payload(change: StatusChange, *, event_id: str, event_type: str) -> dict:
    """What a receiver gets: the event's id (the same on every try and every endpoint), its type and time, the
    payment's seq (for a refund's event, the payment's seq when it happened), and the status document the API and
    the WebSocket send for the object that changed."""
    return {
        "id": event_id,
        "type": event_type,
        "created": int(timezone.now().timestamp()),
        "payment_id": change.payment_id,
        "seq": change.seq,
        "data": change.document,
    }


def webhook_deliveries_record(sender, change: StatusChange, **kwargs) -> None:
    """status_changing: a delivery per endpoint that wants this event, written with the change."""
    if change.order_id is not None:  # a shop payment: no API client to tell
        return
    event_type = event_type_for(change)
    if event_type is None:
        return
    # One indexed SELECT, the owner found by a subquery: no ordering, no model instances.
    owner = Payment.objects.filter(pk=change.payment_id).order_by().values("owner_user_id")[:1]
    found = WebhookEndpoint.objects.filter(owner_id=owner, enabled=True).order_by().values_list("pk", "events")
    endpoints = [endpoint_id for endpoint_id, events in found if WebhookEndpoint(events=events).wants(event_type)]
    if not endpoints:
        return
    event_id = f"evt_{uuid.uuid4().hex}"
    payload = event_payload(change, event_id=event_id, event_type=event_type)
    # INSERT … ON CONFLICT DO NOTHING: one statement in the payment's transaction, and a change recorded twice (a
    # replay) owes nothing more.
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                event_id=event_id,
                event_key=event_key_for(change),
                event_type=event_type,
                endpoint_id=endpoint_id,
                payment_id=change.payment_id,
                payload=payload,
                next_attempt_at=job_grace_end(),
            )
            for endpoint_id in endpoints
        ],
        ignore_conflicts=True,
    )


def webhook_deliveries_enqueue_on_status_changed(sender, change: StatusChange, **kwargs) -> None:
    """status_changed: the change committed, and with it its deliveries; queue their jobs."""
    if change.order_id is not None or event_type_for(change) is None:
        return
    pending = WebhookDelivery.objects.filter(event_key=event_key_for(change), payment_id=change.payment_id)
    for delivery_id in pending.values_list("pk", flat=True):
        webhook_delivery_enqueue(delivery_id=delivery_id)
