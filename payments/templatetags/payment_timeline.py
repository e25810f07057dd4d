"""`{% payment_flight_recorder payment %}`: the payment's timeline on its admin page (payments/timeline.py)."""

from django import template
from django.utils import timezone

from payments.timeline import payment_timeline

register = template.Library()


@register.inclusion_tag("admin/payments/payment/flight_recorder.html")
def payment_flight_recorder(payment):
    return {
        "entries": payment_timeline(payment=payment) if payment is not None else [],
        "time_zone": timezone.get_current_timezone_name(),
    }
