from django.contrib import admin

from checkout.money import format_money
from payments.models import Payment, PaymentEvent


class PaymentEventInline(admin.TabularInline):
    model = PaymentEvent
    extra = 0
    can_delete = False
    fields = ("seq", "from_status", "to_status", "actor", "reason", "data", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: a payment's status changes only through the payment services, never by editing."""

    list_display = ("id", "status", "display_amount", "currency", "card", "order", "created_at")
    list_filter = ("status", "currency", "card_brand", "created_at")
    search_fields = ("=id", "card_last4", "order__number", "order__email", "gateway_reference")
    date_hierarchy = "created_at"
    list_select_related = ("order",)
    inlines = [PaymentEventInline]

    @admin.display(description="Amount", ordering="amount")
    def display_amount(self, obj):
        return format_money(obj.amount, obj.currency)

    @admin.display(description="Card")
    def card(self, obj):
        return f"{obj.card_brand} •••• {obj.card_last4}"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
