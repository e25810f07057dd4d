"""Merchant webhooks: where an API client wants its payments' events (WebhookEndpoint), what each status change owes
each endpoint (WebhookDelivery, written in the change's own transaction), and every try at delivering it
(WebhookAttempt, the delivery log)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    """The events an endpoint may ask for (docs/webhooks.md). "*" asks for all of them, those added later too."""

    PAYMENT_PROCESSING = "payment.processing"
    PAYMENT_REQUIRES_ACTION = "payment.requires_action"
    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_UNKNOWN = "payment.unknown"
    PAYMENT_CANCELED = "payment.canceled"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"


ALL_EVENTS = "*"


class WebhookEndpoint(models.Model):
    """An API client's receiver. Its secret signs every delivery, so it is stored as it is (there is no encryption
    facility here: docs/webhooks.md, "Secrets"); it is shown once, when made or rotated, and never in the admin, the
    API's reads or the logs. After a rotation the previous secret also signs until `previous_secret_expires_at`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)  # EventType values, or ["*"]
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The one delivery in flight to this endpoint holds it until then (webhooks/delivery.py): a slow receiver holds
    # one worker thread, never all of them.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "enabled"], name="webhook_endpoint_owner")]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class DeliveryStatus(models.TextChoices):
    """pending: waiting for its job or its next try (`next_attempt_at`); delivered: a 2xx came back; failed: every
    try of the schedule failed (or the endpoint was disabled or deleted before it went)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookDelivery(models.Model):
    """One event owed to one endpoint. `event_id` is the event's (one per status change, the same for every endpoint
    and every try: receivers de-duplicate by it); `event_key` names the change (`payment:<id>:<seq>`,
    `refund:<id>:<status>`), unique per endpoint, so a change recorded twice owes one delivery."""

    event_id = models.CharField(max_length=40, db_index=True)
    event_key = models.CharField(max_length=100)
    event_type = models.CharField(max_length=40, choices=EventType.choices)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="+")
    payload = models.JSONField()  # the event as sent: {id, type, created, seq, data}
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the reconciler queues its job if it is still pending: the next try, or the lost job's grace.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "webhook deliveries"
        permissions = [("redeliver_webhookdelivery", "Can deliver a webhook event again")]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_key"], name="webhook_delivery_once_per_endpoint"),
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="webhook_delivery_status_known"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One try at one delivery: what the receiver answered (or why nothing came), and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)  # the first WEBHOOK_EXCERPT_BYTES of the answer's body
    error = models.CharField(max_length=200, blank=True)
    delivered = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at", "pk"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
