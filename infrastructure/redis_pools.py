"""One Redis connection pool per process for Django's cache (API throttling counts, load shedding).

Django keeps one cache object per asgiref context, which under daphne means one per request, and each cache
object builds its own connection pools: so every request opened a new Redis connection (a TCP connect and a
handshake, about 1.5 ms here; bench/findings.md). This pool class hands every cache object the same pool
for the same URL and options. redis-py pools are thread-safe and start afresh in a forked child.
"""

from __future__ import annotations

import threading

import redis


class SharedConnectionPool(redis.ConnectionPool):
    _shared: dict[tuple, redis.ConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> redis.ConnectionPool:
        key = (url, tuple(sorted((name, repr(value)) for name, value in kwargs.items())))
        with cls._lock:
            if key not in cls._shared:
                cls._shared[key] = super().from_url(url, **kwargs)
            return cls._shared[key]
