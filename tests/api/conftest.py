import pytest

from tests.api.helpers import client_for


@pytest.fixture
def api(db):
    """A merchant's API client, authenticated with a DRF token."""
    return client_for("merchant")
