from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from rest_framework.authtoken.models import TokenProxy

from payments.admin_changelist import PaymentChangelistAdmin
from payments.currencies import format_money
from payments.models import Actor, BlockedCard, Payment, PaymentEvent, PaymentStatus, Refund
from payments.services.payments import payment_cancel
from payments.services.refunds import RefundNotAllowed, refund_amount_check, refund_create
from payments.services.transitions import TransitionNotAllowed

# One action moves money for at most this many payments. "Select all" on an unfiltered list would otherwise
# refund the whole shop on one click; a real batch (an incident, a canceled event) is narrowed with the filters
# and done in pages of this size, each with its own confirmation (docs/operations.md, "Staff actions").
MAX_PAYMENTS_PER_ACTION = 100

# The confirmation page promises an amount per payment (to refund, or the pending amount a cancel gives up); the
# confirming POST carries it back, and a payment is acted on only if it is still exactly what the page showed.
# So nothing happens without the page, and nothing other than what it said.
CONFIRMED_AMOUNT_FIELD = "confirmed_amount-{pk}"


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


@dataclass(frozen=True)
class PlannedStep:
    """One line of a confirmation page: what confirming would do to one payment."""

    payment: Payment
    amount: int  # what would be refunded, or the amount of the payment a cancel gives up
    refusal: str  # why nothing would happen to it ("" when something would)

    @property
    def will_happen(self) -> bool:
        return not self.refusal

    @property
    def display_amount(self) -> str:
        return format_money(self.amount, self.payment.currency)

    @property
    def display_payment_amount(self) -> str:
        return format_money(self.payment.amount, self.payment.currency)

    @property
    def confirmed_amount_field(self) -> str:
        return CONFIRMED_AMOUNT_FIELD.format(pk=self.payment.pk)


def _plan_refund(payment: Payment) -> PlannedStep:
    # What the page shows; refund_create checks it all again under the payment's lock when it is confirmed.
    try:
        return PlannedStep(payment, refund_amount_check(payment), "")
    except RefundNotAllowed as refused:
        if refused.code == "payment_not_refundable":
            return PlannedStep(payment, 0, f"a {payment.get_status_display().lower()} payment cannot be refunded")
        return PlannedStep(payment, 0, "nothing is left to refund (done or under way)")


def _plan_cancel(payment: Payment) -> PlannedStep:
    if payment.status != PaymentStatus.PENDING:
        return PlannedStep(payment, 0, f"a {payment.get_status_display().lower()} payment cannot be canceled")
    return PlannedStep(payment, payment.amount, "")


def _totals(steps: list[PlannedStep]) -> str:
    by_currency: dict[str, int] = {}
    for step in steps:
        if step.will_happen:
            by_currency[step.payment.currency] = by_currency.get(step.payment.currency, 0) + step.amount
    return " + ".join(format_money(amount, currency) for currency, amount in sorted(by_currency.items()))


@dataclass(frozen=True)
class StaffAction:
    name: str
    permission: str
    verb: str  # "refund", "cancel"
    past: str  # "refunded", "canceled"
    title: str
    button: str
    plan: Callable[[Payment], PlannedStep]


REFUND_ACTION = StaffAction(
    name="refund_in_full",
    permission="payments.refund_payment",
    verb="refund",
    past="refunded",
    title="Refund payments",
    button="Yes, refund",
    plan=_plan_refund,
)
CANCEL_ACTION = StaffAction(
    name="cancel_pending",
    permission="payments.cancel_payment",
    verb="cancel",
    past="canceled",
    title="Cancel payments",
    button="Yes, cancel",
    plan=_plan_cancel,
)


