from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand, CommandError

from checkout.models import Product

DEMO_PRODUCTS = [
    ("espresso-beans", "Espresso beans, 1 kg", "Dark roast, chocolate and cherry.", 2400, 50),
    ("pour-over-kettle", "Pour-over kettle", "Gooseneck, 1 litre, stainless steel.", 5900, 20),
    ("ceramic-mug", "Ceramic mug", "Hand-thrown, 350 ml.", 1800, 100),
    ("hand-grinder", "Hand grinder", "Conical burrs, 40 settings.", 8900, 10),
]
DEV_STAFF_USERNAME = "staff"
DEV_STAFF_PASSWORD = "staff"  # noqa: S105 - a development-only account, refused when DEBUG is off
# The demo API client (docs/api.md): a merchant with a token (`make token` prints it) and the refund permission,
# no password and no admin access.
DEV_API_USERNAME = "merchant"


class Command(BaseCommand):
    help = "Load the demo catalog, a development staff user and a demo API user. Safe to run twice."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates a known staff password; it only runs with DJANGO_DEBUG on.")
        for slug, name, description, price, stock in DEMO_PRODUCTS:
            Product.objects.update_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "description": description,
                    "price": price,
                    "currency": settings.SHOP_CURRENCY,
                    "stock": stock,
                    "is_active": True,
                },
            )
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            username=DEV_STAFF_USERNAME, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEV_STAFF_PASSWORD)
            user.save()
            self.stdout.write(f"Created staff user: {DEV_STAFF_USERNAME} / {DEV_STAFF_PASSWORD}")
        else:
            self.stdout.write(f"Staff user: {DEV_STAFF_USERNAME} (password {DEV_STAFF_PASSWORD} unless you changed it)")
        merchant, created = user_model.objects.get_or_create(username=DEV_API_USERNAME)
        if created:
            merchant.set_unusable_password()
            merchant.save()
        merchant.user_permissions.add(
            Permission.objects.get(codename="refund_payment", content_type__app_label="payments")
        )
        self.stdout.write(f"API user: {DEV_API_USERNAME} (may refund; `make token` prints its token)")
        self.stdout.write(f"Demo catalog: {len(DEMO_PRODUCTS)} products.")
