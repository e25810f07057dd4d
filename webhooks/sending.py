"""One HTTP POST of one event to one endpoint, to the address that was checked (webhooks/addresses.py).

The request goes to the checked IP address itself; the name stays where the receiver and TLS need it: the `Host`
header, and for https the TLS server name (SNI) and the certificate's check, through httpx's `sni_hostname` request
extension. So the name is resolved once, by us, and the connection cannot land on another address than the one
checked (DNS rebinding), while the receiver sees an ordinary request for its own name with a certificate verified
for it.

Bounded: each step (connect, send, every read) waits at most WEBHOOK_TIMEOUT, and all of them together at most
DEADLINE_TIMEOUTS times it (a receiver that drips a byte now and then, each read just inside the timeout, would
otherwise hold a worker thread for hours, past the endpoint's lease: webhooks/delivery.py); redirects are never
followed (a 3xx is a failed attempt: following it would send the event, and our request, wherever the receiver
says); at most EXCERPT_BYTES of the answer are read and kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings

from webhooks.addresses import AddressRefused, url_resolve_allowed

EXCERPT_BYTES = 500
USER_AGENT = "checkout-webhooks/1"
# connect + send + read: the whole exchange, from the connection's start, never takes longer than this many
# WEBHOOK_TIMEOUTs (webhooks.delivery's lease is a little longer).
DEADLINE_TIMEOUTS = 3

# Made once: building an SSL context loads the CA bundle, which costs more than many deliveries.
_SSL_CONTEXT = httpx.create_ssl_context()


@dataclass(frozen=True)
class Answer:
    status_code: int | None  # None: no answer (refused address, connection error, timeout)
    latency_ms: float
    excerpt: str = ""
    error: str = ""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_pinned(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    started = time.monotonic()

    def elapsed() -> float:
        return round((time.monotonic() - started) * 1000, 1)

    try:
        scheme, host, port, address = url_resolve_allowed(url)
    except AddressRefused as refused:
        return Answer(None, elapsed(), error=f"refused: {refused}"[:200])
    target = httpx.URL(url).copy_with(host=address)
    default_port = 443 if scheme == "https" else 80
    sent_headers = {
        **headers,
        "Host": host if port == default_port else f"{host}:{port}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    extensions = {"sni_hostname": host} if scheme == "https" else {}
    try:
        # A client per delivery: no connection is reused for another endpoint's name on the same address.
        transport = httpx.HTTPTransport(verify=_SSL_CONTEXT, trust_env=False)
        # (httpx takes no network backend: its pool's is replaced, before any connection is made)
        transport._pool._network_backend = _DeadlineBackend(  # noqa: SLF001
            time.monotonic() + settings.WEBHOOK_TIMEOUT * DEADLINE_TIMEOUTS
        )
        with httpx.Client(
            timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT),
            follow_redirects=False,
            transport=transport,
            trust_env=False,  # no proxy from the environment: it would connect by name, unchecked
        ) as client:
            request = client.build_request("POST", target, content=body, headers=sent_headers, extensions=extensions)
            response = client.send(request, stream=True)
            try:
                excerpt = _excerpt(response)
            finally:
                response.close()
            return Answer(response.status_code, elapsed(), excerpt=excerpt)
    except httpx.HTTPError as error:
        return Answer(None, elapsed(), error=f"{type(error).__name__}: {error}".replace("\x00", "\ufffd")[:200])


def _excerpt(response: httpx.Response) -> str:
    """The start of the body, never more than EXCERPT_BYTES read (a receiver may answer with megabytes)."""
    kept = b""
    try:
        for chunk in response.iter_raw():
            kept += chunk
            if len(kept) >= EXCERPT_BYTES:
                break
    except httpx.HTTPError:
        pass  # the status code is the answer; a body cut short is only an excerpt cut short
    # NUL is the one character a PostgreSQL text column refuses: kept as it came, the attempt could not be logged,
    # and the delivery (the receiver's 2xx included) would be sent again and again, never delivered nor failed.
    return kept[:EXCERPT_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait is cut short at the deadline: the timeout of each step, or what is left."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the receiver took longer than a delivery may")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        left = self._left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, left), self._deadline)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def __init__(self, deadline: float):
        self._deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the receiver took longer than a delivery may")
        timeout = left if timeout is None else min(timeout, left)
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)
