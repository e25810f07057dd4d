"""API rate limits, counted in the shared Redis cache so that every web process sees the same counts.

Who a client is: the signed-in user, else its address. The address is the TCP peer's unless REST_FRAMEWORK's
NUM_PROXIES (TRUSTED_PROXY_COUNT) says how many proxies of ours append to X-Forwarded-For; a client can write
any X-Forwarded-For it likes, so only the entries our own proxies added are believed.
"""

import logging
import math

from rest_framework.exceptions import APIException
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class ClientRateThrottle(SimpleRateThrottle):
    """Requests per client (the signed-in user, else the address)."""

    scope = "client"

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        ident = f"user-{user.pk}" if user is not None and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except APIException:
            raise  # a refusal (say, a wrong token met while asking who this is) is the answer, not a fault
        except Exception:
            # Throttling protects capacity; it must not turn a Redis hiccup into refused payments.
            logger.warning("throttle unavailable; letting the request through", exc_info=True)
            return True


class FailedAuthenticationThrottle(SimpleRateThrottle):
    """Failed authentications per client address, in fixed windows of the rate's period.

    A counter the cache increments atomically (DRF's throttles keep a list they read and write back, which
    concurrent guesses would overrun). While an address is over the limit, every token it sends is refused
    unchecked: checking it would tell a guesser which one is right.
    """

    scope = "auth_failure"

    def get_rate(self):
        # At call time (DRF's own throttles bind their rates at import); unset means not throttled.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view=None):
        window = int(self.timer() // self.duration)
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}-{window}"}

    def locked_out(self, request) -> bool:
        if self.rate is None:
            return False
        try:
            return (self.cache.get(self.get_cache_key(request)) or 0) >= self.num_requests
        except Exception as error:
            logger.warning("failed-authentication throttle unavailable (%r); not checking", error)
            return False

    def record_failure(self, request) -> None:
        if self.rate is None:
            return
        key = self.get_cache_key(request)
        try:
            self.cache.add(key, 0, timeout=self.duration)
            self.cache.incr(key)
        except Exception as error:
            logger.warning("failed-authentication throttle unavailable (%r); not counting", error)

    def wait(self) -> int:
        """Whole seconds until the window ends (Retry-After is whole seconds; rounding down could say 0)."""
        return math.ceil(self.duration - self.timer() % self.duration)
