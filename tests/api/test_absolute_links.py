"""Every URL the API hands out (`Location`, `links.*`) is absolute, for the origin the client asked (issue 13).

Clients that follow a `Location` as given (azure-core's poller, requests, many generated clients) cannot use a
path: "Invalid URL '/api/v1/payments/…/status': No scheme supplied". The scheme and host come from the request,
the way Django builds them: a proxy's X-Forwarded-Proto only counts behind a TLS proxy we were told to trust,
X-Forwarded-Host never, and a Host outside ALLOWED_HOSTS is refused before any URL is built from it.
"""

from urllib.parse import urlsplit

import pytest

from payments.models import IdempotencyRecord
from payments.services.payments import payment_process
from tests.api.helpers import BODY, assert_problem, create

ORIGIN = "http://testserver"


def pay(api, key, **headers):
    return api.post("/api/v1/payments", BODY, format="json", HTTP_IDEMPOTENCY_KEY=key, **headers)


def assert_absolute(links: dict, origin: str = ORIGIN) -> None:
    websocket_origin = origin.replace("http", "ws", 1)
    for name, url in links.items():
        assert url.startswith(websocket_origin if name == "websocket" else origin), (name, url)


def test_every_answer_with_links_names_absolute_urls(api):
    # given: a paid payment with a refund, and a pending one
    accepted = create(api)
    paid = accepted.json()
    assert accepted["Location"] == paid["links"]["status"]
    assert_absolute(paid["links"])
    payment_process(payment_id=paid["id"])
    refund = api.post(paid["links"]["refunds"], {"amount": 100}, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    pending = create(api).json()
    # then: each answer's links, and each Location, are absolute
    assert refund.status_code == 202 and refund["Location"] == refund.json()["links"]["self"]
    assert_absolute(refund.json()["links"])
    detail = api.get(paid["links"]["self"]).json()
    assert_absolute(detail["links"])
    assert [assert_absolute(r["links"]) for r in detail["refunds"]] == [None]
    for document in api.get("/api/v1/payments").json()["results"]:
        assert_absolute(document["links"])
    for document in api.get(paid["links"]["refunds"]).json()["results"]:
        assert_absolute(document["links"])
    assert_absolute(api.get(refund.json()["links"]["self"]).json()["links"])
    final = api.get(paid["links"]["status"])
    assert final.status_code == 303 and final["Location"] == paid["links"]["self"]
    assert_absolute(final.json()["links"])
    canceled = api.post(pending["links"]["cancel"])
    assert canceled.status_code == 202
    assert_absolute(canceled.json()["links"])


def test_a_stored_answer_keeps_paths_and_a_replay_names_the_origin_that_asks(api, settings):
    # given: a payment made through one host; its answer is stored with paths, as every answer stored before
    # links were absolute was
    settings.ALLOWED_HOSTS = ["testserver", "shop.example.com"]
    first = pay(api, "replayed")
    record = IdempotencyRecord.objects.get()
    assert record.response_headers["Location"] == urlsplit(first["Location"]).path
    assert {urlsplit(url).netloc for url in record.response_body["links"].values()} == {""}
    # when: the client retries through another host name of ours
    again = pay(api, "replayed", HTTP_HOST="shop.example.com")
    # then: the replay is the first answer, with its URLs absolute for the origin it was asked through
    assert again["Idempotent-Replayed"] == "true"
    assert again["Location"] == "http://shop.example.com" + urlsplit(first["Location"]).path
    assert_absolute(again.json()["links"], "http://shop.example.com")
    assert {**again.json(), "links": None} == {**first.json(), "links": None}


def test_behind_a_trusted_tls_proxy_links_are_https_and_wss(api, settings):
    # DJANGO_BEHIND_TLS_PROXY=true sets this; then the proxy's X-Forwarded-Proto says the client used TLS
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    accepted = pay(api, "tls", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="testserver")  # as a proxy passes Host on
    assert accepted["Location"].startswith("https://testserver/api/v1/payments/")
    assert_absolute(accepted.json()["links"], "https://testserver")
    assert accepted.json()["links"]["websocket"].startswith("wss://testserver/ws/payments/")


def test_forwarded_headers_are_not_believed_unless_the_proxy_is_trusted(api):
    # anyone can write these; without DJANGO_BEHIND_TLS_PROXY (and USE_X_FORWARDED_HOST, which stays off) the
    # links name the scheme and Host the request itself came with
    accepted = pay(api, "forged", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST="evil.example")
    assert accepted.status_code == 202
    assert_absolute(accepted.json()["links"], ORIGIN)


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/payments/00000000-0000-0000-0000-000000000000/status"])
def test_a_host_outside_allowed_hosts_is_a_problem_400_before_any_url_is_built(api, path):
    assert_problem(api.get(path, HTTP_HOST="evil.example"), 400, "bad_request")
