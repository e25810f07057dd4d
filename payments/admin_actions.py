"""What staff may do to payments from the admin's list, each through the service the system itself uses, each for
holders of its own permission only, after a confirmation page, and on record with the staff user.

| action                | permission                  | service                                  |
|-----------------------|-----------------------------|------------------------------------------|
| refund_in_full        | payments.refund_payment     | refund_create (what is left)             |
| refund_amount         | payments.refund_payment     | refund_create (an amount: part or rest)  |
| cancel_pending        | payments.cancel_payment     | payment_cancel                           |
| ask_bank_now          | payments.settle_payment     | payment_ask_bank_now (the reconciler's)  |
| requeue_failed_jobs   | payments.manage_queues      | failed_job_requeue (the enqueue path)    |

Like Django's delete_selected, choosing an action shows a page saying what would happen to each payment; only the
POST from that page (post=yes) acts, and it carries back what the page promised for each payment (an amount, a
status, the failed jobs): a payment is acted on only if that still holds. So nothing happens without the page, and
nothing other than what it said. The services check everything again under the payment's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.utils import timezone

from payments.cards import BRAND_NAMES
from payments.currencies import CurrencyError, format_major_units, format_money, parse_major_units
from payments.models import UNSETTLED_REFUND_STATUSES, Actor, Payment, PaymentStatus, Refund
from payments.services.dispatch import (
    QueueUnavailable,
    failed_job_requeue,
    failed_jobs_among,
    payment_job_id,
    refund_job_id,
)
from payments.services.payments import payment_cancel
from payments.services.reconcile import NothingToAsk, payment_ask_bank_now
from payments.services.refunds import RefundNotAllowed, refund_amount_check, refund_create
from payments.services.transitions import TransitionNotAllowed

# One action moves money for at most this many payments. "Select all" on an unfiltered list would otherwise
# refund the whole shop on one click; a real batch (an incident, a canceled event) is narrowed with the filters
# and done in pages of this size, each with its own confirmation (docs/operations.md, "Staff actions").
MAX_PAYMENTS_PER_ACTION = 100

# The confirmation page promises an amount per payment (to refund, or the pending amount a cancel gives up); the
# confirming POST carries it back, and a payment is acted on only if it is still exactly what the page showed.
CONFIRMED_AMOUNT_FIELD = "confirmed_amount-{pk}"
# The same for actions that move no money: what the page showed (the status, the failed jobs).
CONFIRMED_FIELD = "confirmed-{pk}"
# A refund of an amount: what the staff user typed, and what was left to refund when they saw the page.
REFUND_AMOUNT_FIELD = "refund_amount-{pk}"
REFUNDABLE_SEEN_FIELD = "refundable_seen-{pk}"

ACTION_CONFIRMATION_TEMPLATE = "admin/payments/payment/action_confirmation.html"
REFUND_AMOUNT_TEMPLATE = "admin/payments/payment/refund_amount_form.html"


@dataclass(frozen=True)
class PlannedStep:
    """One line of a confirmation page: what confirming would do to one payment."""

    payment: Payment
    amount: int  # what would be refunded, or the amount of the payment a cancel gives up (0: no money moves)
    refusal: str  # why nothing would happen to it ("" when something would)
    doing: str = ""  # what the page says will happen
    promise: str = ""  # what the confirming POST must carry back for it to happen
    field_template: str = CONFIRMED_AMOUNT_FIELD
    hidden: tuple[tuple[str, str], ...] = field(default=())  # more (name, value) for the confirming POST

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
    def display_card(self) -> str:
        return f"{BRAND_NAMES.get(self.payment.card_brand, self.payment.card_brand)} •••• {self.payment.card_last4}"

    @property
    def confirmed_field(self) -> str:
        return self.field_template.format(pk=self.payment.pk)

    @property
    def confirmed_value(self) -> str:
        return self.promise or str(self.amount)


def _refusal_to_refund(payment: Payment, refused: RefundNotAllowed) -> str:
    if refused.code == "payment_not_refundable":
        return f"a {payment.get_status_display().lower()} payment cannot be refunded"
    return "nothing is left to refund (done or under way)"


def _plan_refund(payments: list[Payment]) -> list[PlannedStep]:
    # What the page shows; refund_create checks it all again under the payment's lock when it is confirmed.
    steps = []
    for payment in payments:
        try:
            amount = refund_amount_check(payment)
        except RefundNotAllowed as refused:
            steps.append(PlannedStep(payment, 0, _refusal_to_refund(payment, refused)))
            continue
        steps.append(PlannedStep(payment, amount, "", doing=f"Refund {format_money(amount, payment.currency)}"))
    return steps


def _plan_cancel(payments: list[Payment]) -> list[PlannedStep]:
    return [
        PlannedStep(payment, payment.amount, "", doing="Cancel")
        if payment.status == PaymentStatus.PENDING
        else PlannedStep(payment, 0, f"a {payment.get_status_display().lower()} payment cannot be canceled")
        for payment in payments
    ]


_ASK_BANK_DOING = {
    PaymentStatus.PENDING: "Queue its job at the front now",
    PaymentStatus.UNKNOWN: "Ask the bank now what it did with this payment",
    PaymentStatus.PROCESSING: "Its worker's lease ran out: mark it unknown and ask the bank now",
}


def _plan_ask_bank(payments: list[Payment]) -> list[PlannedStep]:
    # A pre-view of payment_ask_bank_now's own checks, which it makes again under the payment's lock.
    steps = []
    for payment in payments:
        refusal = ""
        if payment.status not in _ASK_BANK_DOING:
            refusal = f"a {payment.get_status_display().lower()} payment has nothing to ask the bank"
        elif payment.status == PaymentStatus.PROCESSING and (
            payment.recheck_at is None or payment.recheck_at > timezone.now()
        ):
            refusal = "a worker holds it and its lease has not run out; ask again when it has"
        steps.append(
            PlannedStep(
                payment,
                0,
                refusal,
                doing=_ASK_BANK_DOING.get(payment.status, ""),
                promise=payment.status,
                field_template=CONFIRMED_FIELD,
            )
        )
    return steps


def _plan_requeue(payments: list[Payment]) -> list[PlannedStep]:
    jobs: dict = {payment.pk: [payment_job_id(payment.pk)] for payment in payments}
    refunds = Refund.objects.filter(payment__in=payments, status__in=UNSETTLED_REFUND_STATUSES).order_by("created_at")
    for payment_id, refund_id in refunds.values_list("payment_id", "id"):
        jobs[payment_id].append(refund_job_id(refund_id))
    try:
        failed = failed_jobs_among([job_id for ids in jobs.values() for job_id in ids])
    except QueueUnavailable:
        return [PlannedStep(payment, 0, "the job queue (Redis) did not answer; try again") for payment in payments]
    steps = []
    for payment in payments:
        mine = [job_id for job_id in jobs[payment.pk] if job_id in failed]
        if not mine:
            steps.append(PlannedStep(payment, 0, "none of its jobs is in the failed job registry"))
            continue
        steps.append(
            PlannedStep(
                payment,
                0,
                "",
                doing="Re-queue " + ", ".join(mine),
                promise=",".join(mine),
                field_template=CONFIRMED_FIELD,
            )
        )
    return steps


def _is_amount(raw: str) -> bool:
    # Digits only, and few enough to be an amount (int() refuses strings of thousands of digits with an error).
    return raw.isascii() and raw.isdecimal() and len(raw) <= 20


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
    verb: str  # "refund", "cancel", "ask the bank about", "re-queue the failed jobs of"
    past: str  # "refunded", "canceled", ...
    title: str
    button: str
    plan: Callable[[list[Payment]], list[PlannedStep]]
    moves_money: bool = True  # the page shows amounts and a total


REFUND_ACTION = StaffAction(
    name="refund_in_full",
    permission="payments.refund_payment",
    verb="refund",
    past="refunded",
    title="Refund payments",
    button="Yes, refund",
    plan=_plan_refund,
)
REFUND_AMOUNT_ACTION = StaffAction(
    name="refund_amount",
    permission="payments.refund_payment",
    verb="refund",
    past="refunded",
    title="Refund payments",
    button="Yes, refund",
    plan=_plan_refund,  # the form's defaults: what is left
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
ASK_BANK_ACTION = StaffAction(
    name="ask_bank_now",
    permission="payments.settle_payment",
    verb="ask the bank about",
    past="asked about",
    title="Ask the bank now",
    button="Yes, ask the bank now",
    plan=_plan_ask_bank,
    moves_money=False,
)
REQUEUE_ACTION = StaffAction(
    name="requeue_failed_jobs",
    permission="payments.manage_queues",
    verb="re-queue the failed jobs of",
    past="re-queued",
    title="Re-queue failed jobs",
    button="Yes, re-queue",
    plan=_plan_requeue,
    moves_money=False,
)


@dataclass
class RefundEntry:
    """One payment on the refund-an-amount form: what is left to refund, what the staff user typed, what is wrong."""

    payment: Payment
    refundable: int
    refusal: str
    text: str = ""
    error: str = ""
    amount: int = 0

    @property
    def field_name(self) -> str:
        return REFUND_AMOUNT_FIELD.format(pk=self.payment.pk)

    @property
    def display_refundable(self) -> str:
        return format_money(self.refundable, self.payment.currency)

    @property
    def display_payment_amount(self) -> str:
        return format_money(self.payment.amount, self.payment.currency)

    @property
    def display_card(self) -> str:
        return f"{BRAND_NAMES.get(self.payment.card_brand, self.payment.card_brand)} •••• {self.payment.card_last4}"


def _refund_entries(payments: list[Payment], data=None) -> list[RefundEntry]:
    """The form's lines; with `data` (the form's POST), each typed amount checked: more than 0, at most what is left."""
    entries = []
    for payment in payments:
        try:
            refundable = refund_amount_check(payment)
        except RefundNotAllowed as refused:
            entries.append(RefundEntry(payment, 0, _refusal_to_refund(payment, refused)))
            continue
        entry = RefundEntry(payment, refundable, "", text=format_major_units(refundable, payment.currency))
        if data is not None:
            entry.text = data.get(entry.field_name, "").strip()
            try:
                entry.amount = parse_major_units(entry.text, payment.currency)
            except CurrencyError as error:
                entry.error = str(error)
            else:
                if entry.amount <= 0:
                    entry.error = "The amount must be more than 0."
                elif entry.amount > refundable:
                    entry.error = f"At most {entry.display_refundable} is left to refund on this payment."
        entries.append(entry)
    return entries


class PaymentActionsAdmin(admin.ModelAdmin):
    """The actions of PaymentAdmin's list; not registered on its own."""

    actions = ["refund_amount", "refund_in_full", "cancel_pending", "ask_bank_now", "requeue_failed_jobs"]
    action_confirmation_template = ACTION_CONFIRMATION_TEMPLATE
    refund_amount_template = REFUND_AMOUNT_TEMPLATE

    def has_refund_permission(self, request):
        return request.user.has_perm(REFUND_ACTION.permission)

    def has_cancel_permission(self, request):
        return request.user.has_perm(CANCEL_ACTION.permission)

    def has_settle_permission(self, request):
        return request.user.has_perm(ASK_BANK_ACTION.permission)

    def has_manage_queues_permission(self, request):
        return request.user.has_perm(REQUEUE_ACTION.permission)

    def response_action(self, request, queryset):
        # A tampered selection (not a payment id) is "nothing selected", not a server error.
        try:
            for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
                Payment._meta.pk.to_python(pk)
        except ValidationError:
            self.message_user(request, "Those are not payments. Nothing was changed.", level=messages.ERROR)
            return None
        return super().response_action(request, queryset)

    @admin.action(permissions=["refund"], description="Refund an amount of the selected payments (part or the rest)")
    def refund_amount(self, request, queryset):
        payments = self._selection(request, queryset, REFUND_AMOUNT_ACTION)
        if payments is None:
            return None
        if request.POST.get("post") == "yes":
            self._refund_amount_confirmed(request, payments)
            return None
        if request.POST.get("step") != "review":
            return self._refund_amount_form(request, _refund_entries(payments))
        entries = _refund_entries(payments, request.POST)
        if any(entry.error for entry in entries) or not any(not entry.refusal for entry in entries):
            return self._refund_amount_form(request, entries)
        steps = [
            PlannedStep(entry.payment, 0, entry.refusal)
            if entry.refusal
            else PlannedStep(
                entry.payment,
                entry.amount,
                "",
                doing=f"Refund {format_money(entry.amount, entry.payment.currency)} of the {entry.display_refundable} "
                f"left",
                hidden=((REFUNDABLE_SEEN_FIELD.format(pk=entry.payment.pk), str(entry.refundable)),),
            )
            for entry in entries
        ]
        return self._confirmation_page(request, steps, REFUND_AMOUNT_ACTION)

    @admin.action(permissions=["refund"], description="Refund what is left of the selected payments")
    def refund_in_full(self, request, queryset):
        return self._confirm_then_run(request, queryset, REFUND_ACTION, self._refund_confirmed)

    @admin.action(permissions=["cancel"], description="Cancel the selected payments (only while pending)")
    def cancel_pending(self, request, queryset):
        return self._confirm_then_run(request, queryset, CANCEL_ACTION, self._cancel_confirmed)

    @admin.action(permissions=["settle"], description="Ask the bank now (unknown or stuck payments)")
    def ask_bank_now(self, request, queryset):
        return self._confirm_then_run(request, queryset, ASK_BANK_ACTION, self._ask_bank_confirmed)

    @admin.action(permissions=["manage_queues"], description="Re-queue the failed jobs of the selected payments")
    def requeue_failed_jobs(self, request, queryset):
        return self._confirm_then_run(request, queryset, REQUEUE_ACTION, self._requeue_confirmed)

    # --- the steps every action shares --------------------------------------------------------------------------

    def _selection(self, request, queryset, action: StaffAction) -> list[Payment] | None:
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
        # The pages name each payment's order: joined here, not fetched once per payment.
        return list(queryset.select_related("order"))

    def _confirm_then_run(self, request, queryset, action: StaffAction, run):
        """Like Django's delete_selected: the first POST shows what would happen; only the POST from that page
        (post=yes) acts. Both are checked for the permission and the size of the batch."""
        payments = self._selection(request, queryset, action)
        if payments is None:
            return None
        if request.POST.get("post") == "yes":
            run(request, payments)
            return None
        return self._confirmation_page(request, action.plan(payments), action)

    def _page_context(self, request, action: StaffAction, selected_count: int) -> dict:
        return {
            **self.admin_site.each_context(request),
            "title": action.title,
            "subtitle": None,
            "opts": self.opts,
            "media": self.media,
            "action": action,
            "selected_count": selected_count,
            "selected_across": request.POST.get("select_across") == "1",
            "max_per_action": MAX_PAYMENTS_PER_ACTION,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "back_url": request.get_full_path(),
        }

    def _confirmation_page(self, request, steps: list[PlannedStep], action: StaffAction):
        doable = [step for step in steps if step.will_happen]
        context = {
            **self._page_context(request, action, len(steps)),
            "steps": steps,
            "doable": doable,
            "doable_count": len(doable),
            "refused_count": len(steps) - len(doable),
            "total": _totals(steps),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.action_confirmation_template, context)

    def _refund_amount_form(self, request, entries: list[RefundEntry]):
        refundable = [entry for entry in entries if not entry.refusal]
        context = {
            **self._page_context(request, REFUND_AMOUNT_ACTION, len(entries)),
            "entries": entries,
            "refundable": refundable,
            "has_errors": any(entry.error for entry in entries),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.refund_amount_template, context)

    def _confirmed(self, request, payment: Payment, action: StaffAction) -> PlannedStep | None:
        """The step the confirmation page promised for this payment, if it still holds; else None (and a message
        saying why). The services check everything again under the payment's lock."""
        (step,) = action.plan([payment])
        raw = request.POST.get(
            (CONFIRMED_AMOUNT_FIELD if action.moves_money else CONFIRMED_FIELD).format(pk=payment.pk), ""
        )
        if not raw or (action.moves_money and not _is_amount(raw)):
            self._refused(request, payment, f"not {action.past}", "it was not on the confirmation page")
            return None
        if step.refusal:
            self._refused(request, payment, f"not {action.past}", step.refusal)
            return None
        if raw != step.confirmed_value:
            if action.moves_money:
                why = (
                    f"you confirmed {format_money(int(raw), payment.currency)}, it is "
                    f"{format_money(step.amount, payment.currency)} now; look at it again"
                )
            else:
                why = "it changed since the confirmation page; look at it again"
            self._refused(request, payment, f"not {action.past}", why)
            return None
        return step

    def _refused(self, request, payment: Payment, outcome: str, why: str) -> None:
        self.message_user(request, f"{payment.pk}: {outcome}: {why}.", level=messages.WARNING)

    # --- what each confirmed action does ------------------------------------------------------------------------

    def _refund(self, request, payment: Payment, amount: int, reason: str) -> Refund | None:
        try:
            refund = refund_create(
                payment_id=payment.pk, actor=Actor.STAFF, requested_by=request.user, amount=amount, reason=reason
            )
        except RefundNotAllowed as refused:
            self._refused(request, payment, "not refunded", refused.message)
            return None
        self.log_change(
            request, payment, f"Refund of {format_money(refund.amount, payment.currency)} requested ({refund.pk})."
        )
        return refund

    def _refunds_queued(self, request, queued: list[PlannedStep]) -> None:
        if queued:
            self.message_user(
                request,
                f"Refunds queued for {len(queued)} payment(s), {_totals(queued)} in all; "
                f"each payment's page shows when its money is back.",
                level=messages.SUCCESS,
            )

    def _refund_confirmed(self, request, payments: list[Payment]) -> None:
        queued: list[PlannedStep] = []
        for payment in payments:
            step = self._confirmed(request, payment, REFUND_ACTION)
            if step is None:
                continue
            refund = self._refund(request, payment, step.amount, "refund what is left (admin)")
            if refund is not None:
                queued.append(PlannedStep(payment, refund.amount, ""))
        self._refunds_queued(request, queued)

    def _refund_amount_confirmed(self, request, payments: list[Payment]) -> None:
        queued: list[PlannedStep] = []
        for payment in payments:
            raw_amount = request.POST.get(CONFIRMED_AMOUNT_FIELD.format(pk=payment.pk), "")
            raw_seen = request.POST.get(REFUNDABLE_SEEN_FIELD.format(pk=payment.pk), "")
            if not all(_is_amount(raw) for raw in (raw_amount, raw_seen)):
                self._refused(request, payment, "not refunded", "it was not on the confirmation page")
                continue
            amount, seen = int(raw_amount), int(raw_seen)
            try:
                refundable = refund_amount_check(payment)
            except RefundNotAllowed as refused:
                self._refused(request, payment, "not refunded", _refusal_to_refund(payment, refused))
                continue
            if refundable != seen:
                self._refused(
                    request,
                    payment,
                    "not refunded",
                    f"{format_money(seen, payment.currency)} was left to refund when you confirmed, "
                    f"{format_money(refundable, payment.currency)} is now; look at it again",
                )
                continue
            reason = "refund what is left (admin)" if amount == refundable else "partial refund (admin)"
            refund = self._refund(request, payment, amount, reason)
            if refund is not None:
                queued.append(PlannedStep(payment, refund.amount, ""))
        self._refunds_queued(request, queued)

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

    def _ask_bank_confirmed(self, request, payments: list[Payment]) -> None:
        asked = 0
        for payment in payments:
            if self._confirmed(request, payment, ASK_BANK_ACTION) is None:
                continue
            try:
                queued = payment_ask_bank_now(payment_id=payment.pk, actor_user=request.user)
            except NothingToAsk as refused:
                self._refused(request, payment, "not asked about", str(refused))
                continue
            self.log_change(request, payment, f"Asked the bank now (it was {payment.status}).")
            asked += 1
            if not queued:
                self._refused(
                    request, payment, "not queued", "the job queue (Redis) did not take it; the reconciler will"
                )
        if asked:
            self.message_user(
                request,
                f"Asked the bank about {asked} payment(s): their jobs are at the front of the queue; "
                f"each payment's page shows the answer.",
                level=messages.SUCCESS,
            )

    def _requeue_confirmed(self, request, payments: list[Payment]) -> None:
        requeued: list[str] = []
        for payment in payments:
            step = self._confirmed(request, payment, REQUEUE_ACTION)
            if step is None:
                continue
            mine = []
            for job_id in step.promise.split(","):
                try:
                    if failed_job_requeue(job_id=job_id):
                        mine.append(job_id)
                except QueueUnavailable:
                    self._refused(request, payment, "not re-queued", "the job queue (Redis) did not answer")
            if mine:
                self.log_change(request, payment, f"Re-queued failed job(s): {', '.join(mine)}.")
                requeued += mine
        if requeued:
            self.message_user(request, f"Re-queued {len(requeued)} failed job(s).", level=messages.SUCCESS)
