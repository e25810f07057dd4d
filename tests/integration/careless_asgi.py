"""The product's ASGI application with a bug deep in the payment create path that raises while the card's number
and CVC are in its frames, with a message that carries them as careless code would: for the tests that read what
a real daphne logs then (tests/integration/test_payment_logs.py)."""

from config.asgi import application  # noqa: F401 - served by daphne: `tests.integration.careless_asgi:application`


def _broken(*, number, exp_month, exp_year, cvc):
    raise RuntimeError(f"could not check card {number} with cvc={cvc}")


# After config.asgi: the app registry is ready, and the serializer module is the one the API view uses.
import payments.api.serializers  # noqa: E402

payments.api.serializers.validate_card = _broken
