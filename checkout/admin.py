from django.contrib import admin

from checkout.models import Order, OrderLine, Product
from checkout.money import format_money


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "display_price", "stock", "is_active")
    list_editable = ("stock", "is_active")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="Price", ordering="price")
    def display_price(self, obj):
        return format_money(obj.price, obj.currency)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    readonly_fields = ("product", "name", "unit_price", "quantity")
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "status", "email", "display_total", "created_at")
    list_filter = ("status",)
    search_fields = ("number", "email")
    readonly_fields = ("number", "status", "email", "total", "currency", "created_at")
    inlines = [OrderLineInline]

    @admin.display(description="Total", ordering="total")
    def display_total(self, obj):
        return format_money(obj.total, obj.currency)
