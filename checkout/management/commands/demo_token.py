from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from checkout.management.commands.seed_demo import DEV_API_USERNAME


class Command(BaseCommand):
    help = f"Print the API token of the demo API user ({DEV_API_USERNAME}, made by seed_demo), and nothing else."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo_token is for the development demo; it only runs with DJANGO_DEBUG on.")
        user = get_user_model().objects.filter(username=DEV_API_USERNAME).first()
        if user is None:
            raise CommandError(f"No user {DEV_API_USERNAME!r}: run `manage.py seed_demo` first (`make token` does).")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
