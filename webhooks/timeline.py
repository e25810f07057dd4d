"""The merchant's webhook tries in a payment's flight recorder (payments/timeline.py): one query, whatever the
number of tries."""

from __future__ import annotations

from payments.timeline import TimelineEntry
from webhooks.models import WebhookAttempt


def _title(attempt: WebhookAttempt) -> str:
    delivery = attempt.delivery
    answer = f"answered {attempt.status_code}" if attempt.status_code is not None else "no answer"
    verdict = "delivered" if attempt.delivered else "not delivered"
    return f"Webhook {delivery.event_type} try {attempt.number}: {answer}, {verdict}"


def webhook_timeline_entries(*, payment, object_ids) -> list[TimelineEntry]:
    attempts = WebhookAttempt.objects.filter(delivery__payment_id=payment.pk).select_related(
        "delivery", "delivery__endpoint"
    )
    return [
        TimelineEntry(
            at=attempt.started_at,
            kind="webhook",
            title=_title(attempt),
            who=attempt.delivery.endpoint.url,
            detail="; ".join(part for part in (attempt.delivery.event_id, attempt.error) if part),
            duration_ms=attempt.latency_ms,
        )
        for attempt in attempts
    ]
