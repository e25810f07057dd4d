"""The clients of a chaos run, through the public surfaces only, and the log they keep.

- `Merchant`: an API client with a token (and `payments.refund_payment`). It pays with `POST /api/v1/payments`
  and an Idempotency-Key, follows some payments on the status URL (long-poll, `?wait=25`) and refunds the paid
  ones (full, partial, or two refunds at once).
- `Shopper`: a browser-like session (cookies, CSRF): `/cart/add`, `GET /checkout`, `POST /checkout` with the
  form's csrf and checkout_token (tests/integration/shop.py does the same synchronously).
- `websocket_wait`: the wait page's socket (static/checkout/wait.js): the status document's
  `links.websocket`, a `{"type": "resume", "after_seq": N}` every 10 s and right after a reconnect, which
  carries `&after_seq=N` and backs off as the page does.

How a real client retries (docs/api.md): on a timeout or a broken connection, a 409, or a 503/429 (after its
Retry-After), it sends the *same* request again, with the same Idempotency-Key (the same form and its
checkout_token), until it gets an answer or gives up; a 202, replayed or not, is taken as the answer; a 500
is never retried automatically. Every answer is counted in the `ClientLog`, which keeps card labels
(plan.CARDS), never card numbers.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

import httpx

from bench.ws_load import OUTCOME_STATUSES, WAIT_PAGE_HEARTBEAT, connect_as_wait_page, frame_payment, ws_url

MAX_CONFLICT_RETRIES = 2  # a 409 is retried this many times, then taken as the answer
MAX_RETRY_AFTER = 10.0
LONG_POLL_WAIT = 25
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
CHECKOUT_TOKEN_RE = re.compile(r'name="checkout_token" value="([^"]+)"')
# The checkout page's pointer to a payment still under way (templates/checkout/checkout.html).
PAYMENT_IN_PROGRESS_TEXT = "is being paid for. You will not be charged twice"
SHIPPING = {
    "shipping_name": "Ada Lovelace",
    "shipping_address": "12 St James's Square",
    "shipping_city": "London",
    "shipping_postcode": "SW1Y 4JH",
    "shipping_country": "GB",
}
# Answers that end a refund request without a refund: expected when two refunds race, or one comes after
# another took everything.
REFUND_REFUSALS = {"payment_not_refundable", "refund_exceeds_capture", "nothing_to_refund"}


@dataclass
class Submission:
    n: int
    flow: str  # "api" | "checkout"
    client: str
    card: str  # plan.CARDS label
    amount: int
    key: str = ""  # the Idempotency-Key, or the checkout form's token
    email: str = ""  # checkout: unique per form, so the form's orders can be found
    ws: bool = False
    follow: bool = False
    began: float = 0.0  # time.time()
    answered: float = 0.0
    tries: int = 0
    retry_reasons: dict = field(default_factory=dict)
    answer: str = ""  # "202", "gave up", or "<status> <code>"
    payment_id: str = ""
    payment_ids: list = field(default_factory=list)  # every id a 202 for this key named
    replayed: int = 0


@dataclass
class RefundRequest:
    payment_id: str
    plan: str  # "full", "partial", "concurrent 60%+60%", ...
    key: str
    amount: int | None  # None: everything still refundable
    tries: int = 0
    retry_reasons: dict = field(default_factory=dict)
    answer: str = ""
    refund_id: str = ""
    accepted_amount: int = 0


@dataclass
class Waiter:
    payment_id: str
    began: float = 0.0
    learned: str = ""  # the outcome status the socket told
    learned_at: float = 0.0
    # "first frame" (the consumer's read on connect), "push or resume", "after reconnect", "the answer itself"
    via: str = ""
    connections: int = 0
    connect_failures: int = 0
    resumes: int = 0
    error: str = ""


class ClientLog:
    """What every client saw; counters.py reads it after the run."""

    def __init__(self):
        self.submissions: list[Submission] = []
        self.refunds: list[RefundRequest] = []
        self.waiters: list[Waiter] = []
        self.responses: Counter = Counter()  # "surface status" → count
        self.server_errors: list[dict] = []  # 5xx other than a documented 503
        self.unexpected: list[dict] = []  # answers a correct client should never get (a harness bug, or ours)
        self.in_flight = 0
        self.max_in_flight = 0
        self.sockets = 0
        self.max_sockets = 0

    def observe(self, surface: str, response: httpx.Response) -> None:
        self.responses[f"{surface} {response.status_code}"] += 1
        if response.status_code >= 500 and not documented_503(response):
            self.server_errors.append(
                {
                    "at": time.time(),
                    "surface": surface,
                    "status": response.status_code,
                    "body": response.text[:300],
                }
            )

    def strange(self, surface: str, what: str) -> None:
        self.unexpected.append({"at": time.time(), "surface": surface, "what": what[:300]})

    def socket_opened(self) -> None:
        self.sockets += 1
        self.max_sockets = max(self.max_sockets, self.sockets)

    def as_dict(self) -> dict:
        return {
            "submissions": [asdict(s) for s in self.submissions],
            "refunds": [asdict(r) for r in self.refunds],
            "waiters": [asdict(w) for w in self.waiters],
            "responses": dict(sorted(self.responses.items())),
            "server_errors": self.server_errors,
            "unexpected": self.unexpected,
            "max_in_flight": self.max_in_flight,
            "max_sockets": self.max_sockets,
        }


def documented_503(response: httpx.Response) -> bool:
    """A 503 as docs/api.md and docs/architecture.md promise it, always with a Retry-After: the problem document
    `service_unavailable` to the API and to a client that asked for JSON; the shop's 503 page to a browser."""
    if response.status_code != 503 or "Retry-After" not in response.headers:
        return False
    asked_json = response.request.url.path.startswith("/api/") or "application/json" in response.request.headers.get(
        "Accept", ""
    )
    if not asked_json:
        return response.headers.get("Content-Type", "").startswith("text/html")
    try:
        return response.json().get("code") == "service_unavailable"
    except ValueError:
        return False


