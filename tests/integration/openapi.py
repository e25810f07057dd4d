"""The API as an outside client meets it on the live stack: its OpenAPI document, a merchant's token, and a
merchant's payments in the states the operations need."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from payments.cards import validate_card
from payments.models import Actor, Payment, PaymentStatus
from payments.services.cards import card_tokenize
from payments.services.payments import payment_create, payment_process
from payments.services.refunds import refund_create, refund_process

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    definition: dict

    @property
    def id(self) -> str:
        return self.definition["operationId"]

    @property
    def documented(self) -> set[int]:
        return {int(status) for status in self.definition["responses"]}

    @property
    def takes_a_body(self) -> bool:
        """A POST reads its body (cancel's too: it must be empty), whether or not the document describes one."""
        return self.method == "post"

    def url(self, **ids: str) -> str:
        return self.path.format(**ids)


def api_document(base_url: str) -> dict:
    """The OpenAPI document, as the server serves it to anyone (no authentication)."""
    response = httpx.get(f"{base_url}/api/v1/schema", params={"format": "json"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def operations(document: dict) -> list[Operation]:
    return [
        Operation(method, path, definition)
        for path, item in document["paths"].items()
        for method, definition in item.items()
        if method in HTTP_METHODS
    ]


def merchant(username: str = "merchant", *, can_refund: bool = True):
    """An API client's user with a DRF token (`user.token`), holding the refund permission unless told not to."""
    user = get_user_model().objects.create_user(username=username)
    if can_refund:
        user.user_permissions.add(Permission.objects.get(codename="refund_payment", content_type__app_label="payments"))
    user.token = Token.objects.create(user=user).key
    return user


def paid_payment(owner, *, number: str = "4242424242424242", amount: int = 2400) -> Payment:
    """A payment of `owner`'s that succeeded, recorded and charged in this process (no worker needed)."""
    card = card_tokenize(validate_card(number=number, exp_month=12, exp_year=2030, cvc="123"))
    payment = payment_create(amount=amount, currency="USD", card=card, actor=Actor.API, owner_user=owner)
    payment = payment_process(payment_id=payment.pk)
    assert payment.status == PaymentStatus.SUCCEEDED
    return payment


def refunded_in_part(payment: Payment, amount: int = 100):
    refund = refund_create(payment_id=payment.pk, actor=Actor.API, amount=amount)
    return refund_process(refund_id=refund.pk, actor=Actor.API)
