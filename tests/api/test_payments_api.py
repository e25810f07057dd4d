"""The public payments API's contract: one test for every status code it promises (docs/api.md)."""

import threading
import time
import uuid
from datetime import timedelta

import django_rq
import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from payments.api.throttling import ClientRateThrottle
from payments.models import IdempotencyRecord, Payment, PaymentStatus, Refund
from payments.services.payments import payment_process
from payments.services.transitions import payment_transition
from tests.api.helpers import BODY, CARD, PROBLEM, assert_problem, client_for, create
from tests.integration.shop import checkout_form

# --- POST /api/v1/payments ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_create_answers_202_with_location_retry_after_and_the_status_document(api):
    response = create(api)
    assert response.status_code == 202
    body = response.json()
    payment = Payment.objects.get(pk=body["id"])
    assert response["Location"] == body["links"]["status"] == f"http://testserver/api/v1/payments/{payment.pk}/status"
    assert response["Retry-After"] == "2"
    assert body["status"] == "pending" and body["amount"] == 2400 and body["currency"] == "USD"
    assert body["card"] == {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030}
    assert body["failure"] is None and body["seq"] == 1
    assert set(body["links"]) == {"self", "status", "cancel", "refunds", "websocket"}
    assert "token=" in body["links"]["websocket"]
    assert (payment.owner_user, payment.metadata) == (api.user, {"order": "1"})
    assert [job.args for job in django_rq.get_queue("payments").get_jobs()] == [(str(payment.pk),)]


def test_create_without_an_idempotency_key_is_400(api):
    assert_problem(api.post("/api/v1/payments", BODY, format="json"), 400, "idempotency_key_missing")
    assert_problem(create(api, key="x" * 256), 400, "idempotency_key_missing")
    assert not Payment.objects.exists()


def test_same_key_and_body_replays_the_first_response_once(api):
    first = create(api, key='"order-1042"')  # the draft's quoted-string form...
    again = create(api, key="order-1042")  # ...and the bare token name the same key
    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Payment.objects.count() == 1


def test_same_key_with_a_different_body_is_422(api):
    create(api, key="k-1")
    assert_problem(create(api, {**BODY, "amount": 9999}, key="k-1"), 422, "idempotency_key_reused")
    assert Payment.objects.count() == 1


def test_the_database_refuses_a_second_payment_for_one_client_and_key(api, make_payment):
    # given: a payment created with key k-2
    first = create(api, key="k-2").json()
    payment = Payment.objects.get(pk=first["id"])
    # when: anything tries to insert a second payment for the same client and key, whatever any timer says
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(
            owner_user=api.user,
            idempotency_key="k-2",
            amount=1,
            currency="USD",
            card_token=payment.card_token,
            card_brand="visa",
            card_last4="4242",
            card_exp_month=12,
            card_exp_year=2030,
            card_fingerprint=payment.card_fingerprint,
        )
    # then: one payment
    assert Payment.objects.filter(owner_user=api.user).count() == 1


def test_a_key_whose_stored_answer_was_purged_still_never_makes_a_second_payment(api):
    create(api, key="k-3")
    IdempotencyRecord.objects.all().delete()  # as the reconciler's purge does after IDEMPOTENCY_KEY_TTL
    problem = assert_problem(create(api, key="k-3"), 422, "idempotency_key_reused")
    assert "retention" in problem["detail"]
    assert Payment.objects.count() == 1


def test_a_request_refused_before_writing_leaves_its_key_free(api):
    assert_problem(create(api, {**BODY, "currency": "XYZ"}, key="k-4"), 422, "validation_error")
    assert create(api, key="k-4").status_code == 202
    assert Payment.objects.count() == 1


def test_keys_are_scoped_per_client(api):
    other = client_for("another-merchant")
    assert create(api, key="shared").status_code == 202
    assert create(other, key="shared").status_code == 202
    assert Payment.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_exactly_one_payment(api):
    # given: eight clients sending the same request with the same key at the same moment
    barrier, statuses = threading.Barrier(8), []

    def send():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
        barrier.wait()
        try:
            statuses.append(create(client, key="race").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then: one payment; the others waited for the first one's commit and got its answer
    assert Payment.objects.count() == 1
    assert statuses == [202] * 8


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"card": {**CARD, "number": "4242424242424241"}}, "card.number"),
        ({"card": {**CARD, "exp_year": 2001}}, "card.exp_month"),
        ({"card": {**CARD, "cvc": "12"}}, "card.cvc"),
        ({"currency": "XYZ"}, "currency"),
        ({"amount": 0}, "amount"),
        ({"amount": 2.5}, "amount"),
        ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata"),
    ],
)
def test_invalid_fields_are_422_naming_the_field_and_create_nothing(api, change, param):
    problem = assert_problem(create(api, {**BODY, **change}), 422, "validation_error")
    assert problem["param"] == param
    assert problem["errors"]
    assert not Payment.objects.exists()


