from django.contrib import admin, messages

from checkout.money import format_money
from payments.models import Actor, BlockedCard, Payment, PaymentEvent, Refund
from payments.services.payments import payment_cancel
from payments.services.refunds import RefundNotAllowed, refund_create
from payments.services.transitions import TransitionNotAllowed


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = ("seq", "from_status", "to_status", "actor", "reason", "data", "created_at")
    readonly_fields = fields


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("id", "amount", "status", "actor", "reason", "failure_code", "gateway_reference", "created_at")
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: a payment's status changes only through the payment services (the actions below call them)."""

    list_display = ("id", "status", "display_amount", "currency", "card", "order", "failure", "created_at")
    list_filter = ("status", "currency", "card_brand", "decline_code", "created_at")
    search_fields = ("=id", "card_last4", "order__number", "order__email", "gateway_reference")
    date_hierarchy = "created_at"
    list_select_related = ("order",)
    inlines = [PaymentEventInline, RefundInline]
    actions = ["refund_in_full", "cancel_pending"]

    @admin.display(description="Amount", ordering="amount")
    def display_amount(self, obj):
        return format_money(obj.amount, obj.currency)

    @admin.display(description="Card")
    def card(self, obj):
        return f"{obj.card_brand} •••• {obj.card_last4}"

    @admin.display(description="Failure")
    def failure(self, obj):
        return " / ".join(filter(None, [obj.failure_code, obj.decline_code]))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Refund what is left of the selected payments")
    def refund_in_full(self, request, queryset):
        for payment in queryset:
            try:
                refund = refund_create(payment_id=payment.pk, actor=Actor.STAFF, reason=f"staff: {request.user}")
                self.message_user(
                    request, f"{payment.pk}: refund of {format_money(refund.amount, payment.currency)} queued."
                )
            except RefundNotAllowed as refused:
                self.message_user(request, f"{payment.pk}: {refused.message}", level=messages.WARNING)

    @admin.action(description="Cancel the selected payments (only while pending)")
    def cancel_pending(self, request, queryset):
        for payment in queryset:
            try:
                payment_cancel(payment_id=payment.pk, actor=Actor.STAFF, reason=f"canceled by {request.user}")
                self.message_user(request, f"{payment.pk}: canceled.")
            except TransitionNotAllowed as refused:
                self.message_user(
                    request, f"{payment.pk}: a {refused.obj.status} payment cannot be canceled.", level=messages.WARNING
                )


@admin.register(BlockedCard)
class BlockedCardAdmin(admin.ModelAdmin):
    list_display = ("card_fingerprint", "reason", "created_at")
    search_fields = ("=card_fingerprint",)
