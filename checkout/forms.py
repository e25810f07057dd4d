from django import forms

from payments.cards import CardError, parse_expiry, validate_card


class NoEchoTextInput(forms.TextInput):
    """Never sends a submitted value back to the browser (used for the CVC)."""

    def format_value(self, value):
        return None


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    card_number = forms.CharField(
        label="Card number",
        max_length=23,
        widget=forms.TextInput(
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

    def clean(self):
        cleaned = super().clean()
        if not all(cleaned.get(name) for name in ("card_number", "expiry", "cvc")):
            return cleaned
        try:
            exp_month, exp_year = parse_expiry(cleaned["expiry"])
            cleaned["card"] = validate_card(
                number=cleaned["card_number"], exp_month=exp_month, exp_year=exp_year, cvc=cleaned["cvc"]
            )
        except CardError as error:
            self.add_error(self.FIELD_FOR_CARD_ERROR[error.field], error.message)
        return cleaned
