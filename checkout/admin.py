from django.contrib import admin

from checkout.models import Order, OrderLine, Product
from payments.currencies import format_money


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
    readonly_fields = ("number", "status", "email", "total", "currency", "created_at")
    inlines = [OrderLineInline]

    @admin.display(description="Total", ordering="total")
    def display_total(self, obj):
        return format_money(obj.total, obj.currency)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
