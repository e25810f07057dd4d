"""One Idempotency-Key, one payment (one refund), however long the first request stalls (issue 10, item 1).

The review's reproduction, on PostgreSQL: the card vault's table is locked (a stalled vault, a lock wait)
while the first request is in it; the client retries with the same key after the old 60 s claim would have
lapsed (shortened here to 1 s through the setting that timer used to read: the code no longer has one). The
old code let the retry take the key over, and both requests charged.
"""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from payments.models import Payment, Refund
from payments.services.payments import payment_process
from tests.api.helpers import client_for, create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stall(lock_holder):
    """Another session holding a lock, as a stalled vault or a long transaction would (tests/conftest.py)."""
    return lock_holder


def _send_in_thread(api, results: list, send):
    def run():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
        try:
            results.append(send(client))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_retry_while_the_first_request_stalls_past_every_timer_never_makes_a_second_payment(settings, stall):
    settings.IDEMPOTENCY_LOCK_SECONDS = 1  # the old claim timer's setting; nothing reads it any more
    api = client_for("merchant")
    answers: list = []
    # given: the vault stalls (its table locked by another session)
    stall("LOCK TABLE sandbox_vaultcard IN ACCESS EXCLUSIVE MODE")
    # when: the first request goes in, and the client retries with the same key and body after the old timer
    first = _send_in_thread(api, answers, lambda client: create(client, key="stalled"))
    time.sleep(1.5)
    retry = _send_in_thread(api, answers, lambda client: create(client, key="stalled"))
    time.sleep(6.5)  # past the database's 5 s lock timeout: every wait in the request is bounded
    stall("ROLLBACK")  # the vault recovers
    first.join(30)
    retry.join(30)
    final = create(api, key="stalled")

    # then: exactly one payment; the stalled requests answered 503 (nothing created, retry with the same key)
    assert Payment.objects.filter(owner_user=api.user).count() == 1
    assert final.status_code == 202
    assert [answer.status_code for answer in answers] == [503, 503], [a.content for a in answers]
    assert create(api, key="stalled").json()["id"] == final.json()["id"]


def test_a_refund_retried_while_the_first_stalls_past_every_timer_refunds_once(settings, stall):
    settings.IDEMPOTENCY_LOCK_SECONDS = 1
    api = client_for("merchant")
    payment = create(api).json()
    payment_process(payment_id=payment["id"])

    def refund(client):
        return client.post(payment["links"]["refunds"], {"amount": 1000}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")

    answers: list = []
    # given: the payment's row is locked by another session (a long transaction)
    stall("SELECT 1 FROM payments_payment WHERE id = %s FOR UPDATE", payment["id"])
    # when: the refund goes in, and is retried with the same key after the old timer
    first = _send_in_thread(api, answers, refund)
    time.sleep(1.5)
    retry = _send_in_thread(api, answers, refund)
    time.sleep(6.5)
    stall("ROLLBACK")
    first.join(30)
    retry.join(30)
    final = refund(api)

    # then: one refund of 1000, not two
    assert final.status_code == 202
    assert list(Refund.objects.values_list("amount", flat=True)) == [1000]
    assert {answer.status_code for answer in answers} <= {202, 503}


def test_a_refund_retried_while_the_first_is_mid_write_gets_the_first_answer_not_a_refusal(stall):
    api = client_for("merchant")
    payment = create(api).json()
    payment_process(payment_id=payment["id"])

    def refund_all(client):
        return client.post(payment["links"]["refunds"], {}, format="json", HTTP_IDEMPOTENCY_KEY="refund-all")

    answers: list = []
    # given: the payment's row is held for a moment (a slow transaction), so both requests queue on its lock
    stall("SELECT 1 FROM payments_payment WHERE id = %s FOR UPDATE", payment["id"])
    threads = [_send_in_thread(api, answers, refund_all) for _ in range(2)]
    time.sleep(1)
    stall("ROLLBACK")
    for thread in threads:
        thread.join(30)
    # then: one refund, and both requests answer with it (the second is the replay, not "nothing to refund")
    assert [answer.status_code for answer in answers] == [202, 202], [a.content for a in answers]
    assert {answer.json()["id"] for answer in answers} == {str(Refund.objects.get().pk)}


def test_a_lock_wait_past_its_timeout_anywhere_is_a_503_with_retry_after_not_a_500(stall):
    api = client_for("merchant")
    # given: the table the first lookup reads is locked (a migration waiting in the lock queue, a VACUUM FULL)
    stall("LOCK TABLE payments_idempotencyrecord IN ACCESS EXCLUSIVE MODE")
    # when / then
    response = create(api, key="busy")
    assert (response.status_code, response["Retry-After"]) == (503, "2")
    assert response.json()["code"] == "service_unavailable"
    stall("ROLLBACK")
    assert create(api, key="busy").status_code == 202


def test_a_shop_page_whose_lookup_times_out_is_a_503_page(stall, product):
    from django.test import Client

    stall("LOCK TABLE checkout_product IN ACCESS EXCLUSIVE MODE")
    page = Client().get("/")
    assert (page.status_code, page["Retry-After"]) == (503, "2")
    assert "try again" in page.content.decode()
