from django import forms

from payments.cards import CardError, parse_expiry, validate_card
from payments.text import free_text_validate

# Where the demo shop ships (ISO 3166-1 alpha-2).
SHIPPING_COUNTRIES = [
    ("US", "United States"), ("CA", "Canada"), ("GB", "United Kingdom"), ("IE", "Ireland"), ("DE", "Germany"),
    ("FR", "France"), ("NL", "Netherlands"), ("ES", "Spain"), ("IT", "Italy"), ("AU", "Australia"),
]  # fmt: skip


class NoEchoTextInput(forms.TextInput):
    """Never sends a submitted value back to the browser: the card number and the CVC are typed again after a
    refused submit, so the page that shows the error never holds them (nor a cache, nor a saved page)."""

    def format_value(self, value):
        return None


class CheckoutForm(forms.Form):
    checkout_token = forms.UUIDField(widget=forms.HiddenInput)
    # What the shopper was shown: the submit charges this cart or nothing (checkout_submit's CartChanged). Not
    # required: a client that sends no promise (a script) is charged the cart as it is.
    cart_signature = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)
    expected_total = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0, max_value=2**53)
    email = forms.EmailField(
        label="Email", validators=[free_text_validate], widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    shipping_name = forms.CharField(
        label="Full name",
        max_length=120,
        validators=[free_text_validate],
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    shipping_address = forms.CharField(
        label="Address",
        max_length=200,
        validators=[free_text_validate],
        widget=forms.TextInput(attrs={"autocomplete": "street-address"}),
    )
    shipping_city = forms.CharField(
        label="City",
        max_length=100,
        validators=[free_text_validate],
        widget=forms.TextInput(attrs={"autocomplete": "address-level2"}),
    )
    shipping_postcode = forms.CharField(
        label="Postcode",
        max_length=20,
        validators=[free_text_validate],
        widget=forms.TextInput(attrs={"autocomplete": "postal-code"}),
    )
    shipping_country = forms.ChoiceField(
        label="Country", choices=SHIPPING_COUNTRIES, widget=forms.Select(attrs={"autocomplete": "country"})
    )
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=NoEchoTextInput(
            attrs={"autocomplete": "cc-number", "inputmode": "numeric", "placeholder": "1234 1234 1234 1234"}
        ),
    )
    expiry = forms.CharField(
        label="Expiry",
        max_length=7,
        help_text="MM/YY",
        widget=forms.TextInput(attrs={"autocomplete": "cc-exp", "inputmode": "numeric", "placeholder": "MM/YY"}),
    )
    cvc = forms.CharField(
        label="CVC",
        max_length=4,
        widget=NoEchoTextInput(attrs={"autocomplete": "cc-csc", "inputmode": "numeric", "placeholder": "123"}),
    )

    FIELD_FOR_CARD_ERROR = {"number": "card_number", "expiry": "expiry", "cvc": "cvc"}
    CARD_FIELDS = ("card_number", "expiry", "cvc")
    PROMISE_FIELDS = ("cart_signature", "expected_total")

    def full_clean(self):
        super().full_clean()
        # A card number typed into a free-text field is not rendered back in it either.
        refused = [
            name
            for name, errors in (self._errors or {}).items()
            if name in self.fields and any(error.code == "card_number" for error in errors.as_data())
        ]
        if refused:
            self.data = self.data.copy()
            for name in refused:
                self.data[name] = ""

    def clean(self):
        cleaned = super().clean()
        if not all(cleaned.get(name) for name in self.CARD_FIELDS):
            return cleaned
        try:
            exp_month, exp_year = parse_expiry(cleaned["expiry"])
            cleaned["card"] = validate_card(
                number=cleaned["card_number"], exp_month=exp_month, exp_year=exp_year, cvc=cleaned["cvc"]
            )
        except CardError as error:
            self.add_error(self.FIELD_FOR_CARD_ERROR[error.field], error.message)
        return cleaned

    def contact_fields(self):
        return [self[name] for name in ("email",)]

    def shipping_fields(self):
        return [
            self[name]
            for name in ("shipping_name", "shipping_address", "shipping_city", "shipping_postcode", "shipping_country")
        ]

    def card_fields(self):
        return [self[name] for name in self.CARD_FIELDS]
