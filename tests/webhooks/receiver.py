"""A real HTTP receiver on 127.0.0.1, in a thread: it records every request's raw body and headers, and answers as
its script says (fail N times, hang, then succeed)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    path: str
    at: float


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    status: int = 200
    hang_seconds: float = 0.0  # wait this long before answering (longer than WEBHOOK_TIMEOUT: never answers)
    body: bytes = b"ok"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[bytes]:
        with self.lock:
            return [request.body for request in self.received]


def receiver_start() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.received.append(Received(body, dict(self.headers), self.path, time.time()))
                failing = len(receiver.received) <= receiver.fail_first
            if receiver.hang_seconds:
                time.sleep(receiver.hang_seconds)
            status = 500 if failing else receiver.status
            answer = b"not now" if failing else receiver.body
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the sender gave up waiting

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
