"""The WebSocket client of scenarios 5 and 6: a shopper's whole wait, from a process of its own.

Two modes, each a JSON spec on the command line (or in a file) and a JSON result on stdout:

- `e2e` (scenario 5), an open loop: payments arrive at a fixed rate whatever the server does, and each is
  the shopper's real sequence: `POST` (token, Idempotency-Key, body) → 202 → connect the WebSocket named in
  the 202's `links.websocket` → wait for the frame whose status is an outcome. The latency is from just
  before the POST to that frame. Arrivals in the warm-up are sent but not counted.
- `hold` (scenario 6): N sockets held open, each waiting for its own payment. Connects are paced (a bounded
  rate and number in flight, so the server's accept backlog is not what is measured); each socket counts as
  connected once its first frame (the payment's current state, which the consumer reads after joining its
  group) has arrived. Then the client prints `{"event": "connected", ...}` and waits for a line on stdin
  (the harness measures the server and starts the workers meanwhile); from that line on it waits, bounded by
  `settle_timeout`, for every socket's outcome frame, and prints `{"event": "done", ...}`.

Every socket behaves as the wait page's does (static/checkout/wait.js): once open, it sends
`{"type": "resume", "after_seq": <last seq seen>}` every `heartbeat` seconds (10 s there), which makes the
consumer read the payment again, so a push the channel layer dropped costs the shopper a heartbeat, not the
outcome. `heartbeat=0` turns it off: then every outcome must come by push (or by the consumer's read on
connect), and a dropped push is a lost shopper.

Times are `time.monotonic()` (CLOCK_MONOTONIC, the same clock in every process on the machine), so the
harness can line them up with its own.

No Django here: the outcome statuses are spelled out (tests check them against payments.models).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.load import PAYMENT_BODY, summarize_latencies

# payments.models.OUTCOME_STATUSES: the statuses that answer the shopper's "did I pay?".
OUTCOME_STATUSES = frozenset({"succeeded", "failed", "canceled", "partially_refunded", "refunded"})
MAX_ERROR_SAMPLES = 5
WAIT_PAGE_HEARTBEAT = 10.0  # static/checkout/wait.js HEARTBEAT_MS


def ws_base(http_url: str) -> str:
    return "ws" + http_url.removeprefix("http")


def ws_url(http_url: str, link: str) -> str:
    """A document's `links.websocket` to connect to: the API's answers name an absolute ws(s):// URL, a WebSocket
    frame and the bench's floor a path on the server."""
    return link if "://" in link else ws_base(http_url) + link


def frame_payment(message: str | bytes) -> dict | None:
    """The status document a frame carries ({"type": "payment.status", "payment": {...}}), else None."""
    try:
        frame = json.loads(message)
    except ValueError:
        return None
    payment = frame.get("payment") if isinstance(frame, dict) else None
    return payment if isinstance(payment, dict) else None


def _wall_time(iso: str | None) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp() if iso else None
    except ValueError:
        return None


@dataclass
class SocketWatch:
    """One socket's frames until the outcome, with the wait page's heartbeat."""

    frames: int = 0
    last_seq: int = 0
    resumes: int = 0
    outcome: str | None = None
    outcome_after_resume: bool = False  # a resume had been sent when the outcome came
    # From the outcome's write (its updated_at, the server's wall clock on this machine) to its frame here.
    outcome_delay: float | None = None

    def take(self, message: str | bytes) -> bool:
        """Count a frame; True when it carries the outcome."""
        self.frames += 1
        payment = frame_payment(message)
        if payment is None:
            return False
        if isinstance(payment.get("seq"), int):
            self.last_seq = max(self.last_seq, payment["seq"])
        if payment.get("status") not in OUTCOME_STATUSES:
            return False
        self.outcome = payment["status"]
        self.outcome_after_resume = self.resumes > 0
        updated = _wall_time(payment.get("updated_at"))
        self.outcome_delay = None if updated is None else time.time() - updated
        return True

    async def until_outcome(self, socket, *, heartbeat: float) -> bool:
        """Read frames until the outcome (True) or until the server closes the socket (False)."""
        beat = asyncio.create_task(self._heartbeat(socket, heartbeat)) if heartbeat > 0 else None
        try:
            async for message in socket:
                if self.take(message):
                    return True
            return False
        finally:
            if beat is not None:
                beat.cancel()

    async def _heartbeat(self, socket, every: float) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await asyncio.sleep(every)
                self.resumes += 1
                await socket.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
        except ConnectionClosed:
            pass


