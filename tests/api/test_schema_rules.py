"""The OpenAPI document states the rules the server enforces (issue 13, item 2): what its patterns and lengths
allow is exactly what the server accepts, and every query parameter of the payment list refuses an empty value.

The document is read as any client reads it, from /api/v1/schema; its patterns are ECMA-262 regular expressions
written with the subset Python's `re` reads the same way.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from payments.api.serializers import CardInputSerializer
from payments.services.idempotency import IdempotencyKeyInvalid, idempotency_key_parse
from tests.api.helpers import PROBLEM, create

PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def document():
    response = APIClient().get("/api/v1/schema", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def allowed(schema: dict, value: str) -> bool:
    """Whether a string schema (type, lengths, pattern) allows `value`."""
    return (
        schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value))
        and re.search(schema.get("pattern", ""), value) is not None
    )


def parameter(document: dict, path: str, method: str, name: str) -> dict:
    (found,) = [p for p in document["paths"][path][method]["parameters"] if p["name"] == name]
    return found


# --- Idempotency-Key -------------------------------------------------------------------------------------------

KEY_ALPHABET = st.sampled_from([" ", '"', "\\", "a", "Z", "7", "-", "~", "\t", "\x7f", "\x00", "é"])


def keys():
    """Header values near every edge the rule has: quotes and escapes, spaces, lengths around 255, and
    characters that are not printable ASCII."""
    short = st.text(KEY_ALPHABET, max_size=12)
    return st.one_of(
        short,
        st.builds(lambda inner: f'"{inner}"', short),
        st.builds(
            lambda c, n, tail: c * n + tail, st.sampled_from(["k", '\\"', "\\\\", " "]), st.integers(250, 258), short
        ),
        st.builds(lambda c, n: f'"{c * n}"', st.sampled_from(["k", '\\"', "\\\\", " ", "\\k"]), st.integers(252, 258)),
    )


@pytest.fixture(scope="module")
def key_schema(document):
    return parameter(document, "/api/v1/payments", "post", "Idempotency-Key")["schema"]


@PROPERTY
@given(value=keys())
@example(value='""')
@example(value='"')
@example(value='"a"b"')
@example(value='"a\\b"')
@example(value='"' + '\\"' * 255 + '"')
@example(value="k" * 255)
@example(value="k" * 256)
def test_the_idempotency_key_pattern_allows_exactly_the_keys_the_server_takes(key_schema, value):
    # HTTP strips a header value's surrounding spaces and tabs before anyone reads it: the document describes
    # the value after that (and the parser strips them too, for a server that leaves them).
    value = value.strip(" \t")
    try:
        idempotency_key_parse(value)
        accepted = True
    except IdempotencyKeyInvalid:
        accepted = False
    assert allowed(key_schema, value) == accepted


def test_both_idempotency_keys_share_one_schema(document, key_schema):
    refund = parameter(document, "/api/v1/payments/{payment_id}/refunds", "post", "Idempotency-Key")
    assert refund["schema"] == key_schema and refund["required"]


def test_the_longest_keys_the_document_allows_are_taken_over_http(api):
    # given: the longest header the document allows (a quoted key of 255 escaped characters), and one longer
    longest = '"' + '\\"' * 255 + '"'
    assert create(api, key=longest).status_code == 202
    too_long = create(api, key='"' + '\\"' * 256 + '"')
    assert (too_long.status_code, too_long["Content-Type"]) == (400, PROBLEM)
    # and: a quoted key of 255 characters is the same key as its bare spelling
    assert create(api, key='"' + "k" * 255 + '"').status_code == 202
    replay = create(api, key="k" * 255)
    assert (replay.status_code, replay["Idempotent-Replayed"]) == (202, "true")


# --- the card number ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def card_number_schema(document):
    return document["components"]["schemas"]["CardInputRequest"]["properties"]["number"]


def numbers():
    return st.one_of(
        st.text(st.sampled_from("0123456789 -\t\u00a0x²"), max_size=30),
        st.from_regex(r"\A[ -]{0,3}(?:[0-9][ -]{0,2}){11,21}\Z"),
    )


@PROPERTY
@given(number=numbers())
@example(number="4242 4242 4242 4242")
@example(number=" 4242424242424242")
@example(number="4242424242424242\t")
@example(number="4242\u00a04242\u00a04242\u00a04242")
@example(number="4" * 12)
@example(number="4" * 20)
def test_the_card_number_pattern_allows_exactly_the_numbers_the_serializer_reads(card_number_schema, number):
    # The serializer's field alone: what follows it (brand, length, check digit) is a 422 the document states.
    try:
        CardInputSerializer().fields["number"].run_validation(number)
        accepted = True
    except ValidationError:
        accepted = False
    assert allowed(card_number_schema, number) == accepted


# --- the payment list's query -------------------------------------------------------------------------------------


def test_every_query_parameter_of_the_list_refuses_an_empty_value(document, api):
    # given: every query parameter the document gives the list (a new one is covered as soon as it is documented)
    operation = document["paths"]["/api/v1/payments"]["get"]
    names = sorted(p["name"] for p in operation["parameters"] if p["in"] == "query")
    assert {"status", "created_after", "created_before", "cursor", "limit"} <= set(names)
    for name in names:
        # when: it is sent empty
        response = api.get("/api/v1/payments", {name: ""})
        # then: a documented refusal naming it (a bad cursor is a 404, as any cursor the API did not hand out)
        assert response.status_code in (400, 404), (name, response.status_code)
        assert str(response.status_code) in operation["responses"]
        assert response["Content-Type"] == PROBLEM
        if response.status_code == 400:
            assert response.json()["param"] == name


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "abc", "1000", " 1"])
def test_a_limit_outside_what_the_document_allows_is_a_400(document, api, limit):
    schema = parameter(document, "/api/v1/payments", "get", "limit")["schema"]
    assert not (limit.isdigit() and schema["minimum"] <= int(limit) <= schema["maximum"])
    response = api.get("/api/v1/payments", {"limit": limit})
    assert (response.status_code, response.json()["param"]) == (400, "limit")


def test_a_limit_the_document_allows_is_read(api):
    for _ in range(2):
        create(api)
    assert len(api.get("/api/v1/payments", {"limit": "1"}).json()["results"]) == 1
    assert len(api.get("/api/v1/payments", {"limit": "100"}).json()["results"]) == 2
