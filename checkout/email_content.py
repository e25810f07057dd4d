"""What a receipt and a refund notice say: templates/emails/<kind>_subject.txt, <kind>.txt and <kind>.html, rendered
from the outbox row's order, payment and refund as they are when the email is sent."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from checkout.models import Order, ShopperEmail
from checkout.order_links import order_page_path
from payments.cards import BRAND_NAMES
from payments.models import Payment, Refund


def order_page_url(order: Order) -> str:
    """The order page's signed link, absolute: an email is read far from any request that could tell our host."""
    if not settings.SHOP_BASE_URL:
        raise ImproperlyConfigured("SHOP_BASE_URL must be set for the links in emails (see .env.example).")
    return settings.SHOP_BASE_URL.rstrip("/") + order_page_path(order)


def _context(email: ShopperEmail) -> dict:
    order = Order.objects.get(pk=email.order_id)
    payment = Payment.objects.get(pk=email.payment_id)
    context = {
        "shop_name": settings.SHOP_NAME,
        "order": order,
        "lines": list(order.lines.order_by("pk")),
        "card_brand": BRAND_NAMES.get(payment.card_brand, payment.card_brand),
        "card_last4": payment.card_last4,
        "order_url": order_page_url(order),
    }
    if email.refund_id is not None:
        context["refund"] = Refund.objects.get(pk=email.refund_id)
        context["still_paid"] = payment.amount_captured - payment.amount_refunded
    return context


def shopper_email_message(email: ShopperEmail, *, connection=None) -> EmailMultiAlternatives:
    """The email as it is sent: a plain-text body and an HTML alternative."""
    context = _context(email)
    template = f"emails/{email.kind}"
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())  # one line, whatever the file
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        connection=connection,
        # The outbox row's key: whoever reads the mail server's logs can tell which event an email was for.
        headers={"X-Shop-Email-Key": email.key},
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message
