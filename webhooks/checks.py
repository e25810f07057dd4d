"""Deploy checks (`manage.py check --deploy`) for webhooks in production."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def webhooks_private_urls_check(app_configs, **kwargs):
    # On in production, any API client could aim our servers at our own network (docs/webhooks.md, "SSRF").
    if settings.WEBHOOKS_ALLOW_PRIVATE_URLS and not settings.DEBUG:
        return [
            Error(
                "WEBHOOKS_ALLOW_PRIVATE_URLS is on with DJANGO_DEBUG off: webhooks could reach private addresses.",
                id="webhooks.E001",
            )
        ]
    return []