def connect_as_wait_page(url: str, *, open_timeout: float):
    from websockets.asyncio.client import connect

    # As a browser's wait page: no client pings (daphne pings and the client answers), no compression
    # (daphne does not accept it anyway).
    return connect(url, open_timeout=open_timeout, ping_interval=None, close_timeout=2, compression=None)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards `wanted` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- e2e: submit → outcome frame at a fixed arrival rate ----------------------------------------------------
@dataclass
class E2ESpec:
    base_url: str  # http://127.0.0.1:PORT
    path: str  # what is POSTed to: the accept path, or the floor's no-op view
    rate: float  # arrivals per second (open loop)
    duration: float  # seconds of measured arrivals
    warmup: float = 1.0  # seconds of arrivals before them, not counted
    token: str = ""
    timeout: float = 30.0  # one arrival's bound, POST to outcome frame
    heartbeat: float = WAIT_PAGE_HEARTBEAT


@dataclass
class Arrival:
    """One shopper's timeline (perf_counter seconds; None: did not happen)."""

    measured: bool
    scheduled: float
    began: float | None = None
    accepted: float | None = None  # the 202
    opened: float | None = None  # the WebSocket handshake done
    settled: float | None = None  # the outcome frame
    frames: int = 0
    outcome_on_first_frame: bool = False  # the outcome came from the consumer's read on connect, not a push
    outcome_after_resume: bool = False  # it came only after a heartbeat's resume: its push never came
    error: str = ""
    ref: str = ""  # the id the 202 names, to find the shopper in the server's logs

    def timed_out(self, seconds: float) -> str:
        """Which step the wait was stuck in when its time ran out."""
        if self.accepted is None:
            return f"no answer to the POST within {seconds:g} s"
        if self.opened is None:
            return f"socket not open within {seconds:g} s ({self.ref})"
        return f"no outcome within {seconds:g} s ({self.ref}; {self.frames} frame(s) before)"


async def _one_shopper(client, spec: E2ESpec, arrival: Arrival, idempotency_key: str) -> None:
    import httpx
    from websockets.exceptions import WebSocketException

    arrival.began = time.perf_counter()
    try:
        async with asyncio.timeout(spec.timeout):
            response = await client.post(spec.path, json=PAYMENT_BODY, headers={"Idempotency-Key": idempotency_key})
            arrival.accepted = time.perf_counter()
            if response.status_code != 202:
                arrival.error = f"HTTP {response.status_code}: {response.text[:200]}"
                return
            document = response.json()
            arrival.ref = str(document.get("id", ""))
            ws_link = document["links"]["websocket"]
            async with connect_as_wait_page(ws_url(spec.base_url, ws_link), open_timeout=spec.timeout) as socket:
                arrival.opened = time.perf_counter()
                watch = SocketWatch()
                try:
                    if not await watch.until_outcome(socket, heartbeat=spec.heartbeat):
                        arrival.error = f"socket closed before the outcome ({socket.close_code})"
                        return
                finally:
                    arrival.frames = watch.frames
                arrival.settled = time.perf_counter()
                arrival.outcome_on_first_frame = watch.frames == 1
                arrival.outcome_after_resume = watch.outcome_after_resume
    except TimeoutError:
        arrival.error = arrival.timed_out(spec.timeout)
    except (httpx.HTTPError, WebSocketException, OSError, KeyError, ValueError) as error:
        arrival.error = f"{type(error).__name__}: {error}"


async def run_e2e(spec: E2ESpec) -> dict:
    import httpx

    headers = {"Authorization": f"Token {spec.token}"} if spec.token else {}
    # Enough connections that the pool never queues a POST: an open loop must not wait on the client.
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    interval = 1 / spec.rate
    warmup_count = math.ceil(spec.warmup * spec.rate)
    total = warmup_count + max(1, round(spec.duration * spec.rate))
    key_prefix = uuid.uuid4().hex[:12]
    arrivals: list[Arrival] = []
    tasks = []
    in_flight = max_in_flight = 0

    async def shopper(client, arrival: Arrival, key: str) -> None:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        try:
            await _one_shopper(client, spec, arrival, key)
        finally:
            in_flight -= 1

    cpu_before = time.process_time()
    client = httpx.AsyncClient(base_url=spec.base_url, headers=headers, limits=limits, timeout=spec.timeout)
    async with client:
        start = time.perf_counter()
        for number in range(total):
            scheduled = start + number * interval
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            arrival = Arrival(measured=number >= warmup_count, scheduled=scheduled)
            arrivals.append(arrival)
            tasks.append(asyncio.create_task(shopper(client, arrival, f"{key_prefix}-{number}")))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    result = summarize_e2e(arrivals, offered_rate=spec.rate)
    result.update(
        path=spec.path,
        sent_total=len(arrivals),
        elapsed_s=round(elapsed, 3),
        max_in_flight=max_in_flight,
        client_cpu_share=round((time.process_time() - cpu_before) / max(elapsed, 1e-9), 3),
    )
    return result


