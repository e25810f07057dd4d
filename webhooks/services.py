"""An API client's endpoints: made, changed, rotated and deleted here, by the API and nothing else (staff enable or
disable them in the admin)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webhooks.addresses import url_resolve_allowed
from webhooks.models import WebhookEndpoint
from webhooks.signing import secret_new


def endpoint_url_check(url: str) -> None:
    """AddressRefused unless deliveries may go to `url` (https, every address global: webhooks/addresses.py). The
    same check runs again at every delivery."""
    url_resolve_allowed(url)


def endpoint_create(*, owner, url: str, events: list[str], description: str = "") -> WebhookEndpoint:
    endpoint_url_check(url)
    return WebhookEndpoint.objects.create(
        owner=owner, url=url, events=events, description=description, secret=secret_new()
    )


def endpoint_update(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    if "url" in changes:
        endpoint_url_check(changes["url"])
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.save(update_fields=[*changes, "updated_at"])
    return endpoint


def endpoint_secret_rotate(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret, shown once; the one it replaces keeps signing (a second v1=) for WEBHOOK_SECRET_GRACE, so the
    receiver can switch without missing a delivery."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + timedelta(seconds=settings.WEBHOOK_SECRET_GRACE)
        locked.secret = secret_new()
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return locked


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    """Gone with its delivery log (pending deliveries included: nothing more is sent to it)."""
    endpoint.delete()


def endpoints_for_owner(*, owner):
    return WebhookEndpoint.objects.filter(owner=owner)
