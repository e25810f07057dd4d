"""Inputs that once reached a 500 or slipped past a check (found by fuzzing and by hand); each is a clear
4xx now, and nothing is recorded."""

import time

import pytest
from django.test import Client

from payments.models import Payment
from tests.api.helpers import BODY, CARD, assert_problem, create
from tests.integration.shop import checkout_form

ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "number",
    [
        "424242424242424²",  # a superscript digit
        "4" + "100000000000019".translate(ARABIC_INDIC),  # the blocked test card, spelt with other digits
        "４２４２４２４２４２４２４２４２",  # fullwidth digits
    ],
)
def test_card_numbers_must_be_ascii_digits(api, number):
    problem = assert_problem(create(api, {**BODY, "card": {**CARD, "number": number}}), 422, "validation_error")
    assert problem["param"] == "card.number"
    assert not Payment.objects.exists()


def test_a_cvc_must_be_ascii_digits(api):
    assert_problem(create(api, {**BODY, "card": {**CARD, "cvc": "١٢٣"}}), 422, "validation_error")


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"\ud800": "x"}},
        {"metadata": {"note": "\ud800"}},
        {"metadata": {"a\x00b": "x"}},
        {"description": "tab\tok but nul \x00 is not"},
        {"currency": "\ud800"},
    ],
)
def test_lone_surrogates_and_control_characters_are_refused(api, change):
    assert_problem(create(api, {**BODY, **change}), 422, "validation_error")
    assert not Payment.objects.exists()


def test_a_post_to_an_unknown_api_path_is_a_problem_404_not_a_csrf_page(api):
    assert_problem(api.post("/api/v1/payments/not-a-uuid/cancel"), 404, "not_found")


def test_odd_wait_and_etag_values_are_handled(api):
    status_url = create(api).json()["links"]["status"]
    assert_problem(api.get(status_url + "?wait=%C2%B2"), 400, "invalid_wait")
    assert api.get(status_url, HTTP_IF_NONE_MATCH='"x.²", W/"nonsense"').status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_guest_write_needs_the_pages_csrf_token(product):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/")
    csrf = page.cookies["csrftoken"].value
    browser.post("/cart/add", {"product_id": product.pk, "csrfmiddlewaretoken": csrf})
    accepted = browser.post(
        "/checkout", {**checkout_form("4242424242424242"), "csrfmiddlewaretoken": csrf}, HTTP_ACCEPT="application/json"
    ).json()
    cancel = accepted["payment"]["links"]["cancel"]
    # as the page's fetch would send it: JSON, and the CSRF token in a header
    assert_problem(browser.post(cancel, content_type="application/json"), 403, "permission_denied")
    assert browser.post(cancel, content_type="application/json", HTTP_X_CSRFTOKEN=csrf).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_outlives_a_redis_read_timeout(api):
    # redis-py 8 times reads out after 5 s unless told otherwise; the long-poll must simply wait
    status_url = create(api).json()["links"]["status"]
    started = time.monotonic()
    response = api.get(status_url + "?wait=7")
    assert response.status_code == 200
    assert time.monotonic() - started >= 6.5
