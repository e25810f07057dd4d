"""The load of a chaos run: payments arriving on a schedule, each a client's whole story.

Arrivals are evenly spaced at the profile's rate (an open schedule: shoppers keep arriving during a fault);
`concurrency` client tasks take them in turn, so while the stack is slow or down up to that many payments are
being sent (and retried) at once, and the late ones catch up when it is back. Each arrival decides, from a
random generator seeded by the run's seed and its number (so a run can be replayed): API or checkout form, the
test card (plan.CARDS' weights) and a CVC from the run's set, whether a WebSocket waiter follows it, and (API
payments with a card that should succeed) whether the merchant follows it to its outcome and refunds it.
Waiters and refunds run beside the submitters, not in their place.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field

from tests.chaos import plan
from tests.chaos.clients import ClientLog, Merchant, RefundRequest, Shopper, Submission, websocket_wait


def run_cvcs(seed: int) -> dict[int, list[str]]:
    """The CVCs this run types, by length: drawn at random per run so that the search for them is for values
    nothing else in the data holds by design (search.py looks for them next to a card field's name)."""
    rng = random.Random(f"cvcs-{seed}")  # noqa: S311 - test data
    three = rng.sample([f"{n:03d}" for n in range(100, 1000) if f"{n:03d}" not in ("123", "737", "999")], 8)
    four = rng.sample([f"{n:04d}" for n in range(1000, 10000) if n not in (1234, 2030, 2031)], 4)
    return {3: three, 4: four}


@dataclass
class Load:
    profile: plan.Profile
    base_url: str
    merchants: list[tuple[str, str]]  # (name, API token)
    product_id: int
    product_price: int
    log: ClientLog
    seed: int
    run_id: str  # in every key, so two runs never share one
    info: callable = print
    stop_at: float = math.inf  # time.monotonic() at which waiters and followers give up (set by run.py)
    background: set = field(default_factory=set)
    submitted: int = 0
    finished_at: float = 0.0

    def __post_init__(self):
        timeout = self.profile.client_timeout
        self._merchants = [
            Merchant(name, token, self.base_url, self.log, timeout=timeout) for name, token in self.merchants
        ]
        self._shoppers: list[Shopper | None] = [None] * self.profile.concurrency
        self.cvcs = run_cvcs(self.seed)
        self._refund_keys = 0

    async def run(self, started: float) -> None:
        """Send every payment (`started`: time.monotonic() of the schedule's zero); returns when each one has
        its answer. Waiters and refunds may still be running (`background`)."""
        queue: asyncio.Queue[int | None] = asyncio.Queue()

        async def arrivals():
            for number in range(self.profile.payments):
                delay = started + number / self.profile.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.put_nowait(number)
            for _ in range(self.profile.concurrency):
                queue.put_nowait(None)

        async def submitter(slot: int):
            while (number := await queue.get()) is not None:
                await self._one(slot, number)

        await asyncio.gather(arrivals(), *(submitter(slot) for slot in range(self.profile.concurrency)))
        self.finished_at = time.monotonic()

    async def _one(self, slot: int, number: int) -> None:
        rng = random.Random(f"{self.seed}-{number}")  # noqa: S311 - test data
        label = rng.choices([c[0] for c in plan.CARDS], weights=[c[2] for c in plan.CARDS])[0]
        card_number = plan.CARD_NUMBER[label]
        cvc = rng.choice(self.cvcs[4 if plan.is_amex(label) else 3])
        api = rng.random() < self.profile.api_share
        sub = Submission(
            n=number,
            flow="api" if api else "checkout",
            client="",
            card=label,
            amount=rng.randrange(500, 20000) if api else self.product_price,
            ws=rng.random() < self.profile.ws_share,
            began=time.time(),
        )
        sub.follow = api and plan.CARD_EXPECTED[label] == "succeed" and rng.random() < self.profile.refund_share
        self.log.submissions.append(sub)
        self.submitted += 1
        deadline = time.monotonic() + self.profile.give_up_after
        if api:
            merchant = self._merchants[number % len(self._merchants)]
            sub.client, sub.key = merchant.name, merchant.next_key(self.run_id)
            document = await merchant.pay(sub, number=card_number, cvc=cvc, deadline=deadline)
        else:
            shopper = self._shoppers[slot]
            if shopper is None:
                shopper = self._shoppers[slot] = Shopper(
                    f"shopper-{slot}",
                    self.base_url,
                    self.log,
                    timeout=self.profile.client_timeout,
                    product_id=self.product_id,
                )
            sub.client, sub.email = shopper.name, f"chaos-{self.run_id}-{number}@example.com"
            if rng.random() < 0.3:  # typed the way it is printed on the card
                card_number = " ".join(card_number[i : i + 4] for i in range(0, len(card_number), 4))
            document = await shopper.pay(sub, number=card_number, cvc=cvc, deadline=deadline)
        if document is None:
            return
        if sub.ws:
            self._beside(websocket_wait(self.log, self.base_url, document, stop_at=lambda: self.stop_at))
        if sub.follow:
            self._beside(self._follow_and_refund(merchant, document, rng))

    def _beside(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _follow_and_refund(self, merchant: Merchant, document: dict, rng: random.Random) -> None:
        final = await merchant.follow(document, deadline=lambda: self.stop_at)
        if final is None or final["status"] != "succeeded":
            return
        amount, payment_id = final["amount"], final["id"]
        pick = rng.random()
        if pick < 0.35:
            plans = [("full", None)]
        elif pick < 0.7:
            plans = [("partial", max(1, int(amount * rng.uniform(0.1, 0.5))))]
        else:
            variant = rng.choice(["60%+60%", "40%+40%", "full+partial"])
            shares = {"60%+60%": (0.6, 0.6), "40%+40%": (0.4, 0.4), "full+partial": (None, 0.3)}[variant]
            plans = [(f"concurrent {variant}", None if s is None else max(1, int(amount * s))) for s in shares]
        requests = []
        for name, refund_amount in plans:
            self._refund_keys += 1
            requests.append(RefundRequest(payment_id, name, f"refund-{self.run_id}-{self._refund_keys}", refund_amount))
        self.log.refunds.extend(requests)
        deadline = min(self.stop_at, time.monotonic() + self.profile.give_up_after)
        # Concurrent ones are sent together: the payment's lock decides which fits.
        await asyncio.gather(*(merchant.refund(request, deadline=deadline) for request in requests))

    async def wait_background(self) -> None:
        """Until every waiter and refund is done (they stop by themselves at `stop_at`)."""
        while self.background:
            await asyncio.wait(set(self.background), timeout=1)

    async def aclose(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        for client in [*self._merchants, *(s for s in self._shoppers if s is not None)]:
            await client.aclose()
