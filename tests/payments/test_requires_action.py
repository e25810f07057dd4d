"""3-D Secure (issue 16): the bank asks the cardholder to authenticate; the payment waits in requires_action with
no worker holding it, and ends with exactly one debit or none, whatever order things happen in.

Transactional: the sandbox bank delivers its callback on commit, and the jobs close connections as a worker's do.
"""

import json
import time
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from payments.callback_signature import SIGNATURE_HEADER, callback_signature
from payments.gateway import get_gateway
from payments.models import Actor, Payment, PaymentStatus
from payments.sandbox.challenge import authentication_answer, authentication_callback_deliver
from payments.sandbox.gateway import SandboxGateway
from payments.sandbox.models import Authentication
from payments.selectors import payment_status_payload
from payments.services.audit import payments_audit
from payments.services.payments import payment_cancel, payment_process
from payments.services.reconcile import payments_reconcile
from payments.services.transitions import TransitionNotAllowed
from tests.payments.bank import charges_for, debits_for, statuses_of

THREE_DS = "4000002760003184"
pytestmark = pytest.mark.django_db(transaction=True)
S = PaymentStatus


def _queued(payment) -> bool:
    return f"payment-{payment.pk}" in django_rq.get_queue("payments").job_ids


def _run_queued_job(payment) -> str:
    job = django_rq.get_queue("payments").fetch_job(f"payment-{payment.pk}")
    assert job is not None, "the payment's job is not on the queue"
    job.delete()  # as a worker takes it off
    return job.func(*job.args, **job.kwargs)


def _waiting(make_payment, clean_redis) -> Payment:
    payment = make_payment(THREE_DS)
    django_rq.get_queue("payments").empty()
    payment_process(payment_id=payment.pk)  # the job: the bank asks for authentication, and the job ends
    payment.refresh_from_db()
    assert payment.status == S.REQUIRES_ACTION
    return payment


def _public_id(payment) -> str:
    return Authentication.objects.get(idempotency_key=payment.gateway_idempotency_key).public_id


def _audit_holds():
    audit = payments_audit()
    assert audit["checks"]["charged_once"]["ok"], audit
    assert audit["checks"]["ledger_matches"]["ok"], audit


def test_the_job_records_requires_action_with_the_challenge_and_ends(make_payment, clean_redis):
    payment = _waiting(make_payment, clean_redis)
    document = payment_status_payload(payment)
    assert document["next_action"]["type"] == "redirect_to_url"
    assert document["next_action"]["url"] == f"/sandbox-bank/authenticate/{_public_id(payment)}"
    assert document["has_outcome"] is False
    assert not debits_for(payment).exists() and not charges_for(payment).exists()
    assert not _queued(payment)  # no job waits for the shopper
    assert payment.recheck_at == payment.next_action_expires_at  # the reconciler's next look is the deadline
    _audit_holds()


