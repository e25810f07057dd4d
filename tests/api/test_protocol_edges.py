"""The API at its protocol edges (issue 10, items 8 to 10): malformed and hostile requests are 4xx problem
documents, never a 500, an HTML page or a bare answer from the server; the status URL answers like the rest of
the API; the throttles cannot be escaped by rewriting a header or by guessing tokens."""

import json
import logging
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework.authtoken.models import Token
from rest_framework.request import Request
from rest_framework.test import APIClient

from infrastructure.problems import problem_exception_handler
from payments.api.throttling import ClientRateThrottle
from payments.models import Payment, Refund
from tests.api.helpers import BODY, CARD, PROBLEM, assert_problem, create


def _key() -> str:
    return str(uuid.uuid4())


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _post_raw(client, path: str, raw: str):
    return client.post(path, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=_key())


def _refunds_url(api) -> str:
    api.user.user_permissions.add(Permission.objects.get(codename="refund_payment", content_type__app_label="payments"))
    return create(api).json()["links"]["refunds"]


# --- item 8: malformed bodies are 4xx problems ---------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 100_000], ids=["under-the-recursion-limit", "past-the-recursion-limit"])
def test_deeply_nested_json_is_a_400_problem_not_a_500(api, depth):
    # given: a valid payment, with one more member nested deeper than any body of ours
    body = json.dumps(BODY)[:-1] + f', "x": {_nested(depth)}}}'
    # when / then: create and refund both refuse it as malformed, and nothing is created
    assert_problem(_post_raw(api, "/api/v1/payments", body), 400, "parse_error")
    refunds = _refunds_url(api)
    assert_problem(_post_raw(api, refunds, '{"amount": 1, "x": ' + _nested(depth) + "}"), 400, "parse_error")
    assert Payment.objects.count() == 1 and not Refund.objects.exists()


def test_a_body_over_the_size_limit_is_a_413_problem(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({**BODY, "description": "x" * 2000})
    problem = assert_problem(_post_raw(api, "/api/v1/payments", body), 413, "payload_too_large")
    assert "1000 bytes" in problem["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "null",
        "[]",
        '"a string"',
        "12",
        '{"amount": 1' + "0" * 5000 + ', "currency": "USD"}',  # past Python's int-parsing limit
        '{"amount": 1e999, "currency": "USD"}',  # a float that is infinite
        '{"amount": -0, "currency": "USD", "card": null}',
        '{"amount": 2400, "currency": "USD\\u0000", "card": {"number": "4242\\u00004242424242424242"}}',
        '{"amount": NaN}',
        "\ufeff{}",  # a byte-order mark
        '{"amount": 2400, "amount": "2400"}',  # a duplicate key: the last one wins, and it is a string
    ],
    ids=[
        "empty",
        "null",
        "array",
        "string",
        "number",
        "huge-integer",
        "infinity",
        "null-card",
        "nul-bytes",
        "nan",
        "bom",
        "duplicate-key",
    ],
)
def test_hostile_bodies_are_4xx_problems_on_create_and_refund(api, raw):
    # (an empty body is a valid refund: "refund everything left")
    for path in ["/api/v1/payments"] + ([_refunds_url(api)] if raw else []):
        response = _post_raw(api, path, raw)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.content[:300])
        assert response["Content-Type"] == PROBLEM
    assert Payment.objects.count() == (1 if raw else 0) and not Refund.objects.exists()


def test_a_500_problem_never_asks_the_client_to_retry(api, monkeypatch):
    # given: a bug that fails every such request the same way
    def broken(**card):
        raise RuntimeError("a bug")

    monkeypatch.setattr("payments.api.serializers.validate_card", broken)
    api.raise_request_exception = False
    # when
    response = create(api)
    # then: a problem document that neither says "retry" nor sets Retry-After
    problem = assert_problem(response, 500, "server_error")
    assert "retry with" not in problem["detail"].lower()
    assert "Retry-After" not in response


# --- item 9: protocol edges ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_write_methods_on_status_url_are_405_problem_with_allow(api, method):
    status_url = create(api).json()["links"]["status"]
    # as a browser or any client would send it: with CSRF checks on, and no CSRF token
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    response = getattr(client, method)(status_url, {"status": "succeeded"}, format="json")
    assert_problem(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"amount": "2400"}, "amount"),
        ({"amount": 2400.0}, "amount"),
        ({"amount": True}, "amount"),
    ],
    ids=["string", "float", "boolean"],
)
def test_amount_as_string_is_refused(api, change, param):
    problem = assert_problem(create(api, {**BODY, **change}), 422, "validation_error")
    assert problem["param"] == param
    assert not Payment.objects.exists()


def test_refund_amount_as_string_is_refused(api):
    refunds = _refunds_url(api)
    response = api.post(refunds, {"amount": "100"}, format="json", HTTP_IDEMPOTENCY_KEY=_key())
    assert assert_problem(response, 422, "validation_error")["param"] == "amount"
    assert not Refund.objects.exists()


