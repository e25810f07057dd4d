"""A receipt on the real stack: a shopper pays through the shop, a real worker process settles the payment and
sends the receipt, and the file backend the stack was given holds exactly one email."""

from pathlib import Path

import pytest

from checkout.models import Order, ShopperEmail
from tests.conftest import wait_until
from tests.integration.shop import Shopper

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_payment_through_the_shop_sends_one_receipt_from_a_real_worker(live_stack_factory, product):
    # given: the stack, with one worker process of two threads, one of which takes emails
    stack = live_stack_factory(EMAIL_WORKER_THREADS="1")
    stack.start_worker(threads=2)
    mail_dir = Path(stack.env["EMAIL_FILE_PATH"])
    shopper = Shopper(stack.http_url, product.pk)
    # when
    paid = shopper.pay("4242424242424242")
    shopper.close()
    # then
    email = wait_until(
        lambda: ShopperEmail.objects.filter(status="sent").first(), timeout=30, message="the receipt sent:\n"
    )
    order = Order.objects.get(payments__pk=paid["payment_id"])
    (file,) = mail_dir.iterdir()
    text = file.read_text()
    assert text.count("Subject: ") == 1
    assert f"Subject: Your Roastery receipt, order {order.number}" in text
    assert "To: ada@example.com" in text
    assert "Content-Type: text/html" in text
    assert f"{stack.http_url}/orders/{order.number}." in text
    assert email.attempts == 1 and ShopperEmail.objects.count() == 1