def problem_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER, max(0.2, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter


async def send(
    log: ClientLog,
    surface: str,
    request: Callable[[], Awaitable[httpx.Response]],
    *,
    record: Submission | RefundRequest | None,
    deadline: float,
) -> httpx.Response | None:
    """One request, sent again as a real client does until it has an answer; None if it gave up."""
    attempt = conflicts = 0
    while True:
        attempt += 1
        if record is not None:
            record.tries += 1
        reason, wait = "", None
        log.in_flight += 1
        log.max_in_flight = max(log.max_in_flight, log.in_flight)
        try:
            response = await request()
        except httpx.TimeoutException:
            reason = "timeout"
        except httpx.TransportError:
            reason = "connection"
        finally:
            log.in_flight -= 1
        if not reason:
            log.observe(surface, response)
            status = response.status_code
            if status in (503, 429):
                reason, wait = str(status), _retry_after(response)
            elif status == 409 and conflicts < MAX_CONFLICT_RETRIES:
                conflicts += 1
                reason = "409"
            else:
                return response
        if record is not None:
            record.retry_reasons[reason] = record.retry_reasons.get(reason, 0) + 1
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(wait if wait is not None else _backoff(attempt))


def _take_202(log: ClientLog, surface: str, sub: Submission, response: httpx.Response | None, id_field: str):
    """The payment's status document from a 202 (the answer a client acts on), else None."""
    sub.answered = time.time()
    if response is None:
        sub.answer = "gave up"
        return None
    if response.status_code != 202:
        sub.answer = f"{response.status_code} {problem_code(response)}".strip()
        after_lost_answer = sub.retry_reasons.get("timeout", 0) + sub.retry_reasons.get("connection", 0) > 0
        if not (sub.flow == "checkout" and response.status_code == 409 and after_lost_answer):
            log.strange(surface, f"{sub.answer}: {response.text[:200]}")
        return None
    body = response.json()
    payment_id = body[id_field]
    sub.answer = "202"
    sub.payment_id = sub.payment_id or payment_id
    if payment_id not in sub.payment_ids:
        sub.payment_ids.append(payment_id)
    if response.headers.get("Idempotent-Replayed") == "true":
        sub.replayed += 1
    return body if id_field == "id" else body["payment"]


class Merchant:
    """An API client: a token, and the right to refund the payments it made."""

    def __init__(self, name: str, token: str, base_url: str, log: ClientLog, *, timeout: float):
        self.name = name
        self.log = log
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Token {token}"},
            timeout=httpx.Timeout(timeout, connect=5),
            limits=httpx.Limits(max_connections=400, max_keepalive_connections=64),
        )
        self.keys = 0

    def next_key(self, run: str) -> str:
        # Both merchants count from 1: the same key strings, which belong to each client separately.
        self.keys += 1
        return f"chaos-{run}-{self.keys}"

    async def pay(self, sub: Submission, *, number: str, cvc: str, deadline: float) -> dict | None:
        body = {
            "amount": sub.amount,
            "currency": "USD",
            "description": f"chaos payment {sub.n}",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": cvc},
            "metadata": {"chaos": str(sub.n)},
        }
        surface = "POST /api/v1/payments"
        response = await send(
            self.log,
            surface,
            lambda: self.http.post("/api/v1/payments", json=body, headers={"Idempotency-Key": sub.key}),
            record=sub,
            deadline=deadline,
        )
        return _take_202(self.log, surface, sub, response, "id")

    async def follow(self, document: dict, *, deadline: Callable[[], float]) -> dict | None:
        """Long-poll the status URL (202 while not final) until the payment has an outcome (303); its final
        document, or None."""
        path, etag, attempt = document["links"]["status"], None, 0
        while time.monotonic() < deadline():
            headers = {"If-None-Match": etag} if etag else {}
            self.log.in_flight += 1
            try:
                response = await self.http.get(
                    path, params={"wait": LONG_POLL_WAIT}, headers=headers, timeout=LONG_POLL_WAIT + 10
                )
            except httpx.TransportError:
                attempt += 1
                await asyncio.sleep(_backoff(attempt))
                continue
            finally:
                self.log.in_flight -= 1
            self.log.observe("GET status", response)
            if response.status_code == 303:
                return response.json()
            if response.status_code == 202:
                etag = response.headers.get("ETag")
            elif response.status_code in (503, 429):
                await asyncio.sleep(_retry_after(response))
            elif response.status_code != 304:
                self.log.strange("GET status", f"{response.status_code}: {response.text[:200]}")
                return None
        return None

    async def refund(self, request: RefundRequest, *, deadline: float) -> None:
        body = {} if request.amount is None else {"amount": request.amount}
        surface = "POST refunds"
        response = await send(
            self.log,
            surface,
            lambda: self.http.post(
                f"/api/v1/payments/{request.payment_id}/refunds", json=body, headers={"Idempotency-Key": request.key}
            ),
            record=request,
            deadline=deadline,
        )
        if response is None:
            request.answer = "gave up"
            return
        code = problem_code(response)
        request.answer = f"{response.status_code} {code}".strip()
        if response.status_code == 202:
            document = response.json()
            request.refund_id, request.accepted_amount = document["id"], document["amount"]
        elif code not in REFUND_REFUSALS:
            self.log.strange(surface, f"{request.answer}: {response.text[:200]}")

    async def aclose(self) -> None:
        await self.http.aclose()


