"""A long-poll holds no database connection while it waits. Found by `make chaos` (docs/reliability.md): each
waiting `?wait=25` kept the connection it had borrowed until it answered, so a few dozen of them held every
connection of daphne's pool and the requests that pay queued behind them for minutes.

The requests go through the ASGI application as daphne serves them (each in a thread-sensitive context of its
own), not the test client, which runs views in the test's thread."""

import asyncio
import time
from urllib.parse import urlsplit

import pytest
from channels.testing import HttpCommunicator
from django.conf import settings
from rest_framework.authtoken.models import Token

from config.asgi import application
from tests.api.helpers import create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "pool" not in settings.DATABASES["default"].get("OPTIONS", {}), reason="a connection pool (PostgreSQL)"
    ),
]


def test_long_polls_waiting_leave_the_pool_to_other_requests(api):
    status_url = urlsplit(create(api).json()["links"]["status"]).path  # an ASGI scope's path
    headers = [(b"host", b"testserver"), (b"authorization", f"Token {Token.objects.get(user=api.user).key}".encode())]
    pool_size = settings.DATABASES["default"]["OPTIONS"]["pool"]["max_size"]

    async def scenario():
        # given: more long-polls waiting on one pending payment than the pool has connections
        polls = [
            asyncio.ensure_future(
                HttpCommunicator(application, "GET", f"{status_url}?wait=4", headers=headers).get_response(timeout=20)
            )
            for _ in range(pool_size + 2)
        ]
        await asyncio.sleep(1.5)
        # when: another request comes in while they wait
        started = time.monotonic()
        probe = await HttpCommunicator(application, "GET", status_url, headers=headers).get_response(timeout=20)
        took = time.monotonic() - started
        await asyncio.gather(*polls)
        return probe["status"], took

    status, took = asyncio.run(scenario())
    # then: it gets a connection at once and its answer
    assert status == 202
    assert took < 2
