"""Shared by the API tests: a token client, the payment request, and the problem+json check."""

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

PROBLEM = "application/problem+json"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
BODY = {"amount": 2400, "currency": "USD", "card": CARD, "description": "Order 1", "metadata": {"order": "1"}}


def client_for(username: str, *, can_refund: bool = True) -> APIClient:
    """An API client (a merchant) with a token; merchants hold the refund permission unless told otherwise."""
    user, _ = get_user_model().objects.get_or_create(username=username)
    if can_refund:
        user.user_permissions.add(Permission.objects.get(codename="refund_payment", content_type__app_label="payments"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    client.user = user
    return client


def create(client, body=None, key=None):
    return client.post("/api/v1/payments", body or BODY, format="json", HTTP_IDEMPOTENCY_KEY=key or str(uuid.uuid4()))


def assert_problem(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert {"type", "title", "detail"} <= set(body)
    return body
