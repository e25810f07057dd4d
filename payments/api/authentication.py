"""How API clients authenticate: DRF's token, with failed attempts throttled per client address."""

from __future__ import annotations

from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed, Throttled

from payments.api.throttling import FailedAuthenticationThrottle


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`. A wrong (or malformed) token counts against the client's address; past
    API_AUTH_FAILURE_RATE every token from that address is a 429 with Retry-After until the window ends, so
    tokens cannot be guessed at speed and wrong ones cannot hammer the database."""

    def authenticate(self, request):
        words = authentication.get_authorization_header(request).split()
        if not words or words[0].lower() != self.keyword.lower().encode():
            return None  # no token offered: not a failed attempt
        throttle = FailedAuthenticationThrottle()
        if throttle.locked_out(request):
            raise Throttled(wait=throttle.wait(), detail="Too many failed authentication attempts.")
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            throttle.record_failure(request)
            raise
