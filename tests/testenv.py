"""Loaded by pytest before Django's settings (`-p tests.testenv` in pyproject): the test environment.

REDIS_URL and DATABASE_URL are used when set (CI points them at the real PostgreSQL and Redis). When
REDIS_URL is not set, an embedded Redis-compatible server is started for this run and stopped after it.
A REDIS_URL that does not answer fails the run at once: nothing is skipped because a service is missing.
"""

import logging
import os

import pytest

from infrastructure.embedded_redis import redis_answers, start_embedded_redis

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("CARD_FINGERPRINT_KEY", "test-only-card-fingerprint-key-not-for-production-0123")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SHOP_BASE_URL", "https://shop.test")  # the links in emails
os.environ.setdefault("SANDBOX_LATENCY_MS", "0")
os.environ.setdefault("SANDBOX_LATENCY_JITTER_MS", "0")
# The tests' webhook receivers listen on 127.0.0.1 (tests/webhooks/receiver.py); tests of the refusal turn it off.
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE_URLS", "true")

# Every request the tests make would otherwise be logged at INFO.
logging.getLogger("httpx").setLevel(logging.WARNING)

_embedded_server = None
if os.environ.get("REDIS_URL"):
    if not redis_answers(os.environ["REDIS_URL"], timeout=2):
        raise pytest.UsageError(f"REDIS_URL={os.environ['REDIS_URL']} does not answer; start Redis or unset it.")
else:
    _embedded_server, os.environ["REDIS_URL"] = start_embedded_redis(None)


def pytest_report_header(config):
    where = "embedded Valkey started for this run" if _embedded_server else "from REDIS_URL"
    return [
        f"redis: {os.environ['REDIS_URL']} ({where})",
        f"database: {os.environ.get('DATABASE_URL', 'SQLite')}",
    ]


def pytest_unconfigure(config):
    if _embedded_server is not None:
        _embedded_server.stop()
