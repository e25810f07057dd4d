"""The payment list's filters (GET /api/v1/payments?status=…&created_after=…&created_before=…), with
django-filter: the API's filter backend applies them and drf-spectacular documents them from this class."""

from __future__ import annotations

from datetime import UTC

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django_filters.fields import IsoDateTimeField

from payments.models import Payment, PaymentStatus


class PaymentFilterForm(forms.Form):
    def clean(self):
        # django-filter skips an empty value as "no filter"; a client that wrote `?status=` meant something and
        # gets a 400 like any other bad filter, not every payment.
        cleaned = super().clean()
        for name in self.fields:
            if name in self.data and self.data[name] == "":
                self.add_error(name, "This filter may not be empty.")
        return cleaned


class UtcIsoDateTimeField(IsoDateTimeField):
    def to_python(self, value):
        # In UTC before it reaches the query: PostgreSQL refuses offsets past ±15:59 that ISO 8601 and Python
        # accept ("+20:41" was a 500 under schemathesis), and a date moved past year 1 or 9999 is invalid.
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class PaymentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=PaymentStatus.choices, help_text="Only payments in this status.")
    created_after = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this time (ISO 8601)."
    )
    created_before = UtcIsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this time (ISO 8601)."
    )

    class Meta:
        model = Payment
        fields = ("status", "created_after", "created_before")
        form = PaymentFilterForm