class Shopper:
    """One browser session: it keeps its cookies (session, CSRF) from one purchase to the next, unless the shop
    points it to its last payment, still under way (then it starts afresh, as a second window would)."""

    def __init__(self, name: str, base_url: str, log: ClientLog, *, timeout: float, product_id: int):
        self.name = name
        self.log = log
        self.product_id = product_id
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout, connect=5),
            event_hooks={"response": [self._localhost_is_secure]},
        )
        self.csrf = ""

    async def _localhost_is_secure(self, response: httpx.Response) -> None:
        """Browsers treat http://127.0.0.1 as a secure context and send Secure cookies there (the stack runs
        with DEBUG off, as in production, so its session and CSRF cookies are Secure); httpx does not."""
        for cookie in self.http.cookies.jar:
            cookie.secure = False

    async def _get_page(self, path: str, sub: Submission, deadline: float) -> httpx.Response | None:
        response = await send(self.log, f"GET {path}", lambda: self.http.get(path), record=sub, deadline=deadline)
        if response is not None and response.status_code == 200:
            match = CSRF_RE.search(response.text)
            self.csrf = match.group(1) if match else self.csrf
        return response

    async def _add_to_cart(self, sub: Submission, deadline: float) -> bool:
        response = None
        for _ in range(2):
            if not self.csrf:
                page = await self._get_page("/", sub, deadline)
                if page is None or page.status_code != 200:
                    sub.answer = "home page: " + ("gave up" if page is None else str(page.status_code))
                    if page is not None:
                        self.log.strange("GET /", f"{page.status_code}: {page.text[:200]}")
                    return False
            response = await send(
                self.log,
                "POST /cart/update",
                lambda: self.http.post(
                    # Sets the quantity: the cart is kept until a payment takes money (checkout/journey.py), and
                    # each submission pays for one item.
                    "/cart/update",
                    data={"csrfmiddlewaretoken": self.csrf, "product_id": self.product_id, "quantity": 1},
                ),
                record=sub,
                deadline=deadline,
            )
            if response is not None and response.status_code == 302:
                return True
            if response is None or response.status_code != 403:
                break
            self.csrf = ""  # a session or CSRF cookie the server no longer knows: start again from the shop
        sub.answer = "cart: " + ("gave up" if response is None else str(response.status_code))
        if response is not None:
            self.log.strange("POST /cart/add", f"{response.status_code}: {response.text[:200]}")
        return False

    async def pay(self, sub: Submission, *, number: str, cvc: str, deadline: float) -> dict | None:
        for fresh_start in (False, True):
            if not await self._add_to_cart(sub, deadline):
                sub.answered = time.time()
                return None
            page = await self._get_page("/checkout", sub, deadline)
            token = CHECKOUT_TOKEN_RE.search(page.text) if page is not None and page.status_code == 200 else None
            if token is not None or fresh_start or page is None or not _points_to_a_payment_in_progress(page):
                break
            # This session's last payment has no outcome yet, so the shop shows the way to it instead of a form
            # (checkout/journey.py); or it took money just now, and its line left the cart this shopper had set.
            # A person would wait, or pay in another window: this shopper starts a session of its own.
            self.http.cookies.clear()
            self.csrf = ""
        if token is None:
            sub.answered = time.time()
            sub.answer = "checkout page: " + ("gave up" if page is None else str(page.status_code))
            if page is not None:
                self.log.strange("GET /checkout", f"{page.status_code}: {page.text[:200]}")
            return None
        sub.key = token.group(1)
        form = {
            "csrfmiddlewaretoken": self.csrf,
            "email": sub.email,
            **SHIPPING,
            "card_number": number,
            "expiry": "12/31",
            "cvc": cvc,
            "checkout_token": sub.key,
        }
        surface = "POST /checkout"
        response = await send(
            self.log,
            surface,
            lambda: self.http.post("/checkout", data=form, headers={"Accept": "application/json"}),
            record=sub,
            deadline=deadline,
        )
        return _take_202(self.log, surface, sub, response, "payment_id")

    async def aclose(self) -> None:
        await self.http.aclose()


