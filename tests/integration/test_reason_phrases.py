"""The status line's reason phrase is RFC 9110's (issue 13, item 4): daphne sent "HTTP/1.1 422 Unknown Status"
(Twisted has no phrase for 422 or 429), Django's own table "Unprocessable Entity". Read off a real socket from a
real daphne process, and off the WSGI application as a WSGI server calls it."""

import io
import json
import socket
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from config.wsgi import application as wsgi_application

INVALID_PAYMENT = json.dumps({"amount": "2400", "currency": "USD"}).encode()


def _token() -> str:
    return Token.objects.create(user=get_user_model().objects.create_user("merchant-phrases")).key


def _status_line(base_url: str, request: bytes) -> bytes:
    """Send one raw HTTP/1.1 request and return the first line of the answer, exactly as the server wrote it."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received.split(b"\r\n", 1)[0]


def _post_payment(token: str, body: bytes) -> bytes:
    return (
        b"POST /api/v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Authorization: Token " + token.encode() + b"\r\nIdempotency-Key: phrases-1\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@pytest.mark.integration
def test_daphne_answers_422_unprocessable_content_and_429_too_many_requests(live_stack_factory):
    # given: the real server, with a throttle low enough to reach
    stack = live_stack_factory(API_THROTTLE_RATE="2/min")
    token = _token()
    # when: a well-formed body with a wrong field, then more requests than the rate allows
    invalid = _status_line(stack.http_url, _post_payment(token, INVALID_PAYMENT))
    _status_line(stack.http_url, _post_payment(token, INVALID_PAYMENT))
    throttled = _status_line(stack.http_url, _post_payment(token, INVALID_PAYMENT))
    # then
    assert invalid == b"HTTP/1.1 422 Unprocessable Content"
    assert throttled == b"HTTP/1.1 429 Too Many Requests"


@pytest.mark.django_db(transaction=True)
def test_the_wsgi_application_answers_422_unprocessable_content():
    # given: the request a WSGI server would pass on
    token = _token()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/api/v1/payments",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_IDEMPOTENCY_KEY": "phrases-2",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(INVALID_PAYMENT)),
        "wsgi.input": io.BytesIO(INVALID_PAYMENT),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
    }
    statuses = []
    # when
    b"".join(wsgi_application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    # then: the status line the server would write
    assert statuses == ["422 Unprocessable Content"]
