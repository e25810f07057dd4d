import pytest

from tests.webhooks.receiver import receiver_start


@pytest.fixture
def receiver():
    receiver, server = receiver_start()
    yield receiver
    server.shutdown()
    server.server_close()
