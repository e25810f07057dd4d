"""Request validation, and (for the OpenAPI document) the shapes of what the API answers.

The answers themselves are built by payments.selectors, shared with the WebSocket and the wait page;
the *Document serializers below only describe them, and schemathesis checks the two agree.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from payments.api.fields import CurrencyField, StrictCharField, StrictIntegerField
from payments.cards import CardError, validate_card
from payments.currencies import SUPPORTED_CURRENCIES, CurrencyError, validate_amount
from payments.models import PaymentStatus, RefundStatus
from payments.text import free_text_validate

MAX_METADATA_KEYS = 20
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
CARD_FIELD_FOR_ERROR = {"number": "number", "expiry": "exp_month", "cvc": "cvc"}
# The card number's form, stated in the OpenAPI document (drf-spectacular reads it from the validator): ASCII digits,
# as many as any brand we take has, with spaces and dashes anywhere (payments.cards ignores them). Other whitespace
# (a tab, a no-break space) is refused here rather than read past.
CARD_NUMBER_PATTERN = r"\A[ -]*(?:[0-9][ -]*){13,19}\Z"


def plain_text(value: str) -> str:
    """Free text (a description, a metadata value, a refund's reason), checked by payments.text as the pages check
    theirs: no control characters but tab and newline, no bidi or other invisible formatting, no card number."""
    free_text_validate(value, multiline=True)
    return value


class MetadataField(serializers.DictField):
    """Keys are checked before values, so that no error about a value is keyed by a key that is itself refused
    (a problem document would otherwise carry it back)."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            if len(data) > MAX_METADATA_KEYS:
                raise serializers.ValidationError(f"At most {MAX_METADATA_KEYS} keys.")
            if any(len(key) > MAX_METADATA_KEY_LENGTH for key in data):
                raise serializers.ValidationError(f"Keys are at most {MAX_METADATA_KEY_LENGTH} characters.")
            for key in data:
                free_text_validate(key)
        return super().to_internal_value(data)


class CardInputSerializer(serializers.Serializer):
    number = StrictCharField(
        max_length=23,
        # Checked as sent (no trimming), so the OpenAPI document's pattern is exactly what is accepted here.
        trim_whitespace=False,
        validators=[
            RegexValidator(
                CARD_NUMBER_PATTERN,
                message="Enter the card number as 13 to 19 digits; spaces and dashes may separate them.",
            )
        ],
        help_text=(
            "13 to 19 ASCII digits; spaces and dashes, anywhere, are ignored. The brand (Visa, Mastercard or "
            "American Express), its length and the check digit are checked too (422)."
        ),
    )
    exp_month = StrictIntegerField(min_value=1, max_value=12)
    exp_year = StrictIntegerField(min_value=2000, max_value=2199, help_text="Four digits.")
    cvc = StrictCharField(min_length=3, max_length=4)


class PaymentCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(min_value=1, help_text="In the currency's minor units (cents for USD).")
    currency = CurrencyField(
        choices=sorted(SUPPORTED_CURRENCIES), help_text="ISO 4217, in any case (`usd`); answered upper case."
    )
    card = CardInputSerializer()
    description = StrictCharField(max_length=255, required=False, allow_blank=True, default="", validators=[plain_text])
    metadata = MetadataField(
        child=StrictCharField(max_length=MAX_METADATA_VALUE_LENGTH, allow_blank=True, validators=[plain_text]),
        required=False,
        default=dict,
        help_text=f"Up to {MAX_METADATA_KEYS} keys of at most {MAX_METADATA_KEY_LENGTH} characters.",
    )

    def validate(self, attrs):
        try:
            validate_amount(attrs["amount"], attrs["currency"])
        except CurrencyError as error:
            raise serializers.ValidationError({"amount": [str(error)]}) from None
        card = attrs["card"]
        try:
            attrs["card_details"] = validate_card(
                number=card["number"], exp_month=card["exp_month"], exp_year=card["exp_year"], cvc=card["cvc"]
            )
        except CardError as error:
            field = CARD_FIELD_FOR_ERROR[error.field]
            raise serializers.ValidationError({"card": {field: [error.message]}}, code=error.code) from None
        return attrs


class RefundCreateSerializer(serializers.Serializer):
    amount = StrictIntegerField(
        min_value=1, required=False, help_text="Minor units; by default everything still refundable."
    )
    reason = StrictCharField(max_length=255, required=False, allow_blank=True, default="", validators=[plain_text])


# --- what the API answers (documentation only) --------------------------------------------------------


class CardDocument(serializers.Serializer):
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField()
    exp_year = serializers.IntegerField()


class FailureDocument(serializers.Serializer):
    code = serializers.CharField(help_text="processing_error, card_declined or risk_declined.")
    decline_code = serializers.CharField(allow_null=True, help_text="e.g. insufficient_funds, fraudulent.")
    message = serializers.CharField(help_text="Safe to show to the shopper.")


class PaymentLinks(serializers.Serializer):
    self = serializers.CharField()
    status = serializers.CharField()
    cancel = serializers.CharField()
    refunds = serializers.CharField()
    websocket = serializers.CharField(help_text="Carries a signed token; valid 24 h after the payment was made.")


class NextActionDocument(serializers.Serializer):
    type = serializers.ChoiceField(choices=["redirect_to_url"])
    url = serializers.CharField(help_text="The bank's page where the cardholder authenticates (3-D Secure).")
    expires_at = serializers.DateTimeField(
        allow_null=True, help_text="When we stop waiting: the payment then fails, authentication_expired."
    )


class PaymentStatusDocument(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=PaymentStatus.choices)
    has_outcome = serializers.BooleanField(help_text="True once the payment's outcome is known.")
    amount = serializers.IntegerField()
    amount_refunded = serializers.IntegerField(
        help_text="What refunds have given back so far, in minor units (0 until a refund succeeds)."
    )
    currency = serializers.CharField()
    card = CardDocument()
    failure = FailureDocument(allow_null=True)
    next_action = NextActionDocument(
        allow_null=True, help_text="While `requires_action`: send the cardholder to `url`. Otherwise null."
    )
    seq = serializers.IntegerField(help_text="Increases with every change; ignore documents with a lower seq.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    links = PaymentLinks()


class RefundFailureDocument(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class RefundLinks(serializers.Serializer):
    self = serializers.CharField()
    payment = serializers.CharField()


class RefundDocument(serializers.Serializer):
    id = serializers.UUIDField()
    payment_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RefundStatus.choices)
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    failure = RefundFailureDocument(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    links = RefundLinks()


class EventDocument(serializers.Serializer):
    seq = serializers.IntegerField()
    from_status = serializers.CharField(allow_null=True)
    to_status = serializers.CharField()
    actor = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    at = serializers.DateTimeField()


class PaymentDocument(PaymentStatusDocument):
    description = serializers.CharField(allow_blank=True)
    metadata = serializers.DictField(child=serializers.CharField(allow_blank=True))
    amount_captured = serializers.IntegerField()
    events = EventDocument(many=True)
    refunds = RefundDocument(many=True)


class PaymentPage(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = PaymentStatusDocument(many=True)


class RefundList(serializers.Serializer):
    results = RefundDocument(many=True)


class ProblemDocument(serializers.Serializer):
    type = serializers.CharField(help_text="The absolute URL of the page that explains the problem type.")
    title = serializers.CharField(help_text="The problem type's title, the same for every occurrence.")
    status = serializers.IntegerField()
    detail = serializers.CharField(allow_blank=True)
    code = serializers.CharField()
    instance = serializers.CharField(required=False)
    param = serializers.CharField(required=False, allow_null=True)
    errors = serializers.DictField(required=False)
