"""The settings `make bench` runs the product with: config/settings.py as it is, plus the bench-only app, its
URLs and its socket (bench/urls.py, bench/asgi.py). bench/stack.py starts every process with
DJANGO_SETTINGS_MODULE=bench.settings; the product never loads this module, and config/ names nothing here."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
ASGI_APPLICATION = "bench.asgi.application"
