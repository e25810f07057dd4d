"""A long-poll whose Redis goes away mid-wait answers from the database, as docs/architecture.md promises ("the
push is a hint; the database is the record"), never a 500. Found by `make chaos` (docs/reliability.md): a Redis
restart under a held `?wait=25` made the status URL answer 500."""

import threading
import time

import pytest
from django.db import connection

from infrastructure.embedded_redis import start_embedded_redis
from payments.services.payments import payment_process
from tests.api.helpers import create


@pytest.fixture
def own_channel_layer_redis(settings):
    """The channel layer on a Valkey server of the test's own, which the test may stop (never the shared one)."""
    server, url = start_embedded_redis(None)
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {
        "default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [{"address": url, "socket_timeout": None}]}}
    }
    yield server
    server.stop()


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_whose_redis_stops_mid_wait_answers_from_the_database(api, own_channel_layer_redis):
    # given: a pending payment, and its long-poll waiting on the channel layer
    status_url = create(api).json()["links"]["status"]
    # when: the channel layer's Redis stops while the request waits
    stopper = threading.Timer(1.0, own_channel_layer_redis.stop)
    stopper.start()
    started = time.monotonic()
    response = api.get(status_url + "?wait=4")
    stopper.join()
    # then: the request waited its time on the database and answered what it holds
    assert response.status_code == 202
    assert response.json()["seq"] == 1
    assert time.monotonic() - started >= 3.5


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_without_redis_still_sees_the_outcome(api, own_channel_layer_redis):
    # given: a pending payment whose long-poll lost its Redis
    body = create(api).json()
    threading.Timer(0.5, own_channel_layer_redis.stop).start()
    worker = threading.Timer(1.5, lambda: (payment_process(payment_id=body["id"]), connection.close()))
    worker.start()
    # when: a worker settles it meanwhile
    response = api.get(body["links"]["status"] + "?wait=10")
    worker.join()
    # then: the long-poll learns it from the database (no push could reach it)
    assert response.status_code in (202, 303)
    assert response.json()["seq"] > 1
