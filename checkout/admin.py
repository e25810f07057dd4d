from django.conf import settings
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from checkout.models import Order, OrderLine, Product, ShopperEmail
from payments.cards import BRAND_NAMES
from payments.currencies import format_money
from payments.models import Payment


class SaveChangedFieldsOnly(admin.ModelAdmin):
    """Saving a change form writes only the fields the form changed, never the whole row: the services update
    other columns of these rows concurrently (an order's status, a product's stock), and a full save would write
    back every column as this request read it, over whatever a service committed in between."""

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=[name for name in form.changed_data if name in form.fields])
        else:
            obj.save()


@admin.register(Product)
class ProductAdmin(SaveChangedFieldsOnly):
    list_display = ("name", "display_price", "stock", "is_active")
    list_editable = ("stock", "is_active")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="Price", ordering="price")
    def display_price(self, obj):
        return format_money(obj.price, obj.currency)

    def get_changeform_initial_data(self, request):
        # The model's default is USD; a shop selling in another currency starts its new products in its own
        # (Product.clean refuses any other).
        return {"currency": settings.SHOP_CURRENCY, **super().get_changeform_initial_data(request)}


class OrderLineInline(admin.TabularInline):
    """What was bought and at what price: the record of a payment, never edited."""

    model = OrderLine
    extra = 0
    fields = ("product", "name", "unit_price", "quantity")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(SaveChangedFieldsOnly):
    """Staff may correct the shipping details. The status, total and lines follow the payment
    (checkout.orders), so they are read-only here, and orders are neither made nor deleted by hand."""

    list_display = ("number", "status", "email", "display_total", "created_at")
    list_filter = ("status",)
    search_fields = ("number", "email")
    readonly_fields = ("number", "status", "email", "total", "currency", "created_at", "payments_and_refunds")
    inlines = [OrderLineInline]

    @admin.display(description="Total", ordering="total")
    def display_total(self, obj):
        return format_money(obj.total, obj.currency)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            # The order's payments, each with its refunds: two queries, however many there are.
            payments = Payment.objects.filter(order=obj).order_by("created_at").prefetch_related("refunds")
            obj.payment_list = list(payments)
        return obj

    @admin.display(description="Payments and refunds")
    def payments_and_refunds(self, obj):
        payments = getattr(obj, "payment_list", None)
        if payments is None:
            payments = list(obj.payments.order_by("created_at").prefetch_related("refunds"))
        if not payments:
            return "—"
        rows = []
        for payment in payments:
            url = reverse("admin:payments_payment_change", args=[payment.pk])
            refunds = format_html_join(
                "",
                '<li class="order-refund">Refund {} · {} · {}</li>',
                (
                    (
                        format_money(refund.amount, payment.currency),
                        refund.get_status_display(),
                        f"{refund.created_at:%Y-%m-%d %H:%M:%S}",
                    )
                    for refund in sorted(payment.refunds.all(), key=lambda refund: refund.created_at)
                ),
            )
            rows.append(
                format_html(
                    '<li class="order-payment"><a href="{}">{}</a> · {} · {} · {} •••• {}{}</li>',
                    url,
                    payment.pk,
                    payment.get_status_display(),
                    format_money(payment.amount, payment.currency),
                    BRAND_NAMES.get(payment.card_brand, payment.card_brand),
                    payment.card_last4,
                    format_html("<ul>{}</ul>", refunds) if refunds else "",
                )
            )
        return format_html('<ul id="order-payments">{}</ul>', format_html_join("", "{}", ((row,) for row in rows)))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ShopperEmail)
class ShopperEmailAdmin(admin.ModelAdmin):
    """The outbox, read-only: what each shopper was sent, and what was not (docs/operations.md, "Shopper emails").
    A row left in `sending` may or may not have reached the mail server: it is never sent again automatically."""

    list_display = ("created_at", "kind", "order", "to", "status", "attempts", "sent_at", "last_error")
    list_filter = ("status", "kind")
    search_fields = ("order__number", "to", "key")
    list_select_related = ("order",)
    fields = ("key", "kind", "order", "payment", "refund", "to", "status", "attempts", "last_error", "recheck_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False
