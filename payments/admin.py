from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_permission_codename
from rest_framework.authtoken.models import TokenProxy

from payments.admin_actions import PaymentActionsAdmin
from payments.admin_changelist import PaymentChangelistAdmin
from payments.models import BlockedCard, Payment, PaymentEvent, Refund


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # A payment's events and refunds are its history (who did what): whoever may see the payment sees them.
        opts = self.parent_model._meta
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('view', opts)}")


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = ("seq", "from_status", "to_status", "actor", "actor_user", "reason", "data", "created_at")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user")


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = (
        "id",
        "amount",
        "status",
        "actor",
        "requested_by",
        "reason",
        "failure_code",
        "gateway_reference",
        "created_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("requested_by")


@admin.register(Payment)
class PaymentAdmin(PaymentActionsAdmin, PaymentChangelistAdmin):
    """Read-only: a payment's status changes only through the payment services, which the list's actions
    (payments/admin_actions.py) call after a confirmation page, for staff holding each action's permission,
    recording who asked. The list itself: payments/admin_changelist.py."""

    inlines = [PaymentEventInline, RefundInline]

    # The vault token charges the card through our gateway: staff have no use for it, so no page shows it.
    exclude = ("card_token",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Even with every field read-only, saving the change form would write the whole row back as the request
        # read it, status included, over whatever a worker committed in between. Staff act through the actions.
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BlockedCard)
class BlockedCardAdmin(admin.ModelAdmin):
    list_display = ("card_fingerprint", "reason", "created_at")
    search_fields = ("=card_fingerprint",)


# DRF's token admin lists every API client's token in full to anyone holding authtoken.view_tokenproxy: a
# view-only staff role would read a merchant's credential and refund as that merchant. Tokens are issued and
# rotated with `manage.py drf_create_token [-r] <user>` (docs/operations.md), never shown in the admin.
admin.site.unregister(TokenProxy)
