"""The admin: endpoints without their secrets, the delivery log with every try, and Redeliver behind its permission
and its confirmation page, on record."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.integration.openapi import merchant, paid_payment
from tests.webhooks.test_delivery import deliver_all
from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)


def staff(*codenames: str) -> Client:
    user = get_user_model().objects.create_user(username=f"staff-{len(codenames)}", is_staff=True)
    for codename in ("view_webhookendpoint", "change_webhookendpoint", "view_webhookdelivery", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="webhooks"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def delivered(receiver):
    user = merchant()
    endpoint = endpoint_create(owner=user, url=receiver.url, events=["payment.succeeded"])
    receiver.fail_first = 1
    paid_payment(user)
    deliver_all()
    deliver_all()
    return endpoint, WebhookDelivery.objects.get()


def test_the_endpoint_pages_never_show_the_secret(delivered):
    endpoint, _ = delivered
    client = staff()
    for path in ("/admin/webhooks/webhookendpoint/", f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/"):
        page = client.get(path)
        assert page.status_code == 200 and endpoint.secret not in page.content.decode()


def test_the_delivery_log_shows_every_try(delivered):
    endpoint, delivery = delivered
    client = staff()
    listed = client.get(f"/admin/webhooks/webhookdelivery/?endpoint__id__exact={endpoint.pk}").content.decode()
    assert delivery.event_id in listed
    page = client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert "not now" in page and "500" in page and "200" in page  # the failed try's answer, then the delivered one


def test_redeliver_needs_its_permission_then_a_confirmation_and_is_recorded(delivered, receiver):
    _, delivery = delivered
    action = {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
    # without the permission: the action is not offered
    refused = staff().post("/admin/webhooks/webhookdelivery/", action)
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
    assert refused.status_code in (200, 302)
    # with it: a confirmation page first, nothing done
    allowed = staff("redeliver_webhookdelivery")
    page = allowed.post("/admin/webhooks/webhookdelivery/", action)
    assert "Yes, redeliver" in page.content.decode()
    assert WebhookDelivery.objects.get().status == DeliveryStatus.DELIVERED
    # then: confirmed, it is pending again, on record, and goes out with the same event id
    allowed.post("/admin/webhooks/webhookdelivery/", {**action, "post": "yes"})
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    assert LogEntry.objects.get().change_message == f"Redelivered event {delivery.event_id}"
    before = len(receiver.received)
    assert deliver_all() == ["delivered"]
    assert receiver.received[before].headers["Webhook-Id"] == delivery.event_id
