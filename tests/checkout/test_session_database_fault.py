"""A shop request whose session cannot be saved because the database is busy (a lock wait past its timeout, a
terminated connection) answers 503 with Retry-After, like any other database fault (infrastructure/sessions.py), not
400 "the session was deleted". Found by `make chaos` (docs/reliability.md): a cart add whose connection was
terminated by `pg_terminate_backend` answered 400 Bad Request to a shopper who did nothing wrong."""

import pytest
from django.contrib.sessions.models import Session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sessions_locked_for_writes(lock_holder):
    """django_session held for writes by another session (reads still pass)."""
    return lambda: lock_holder("LOCK TABLE django_session IN EXCLUSIVE MODE")


def test_a_session_the_database_cannot_save_is_a_503_not_a_400(client, product, sessions_locked_for_writes):
    # given: a shopper with a session (a cart) in the database
    assert client.post("/cart/add", {"product_id": product.pk}).status_code == 302
    assert Session.objects.count() == 1
    # when: their next cart change cannot be saved (the session's UPDATE waits past the lock timeout)
    sessions_locked_for_writes()
    response = client.post("/cart/add", {"product_id": product.pk})
    # then: "busy, try again", as for every other database fault, and the cart is as it was
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "try again" in response.content.decode().lower()
    assert Session.objects.get().get_decoded()["cart"] == {str(product.pk): 1}


def test_a_client_that_asked_for_json_gets_the_problem_document(client, product, sessions_locked_for_writes):
    # given: a script that sends the shop's forms and asks for JSON answers, with a session in the database
    assert client.post("/cart/add", {"product_id": product.pk}).status_code == 302
    sessions_locked_for_writes()
    # when: the database cannot save its session
    response = client.post("/cart/add", {"product_id": product.pk}, HTTP_ACCEPT="application/json")
    # then: the documented 503 (docs/api.md): a problem document it can act on, not an HTML page
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "service_unavailable"
    assert response["Retry-After"]


@pytest.fixture
def sessions_locked(lock_holder):
    """django_session held against reads too (a stalled table)."""
    return lambda: lock_holder("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")


def test_the_busy_page_itself_needs_no_database(client, product, sessions_locked):
    # given: a shopper whose session cannot even be read (the page's cart count reads it too)
    assert client.post("/cart/add", {"product_id": product.pk}).status_code == 302
    sessions_locked()
    # when: the next request fails on the database
    response = client.post("/cart/add", {"product_id": product.pk})
    # then: the busy page, rendered without a second trip to the database, not a 500
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "try again" in response.content.decode().lower()
