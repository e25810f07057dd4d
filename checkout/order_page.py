"""What the order page shows, read once for the HTML page and for its JSON twin (`/orders/<key>/status`).

The page is opened by whoever holds the signed link (checkout/order_links.py): the shopper in another browser, or
whoever the receipt was forwarded to. So it shows what a parcel label and a card slip would show, and no more: the
items, the total, the payment's state, the card's brand and last 4, the refunds, and the name, city and country it
ships to. Never the street address, the postcode or the email address (docs/security.md, "The order link").
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.urls import reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime

from checkout.forms import SHIPPING_COUNTRIES
from checkout.models import Order
from checkout.order_links import order_link_key, order_number_from_key
from checkout.selectors import order_latest_payment
from payments.currencies import CURRENCY_SYMBOLS, SUPPORTED_CURRENCIES, format_money
from payments.models import Payment, PaymentStatus, Refund, RefundStatus
from payments.selectors import payment_document_for_watcher, payment_status_payload, payment_ws_token

# A refund's state in the shopper's words: a refund that did not go through is said so, not hidden.
REFUND_STATUS_WORDS = {
    RefundStatus.PENDING: "In progress",
    RefundStatus.PROCESSING: "In progress",
    RefundStatus.UNKNOWN: "In progress",
    RefundStatus.SUCCEEDED: "Returned to your card",
    RefundStatus.FAILED: "Not completed",
}

# Once a payment is here nothing about it changes any more, so its pages stop listening. A succeeded or partly
# refunded payment is not among them: staff may still refund it.
FINAL_STATUSES = frozenset({PaymentStatus.FAILED, PaymentStatus.CANCELED, PaymentStatus.REFUNDED})


@dataclass(frozen=True)
class OrderView:
    order: Order
    payment: Payment | None
    refunds: list[Refund]


def country_name(code: str) -> str:
    return dict(SHIPPING_COUNTRIES).get(code, code)


def order_for_link_key(key: str) -> Order | None:
    """The order a link key opens, or None for a key we did not sign (or an order that is gone): callers answer
    404 for both alike."""
    number = order_number_from_key(key)
    if number is None:
        return None
    return Order.objects.filter(number=number).first()


def order_view_read(order: Order) -> OrderView:
    payment = order_latest_payment(order_id=order.pk)
    refunds = list(payment.refunds.order_by("created_at")) if payment is not None else []
    return OrderView(order=order, payment=payment, refunds=refunds)


def money_format_for(currency: str) -> dict:
    """How payments.currencies.format_money writes this currency, for the pages' script to write a pushed amount
    (the status document carries minor units) exactly as the server wrote it."""
    return {
        "currency": currency,
        "exponent": SUPPORTED_CURRENCIES.get(currency, 2),
        "symbol": CURRENCY_SYMBOLS.get(currency, ""),
    }


def order_status_path(order: Order) -> str:
    return reverse("checkout:order-status", kwargs={"key": order_link_key(order)})


def payment_socket_path(payment: Payment, *, watch_only: bool = False) -> str:
    """The payment's WebSocket, with a token minted now: the one in the status document expires a day after the
    payment was made, and a receipt's link is opened long after that. `watch_only` for the order page, whose
    link may have been forwarded: its socket never sends the bank's page (payments.selectors)."""
    token = payment_ws_token(payment, valid_from=time.time(), watch_only=watch_only)
    return f"/ws/payments/{payment.id}?token={token}"


def payment_document_for_order_page(payment: Payment, *, socket_path: str) -> dict:
    """The status document as the order page shows it: the bank's page (`next_action`) is the cardholder's, and
    whoever holds a forwarded order link may watch the payment but not confirm it with the bank."""
    return payment_document_for_watcher(payment_status_payload(payment), socket_path=socket_path)


def refund_row(refund: Refund, currency: str) -> dict:
    return {
        "amount": refund.amount,
        "amount_display": format_money(refund.amount, currency),
        "status": refund.status,
        "status_display": REFUND_STATUS_WORDS[refund.status],
        "created_at": refund.created_at.isoformat(),
        "created_display": date_format(localtime(refund.created_at), "j M Y"),
    }


def order_status_payload(view: OrderView) -> dict:
    """The order page's JSON: the order, the payment's status document (the same as every other channel's, as a
    watcher sees it: payment_document_for_order_page), and the refunds as the page lists them."""
    order = view.order
    payment = view.payment
    document = None
    if payment is not None:
        document = payment_document_for_order_page(payment, socket_path=payment_socket_path(payment, watch_only=True))
    return {
        "order": {
            "number": order.number,
            "status": order.status,
            "total": order.total,
            "currency": order.currency,
            "created_at": order.created_at.isoformat(),
        },
        "payment": document,
        "refunds": [refund_row(refund, order.currency) for refund in view.refunds],
    }
