"""The cast of the security tests: every kind of caller the product has, each a real client of its own (a DRF token,
a shopper's browser session, a staff login), and the payments they own, made the way they really are made: over
the API, through the shop's checkout form, processed by the sandbox bank as a worker processes them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import cached_property

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from checkout.models import Product
from payments.models import Actor, Payment, PaymentStatus, Refund
from payments.selectors import payment_ws_token
from payments.services.payments import payment_process
from payments.services.refunds import refund_create
from tests.integration.shop import checkout_form

CSRF_IN_PAGE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHECKOUT_TOKEN_IN_PAGE = re.compile(r'name="checkout_token" value="([0-9a-f-]{36})"')
# What a merchant (an API client) holds; staff hold view_payment and, if trusted with it, the rest.
MERCHANT_PERMISSIONS = ("refund_payment",)
STAFF_PERMISSIONS = ("view_payment",)
STAFF_ALLOWED_PERMISSIONS = ("view_payment", "refund_payment", "cancel_payment", "settle_payment", "manage_queues")
PAYMENT_AMOUNT = 2400
REFUND_IN_FLIGHT = 400  # a paid payment has this much refund under way, so its refunds can be read


def _user(username: str, *permissions: str, is_staff: bool = False):
    user = get_user_model().objects.create_user(username=username, is_staff=is_staff)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="payments", codename=codename))
    return user


@dataclass
class Caller:
    """One caller: its own cookie jar (with CSRF checks on, as a browser meets them), and what it authenticates
    with. Session callers send their own CSRF token on every write, so a refusal is about who they are, never
    about a missing token."""

    name: str
    client: Client
    user: object = None
    token: str = ""
    ws_token: str = ""  # the token it opens a payment's socket with ("": none)
    csrf: str = ""
    guest_id: str | None = None

    @classmethod
    def make(cls, name: str, *, user=None, token: str = "", login: bool = False) -> Caller:
        headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
        client = Client(enforce_csrf_checks=True, **headers)
        if login:
            client.force_login(user)
        caller = cls(name=name, client=client, user=user, token=token)
        caller.csrf = CSRF_IN_PAGE.search(client.get("/").text).group(1)
        return caller

    def get(self, path: str, **extra):
        return self.client.get(path, **extra)

    def post_json(self, path: str, body=None, **extra):
        body = {} if body is None else body
        return self.client.post(path, body, content_type="application/json", HTTP_X_CSRFTOKEN=self.csrf, **extra)

    def post_form(self, path: str, data: dict, **extra):
        return self.client.post(path, {**data, "csrfmiddlewaretoken": self.csrf}, **extra)

    def add_to_cart(self, product: Product, quantity: int = 1):
        response = self.post_form("/cart/add", {"product_id": product.pk, "quantity": quantity})
        assert response.status_code == 302, response.content[:300]
        return response

    def open_checkout(self, query: str = "") -> tuple[object, str]:
        page = self.get("/checkout" + query)
        assert page.status_code == 200, page.status_code
        self.guest_id = self.client.session.get("payments_guest_id")
        return page, CHECKOUT_TOKEN_IN_PAGE.search(page.text).group(1)


class World:
    """Two payments and everyone who might ask about them.

    - `api_payment`: made over the API by `merchant` (a DRF token, holding refund_payment);
    - `shop_payment`: paid through the checkout form by `payer` (a guest's browser session);
    - `other_client`: another merchant, holding refund_payment too (so its 404s are about whose payment it is);
    - `other_shopper`: another guest's session, with a cart and a checkout form of its own;
    - `anonymous`: a browser with no session and no token;
    - `staff`: is_staff with view_payment only; `staff_allowed`: also refund_payment, cancel_payment,
      settle_payment and manage_queues.

    `state` "paid": both payments succeeded at the sandbox bank, with a refund of 400 under way on each;
    "pending": both recorded and queued, no worker has taken them.
    """

    def __init__(self, state: str = "paid"):
        assert state in ("paid", "pending")
        self.state = state
        self.product = Product.objects.create(
            slug="espresso-beans", name="Espresso beans", price=PAYMENT_AMOUNT, currency="USD", stock=1000
        )
        self.merchant_user = _user("merchant", *MERCHANT_PERMISSIONS)
        self.other_client_user = _user("other-merchant", *MERCHANT_PERMISSIONS)
        self.staff_user = _user("staff-viewer", *STAFF_PERMISSIONS, is_staff=True)
        self.staff_allowed_user = _user("staff-allowed", *STAFF_ALLOWED_PERMISSIONS, is_staff=True)

        self.merchant = Caller.make("merchant", user=self.merchant_user, token=self._token(self.merchant_user))
        self.other_client = Caller.make(
            "other_client", user=self.other_client_user, token=self._token(self.other_client_user)
        )
        self.payer = Caller.make("payer")
        self.other_shopper = Caller.make("other_shopper")
        self.anonymous = Caller.make("anonymous")
        self.staff = Caller.make("staff", user=self.staff_user, login=True)
        self.staff_allowed = Caller.make("staff_allowed", user=self.staff_allowed_user, login=True)

        self.api_payment = self._pay_over_the_api()
        self.shop_payment, self.shop_checkout_token = self._pay_in_the_shop()
        self.other_shopper.add_to_cart(self.product)
        self.other_shopper.open_checkout()
        if state == "paid":
            self.api_refund = self._paid_with_refund_in_flight(self.api_payment, self.merchant_user)
            self.shop_refund = self._paid_with_refund_in_flight(self.shop_payment, self.staff_allowed_user)
            self.api_payment.refresh_from_db()
            self.shop_payment.refresh_from_db()
        # What each caller opens a socket with: the owners, their payment's token; every other caller a valid token,
        # but one signed for another payment (other_client's own); anonymous, none.
        decoy = self._pay_over_the_api(self.other_client)
        for caller in (self.other_client, self.other_shopper, self.staff, self.staff_allowed):
            caller.ws_token = payment_ws_token(decoy)
        self.payer.ws_token = payment_ws_token(self.shop_payment)
        self.merchant.ws_token = payment_ws_token(self.api_payment)

    @staticmethod
    def _token(user) -> str:
        return Token.objects.create(user=user).key

    def _pay_over_the_api(self, caller: Caller | None = None) -> Payment:
        caller = caller or self.merchant
        body = {"amount": PAYMENT_AMOUNT, "currency": "USD", "card": dict(CARD_OK), "description": "Order 1"}
        response = caller.post_json("/api/v1/payments", body, HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))
        assert response.status_code == 202, response.content[:300]
        return Payment.objects.get(pk=response.json()["id"])

    def _pay_in_the_shop(self) -> tuple[Payment, str]:
        self.payer.add_to_cart(self.product)
        _, token = self.payer.open_checkout()
        response = self.payer.post_form(
            "/checkout", checkout_form("4242424242424242", cvc="123", token=token), HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 202, response.content[:300]
        return Payment.objects.get(pk=response.json()["payment_id"]), token

    @staticmethod
    def _paid_with_refund_in_flight(payment: Payment, requested_by) -> Refund:
        paid = payment_process(payment_id=payment.pk)
        assert paid.status == PaymentStatus.SUCCEEDED, paid.status
        return refund_create(
            payment_id=payment.pk, actor=Actor.API, requested_by=requested_by, amount=REFUND_IN_FLIGHT, reason="r"
        )

    @cached_property
    def callers(self) -> dict[str, Caller]:
        return {
            "merchant": self.merchant,
            "payer": self.payer,
            "other_client": self.other_client,
            "other_shopper": self.other_shopper,
            "anonymous": self.anonymous,
            "staff": self.staff,
            "staff_allowed": self.staff_allowed,
        }


CARD_OK = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.fixture
def world_factory(db):
    return World
