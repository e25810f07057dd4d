"""The bench's ASGI application (bench/settings.py), which `make bench` serves with daphne: the product's
(config/asgi.py) with the bench-only socket routed beside the product's, behind the same origin check. HTTP is
the product's Django application itself."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

# The product's ASGI module first: it sets Django up, and applies daphne's swaps, before any model is imported.
from config.asgi import BrowserOriginValidator, django_asgi_app  # noqa: E402

# isort: split
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from bench.urls import websocket_urlpatterns  # noqa: E402
from payments.routing import websocket_urlpatterns as product_websocket_urlpatterns  # noqa: E402

# As config/asgi.py builds it, with the bench's socket first; any other path is refused at the handshake.
routes = [*websocket_urlpatterns, *product_websocket_urlpatterns, re_path(r"", WebsocketDenier.as_asgi())]
application = ProtocolTypeRouter(
    {"http": django_asgi_app, "websocket": BrowserOriginValidator(URLRouter(routes), settings.ALLOWED_HOSTS)}
)
