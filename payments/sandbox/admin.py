from django.contrib import admin

from payments.sandbox.models import Account, Charge, LedgerEntry, Refund, VaultCard


class ReadOnlyAdmin(admin.ModelAdmin):
    """The bank's records are the bank's: staff may look, never write."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Charge)
class SandboxChargeAdmin(ReadOnlyAdmin):
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


@admin.register(VaultCard)
class VaultCardAdmin(ReadOnlyAdmin):
    list_display = ("token", "brand", "last4", "behaviour", "created_at")


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("account_key", "balance", "created_at")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "kind", "amount", "charge", "refund")
    list_filter = ("kind",)


@admin.register(Refund)
class SandboxRefundAdmin(ReadOnlyAdmin):
    list_display = ("reference", "idempotency_key", "amount", "approved", "failure_code", "created_at")