def test_malformed_json_is_400_problem(api):
    response = api.post("/api/v1/payments", "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="k-json")
    assert_problem(response, 400, "parse_error")


def test_anonymous_is_401_with_an_authenticate_challenge(db):
    response = APIClient().post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert_problem(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Token")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_problem(bad.get("/api/v1/payments"), 401, "authentication_failed")


def test_too_many_requests_is_429_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/min"})
    api.get("/api/v1/payments")
    api.get("/api/v1/payments")
    problem = assert_problem(api.get("/api/v1/payments"), 429, "throttled")
    assert problem["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_queue_backlog_over_the_bound_sheds_load_with_503_before_creating_anything(api, settings):
    # given: one job waiting and a bound of zero
    settings.PAYMENTS_MAX_BACKLOG = 0
    django_rq.get_queue("payments").enqueue("payments.jobs.payment_process_job", str(uuid.uuid4()))
    # when
    response = create(api, key="busy")
    # then
    assert_problem(response, 503, "service_unavailable")
    assert int(response["Retry-After"]) > 0
    assert not Payment.objects.exists()
    # and the key is free again: once the backlog clears, the same retry goes through
    settings.PAYMENTS_MAX_BACKLOG = 10
    assert create(api, key="busy").status_code == 202


# --- GET /api/v1/payments/{id}/status ---------------------------------------------------------------------


def test_status_while_not_final_is_202_with_retry_after_its_own_location_and_an_etag(api):
    # 202 says "still running" to pollers that read the code alone (azure-core's LocationPolling, Durable
    # Functions' clients); the 200 it used to be told them the payment was done (issue 13)
    status_url = create(api).json()["links"]["status"]
    response = api.get(status_url)
    assert response.status_code == 202
    assert response["Retry-After"] == "2"
    assert response["Location"] == status_url
    assert response.json()["status"] == "pending"
    assert response["ETag"] == f'"{response.json()["id"]}.1"'
    assert api.get(status_url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_status_once_final_is_303_to_the_payment(api):
    body = create(api).json()
    payment_process(payment_id=body["id"])
    response = api.get(body["links"]["status"])
    assert response.status_code == 303
    assert response["Location"] == body["links"]["self"] == f"http://testserver/api/v1/payments/{body['id']}"
    assert response.json()["status"] == "succeeded"


def test_the_openapi_document_states_the_status_urls_202_and_303(api):
    answers = api.get("/api/v1/schema", {"format": "json"}).json()["paths"]["/api/v1/payments/{payment_id}/status"]
    answers = answers["get"]["responses"]
    assert {"202", "303", "304"} <= set(answers) and "200" not in answers
    assert {"Retry-After", "Location", "ETag"} <= set(answers["202"]["headers"])
    assert {"Location", "ETag"} <= set(answers["303"]["headers"])


@pytest.mark.django_db(transaction=True)
def test_long_poll_answers_as_soon_as_the_status_changes(api):
    body = create(api).json()
    worker = threading.Timer(0.5, lambda: (payment_process(payment_id=body["id"]), connection.close()))
    worker.start()
    started = time.monotonic()
    response = api.get(body["links"]["status"] + "?wait=10")
    elapsed = time.monotonic() - started
    worker.join()  # the "worker" goes on after the first change; let it finish before the database is reset
    assert response.json()["seq"] > 1  # it woke on a change...
    assert elapsed < 5  # ...well before the 10 s it could have waited


@pytest.mark.django_db(transaction=True)
def test_long_poll_without_a_change_answers_after_the_wait(api):
    body = create(api).json()
    started = time.monotonic()
    response = api.get(body["links"]["status"] + "?wait=1")
    assert 0.9 <= time.monotonic() - started < 5
    assert (response.status_code, response.json()["seq"]) == (202, 1)


@pytest.mark.parametrize("wait", ["31", "-1", "soon"])
def test_long_poll_wait_out_of_range_is_400(api, wait):
    status_url = create(api).json()["links"]["status"]
    assert_problem(api.get(f"{status_url}?wait={wait}"), 400, "invalid_wait")


def test_someone_elses_payment_is_404_everywhere_and_anonymous_is_401(api):
    body = create(api).json()
    stranger = client_for("stranger")
    for path in (body["links"]["self"], body["links"]["status"], body["links"]["refunds"]):
        assert_problem(stranger.get(path), 404, "not_found")
        assert_problem(APIClient().get(path), 401, "not_authenticated")
    assert_problem(stranger.post(body["links"]["cancel"]), 404, "not_found")


# --- GET /api/v1/payments/{id} and the list ---------------------------------------------------------------


def test_detail_has_the_timeline_and_refunds(api):
    body = create(api).json()
    payment_process(payment_id=body["id"])
    detail = api.get(body["links"]["self"]).json()
    assert [e["to_status"] for e in detail["events"]] == ["pending", "processing", "succeeded"]
    assert detail["refunds"] == [] and detail["amount_captured"] == 2400 and detail["metadata"] == {"order": "1"}


def test_list_is_the_clients_own_payments_cursor_paginated_and_filterable(api):
    ids = [create(api).json()["id"] for _ in range(5)]
    create(client_for("someone-else"))
    payment_process(payment_id=ids[0])
    first_page = api.get("/api/v1/payments?limit=2").json()
    second_page = api.get(first_page["next"]).json()
    listed = [p["id"] for p in first_page["results"] + second_page["results"]]
    assert listed == ids[::-1][:4]
    assert [p["id"] for p in api.get("/api/v1/payments?status=succeeded").json()["results"]] == [ids[0]]
    later = (timezone.now() + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert api.get("/api/v1/payments", {"created_after": later}).json()["results"] == []
    assert len(api.get("/api/v1/payments", {"created_before": later}).json()["results"]) == 5
    assert_problem(api.get("/api/v1/payments?status=teleported"), 400, "validation_error")


@pytest.mark.parametrize(
    "query",
    [
        "status=",
        "created_after=",
        "created_before=",
        "created_after=yesterday",
        "created_after=0001-01-01T00:00:00%2B20:00",  # before year 1 once in UTC
    ],
)
def test_an_empty_or_unreadable_filter_is_a_400_not_every_payment(api, query):
    create(api)
    body = assert_problem(api.get(f"/api/v1/payments?{query}"), 400, "validation_error")
    assert query.split("=")[0] in str(body)


def test_a_time_with_any_offset_python_reads_filters_in_utc(api):
    # given: a payment made now; PostgreSQL refuses offsets past ±15:59, which ISO 8601 readers accept
    payment_id = create(api).json()["id"]
    # when: the client asks with such an offset (the same instant as a minute ago, in UTC)
    minute_ago = (timezone.now() - timedelta(minutes=1)).astimezone(timezone.get_fixed_timezone(20 * 60 + 41))
    response = api.get("/api/v1/payments", {"created_after": minute_ago.isoformat()})
    # then: the filter applies (200), as it would with the same instant in UTC
    assert response.status_code == 200, response.content
    assert [p["id"] for p in response.json()["results"]] == [payment_id]


def test_the_openapi_document_lists_the_filters_the_list_applies(api):
    schema = api.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/payments"]["get"]["parameters"]}
    assert {"status", "created_after", "created_before", "cursor", "limit"} <= set(parameters)
    assert set(parameters["status"]["schema"]["enum"]) == {
        "pending",
        "processing",
        "requires_action",
        "succeeded",
        "failed",
        "unknown",
        "canceled",
        "partially_refunded",
        "refunded",
    }


# --- POST /api/v1/payments/{id}/cancel ---------------------------------------------------------------------


def test_cancel_is_202_while_pending_409_while_processing_410_once_final(api):
    pending = create(api).json()
    canceled = api.post(pending["links"]["cancel"])
    assert (canceled.status_code, canceled.json()["status"]) == (202, "canceled")
    assert_problem(api.post(pending["links"]["cancel"]), 410, "payment_final")

    processing = create(api).json()
    payment_transition(payment_id=processing["id"], to_status=PaymentStatus.PROCESSING, actor="worker")
    assert_problem(api.post(processing["links"]["cancel"]), 409, "payment_processing")


# --- POST /api/v1/payments/{id}/refunds --------------------------------------------------------------------


def refund(client, payment, body=None, key=None):
    return client.post(
        payment["links"]["refunds"], body or {}, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4())
    )


def test_refund_is_202_with_its_status_url_and_replays_by_key(api):
    payment = create(api).json()
    payment_process(payment_id=payment["id"])
    response = refund(api, payment, {"amount": 1000}, key="r-1")
    assert response.status_code == 202
    body = response.json()
    assert response["Location"] == body["links"]["self"]
    assert (body["amount"], body["status"], body["currency"]) == (1000, "pending", "USD")
    assert refund(api, payment, {"amount": 1000}, key="r-1")["Idempotent-Replayed"] == "true"
    assert Refund.objects.count() == 1
    assert api.get(body["links"]["self"]).json()["id"] == body["id"]
    assert [r["id"] for r in api.get(payment["links"]["refunds"]).json()["results"]] == [body["id"]]
    assert_problem(api.get(f"{payment['links']['refunds']}/{uuid.uuid4()}"), 404, "not_found")


def test_refund_errors_409_not_refundable_422_too_much_400_no_key(api):
    payment = create(api).json()
    assert_problem(refund(api, payment), 409, "payment_not_refundable")  # still pending
    payment_process(payment_id=payment["id"])
    assert_problem(refund(api, payment, {"amount": 2401}), 422, "refund_exceeds_capture")
    assert_problem(api.post(payment["links"]["refunds"], {}, format="json"), 400, "idempotency_key_missing")
    assert not Refund.objects.exists()


# --- errors everywhere are problem+json ------------------------------------------------------------------


def test_unknown_api_paths_and_methods_are_problem_json(api):
    assert_problem(api.get("/api/v1/nowhere"), 404, "not_found")
    assert_problem(api.delete("/api/v1/payments"), 405, "method_not_allowed")


def test_the_server_error_handler_answers_problem_json_for_the_api(rf):
    from infrastructure.errors import server_error

    response = server_error(rf.get("/api/v1/payments"))
    assert (response.status_code, response["Content-Type"]) == (500, PROBLEM)


def test_a_guest_shopper_follows_their_own_status_url_through_to_the_payment(client, product):
    # the web checkout's guest session owns its payment on the API too (the wait page polls it)
    client.post("/cart/add", {"product_id": product.pk})
    accepted = client.post(
        "/checkout", checkout_form("4242 4242 4242 4242", cvc="123"), HTTP_ACCEPT="application/json"
    ).json()
    payment_process(payment_id=accepted["payment_id"])
    final = client.get(accepted["status_url"])
    assert final.status_code == 303
    assert client.get(final["Location"]).json()["status"] == "succeeded"


def test_answers_are_kept_24_hours_then_purged_but_the_key_never_makes_a_second_payment(api, settings):
    from payments.services.reconcile import payments_reconcile

    asked_at = timezone.now()
    create(api, key="old")
    assert IdempotencyRecord.objects.get().expires_at >= asked_at + timedelta(hours=24)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert payments_reconcile()["idempotency_keys_purged"] == 1
    # the answer is gone, but the key stays on its payment: the database refuses a second one for it
    assert_problem(create(api, {**BODY, "amount": 100}, key="old"), 422, "idempotency_key_reused")
    assert Payment.objects.count() == 1


def test_no_cache_ever_keeps_an_api_answer(api):
    # the status document carries the payment's WebSocket token: a shared cache must never hold it
    created = create(api)
    payment = created.json()
    assert created["Cache-Control"] == "private, no-store"
    for path in (payment["links"]["self"], payment["links"]["refunds"], "/api/v1/payments"):
        assert api.get(path)["Cache-Control"] == "private, no-store", path
    assert api.get(payment["links"]["status"])["Cache-Control"] == "private, no-cache"  # revalidated by ETag


@pytest.mark.parametrize("position", ["2026", "\x00", "not-a-date"])
def test_a_forged_list_cursor_is_a_404_not_a_500(api, position):
    import base64
    from urllib.parse import urlencode

    cursor = base64.b64encode(urlencode({"p": position}).encode()).decode()
    assert_problem(api.get("/api/v1/payments", {"cursor": cursor}), 404, "not_found")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"description": 123}, "description"),
        ({"description": 12.5}, "description"),
        ({"metadata": {"k": 1}}, "metadata"),
    ],
)
def test_free_text_fields_take_json_strings_only(api, change, param):
    problem = assert_problem(create(api, {**BODY, **change}), 422, "validation_error")
    assert problem["param"].startswith(param)
    assert not Payment.objects.exists()


def test_a_payments_key_cannot_make_a_refund_after_its_answer_is_purged(api):
    payment = create(api, key="k-5").json()
    payment_process(payment_id=payment["id"])
    IdempotencyRecord.objects.all().delete()  # the reconciler's purge, 24 h later
    assert_problem(refund(api, payment, key="k-5"), 422, "idempotency_key_reused")
    assert not Refund.objects.exists()


def test_a_refunds_key_cannot_make_a_payment_after_its_answer_is_purged(api):
    # given: a refund made with a key, whose stored answer the reconciler has since purged
    payment = create(api, key="k-6").json()
    payment_process(payment_id=payment["id"])
    assert refund(api, payment, key="k-7").status_code == 202
    IdempotencyRecord.objects.all().delete()
    # when: a payment asks with the refund's key
    problem = assert_problem(create(api, key="k-7"), 422, "idempotency_key_reused")
    # then: refused, and nothing made (the one read before the write asks about refunds too)
    assert "retention" in problem["detail"]
    assert Payment.objects.count() == 1