@pytest.mark.parametrize(
    ("card", "param"),
    [
        ({"cvc": 123}, "card.cvc"),
        ({"cvc": 123.0}, "card.cvc"),
        ({"number": 4242424242424242}, "card.number"),
        ({"exp_month": "12"}, "card.exp_month"),
        ({"exp_year": "2030"}, "card.exp_year"),
    ],
    ids=["cvc-integer", "cvc-float", "number-integer", "exp-month-string", "exp-year-string"],
)
def test_numeric_cvc_is_refused(api, card, param):
    problem = assert_problem(create(api, {**BODY, "card": {**CARD, **card}}), 422, "validation_error")
    assert problem["param"] == param
    assert not Payment.objects.exists()


def _token_user(username: str) -> str:
    user = get_user_model().objects.create_user(username)
    return Token.objects.create(user=user).key


@pytest.mark.integration
def test_multipart_body_is_a_problem_document(live_stack):
    token = _token_user("merchant-live")
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": _key()}
    for content_type, body in [
        ("multipart/form-data", b"not multipart at all"),  # no boundary
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nbroken"),
        ("multipart/form-data; boundary=xyz", b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--'),
        ("application/x-www-form-urlencoded", b"amount=2400&currency=USD"),
    ]:
        response = httpx.post(
            live_stack.http_url + "/api/v1/payments",
            content=body,
            headers={**headers, "Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code == 415, (content_type, response.status_code, response.text[:200])
        assert response.headers["Content-Type"] == PROBLEM
        assert response.json()["code"] == "unsupported_media_type"
    assert not Payment.objects.exists()


# --- item 10: throttling -------------------------------------------------------------------------------------


def test_rotating_x_forwarded_for_does_not_escape_the_throttle(db, monkeypatch):
    monkeypatch.setattr(ClientRateThrottle, "THROTTLE_RATES", {"client": "2/min"})
    anonymous = APIClient()
    answers = [
        anonymous.get("/api/v1/payments", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(1, 4)
    ]
    assert answers == [401, 401, 429]
    # and a client from another address is someone else
    assert APIClient(REMOTE_ADDR="198.51.100.9").get("/api/v1/payments").status_code == 401


def _rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


def test_failed_authentication_is_throttled(api, settings):
    # given: three failures a minute allowed per address
    _rates(settings, auth_failure="3/min")
    status_url = create(api).json()["links"]["status"]
    guesser = APIClient()

    # when: wrong tokens, a different one each time
    for _ in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Token {uuid.uuid4().hex}")
        assert_problem(guesser.get("/api/v1/payments"), 401, "authentication_failed")

    # then: the next attempt is a 429 with Retry-After, on every endpoint
    guesser.credentials(HTTP_AUTHORIZATION=f"Token {uuid.uuid4().hex}")
    throttled = assert_problem(guesser.get("/api/v1/payments"), 429, "throttled")
    assert 0 < int(guesser.get("/api/v1/payments")["Retry-After"]) <= 60
    assert assert_problem(guesser.get(status_url), 429, "throttled")
    assert "failed authentication" in throttled["detail"]
    # and even the right token from that address is refused unchecked, so a guess cannot be confirmed
    guesser.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    assert_problem(guesser.get("/api/v1/payments"), 429, "throttled")
    # while another address is not affected
    elsewhere = APIClient(REMOTE_ADDR="198.51.100.9")
    elsewhere.credentials(HTTP_AUTHORIZATION=api._credentials["HTTP_AUTHORIZATION"])
    assert elsewhere.get("/api/v1/payments").status_code == 200


def test_requests_without_a_token_are_not_failed_authentications(api, settings):
    _rates(settings, auth_failure="1/min")
    for _ in range(3):
        assert_problem(APIClient().get("/api/v1/payments"), 401, "not_authenticated")
    assert api.get("/api/v1/payments").status_code == 200


def test_wrong_token_on_status_url_is_401_problem_without_traceback(api, caplog):
    status_url = create(api).json()["links"]["status"]
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        response = stranger.get(status_url)
    assert_problem(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"
    logged = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.getMessage() for record in logged] == [f"Unauthorized: {urlsplit(status_url).path}"]
    assert not any(record.exc_info for record in caplog.records)


@pytest.mark.parametrize("path", ["/api/v1/schema", "/api/v1/docs"])
def test_errors_of_the_schema_and_docs_views_are_json_problems(db, path):
    # the schema view renders YAML and Swagger UI HTML; their errors are problem documents all the same
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_problem(stranger.get(path), 401, "authentication_failed")
    assert_problem(APIClient().post(path), 405, "method_not_allowed")


@pytest.mark.parametrize("path", ["/api/v1/payments", "/api/v1/schema"])
def test_a_format_the_api_does_not_have_is_406_not_a_500(api, path):
    # DRF answers an unknown ?format= by raising Django's Http404, whose problem fields the handler could not
    # read: every API view answered ?format=xml with a 500.
    assert_problem(api.get(path, {"format": "xml"}), 406, "not_acceptable")
    assert api.get(path, {"format": "json"}).status_code == 200


def test_djangos_own_404_and_403_raised_in_an_api_view_are_problems(rf):
    # given: the exceptions Django's shortcuts raise (get_object_or_404, a permission check), met in a DRF view
    for raised, status, code in [
        (Http404("No such thing."), 404, "not_found"),
        (DjangoPermissionDenied(), 403, "permission_denied"),
    ]:
        # when
        response = problem_exception_handler(raised, {"request": Request(rf.get("/api/v1/payments"))})
        # then: the problem document DRF's own exception would have given
        assert (response.status_code, response.data["status"], response.data["code"]) == (status, status, code)
