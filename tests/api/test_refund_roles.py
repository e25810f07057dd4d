"""Who may watch a payment (its payer) and who may refund it (the merchant) are different roles
(issue 10, item 7)."""

import uuid

from django.contrib.auth import get_user_model
from django.test import Client

from payments.models import Refund
from payments.services.payments import payment_process
from tests.api.helpers import assert_problem, client_for, create
from tests.integration.shop import checkout_form


def _refund(client, payment_id, **extra):
    return client.post(
        f"/api/v1/payments/{payment_id}/refunds",
        {},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        **extra,
    )


def test_a_shopper_who_paid_as_a_guest_then_signed_in_cannot_refund_their_purchase(product):
    # given: a guest pays in the shop, then signs in, in the same browser session
    browser = Client()
    browser.post("/cart/add", {"product_id": product.pk})
    paid = browser.post("/checkout", checkout_form("4242 4242 4242 4242"), HTTP_ACCEPT="application/json").json()
    payment_process(payment_id=paid["payment_id"])
    browser.force_login(get_user_model().objects.create_user(username="ada"))
    # then: they still see their payment...
    assert browser.get(f"/api/v1/payments/{paid['payment_id']}").status_code == 200
    # ...but the refund is the merchant's to make
    assert_problem(_refund(browser, paid["payment_id"]), 403, "permission_denied")
    assert not Refund.objects.exists()


def test_an_api_client_without_the_refund_permission_cannot_refund_even_its_own_payment(db):
    payer = client_for("payer", can_refund=False)
    payment = create(payer).json()
    payment_process(payment_id=payment["id"])
    assert_problem(_refund(payer, payment["id"]), 403, "permission_denied")
    assert not Refund.objects.exists()


def test_a_merchant_cannot_refund_another_merchants_payment_nor_learn_it_exists(db):
    owner, stranger = client_for("merchant-a"), client_for("merchant-b")
    payment = create(owner).json()
    payment_process(payment_id=payment["id"])
    assert_problem(_refund(stranger, payment["id"]), 404, "not_found")
    assert_problem(_refund(stranger, uuid.uuid4()), 404, "not_found")
    assert _refund(owner, payment["id"]).status_code == 202
    assert Refund.objects.get().requested_by.username == "merchant-a"
