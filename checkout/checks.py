"""Deploy checks (`manage.py check --deploy`) for what the shop's emails need in production."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def shop_base_url_check(app_configs, **kwargs):
    # Receipts link to the order page; without the shop's public origin they could not (checkout/email_content.py).
    if not settings.SHOP_BASE_URL:
        return [Error("SHOP_BASE_URL is not set: receipts cannot link to the order page.", id="checkout.E001")]
    if not settings.DEBUG and not settings.SHOP_BASE_URL.startswith("https://"):
        return [Error("SHOP_BASE_URL must be an https:// address in production.", id="checkout.E002")]
    return []
