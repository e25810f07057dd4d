"""HTTP and WebSocket on one ASGI application (served by daphne)."""

import inspect
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Build the Django app first: it sets up the app registry the WebSocket consumers import from.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator, WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from infrastructure.redaction import redact_card_data  # noqa: E402
from payments.routing import websocket_urlpatterns  # noqa: E402

# Benchmark-only sockets (`make bench`, scenario 5's floor), routed only when BENCH_ENDPOINTS is on, as
# config/urls.py does for the bench's HTTP views.
if settings.BENCH_ENDPOINTS:
    from bench.urls import websocket_urlpatterns as bench_websocket_urlpatterns

    websocket_urlpatterns = bench_websocket_urlpatterns + websocket_urlpatterns


class BrowserOriginValidator(OriginValidator):
    """Reject sockets opened by another site's pages; let non-browser clients (no Origin) through.

    Authorisation is the per-payment signed token in the URL, not an ambient cookie, so a missing Origin
    (a mobile app, a merchant's server) is no risk; a foreign Origin is a browser on someone else's page.
    """

    def valid_origin(self, parsed_origin):
        return parsed_origin is None or self.validate_origin(parsed_origin)


def _daphne_leaves_request_bodies_to_the_application() -> None:
    """Under daphne, Twisted parses every POST with a form content type itself before the application sees it
    (daphne never uses the result) and answers a malformed multipart body with a bare 400 of its own, so the
    API could not answer its problem+json 415. Twisted has a switch for that parsing; daphne does not pass
    it, so its request class is given one that does. Only when daphne is what is serving this process."""
    http_protocol = sys.modules.get("daphne.http_protocol")
    if http_protocol is None or getattr(http_protocol.WebRequest, "leaves_bodies_alone", False):
        return
    if "parsePOSTFormSubmission" not in inspect.signature(http_protocol.http.Request.__init__).parameters:
        return  # an older Twisted without the switch: it parses as before

    class WebRequest(http_protocol.WebRequest):
        leaves_bodies_alone = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)

    http_protocol.WebRequest = WebRequest  # HTTPFactory.buildProtocol looks the name up per connection


def _daphne_access_log_without_card_data() -> None:
    """daphne writes its access log (the request line, query string included) straight to a stream, past the
    logging formatter that scrubs card data: a card number or CVC put in a URL would be written as it is. Its
    CLI builds the log writer after loading this module, from the name in daphne.cli, so that name is given a
    writer that scrubs the line first."""
    cli = sys.modules.get("daphne.cli")
    if cli is None or getattr(cli.AccessLogGenerator, "scrubs_card_data", False):
        return

    class AccessLogGenerator(cli.AccessLogGenerator):
        scrubs_card_data = True

        def write_entry(self, host, date, request, *args, **kwargs):
            super().write_entry(host, date, redact_card_data(request), *args, **kwargs)

    cli.AccessLogGenerator = AccessLogGenerator


_daphne_leaves_request_bodies_to_the_application()
_daphne_access_log_without_card_data()

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
