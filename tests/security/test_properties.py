"""Bad input, as properties (issue 11, item 5): money and currency parsing, card validation, and the payment state
machine driven at random against the real database with ALLOWED_TRANSITIONS as the oracle.

Each property is checked against an oracle written here from the rules (ISO 4217 exponents, the Luhn formula, the
brands' prefix ranges), not against the code's own helpers. Example counts are kept small (settings below): the
module runs in seconds, and a failure prints the shrunk example that breaks the rule.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import hypothesis
import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from checkout.cart import MAX_QUANTITY
from checkout.models import Product
from payments.api.serializers import PaymentCreateSerializer, RefundCreateSerializer
from payments.cards import CardError, detect_brand, luhn_valid, parse_expiry, validate_card
from payments.currencies import (
    MAX_AMOUNT_MAJOR_UNITS,
    SUPPORTED_CURRENCIES,
    CurrencyError,
    format_money,
    validate_amount,
)
from payments.models import (
    ALLOWED_REFUND_TRANSITIONS,
    ALLOWED_TRANSITIONS,
    REFUNDABLE_STATUSES,
    UNSETTLED_REFUND_STATUSES,
    Actor,
    Payment,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from payments.services.cards import card_tokenize
from payments.services.payments import payment_create, payment_process
from payments.services.refunds import RefundNotAllowed, refund_create, refund_process
from payments.services.transitions import TransitionNotAllowed, payment_transition, refund_transition

PURE = hypothesis.settings(max_examples=150, deadline=None, database=None)
# Examples that go through the database or a request: fewer, and a function-scoped `db` is shared by design.
WITH_DB = hypothesis.settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ISO 4217 minor-unit exponents, written out here as the standard has them (the oracle for payments.currencies).
ISO_4217_EXPONENTS = {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}
CURRENCIES = sorted(SUPPORTED_CURRENCIES)


def iso_exponent(currency: str) -> int:
    return ISO_4217_EXPONENTS.get(currency, 2)


def largest_amount(currency: str) -> int:
    return MAX_AMOUNT_MAJOR_UNITS * 10 ** iso_exponent(currency)


# --- money and currency ---------------------------------------------------------------------------------------


def test_every_supported_currency_has_its_iso_4217_exponent():
    assert {code: iso_exponent(code) for code in CURRENCIES} == SUPPORTED_CURRENCIES


@PURE
@given(currency=st.sampled_from(CURRENCIES), amount=st.integers(min_value=-(10**20), max_value=10**20))
def test_an_integer_amount_is_accepted_exactly_when_it_is_within_one_minor_unit_and_the_limit(currency, amount):
    accepted = True
    try:
        validate_amount(amount, currency)
    except CurrencyError:
        accepted = False
    assert accepted == (1 <= amount <= largest_amount(currency))


@PURE
@given(
    currency=st.sampled_from(CURRENCIES),
    amount=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.decimals(allow_nan=False, allow_infinity=False),
        st.integers(1, 10**6).map(str),
        st.integers(1, 10**6).map(float),
    ),
)
def test_an_amount_that_is_not_an_int_is_never_accepted(currency, amount):
    with pytest.raises(CurrencyError):
        validate_amount(amount, currency)


@PURE
@given(
    code=st.one_of(
        st.text(min_size=0, max_size=5),
        st.sampled_from(CURRENCIES).map(str.lower),
        st.sampled_from(CURRENCIES).map(lambda code: f" {code}"),
        st.sampled_from(CURRENCIES).map(lambda code: code + "\x00"),
    ).filter(lambda code: code not in SUPPORTED_CURRENCIES),
    amount=st.integers(1, 1000),
)
def test_a_currency_is_one_of_the_list_spelt_exactly(code, amount):
    with pytest.raises(CurrencyError):
        validate_amount(amount, code)


CREATE = {"card": {"number": "4242424242424242", "exp_month": 12, "exp_year": date.today().year + 2, "cvc": "123"}}


def _create_errors(body_json: str) -> dict:
    serializer = PaymentCreateSerializer(data=json.loads(body_json))
    return {} if serializer.is_valid() else serializer.errors


@PURE
@given(currency=st.sampled_from(CURRENCIES), amount=st.integers(-(10**19), 10**19))
def test_the_api_takes_a_json_integer_amount_in_minor_units_within_the_limit(currency, amount):
    # As the API parses it: from JSON text, so the integer arrives as what any client would send.
    errors = _create_errors(json.dumps({**CREATE, "amount": amount, "currency": currency}))
    assert ("amount" not in errors) == (1 <= amount <= largest_amount(currency)), errors
    assert set(errors) <= {"amount"}


@PURE
@given(
    currency=st.sampled_from(CURRENCIES),
    raw=st.one_of(
        st.integers(1, 10**6).map(lambda n: f"{n}.0"),  # 2400.0
        st.integers(1, 10**6).map(lambda n: f'"{n}"'),  # "2400"
        st.integers(1, 9).map(lambda n: f"{n}e2"),  # 1e2
        st.floats(min_value=0.01, max_value=10**6, allow_nan=False).map(repr),
        st.sampled_from(["true", "false", "null", "[]", "{}", '"12.50"', '"1,000"', "-0", "0"]),
    ),
)
def test_the_api_never_reads_a_float_string_or_boolean_as_an_amount(currency, raw):
    body = json.dumps({**CREATE, "currency": currency})[:-1] + f', "amount": {raw}}}'
    assert "amount" in _create_errors(body)


@PURE
@given(raw=st.one_of(st.integers(1, 10**6).map(lambda n: f"{n}.0"), st.integers(1, 10**6).map(lambda n: f'"{n}"')))
def test_a_refund_amount_is_a_json_integer_too(raw):
    serializer = RefundCreateSerializer(data=json.loads(f'{{"amount": {raw}}}'))
    assert not serializer.is_valid() and "amount" in serializer.errors


@PURE
@given(currency=st.sampled_from(CURRENCIES), amount=st.integers(0, largest_amount("KWD")))
def test_money_is_shown_with_the_currencys_minor_units_and_reads_back_exactly(currency, amount):
    text = format_money(amount, currency)
    number = re.search(r"[0-9][0-9,]*(\.[0-9]+)?", text).group()
    decimals = len(number.partition(".")[2])
    assert decimals == iso_exponent(currency), text
    assert Decimal(number.replace(",", "")).scaleb(iso_exponent(currency)) == amount, text


@pytest.fixture
def shop_product(db):
    return Product.objects.create(slug="tea", name="Tea", price=1234, currency="USD", stock=1000)


@WITH_DB
@given(quantity=st.one_of(st.integers(-(10**6), 10**6).map(str), st.text(max_size=12), st.just("9" * 5000)))
def test_the_cart_form_keeps_a_whole_quantity_within_bounds_and_an_integer_total(shop_product, quantity):
    # The form path of an amount: the shopper chooses a quantity; what is charged is price x quantity, an integer.
    shopper = Client()
    response = shopper.post("/cart/add", {"product_id": shop_product.pk, "quantity": quantity})
    assert response.status_code == 302
    lines = shopper.session["cart"]
    assert list(lines) == [str(shop_product.pk)]
    assert 1 <= lines[str(shop_product.pk)] <= MAX_QUANTITY
    page = shopper.get("/cart")
    total = shop_product.price * lines[str(shop_product.pk)]
    assert format_money(total, "USD") in page.text


# --- cards ------------------------------------------------------------------------------------------------------


def luhn_check_digit(body: str) -> str:
    """The Luhn check digit, from the formula (ISO/IEC 7812-1, annex B)."""
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def brand_oracle(digits: str) -> str | None:
    """The brands we take, by their published IIN ranges."""
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in ("34", "37"):
        return "amex"
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return "mastercard"
    return None


BRANDS = {
    "visa": (st.just("4"), (13, 16, 19), 3),
    "mastercard": (st.one_of(st.integers(51, 55).map(str), st.integers(2221, 2720).map(str)), (16,), 3),
    "amex": (st.sampled_from(["34", "37"]), (15,), 4),
}


@st.composite
def cards(draw, brand: str | None = None):
    """A valid card of a brand we take: (brand, number, cvc, exp_month, exp_year)."""
    brand = brand or draw(st.sampled_from(sorted(BRANDS)))
    prefixes, lengths, cvc_length = BRANDS[brand]
    prefix, length = draw(prefixes), draw(st.sampled_from(lengths))
    body = prefix + draw(st.text("0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    today = timezone.now().date()
    exp_year = draw(st.integers(today.year, today.year + 20))
    exp_month = draw(st.integers(today.month if exp_year == today.year else 1, 12))
    cvc = draw(st.text("0123456789", min_size=cvc_length, max_size=cvc_length))
    return brand, body + luhn_check_digit(body), cvc, exp_month, exp_year


@PURE
@given(body=st.text("0123456789", min_size=1, max_size=30), data=st.data())
def test_luhn_accepts_the_check_digit_and_catches_every_single_digit_error(body, data):
    number = body + luhn_check_digit(body)
    assert luhn_valid(number)
    position = data.draw(st.integers(0, len(number) - 1), label="position")
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]), label="digit")
    assert not luhn_valid(number[:position] + wrong + number[position + 1 :])


@PURE
@given(digits=st.text("0123456789", min_size=4, max_size=19))
def test_the_brand_is_read_from_its_published_prefix_range(digits):
    assert detect_brand(digits) == brand_oracle(digits)


@PURE
@given(card=cards(), separators=st.lists(st.sampled_from([" ", "-"]), max_size=19), data=st.data())
def test_a_valid_card_is_accepted_however_it_is_spaced(card, separators, data):
    brand, number, cvc, exp_month, exp_year = card
    spaced = list(number)
    for separator in separators:
        spaced.insert(data.draw(st.integers(0, len(spaced)), label="where"), separator)
    details = validate_card(number="".join(spaced), exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    assert (details.brand, details.number, details.cvc, details.last4) == (brand, number, cvc, number[-4:])


@PURE
@given(card=cards(), data=st.data())
def test_a_card_of_another_length_or_with_a_wrong_check_digit_is_refused(card, data):
    brand, number, cvc, exp_month, exp_year = card
    lengths = BRANDS[brand][1]
    other_length = data.draw(st.integers(12, 23).filter(lambda n: n not in lengths), label="length")
    body = (number * 2)[: other_length - 1]
    broken = [body + luhn_check_digit(body), number[:-1] + str((int(number[-1]) + 1) % 10)]
    for wrong in broken:
        with pytest.raises(CardError) as refused:
            validate_card(number=wrong, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
        assert refused.value.field == "number"


@PURE
@given(card=cards(), script=st.sampled_from(["٠١٢٣٤٥٦٧٨٩", "０１２３４５６７８９", "۰۱۲۳۴۵۶۷۸۹", "⁰¹²³⁴⁵⁶⁷⁸⁹"]))
def test_only_ascii_digits_make_a_card_number_or_a_cvc(card, script):
    _, number, cvc, exp_month, exp_year = card
    other = str.maketrans("0123456789", script)
    with pytest.raises(CardError) as refused:
        validate_card(number=number.translate(other), exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    assert refused.value.field == "number"
    with pytest.raises(CardError) as refused:
        validate_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc.translate(other))
    assert refused.value.field == "cvc"


@PURE
@given(card=cards(), cvc_length=st.integers(0, 6))
def test_the_cvc_has_exactly_its_brands_length(card, cvc_length):
    brand, number, _, exp_month, exp_year = card
    cvc = "7" * cvc_length
    if cvc_length == BRANDS[brand][2]:
        assert validate_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc).cvc == cvc
        return
    with pytest.raises(CardError) as refused:
        validate_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    assert refused.value.field == "cvc"


def _months_from_now(months: int) -> tuple[int, int]:
    today = timezone.now().date()
    index = today.year * 12 + (today.month - 1) + months
    return index % 12 + 1, index // 12


@PURE
@given(card=cards(), months=st.integers(-600, 600), bad_month=st.one_of(st.integers(-50, 0), st.integers(13, 99)))
def test_the_expiry_is_a_real_month_from_this_one_to_twenty_years_ahead(card, months, bad_month):
    _, number, cvc, _, _ = card
    exp_month, exp_year = _months_from_now(months)
    accepted = True
    try:
        validate_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    except CardError as refused:
        assert refused.field == "expiry"
        accepted = False
    assert accepted == (months >= 0 and exp_year <= timezone.now().year + 20)
    with pytest.raises(CardError) as refused:
        validate_card(number=number, exp_month=bad_month, exp_year=timezone.now().year + 1, cvc=cvc)
    assert refused.value.field == "expiry"


@PURE
@given(
    month=st.integers(1, 12),
    year=st.integers(2000, 2099),
    style=st.sampled_from(["{m:02d}/{y2:02d}", "{m}/{y}", "{m:02d} / {y}", "{m:02d}{y2:02d}", " {m:02d}/{y2:02d} "]),
)
def test_an_expiry_is_read_from_the_ways_shoppers_type_it(month, year, style):
    assert parse_expiry(style.format(m=month, y=year, y2=year % 100)) == (month, year)


@PURE
@given(card=cards())
def test_card_details_never_show_the_number_or_the_cvc(card):
    brand, number, cvc, exp_month, exp_year = card
    details = validate_card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)
    shown = f"CardDetails({brand} •••• {number[-4:]} {exp_month:02d}/{exp_year})"
    # exactly this, so neither the number nor the CVC can be in it; and so in every way Python prints it
    assert repr(details) == str(details) == f"{details}" == f"{details!r}" == shown
    assert repr([details]) == f"[{shown}]" and repr({"card": details}) == f"{{'card': {shown}}}"


# --- the payment state machine, against the real database -------------------------------------------------------


@dataclass
class PaymentModel:
    amount: int
    status: str = PaymentStatus.PENDING
    seq: int = 1
    captured: int = 0
    refunded: int = 0


@dataclass
class RefundModel:
    payment_id: uuid.UUID
    amount: int
    status: str = RefundStatus.PENDING


CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": date.today().year + 2, "cvc": "123"}


class PaymentLifecycle(RuleBasedStateMachine):
    """Random sequences of what moves a payment (its transitions, refunds asked for, refund transitions, and the
    worker's own processing with the sandbox bank), each checked against ALLOWED_TRANSITIONS (and the refund
    rules) as the oracle, with the database's invariants checked after every step."""

    payments = Bundle("payments")
    refunds = Bundle("refunds")

    def __init__(self):
        super().__init__()
        self.model: dict[uuid.UUID, PaymentModel] = {}
        self.refund_model: dict[uuid.UUID, RefundModel] = {}

    # -- what may happen --

    def _create(self, amount: int) -> uuid.UUID:
        details = validate_card(**CARD)
        payment = payment_create(
            amount=amount, currency="USD", card=card_tokenize(details), actor=Actor.API, owner_guest_id=uuid.uuid4()
        )
        self.model[payment.pk] = PaymentModel(amount=amount)
        return payment.pk

    @initialize(target=payments, amount=st.integers(1, 10_000))
    def a_paid_payment(self, amount):
        # Every run starts with one payment the bank charged, so refunds are reached in most runs.
        payment = self._create(amount)
        self.process(payment)
        return payment

    @rule(target=payments, amount=st.integers(1, 10_000))
    def create(self, amount):
        return self._create(amount)

    @rule(payment=payments, to_status=st.sampled_from(PaymentStatus.values))
    def transition(self, payment, to_status):
        model = self.model[payment]
        allowed = to_status in ALLOWED_TRANSITIONS[model.status]
        # A success records the capture, as the worker's tx 2 does.
        changes = {"amount_captured": model.amount} if to_status == PaymentStatus.SUCCEEDED else None
        try:
            payment_transition(payment_id=payment, to_status=to_status, actor=Actor.WORKER, changes=changes)
        except TransitionNotAllowed:
            assert not allowed, f"{model.status} → {to_status} is allowed but was refused"
            hypothesis.event("payment transition refused")
            return
        assert allowed, f"{model.status} → {to_status} was accepted"
        hypothesis.event("payment transition accepted")
        model.status, model.seq = to_status, model.seq + 1
        if changes:
            model.captured = model.amount

    @rule(payment=payments)
    def process(self, payment):
        # The worker's job, with the sandbox bank: pending is taken and charged (or refused by risk or the bank);
        # unknown is settled; anything else is left alone.
        model = self.model[payment]
        before = model.status
        processed = payment_process(payment_id=payment)
        reachable = {
            PaymentStatus.PENDING: {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN},
            PaymentStatus.UNKNOWN: {PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN},
        }.get(before, {before})
        assert processed.status in reachable, (before, processed.status)
        hypothesis.event(f"worker: {before} → {processed.status}")
        model.status, model.seq = processed.status, processed.seq
        model.captured = processed.amount_captured

    def _in_flight(self, payment) -> int:
        return sum(
            r.amount
            for r in self.refund_model.values()
            if r.payment_id == payment and r.status in UNSETTLED_REFUND_STATUSES
        )

    @rule(target=refunds, payment=payments, amount=st.one_of(st.none(), st.integers(1, 3_000), st.integers(-5, 12_000)))
    def refund(self, payment, amount):
        model = self.model[payment]
        available = model.captured - model.refunded - self._in_flight(payment)
        wanted = available if amount is None else amount
        if model.status not in REFUNDABLE_STATUSES:
            expected = "payment_not_refundable"
        elif wanted <= 0 or available <= 0:
            expected = "nothing_to_refund"
        elif wanted > available:
            expected = "refund_exceeds_capture"
        else:
            expected = None
        try:
            created = refund_create(payment_id=payment, actor=Actor.API, amount=amount)
        except RefundNotAllowed as refused:
            assert refused.code == expected, (model, amount, available, refused.code)
            hypothesis.event(f"refund refused: {refused.code}")
            return multiple()
        assert expected is None, (model, amount, available, expected)
        assert created.amount == wanted
        hypothesis.event("refund created")
        self.refund_model[created.pk] = RefundModel(payment_id=payment, amount=wanted)
        return created.pk

    @rule(refund=refunds, to_status=st.sampled_from(RefundStatus.values))
    def refund_step(self, refund, to_status):
        own = self.refund_model[refund]
        model = self.model[own.payment_id]
        allowed = to_status in ALLOWED_REFUND_TRANSITIONS[own.status]
        payment_next = None
        if allowed and to_status == RefundStatus.SUCCEEDED:
            # The money back moves the payment too, in the same transaction; if the payment may not move
            # (the oracle says so), neither does the refund.
            refunded = model.refunded + own.amount
            payment_next = PaymentStatus.REFUNDED if refunded == model.captured else PaymentStatus.PARTIALLY_REFUNDED
            allowed = payment_next in ALLOWED_TRANSITIONS[model.status]
        try:
            refund_transition(refund_id=refund, to_status=to_status, actor=Actor.WORKER)
        except TransitionNotAllowed:
            assert not allowed, f"refund {own.status} → {to_status} (payment {model.status}) was refused"
            hypothesis.event("refund transition refused")
            return
        assert allowed, f"refund {own.status} → {to_status} (payment {model.status}) was accepted"
        hypothesis.event(f"refund transition accepted: → {to_status}")
        own.status = to_status
        if payment_next is not None:
            model.status, model.seq, model.refunded = payment_next, model.seq + 1, model.refunded + own.amount

    @rule(refund=refunds)
    def refund_job(self, refund):
        # The refund's worker job with the sandbox bank (a payment moved here by hand has no charge at the bank:
        # the bank's answer is then a failure or no answer, which must be recorded as such, nothing else).
        own = self.refund_model[refund]
        model = self.model[own.payment_id]
        before = own.status
        refund_process(refund_id=refund, actor=Actor.WORKER)
        reachable = {
            RefundStatus.PENDING: {RefundStatus.PROCESSING, *ALLOWED_REFUND_TRANSITIONS[RefundStatus.PROCESSING]},
            RefundStatus.UNKNOWN: {RefundStatus.UNKNOWN, *ALLOWED_REFUND_TRANSITIONS[RefundStatus.UNKNOWN]},
        }.get(before, {before})
        done = Refund.objects.get(pk=refund)
        assert done.status in reachable, (before, done.status)
        hypothesis.event(f"refund job: {before} → {done.status}")
        own.status = done.status
        payment = Payment.objects.get(pk=own.payment_id)
        if payment.seq != model.seq:
            assert done.status == RefundStatus.SUCCEEDED and payment.amount_refunded == model.refunded + own.amount
        model.status, model.seq, model.refunded = payment.status, payment.seq, payment.amount_refunded

    # -- what must always hold --

    @invariant()
    def the_database_agrees_with_the_oracle(self):
        rows = {p.pk: p for p in Payment.objects.filter(pk__in=list(self.model))}
        for pk, model in self.model.items():
            row = rows[pk]
            assert row.status in PaymentStatus.values
            assert (row.status, row.seq, row.amount_captured, row.amount_refunded) == (
                model.status,
                model.seq,
                model.captured,
                model.refunded,
            )
            assert 0 <= row.amount_refunded <= row.amount_captured <= row.amount
        for pk, status in Refund.objects.filter(pk__in=list(self.refund_model)).values_list("pk", "status"):
            assert status == self.refund_model[pk].status

    @invariant()
    def every_change_is_one_allowed_numbered_event(self):
        events: dict[uuid.UUID, list[tuple[int, str, str]]] = {pk: [] for pk in self.model}
        for payment_id, seq, from_status, to_status in PaymentEvent.objects.filter(
            payment_id__in=list(self.model)
        ).values_list("payment_id", "seq", "from_status", "to_status"):
            events[payment_id].append((seq, from_status, to_status))
        for pk, timeline in events.items():
            timeline.sort()
            assert [seq for seq, _, _ in timeline] == list(range(1, self.model[pk].seq + 1))
            assert timeline[0][1:] == ("", PaymentStatus.PENDING)
            for (_, _, previous), (_, from_status, to_status) in zip(timeline, timeline[1:], strict=False):
                assert from_status == previous
                assert to_status in ALLOWED_TRANSITIONS[from_status], (from_status, to_status)

    @invariant()
    def refunds_add_up(self):
        for pk, model in self.model.items():
            succeeded = sum(
                r.amount
                for r in self.refund_model.values()
                if r.payment_id == pk and r.status == RefundStatus.SUCCEEDED
            )
            assert model.refunded == succeeded


MACHINE = hypothesis.settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_payment_state_machine(db, settings):
    # Configuration, not mocking: the velocity rule would otherwise refuse the many payments one test card makes.
    settings.RISK_VELOCITY_MAX = 1_000_000
    run_state_machine_as_test(PaymentLifecycle, settings=MACHINE)