def test_complete_authentication_resumes_and_charges_once(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    page = client.post(payment.next_action_url, {"action": "complete"})
    assert page.status_code == 200  # an API client's payment: no page of ours to return to
    assert _queued(payment)  # the verified callback queued the resume job
    assert _run_queued_job(payment) == S.SUCCEEDED
    payment.refresh_from_db()
    assert statuses_of(payment)[-3:] == [(S.PROCESSING, S.REQUIRES_ACTION), (S.REQUIRES_ACTION, S.PROCESSING),
                                         (S.PROCESSING, S.SUCCEEDED)]  # fmt: skip
    assert debits_for(payment).count() == 1 and charges_for(payment).count() == 1
    assert payment_status_payload(payment)["next_action"] is None
    _audit_holds()


def test_fail_authentication_declines_without_a_debit(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    client.post(payment.next_action_url, {"action": "fail"})
    assert _run_queued_job(payment) == S.FAILED
    payment.refresh_from_db()
    assert payment.decline_code == "authentication_failed"
    assert payment_status_payload(payment)["failure"]["decline_code"] == "authentication_failed"
    assert not debits_for(payment).exists()
    _audit_holds()


def test_an_abandoned_challenge_expires_through_the_reconciler_and_can_no_longer_be_answered(
    make_payment, clean_redis, client
):
    payment = _waiting(make_payment, clean_redis)
    past = timezone.now() - timedelta(seconds=1)
    Payment.objects.filter(pk=payment.pk).update(next_action_expires_at=past, recheck_at=past)
    assert payments_reconcile()["payments_requeued"] == 1
    assert _run_queued_job(payment) == S.FAILED
    payment.refresh_from_db()
    assert payment.decline_code == "authentication_expired"
    assert statuses_of(payment)[-1] == (S.REQUIRES_ACTION, S.FAILED)
    # the shopper comes back too late: the bank refuses, and nothing is ever charged
    assert client.post(payment.next_action_url, {"action": "complete"}).status_code == 409
    assert payment_process(payment_id=payment.pk).status == S.FAILED
    assert not debits_for(payment).exists()
    _audit_holds()


def test_a_deadline_not_reached_leaves_the_payment_waiting(make_payment, clean_redis):
    payment = _waiting(make_payment, clean_redis)
    assert payment_process(payment_id=payment.pk).status == S.REQUIRES_ACTION  # a stray job does nothing
    assert payments_reconcile().get("payments_requeued", 0) == 0


def test_the_callback_twice_charges_once(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    client.post(payment.next_action_url, {"action": "complete"})
    authentication = Authentication.objects.get(public_id=_public_id(payment))
    authentication_callback_deliver(authentication)  # the bank sends it again before the job ran
    assert _run_queued_job(payment) == S.SUCCEEDED
    authentication_callback_deliver(authentication)  # and again afterwards
    assert not _queued(payment)
    assert payment_process(payment_id=payment.pk).status == S.SUCCEEDED
    # the button pressed again: the bank keeps its first answer
    assert authentication_answer(public_id=authentication.public_id, authenticated=False)[1] is False
    assert debits_for(payment).count() == 1
    _audit_holds()


class FastShopperGateway(SandboxGateway):
    """The shopper answers, and the bank's callback arrives, before the worker has recorded requires_action."""

    def charge(self, **kwargs):
        result = super().charge(**kwargs)
        if result.requires_action:
            authentication_answer(public_id=result.next_action_url.rsplit("/", 1)[1], authenticated=True)
        return result


@pytest.fixture
def fast_shopper(settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.FastShopperGateway"
    get_gateway.cache_clear()
    yield
    get_gateway.cache_clear()


def test_a_callback_before_requires_action_is_recorded_is_kept_and_applied(make_payment, clean_redis, fast_shopper):
    payment = make_payment(THREE_DS)
    django_rq.get_queue("payments").empty()
    assert payment_process(payment_id=payment.pk).status == S.REQUIRES_ACTION
    payment.refresh_from_db()
    assert payment.action_reported_at is not None  # kept while the payment was processing
    assert _queued(payment)  # the worker queued the resume itself
    assert _run_queued_job(payment) == S.SUCCEEDED
    assert debits_for(payment).count() == 1
    _audit_holds()


def test_a_lost_resume_job_is_queued_again_by_the_reconciler(make_payment, clean_redis, client, redis_client):
    payment = _waiting(make_payment, clean_redis)
    client.post(payment.next_action_url, {"action": "complete"})
    redis_client.flushdb()  # the job is lost with Redis's contents (DB 10, the tests' own)
    Payment.objects.filter(pk=payment.pk).update(recheck_at=timezone.now() - timedelta(seconds=1))
    assert payments_reconcile()["payments_requeued"] == 1
    assert _run_queued_job(payment) == S.SUCCEEDED
    assert debits_for(payment).count() == 1


def test_a_worker_lost_after_the_banks_question_is_settled_back_into_requires_action(make_payment, clean_redis):
    payment = make_payment(THREE_DS)
    gateway = get_gateway()
    # the worker took it and the bank answered "authenticate", then the worker died; its lease ran out
    from payments.services.transitions import payment_transition

    payment_transition(payment_id=payment.pk, to_status=S.PROCESSING, actor=Actor.WORKER)
    gateway.charge(
        token=payment.card_token, amount=payment.amount, currency="USD", idempotency_key=payment.gateway_idempotency_key
    )
    payment_transition(payment_id=payment.pk, to_status=S.UNKNOWN, actor=Actor.RECONCILER)
    assert payment_process(payment_id=payment.pk).status == S.REQUIRES_ACTION  # the settle asks the bank
    payment.refresh_from_db()
    assert payment.next_action_url.endswith(_public_id(payment))


def test_cancel_while_waiting_voids_the_authentication(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    canceled = payment_cancel(payment_id=payment.pk, actor=Actor.API)
    assert canceled.status == S.CANCELED
    assert client.post(payment.next_action_url, {"action": "complete"}).status_code == 409
    assert not _queued(payment)
    assert not debits_for(payment).exists()
    _audit_holds()


def test_cancel_after_the_shopper_answered_is_refused_and_the_payment_resumes(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    Authentication.objects.filter(public_id=_public_id(payment)).update(status=Authentication.Status.SUCCEEDED)
    with pytest.raises(TransitionNotAllowed):
        payment_cancel(payment_id=payment.pk, actor=Actor.API)
    assert _run_queued_job(payment) == S.SUCCEEDED
    assert debits_for(payment).count() == 1


# --- the callback endpoint -----------------------------------------------------------------------------------


def _callback_body(payment) -> bytes:
    return json.dumps(
        {"type": "charge.authentication_answered", "idempotency_key": payment.gateway_idempotency_key}
    ).encode()


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "t=1,v1=00",
        "garbage",
        lambda body: callback_signature(body, at=time.time() - 3600),  # signed an hour ago: a replay
        lambda body: callback_signature(body + b" "),  # signs another body
    ],
    ids=["missing", "wrong", "garbage", "too-old", "other-body"],
)
def test_a_callback_that_does_not_verify_is_refused_and_changes_nothing(make_payment, clean_redis, client, signature):
    payment = _waiting(make_payment, clean_redis)
    body = _callback_body(payment)
    headers = {}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature(body) if callable(signature) else signature
    response = client.post("/gateway/callbacks", body, content_type="application/json", headers=headers)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "callback_signature_invalid"
    after = Payment.objects.get(pk=payment.pk)
    assert after.action_reported_at is None and after.status == S.REQUIRES_ACTION and after.seq == payment.seq
    assert not _queued(payment)


def test_a_signed_callback_over_http_queues_the_job_but_the_bank_decides(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    body = _callback_body(payment)  # signed, but the shopper has not answered at the bank
    response = client.post(
        "/gateway/callbacks",
        body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: callback_signature(body)},
    )
    assert response.status_code == 200 and response.json() == {"received": True, "acted": True}
    # the job asks the bank, which still waits for the cardholder: nothing is charged, the payment waits again
    assert _run_queued_job(payment) == S.REQUIRES_ACTION
    assert not debits_for(payment).exists()


# --- the sandbox bank's page ---------------------------------------------------------------------------------


def test_the_challenge_page_shows_the_amount_the_merchant_and_the_two_buttons(make_payment, clean_redis, client):
    payment = _waiting(make_payment, clean_redis)
    page = client.get(payment.next_action_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "$24.00" in html and "Roastery" in html
    assert ">Complete authentication</button>" in html and ">Fail authentication</button>" in html
    assert page["Referrer-Policy"] == "no-referrer"
    assert client.get("/sandbox-bank/authenticate/not-a-real-one").status_code == 404


@pytest.mark.parametrize("public_id", ["%00", "ab%00cd", "%C3%A9"])
@pytest.mark.parametrize("method", ["get", "head", "post"])
def test_a_challenge_id_that_could_not_be_one_is_404_never_500(client, public_id, method):
    client.raise_request_exception = False
    assert getattr(client, method)(f"/sandbox-bank/authenticate/{public_id}").status_code == 404


@pytest.mark.parametrize(
    ("asked", "redirected_to"),
    [
        ("/payments/abc/wait", "/payments/abc/wait"),
        ("https://evil.example/phish", None),
        ("//evil.example/phish", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
    ],
)
def test_the_page_returns_the_shopper_only_to_a_path_of_ours(make_payment, clean_redis, client, asked, redirected_to):
    payment = make_payment(THREE_DS)
    result = get_gateway().charge(
        token=payment.card_token,
        amount=payment.amount,
        currency="USD",
        idempotency_key=payment.gateway_idempotency_key,
        return_url=asked,
    )
    response = client.post(result.next_action_url, {"action": "complete"})
    if redirected_to is None:
        assert response.status_code == 200 and "Location" not in response
    else:
        assert response.status_code == 303 and response["Location"] == redirected_to
        # the next request must not carry the challenge's URL (a credential) as its Referer
        assert response["Referrer-Policy"] == "no-referrer"


def test_a_shop_payment_returns_to_its_wait_page(make_payment, clean_redis, settings):
    from payments.services.payments import action_return_url

    payment = make_payment(THREE_DS)
    assert action_return_url(payment) == ""  # an API payment: no page of ours
    payment.order_id = 1
    assert action_return_url(payment) == f"/payments/{payment.pk}/wait"
