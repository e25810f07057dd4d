"""The webhook endpoints API: a client's own endpoints, the secret shown once, refusals as problem documents, and
no URL into our own network (SSRF) registered."""

from __future__ import annotations

import socket

import pytest
from rest_framework.test import APIClient

from tests.integration.openapi import merchant
from webhooks import addresses
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def client_of(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.token}")
    return client


def create(client, **body):
    return client.post(
        "/api/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/hooks", "events": ["*"], **body}, format="json"
    )


def test_the_secret_is_shown_once_and_every_operation_works_on_ones_own_endpoint():
    api = client_of(merchant())
    created = create(api, events=["payment.succeeded", "refund.failed"], description="orders")
    assert created.status_code == 201, created.content
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_") and endpoint["enabled"] is True
    assert endpoint["events"] == ["payment.succeeded", "refund.failed"]
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}"
    # reads never carry the secret
    listed = api.get("/api/v1/webhook-endpoints").json()["results"]
    assert [item["id"] for item in listed] == [endpoint["id"]] and "secret" not in listed[0]
    assert "secret" not in api.get(path).json()
    assert endpoint["secret"] not in api.get(path).content.decode()
    # change it
    changed = api.patch(path, {"enabled": False, "events": ["*", "payment.failed"]}, format="json")
    assert changed.status_code == 200 and changed.json()["enabled"] is False and changed.json()["events"] == ["*"]
    # rotate: a new secret, once; the old one signs until the grace ends
    rotated = api.post(f"{path}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] not in ("", endpoint["secret"])
    assert rotated.json()["previous_secret_expires_at"] is not None
    assert WebhookEndpoint.objects.get().previous_secret == endpoint["secret"]
    # delete it
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404


def test_another_clients_endpoint_is_a_404_to_every_operation():
    mine = create(client_of(merchant("me"))).json()
    stranger = client_of(merchant("stranger"))
    path = f"/api/v1/webhook-endpoints/{mine['id']}"
    for answer in (
        stranger.get(path),
        stranger.patch(path, {"enabled": False}, format="json"),
        stranger.delete(path),
        stranger.post(f"{path}/rotate-secret"),
    ):
        assert answer.status_code == 404 and answer["Content-Type"] == PROBLEM
    assert stranger.get("/api/v1/webhook-endpoints").json() == {"results": []}
    assert WebhookEndpoint.objects.get().enabled is True


def test_no_credentials_is_a_401():
    assert APIClient().get("/api/v1/webhook-endpoints").status_code == 401
    assert APIClient().post("/api/v1/webhook-endpoints", {}, format="json").status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"events": ["payment.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"events": ["payment.failed", "payment.failed"]}, "events"),
        ({"events": "*"}, "events"),
        ({"url": "ftp://example.com/"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "http://user:pw@127.0.0.1/"}, "url"),
        ({"url": "http://\u2603.example/"}, "url"),  # IDNA 2003 only: the resolver spells it, the HTTP client not
        ({"description": 12}, "description"),
    ],
)
def test_invalid_fields_are_a_422_naming_the_field(body, param):
    refused = create(client_of(merchant()), **body)
    assert refused.status_code == 422 and refused["Content-Type"] == PROBLEM
    assert refused.json()["param"].split(".")[0] == param, refused.json()
    assert WebhookEndpoint.objects.count() == 0


@pytest.fixture
def production(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hooks",  # not https
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",  # a name that resolves to loopback
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://0.0.0.0/hooks",
        "https://100.64.0.1/hooks",
        "https://224.0.0.1/hooks",
        "https://does-not-resolve.invalid/hooks",
        "https://[64:ff9b::a9fe:a9fe]/hooks",  # 169.254.169.254 through NAT64
        "https://[64:ff9b:1::a00:1]/hooks",  # 10.0.0.1 through a local-use NAT64 prefix
        "https://[::ffff:0:7f00:1]/hooks",  # 127.0.0.1, IPv4-translated (SIIT)
        "https://[::7f00:1]/hooks",  # 127.0.0.1, IPv4-compatible
        "https://[2002:a00:1::1]/hooks",  # 10.0.0.1 through 6to4
        "https://[fec0::1]/hooks",  # site-local
    ],
)
def test_a_url_into_our_own_network_is_refused_at_registration(production, url):
    api = client_of(merchant())
    refused = create(api, url=url)
    assert refused.status_code == 422 and refused.json()["param"] == "url", refused.json()
    assert WebhookEndpoint.objects.count() == 0


def test_a_name_with_one_private_address_among_public_ones_is_refused(production, monkeypatch):
    def dns(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(addresses.socket, "getaddrinfo", dns)
    refused = create(client_of(merchant()), url="https://hooks.merchant.test/")
    assert refused.status_code == 422 and "10.0.0.5" in refused.json()["errors"]["url"][0]


def test_a_public_https_url_is_taken_in_production(production, monkeypatch):
    monkeypatch.setattr(
        addresses.socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))],
    )
    api = client_of(merchant())
    assert create(api, url="https://hooks.merchant.test/x").status_code == 201
    # and a PATCH to a private one is refused
    endpoint = WebhookEndpoint.objects.get()
    monkeypatch.undo()
    patched = api.patch(f"/api/v1/webhook-endpoints/{endpoint.pk}", {"url": "https://127.0.0.1/"}, format="json")
    assert patched.status_code == 422


def test_a_rotate_with_a_body_is_refused():
    api = client_of(merchant())
    endpoint = create(api).json()
    refused = api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", {"x": 1}, format="json")
    assert refused.status_code == 422
