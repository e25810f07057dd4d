"""HTTP and WebSocket on one ASGI application (served by daphne)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app first: it sets up the app registry the WebSocket consumers import from.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator, WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from infrastructure.overrides.daphne import (  # noqa: E402
    daphne_access_log_through_logging,
    daphne_leaves_request_bodies_to_the_application,
    daphne_reason_phrases_of_rfc_9110,
)
from payments.routing import websocket_urlpatterns  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Reject sockets opened by another site's pages; let non-browser clients (no Origin) through.

    Authorisation is the per-payment signed token in the URL, not an ambient cookie, so a missing Origin
    (a mobile app, a merchant's server) is no risk; a foreign Origin is a browser on someone else's page.
    """

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


# Served by daphne: the application reads request bodies itself, status lines carry RFC 9110's reason phrases
# (422 Unprocessable Content, not "Unknown Status"), and the access log never shows card data
# (infrastructure/overrides/daphne.py). Called here: daphne's CLI imports this module before it serves and
# before it builds its access-log writer.
daphne_leaves_request_bodies_to_the_application()
daphne_reason_phrases_of_rfc_9110()
daphne_access_log_through_logging()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(
            # Any other path is refused at the handshake (403), not left to fail as "no route" (a 500).
            URLRouter([*websocket_urlpatterns, re_path(r"", WebsocketDenier.as_asgi())]),
            settings.ALLOWED_HOSTS,
        ),
    }
)
