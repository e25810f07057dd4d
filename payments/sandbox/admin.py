from django.contrib import admin

from payments.sandbox.models import Charge, VaultCard


@admin.register(Charge)
class SandboxChargeAdmin(admin.ModelAdmin):
    list_display = (
        "reference",
        "idempotency_key",
        "amount",
        "currency",
        "approved",
        "decline_code",
        "created_at",
    )
    list_filter = ("approved", "decline_code")
    search_fields = ("reference", "idempotency_key")

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(VaultCard)
class VaultCardAdmin(admin.ModelAdmin):
    list_display = ("token", "brand", "last4", "behaviour", "created_at")

    def has_change_permission(self, request, obj=None):
        return False
