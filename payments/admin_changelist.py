"""The payments list in the admin: what a payments desk reads at a glance, the filters and the search it works with.

Everything on a row comes from the one query of the page (the order and the payer joined, the risk rule of a risk
refusal read by a subquery of that query), so a page of 100 rows costs what a page of 5 does. The filters offer
fixed lists (the statuses, the currencies we take, the codes the services write) rather than asking the table
for its distinct values, which on a bad day's table would be a full scan on every page view.
"""

from __future__ import annotations

import re
import uuid

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.fields.json import KT
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from payments.cards import BRAND_NAMES
from payments.currencies import SUPPORTED_CURRENCIES, format_money
from payments.gateway import DECLINE_MESSAGES
from payments.models import PaymentEvent, PaymentStatus
from payments.services.risk import RISK_RULES

# The failure codes the payment services write (payments/services/payments.py), with what staff read.
FAILURE_CODES = {
    "card_declined": "Declined by the bank",
    "risk_declined": "Refused by our risk checks",
    "processing_error": "Bank unreachable",
}
RISK_DECLINED = "risk_declined"
_HEX_PREFIX = re.compile(r"[0-9a-f]{4,32}")
_LAST4 = re.compile(r"\d{4}")


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter on one column, offering a fixed list of values: no query to build the list."""

    field_name = ""
    values: dict[str, str] = {}  # {value: what staff read}

    def lookups(self, request, model_admin):
        return list(self.values.items())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field_name: self.value()})
        return queryset


class CurrencyFilter(FixedChoicesFilter):
    title = "currency"
    parameter_name = "currency"
    field_name = "currency"
    values = {code: code for code in sorted(SUPPORTED_CURRENCIES)}


class FailureCodeFilter(FixedChoicesFilter):
    title = "failure code"
    parameter_name = "failure_code"
    field_name = "failure_code"
    values = FAILURE_CODES


class DeclineCodeFilter(FixedChoicesFilter):
    title = "decline code"
    parameter_name = "decline_code"
    field_name = "decline_code"
    values = {code: code for code in DECLINE_MESSAGES}


class RiskRuleFilter(admin.SimpleListFilter):
    """The rule is not a column: it is in the data of the event that failed the payment ({"risk_rule": ...}). Only
    risk refusals carry it, so the (indexable) failure code narrows the rows before the events are looked at."""

    title = "risk rule"
    parameter_name = "risk_rule"

    def lookups(self, request, model_admin):
        return list(RISK_RULES.items())

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        refused_by_rule = PaymentEvent.objects.filter(
            payment=OuterRef("pk"), to_status=PaymentStatus.FAILED, data__risk_rule=self.value()
        )
        return queryset.filter(failure_code=RISK_DECLINED).filter(Exists(refused_by_rule))


def payment_search(queryset, search_term: str):
    """Each word of the search must match one of: the payment id or its first characters (4 or more, dashes or
    not), the order number, the payer's email, the card's last 4, the gateway reference. All are exact or range
    matches on indexed or joined-by-key columns: no LIKE over the whole table."""
    for term in search_term.split():
        matches = Q(gateway_reference=term) | Q(order__number=term.upper())
        hex_digits = term.replace("-", "").lower()
        if _HEX_PREFIX.fullmatch(hex_digits):
            # A prefix of a UUID is a range of UUIDs: an index range scan on the primary key, on every database.
            low, high = uuid.UUID(hex_digits.ljust(32, "0")), uuid.UUID(hex_digits.ljust(32, "f"))
            matches |= Q(id__gte=low, id__lte=high)
        if _LAST4.fullmatch(term):
            matches |= Q(card_last4=term)
        if "@" in term:
            matches |= Q(order__email__iexact=term) | Q(owner_user__email__iexact=term)
        queryset = queryset.filter(matches)
    return queryset


def _timestamp(value) -> str:
    if value is None:
        return "—"
    local = timezone.localtime(value)
    return format_html('<time datetime="{}">{}</time>', local.isoformat(), local.strftime("%Y-%m-%d %H:%M:%S"))


class PaymentChangelistAdmin(admin.ModelAdmin):
    """The list of payments (PaymentAdmin's changelist); not registered on its own."""

    list_display = (
        "short_id",
        "status_badge",
        "display_amount",
        "card",
        "payer",
        "order_link",
        "failure",
        "created",
        "updated",
    )
    list_display_links = ("short_id",)
    list_filter = (
        "status",
        CurrencyFilter,
        ("created_at", admin.DateFieldListFilter),
        FailureCodeFilter,
        DeclineCodeFilter,
        RiskRuleFilter,
    )
    search_fields = ("id", "order__number", "order__email", "card_last4", "gateway_reference")  # see payment_search
    search_help_text = (
        "A payment id or its first characters, an order number, the payer's email, a card's last 4 digits, "
        "or a gateway reference."
    )
    date_hierarchy = "created_at"
    list_select_related = ("order", "owner_user")

    class Media:
        css = {"all": ("payments/admin/desk.css",)}

    def get_queryset(self, request):
        # The rule behind a risk refusal, for the Failure column: one subquery in the page's query, not one query
        # per row. Only failed events carry it, and a payment fails once.
        risk_rule = PaymentEvent.objects.filter(payment=OuterRef("pk"), to_status=PaymentStatus.FAILED).values(
            rule=KT("data__risk_rule")
        )[:1]
        return super().get_queryset(request).annotate(risk_rule=Subquery(risk_rule))

    def get_search_results(self, request, queryset, search_term):
        return payment_search(queryset, search_term), False

    @admin.display(description="Payment", ordering="id")
    def short_id(self, obj):
        return format_html('<span class="payment-id" title="{}">{}…</span>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span class="payment-status payment-status-{}" data-status="{}">{}</span>',
            obj.status,
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description="Amount", ordering="amount")
    def display_amount(self, obj):
        amount = format_money(obj.amount, obj.currency)
        if obj.amount_refunded:
            return format_html(
                '{} <span class="payment-refunded">({} refunded)</span>',
                amount,
                format_money(obj.amount_refunded, obj.currency),
            )
        return amount

    @admin.display(description="Card")
    def card(self, obj):
        return f"{BRAND_NAMES.get(obj.card_brand, obj.card_brand)} •••• {obj.card_last4}"

    @admin.display(description="Payer")
    def payer(self, obj):
        # The shop's payments carry the shopper's email on their order; an API payment knows only the API client
        # (the merchant) that made it.
        if obj.order_id is not None and obj.order.email:
            return obj.order.email
        if obj.owner_user_id is not None:
            return f"API client {obj.owner_user.get_username()}"
        return "guest"

    @admin.display(description="Order", ordering="order__number")
    def order_link(self, obj):
        if obj.order_id is None:
            return "—"
        opts = obj.order._meta
        try:
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.order_id])
        except NoReverseMatch:
            return str(obj.order)
        return format_html('<a href="{}">{}</a>', url, obj.order)

    @admin.display(description="Failure")
    def failure(self, obj):
        codes = " / ".join(filter(None, [obj.failure_code, obj.decline_code]))
        rule = getattr(obj, "risk_rule", None)
        if rule:
            return format_html('{} <span class="payment-risk-rule">(rule: {})</span>', codes, rule)
        return codes

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return _timestamp(obj.created_at)

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, obj):
        return _timestamp(obj.updated_at)
