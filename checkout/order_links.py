"""The order page's link: signed, so anyone holding it (the receipt's reader, in any browser, with no account and
no session) can open that one order, and nobody can guess another's.

The order number alone is short enough to read over the phone (8 hex digits), so it is no secret; the link is
the number and an HMAC of it under DJANGO_SECRET_KEY (a salt of its own, so no other signed value of the app can
stand in for it). It does not expire: a receipt is kept for years. Rotating DJANGO_SECRET_KEY (with the old key
in DJANGO_SECRET_KEY_FALLBACKS while links in circulation should keep working) is how every link is revoked.
"""

from __future__ import annotations

from django.core import signing
from django.urls import reverse

ORDER_LINK_SALT = "checkout.order-link"


def _signer() -> signing.Signer:
    # Made per call: the key is read from settings when a Signer is made.
    # "." never occurs in an order number nor in a signature (URL-safe base64), so the key splits one way only.
    return signing.Signer(salt=ORDER_LINK_SALT, sep=".")


def order_link_key(order) -> str:
    """`<number>.<signature>`: the path segment that opens this order's page."""
    return _signer().sign(order.number)


def order_number_from_key(key: str) -> str | None:
    """The order number a key was made for, or None for a key we did not sign."""
    try:
        return _signer().unsign(key)
    except signing.BadSignature:
        return None


def order_page_path(order) -> str:
    return reverse("checkout:order", kwargs={"key": order_link_key(order)})