def _points_to_a_payment_in_progress(page: httpx.Response) -> bool:
    """GET /checkout's answer while the session's last payment is under way (its pointer, no form), or once it
    has just taken money and emptied the cart (the redirect to it)."""
    return page.status_code == 302 or (page.status_code == 200 and PAYMENT_IN_PROGRESS_TEXT in page.text)


# --- the wait page's socket ----------------------------------------------------------------------------------
async def websocket_wait(
    log: ClientLog, base_url: str, document: dict, *, stop_at: Callable[[], float], heartbeat=WAIT_PAGE_HEARTBEAT
) -> Waiter:
    """Hold the payment's socket until it tells the outcome (by push, or in answer to a resume) or `stop_at()`
    (time.monotonic()) passes. Reconnects as wait.js does: backoff, `&after_seq=N`, then a resume."""
    from websockets.exceptions import ConnectionClosed, WebSocketException

    waiter = Waiter(document["id"], began=time.time())
    log.waiters.append(waiter)
    if document.get("status") in OUTCOME_STATUSES:
        # A form sent again after a lost answer is answered with the payment as it is now, which may already be
        # final: the wait page then shows the outcome as it renders and opens no socket (a socket asked after
        # that seq would rightly have nothing newer to tell).
        waiter.learned, waiter.learned_at, waiter.via = document["status"], time.time(), "the answer itself"
        return waiter
    last_seq, failures = int(document.get("seq") or 0), 0
    while time.monotonic() < stop_at():
        url = f"{ws_url(base_url, document['links']['websocket'])}&after_seq={last_seq}"
        try:
            socket = await connect_as_wait_page(url, open_timeout=10)
        except (OSError, TimeoutError, WebSocketException) as error:
            waiter.connect_failures += 1
            waiter.error = f"connect: {type(error).__name__}"
            failures += 1
            await asyncio.sleep(min(30.0, 2.0**failures) * random.uniform(0.5, 1.0))  # noqa: S311 - wait.js
            continue
        waiter.connections += 1
        log.socket_opened()
        first, next_beat = True, time.monotonic() + heartbeat
        try:
            if waiter.connections > 1:  # after a reconnect, ask at once (the URL's after_seq did too)
                waiter.resumes += 1
                await socket.send(json.dumps({"type": "resume", "after_seq": last_seq}))
            while time.monotonic() < stop_at():
                now = time.monotonic()
                if now >= next_beat:
                    waiter.resumes += 1
                    await socket.send(json.dumps({"type": "resume", "after_seq": last_seq}))
                    next_beat = now + heartbeat
                try:
                    message = await asyncio.wait_for(socket.recv(), timeout=max(0.05, min(2.0, next_beat - now)))
                except TimeoutError:
                    continue
                payment = frame_payment(message) or {}
                if isinstance(payment.get("seq"), int):
                    last_seq = max(last_seq, payment["seq"])
                if payment.get("status") in OUTCOME_STATUSES:
                    waiter.learned, waiter.learned_at = payment["status"], time.time()
                    waiter.via = (
                        "after reconnect" if waiter.connections > 1 else ("first frame" if first else "push or resume")
                    )
                    waiter.error = ""
                    return waiter
                first, failures = False, 0
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            waiter.error = f"closed ({code})"
            if code == 4404:
                return waiter  # the token was refused: no reconnect can help
        finally:
            log.sockets -= 1
            await socket.close()
        failures += 1
        await asyncio.sleep(min(30.0, 2.0**failures) / 2 * (1 + random.random()))  # noqa: S311 - wait.js
    waiter.error = waiter.error or "still waiting at the deadline"
    return waiter