def _ms(seconds: list[float]) -> dict:
    return summarize_latencies(seconds, digits=2)


def summarize_e2e(arrivals: list[Arrival], *, offered_rate: float) -> dict:
    """The measured arrivals' figures. `sent_rate` is the rate the client really kept (its scheduler can fall
    behind on a busy machine); `settled_rate` is outcomes over the time from the first measured POST to the
    last outcome, which stays at the offered rate only if nothing queues up."""
    measured = [a for a in arrivals if a.measured]
    settled = [a for a in measured if a.settled is not None]
    began = [a.began for a in measured if a.began is not None]
    span = (max(began) - min(began)) if len(began) > 1 else math.nan
    settle_span = (max(a.settled for a in settled) - min(began)) if settled else math.nan
    errors = Counter(a.error.split(" (")[0].split(":")[0] for a in measured if a.error)
    return {
        "offered_rate": offered_rate,
        "measured": len(measured),
        "settled": len(settled),
        "errors": len(measured) - len(settled),
        "error_kinds": dict(errors),
        "error_samples": [a.error for a in measured if a.error][:MAX_ERROR_SAMPLES],
        "sent_rate": round((len(began) - 1) / span, 2) if span > 0 else math.nan,
        "settled_rate": round(len(settled) / settle_span, 2) if settle_span > 0 else math.nan,
        "scheduler_late_max_ms": round(max((a.began - a.scheduled for a in measured if a.began), default=0) * 1000, 2),
        "outcome_on_first_frame": sum(a.outcome_on_first_frame for a in settled),
        "outcome_after_resume": sum(a.outcome_after_resume for a in settled),
        "frames_per_shopper": round(sum(a.frames for a in settled) / len(settled), 2) if settled else math.nan,
        # The whole wait, and its parts: the 202, the socket's handshake, then the outcome frame.
        "total": _ms([a.settled - a.began for a in settled]),
        "post": _ms([a.accepted - a.began for a in settled]),
        "ws_open": _ms([a.opened - a.accepted for a in settled]),
        "to_outcome": _ms([a.settled - a.opened for a in settled]),
        "latencies_ms": [round((a.settled - a.began) * 1000, 3) for a in settled],
    }


# --- hold: N sockets, each waiting for its own payment -----------------------------------------------------
@dataclass
class HoldSpec:
    base_url: str
    ws_paths: list[str]  # one per payment, as the 202 names it
    connect_concurrency: int = 50  # handshakes in flight (daphne listens with a backlog of 50)
    connect_rate: float = 500.0  # connects started per second
    connect_timeout: float = 30.0  # one socket: handshake and first frame
    settle_timeout: float = 300.0  # from the harness's go to the last outcome
    heartbeat: float = WAIT_PAGE_HEARTBEAT


@dataclass
class Waiter:
    path: str
    connected_at: float | None = None  # monotonic: its first frame arrived
    settled_at: float | None = None  # monotonic: its outcome frame arrived
    outcome_on_connect: bool = False
    watch: SocketWatch = field(default_factory=SocketWatch)
    error: str = ""


async def _wait_for_outcome(socket, waiter: Waiter, *, heartbeat: float) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        if await waiter.watch.until_outcome(socket, heartbeat=heartbeat):
            waiter.settled_at = time.monotonic()
        else:
            waiter.error = f"closed by the server before the outcome ({socket.close_code})"
    except ConnectionClosed as closed:
        waiter.error = f"connection lost before the outcome ({closed.rcvd.code if closed.rcvd else None})"