@admin.register(Payment)
class PaymentAdmin(PaymentChangelistAdmin):
    """Read-only: a payment's status changes only through the payment services, which the actions below call
    after a confirmation page, for staff holding refund_payment / cancel_payment, recording who asked. The list
    itself: payments/admin_changelist.py."""

    inlines = [PaymentEventInline, RefundInline]
    actions = ["refund_in_full", "cancel_pending"]
    action_confirmation_template = "admin/payments/payment/action_confirmation.html"

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

    def has_refund_permission(self, request):
        return request.user.has_perm(REFUND_ACTION.permission)

    def has_cancel_permission(self, request):
        return request.user.has_perm(CANCEL_ACTION.permission)

    def response_action(self, request, queryset):
        # A tampered selection (not a payment id) is "nothing selected", not a server error.
        try:
            for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                Payment._meta.pk.to_python(pk)
        except ValidationError:
            self.message_user(request, "Those are not payments. Nothing was changed.", level=messages.ERROR)
            return None
        return super().response_action(request, queryset)

    @admin.action(permissions=["refund"], description="Refund what is left of the selected payments")
    def refund_in_full(self, request, queryset):
        return self._confirm_then_run(request, queryset, REFUND_ACTION, self._refund_confirmed)

    @admin.action(permissions=["cancel"], description="Cancel the selected payments (only while pending)")
    def cancel_pending(self, request, queryset):
        return self._confirm_then_run(request, queryset, CANCEL_ACTION, self._cancel_confirmed)

    def _confirm_then_run(self, request, queryset, action: StaffAction, run):
        """Like Django's delete_selected: the first POST shows what would happen; only the POST from that page
        (post=yes) moves money. Both are checked for the permission and the size of the batch."""
        # Django offers the action only to holders of the permission; asking again here keeps that true
        # whoever calls this method.
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        count = queryset.count()
        if count > MAX_PAYMENTS_PER_ACTION:
            self.message_user(
                request,
                f"{count} payments selected: one action handles at most {MAX_PAYMENTS_PER_ACTION}. Narrow the list "
                f"with the filters or the search and try again. Nothing was done.",
                level=messages.ERROR,
            )
            return None
        payments = list(queryset)
        if request.POST.get("post") == "yes":
            run(request, payments)
            return None
        return self._confirmation_page(request, payments, action)

    def _confirmation_page(self, request, payments: list[Payment], action: StaffAction):
        steps = [action.plan(payment) for payment in payments]
        doable = [step for step in steps if step.will_happen]
        context = {
            **self.admin_site.each_context(request),
            "title": action.title,
            "subtitle": None,
            "opts": self.opts,
            "media": self.media,
            "action": action,
            "steps": steps,
            "doable": doable,
            "selected_count": len(steps),
            "doable_count": len(doable),
            "refused_count": len(steps) - len(doable),
            "total": _totals(steps),
            "selected_across": request.POST.get("select_across") == "1",
            "max_per_action": MAX_PAYMENTS_PER_ACTION,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "back_url": request.get_full_path(),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.action_confirmation_template, context)

    def _refund_confirmed(self, request, payments: list[Payment]) -> None:
        queued: list[PlannedStep] = []
        for payment in payments:
            amount = self._confirmed(request, payment, REFUND_ACTION)
            if amount is None:
                continue
            try:
                refund = refund_create(
                    payment_id=payment.pk,
                    actor=Actor.STAFF,
                    requested_by=request.user,
                    amount=amount,
                    reason="refund what is left (admin)",
                )
            except RefundNotAllowed as refused:
                self._refused(request, payment, "not refunded", refused.message)
                continue
            self.log_change(
                request, payment, f"Refund of {format_money(refund.amount, payment.currency)} requested ({refund.pk})."
            )
            queued.append(PlannedStep(payment, refund.amount, ""))
        if queued:
            self.message_user(
                request,
                f"Refunds queued for {len(queued)} payment(s), {_totals(queued)} in all; "
                f"each payment's page shows when its money is back.",
                level=messages.SUCCESS,
            )

    def _cancel_confirmed(self, request, payments: list[Payment]) -> None:
        canceled = 0
        for payment in payments:
            if self._confirmed(request, payment, CANCEL_ACTION) is None:
                continue
            try:
                payment_cancel(
                    payment_id=payment.pk, actor=Actor.STAFF, actor_user=request.user, reason="canceled (admin)"
                )
            except TransitionNotAllowed as refused:
                self._refused(request, payment, "not canceled", f"it is {refused.obj.status} now")
                continue
            self.log_change(request, payment, "Canceled.")
            canceled += 1
        if canceled:
            self.message_user(request, f"{canceled} payment(s) canceled.", level=messages.SUCCESS)

    def _confirmed(self, request, payment: Payment, action: StaffAction) -> int | None:
        """The amount the confirmation page promised for this payment, if it still holds; else None (and
        a message saying why). The services check everything again under the payment's lock."""
        field = CONFIRMED_AMOUNT_FIELD.format(pk=payment.pk)
        raw = request.POST.get(field, "")
        if not (raw.isascii() and raw.isdecimal()):
            self._refused(request, payment, f"not {action.past}", "it was not on the confirmation page")
            return None
        confirmed, step = int(raw), action.plan(payment)
        if step.refusal:
            self._refused(request, payment, f"not {action.past}", step.refusal)
            return None
        if step.amount != confirmed:
            self._refused(
                request,
                payment,
                f"not {action.past}",
                f"you confirmed {format_money(confirmed, payment.currency)}, it is "
                f"{format_money(step.amount, payment.currency)} now; look at it again",
            )
            return None
        return confirmed

    def _refused(self, request, payment: Payment, outcome: str, why: str) -> None:
        self.message_user(request, f"{payment.pk}: {outcome}: {why}.", level=messages.WARNING)


@admin.register(BlockedCard)
class BlockedCardAdmin(admin.ModelAdmin):
    list_display = ("card_fingerprint", "reason", "created_at")
    search_fields = ("=card_fingerprint",)


# DRF's token admin lists every API client's token in full to anyone holding authtoken.view_tokenproxy: a
# view-only staff role would read a merchant's credential and refund as that merchant. Tokens are issued and
# rotated with `manage.py drf_create_token [-r] <user>` (docs/operations.md), never shown in the admin.
admin.site.unregister(TokenProxy)
