"""Staff's view of webhooks: endpoints (never their secrets; enable or disable them), the delivery log per endpoint
and per event (every try: status code, latency, the answer's first bytes), and "Redeliver", for holders of
webhooks.redeliver_webhookdelivery only, after a confirmation page, recorded in each delivery's admin history."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from webhooks.delivery import webhook_redeliver
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

MAX_REDELIVERIES_PER_ACTION = 100
REDELIVER_PERMISSION = "webhooks.redeliver_webhookdelivery"


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "owner", "enabled", "events", "created_at", "deliveries_link")
    list_filter = ("enabled",)
    search_fields = ("url", "owner__username", "description")
    # The secret (and the one rotated out) are never shown: not a field of this page at all.
    fields = ("id", "owner", "url", "description", "events", "enabled", "previous_secret_expires_at", "created_at")
    readonly_fields = ("id", "owner", "url", "events", "previous_secret_expires_at", "created_at")

    def has_add_permission(self, request):
        return False  # made by their API client (POST /api/v1/webhook-endpoints), which is shown the secret

    @admin.display(description="deliveries")
    def deliveries_link(self, endpoint):
        url = reverse("admin:webhooks_webhookdelivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<a href="{}">log</a>', url)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "status_code", "latency_ms", "delivered", "error", "response_excerpt")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("webhooks.view_webhookdelivery")  # the tries are part of the delivery's log

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_type",
        "event_id",
        "endpoint",
        "payment",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    )
    list_filter = ("status", "event_type", "endpoint")
    search_fields = ("event_id", "payment__id", "endpoint__url")
    list_select_related = ("endpoint",)
    readonly_fields = (
        "event_id",
        "event_key",
        "event_type",
        "endpoint",
        "payment",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )
    inlines = [AttemptInline]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_redeliver_permission(self, request):
        return request.user.has_perm(REDELIVER_PERMISSION)

    @admin.action(description="Redeliver the selected events", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        """Like Django's delete_selected: the first POST shows what would be sent again; only the POST from that
        page (post=yes) does it."""
        if not self.has_redeliver_permission(request):
            raise PermissionDenied
        deliveries = list(queryset.select_related("endpoint")[: MAX_REDELIVERIES_PER_ACTION + 1])
        if len(deliveries) > MAX_REDELIVERIES_PER_ACTION:
            self.message_user(
                request, f"At most {MAX_REDELIVERIES_PER_ACTION} deliveries at once; narrow the list.", messages.ERROR
            )
            return None
        if request.POST.get("post") != "yes":
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request,
                "admin/webhooks/webhookdelivery/redeliver_confirmation.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Redeliver webhook events",
                    "opts": self.opts,
                    "deliveries": deliveries,
                    "pending": DeliveryStatus.PENDING,
                    "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                },
            )
        sent = 0
        for delivery in deliveries:
            if webhook_redeliver(delivery=delivery):
                self.log_change(request, delivery, f"Redelivered event {delivery.event_id}")
                sent += 1
        self.message_user(request, f"{sent} event(s) queued for delivery again.", messages.SUCCESS)
        return None