async def _hold_one(spec: HoldSpec, waiter: Waiter, start_at: float, gate: asyncio.Semaphore, sockets: list):
    """Connect (paced), wait for the first frame, then for the outcome. Returns once it has one or failed."""
    from websockets.exceptions import WebSocketException

    delay = start_at - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
    try:
        async with gate, asyncio.timeout(spec.connect_timeout):
            socket = await connect_as_wait_page(ws_base(spec.base_url) + waiter.path, open_timeout=spec.connect_timeout)
            sockets.append(socket)
            first = await socket.recv()
            waiter.connected_at = time.monotonic()
    except TimeoutError:
        waiter.error = f"not connected within {spec.connect_timeout} s"
        return
    except (WebSocketException, OSError) as error:
        waiter.error = f"connect failed: {type(error).__name__}: {error}"
        return
    if waiter.watch.take(first):
        waiter.settled_at, waiter.outcome_on_connect = waiter.connected_at, True
    else:
        await _wait_for_outcome(socket, waiter, heartbeat=spec.heartbeat)
    # The shopper has their answer (or lost the socket) and leaves the page.
    await socket.close()


def _connect_summary(waiters: list[Waiter], began: float) -> dict:
    connected = [w.connected_at for w in waiters if w.connected_at is not None]
    failures = Counter(w.error.split(":")[0] for w in waiters if w.connected_at is None)
    return {
        "event": "connected",
        "attempted": len(waiters),
        "connected": len(connected),
        "connect_failures": dict(failures),
        "connect_seconds": round(max(connected) - began, 3) if connected else math.nan,
        "connect_rate": round(len(connected) / max(max(connected) - began, 1e-9), 1) if connected else 0.0,
        "client_max_rss_mib": round(_rss_mib(), 1),
    }


def _done_summary(waiters: list[Waiter], go_at: float) -> dict:
    settled = [w.settled_at for w in waiters if w.settled_at is not None]
    lost = [w for w in waiters if w.settled_at is None]
    return {
        "event": "done",
        "attempted": len(waiters),
        "connected": sum(w.connected_at is not None for w in waiters),
        "received": len(settled),
        "lost": len(lost),
        "outcome_on_connect": sum(w.outcome_on_connect for w in waiters),
        "outcome_after_resume": sum(w.watch.outcome_after_resume for w in waiters if w.settled_at is not None),
        "resumes_sent": sum(w.watch.resumes for w in waiters),
        # How long after its write each pushed outcome reached its socket (outcomes read on connect left out).
        "outcome_delay": _ms(
            [w.watch.outcome_delay for w in waiters if w.watch.outcome_delay is not None and not w.outcome_on_connect]
        ),
        "lost_paths": [w.path for w in lost],
        "lost_reasons": dict(Counter(w.error.split(" (")[0] or "still waiting at the deadline" for w in lost)),
        "lost_samples": [w.error or "still waiting" for w in lost][:MAX_ERROR_SAMPLES],
        "go_at": go_at,
        "first_outcome_at": min(settled) if settled else math.nan,
        "last_outcome_at": max(settled) if settled else math.nan,
        "client_max_rss_mib": round(_rss_mib(), 1),
    }


async def run_hold(spec: HoldSpec, *, emit, wait_for_go) -> dict:
    """`emit(dict)` prints an event line; `await wait_for_go()` returns when the harness says go."""
    raise_fd_limit(len(spec.ws_paths) + 256)
    waiters = [Waiter(path) for path in spec.ws_paths]
    sockets: list = []
    gate = asyncio.Semaphore(spec.connect_concurrency)
    began = time.monotonic()
    tasks = [
        asyncio.create_task(_hold_one(spec, waiter, began + number / spec.connect_rate, gate, sockets))
        for number, waiter in enumerate(waiters)
    ]
    # Every socket has connected (or failed) once each waiter has its first frame or an error.
    while any(w.connected_at is None and not w.error for w in waiters):
        await asyncio.sleep(0.05)
    emit(_connect_summary(waiters, began))
    await wait_for_go()
    go_at = time.monotonic()
    done, pending = await asyncio.wait(tasks, timeout=spec.settle_timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for socket in sockets:  # what is still open at the deadline: drop it, no close handshake to wait for
        if socket.transport is not None and not socket.transport.is_closing():
            socket.transport.abort()
    return _done_summary(waiters, go_at)


# --- the command line ----------------------------------------------------------------------------------------
def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _stdin_line() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="WebSocket shoppers for scenarios 5 and 6 (prints JSON).")
    parser.add_argument("mode", choices=["e2e", "hold"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="the spec as JSON")
    source.add_argument("--spec-file", help="a file holding the spec as JSON (hold: thousands of URLs)")
    args = parser.parse_args(argv)
    raw = json.loads(args.spec if args.spec else Path(args.spec_file).read_text())
    if args.mode == "e2e":
        _emit(asyncio.run(run_e2e(E2ESpec(**raw))))
    else:
        _emit(asyncio.run(run_hold(HoldSpec(**raw), emit=_emit, wait_for_go=_stdin_line)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
