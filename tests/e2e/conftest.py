"""Real-browser tests: Debian's Chromium (never a downloaded build) driven by Playwright against the live stack
(daphne + real RQ workers + the reconciler) on the test database.

Playwright's sync API keeps an asyncio loop running in the test thread, so Django's ORM, used here to set up
products and to check what the stack wrote, would raise SynchronousOnlyOperation. DJANGO_ALLOW_ASYNC_UNSAFE is
set for the tests of this package only, and blanked for the processes of the stack, so that the server and the
workers keep Django's async-safety checks exactly as in production.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from checkout.models import Product
from tests.conftest import BASE_DIR

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
ARTIFACTS = BASE_DIR / "tests" / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

VISA_OK = "4242 4242 4242 4242"
VISA_DECLINED = "4000 0000 0000 0002"
VISA_SLOW = "4000 0000 0000 0440"

WAIT_URL = re.compile(r"/payments/(?P<id>[0-9a-f-]{36})/wait$")
FINAL_TIMEOUT_MS = 20_000


# --- the browser ------------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def _orm_beside_playwright():
    """Lets the test thread use the ORM while Playwright's loop runs in it; for this package's tests only."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_orm_beside_playwright) -> Browser:
    """One Chromium for the whole package (stopped before other packages run: their asyncio.run() needs a
    thread without Playwright's loop)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` installs Debian's chromium.")
    with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as scratch, sync_playwright() as playwright:
        # Not a persistent context: Playwright gives every launch a fresh temporary profile of its own.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, downloads_path=scratch
        )
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def new_context(browser, request):
    """A fresh context (cookies, cache, storage) per call; closed after the test. On failure, a full-page
    screenshot of every open page goes to tests/artifacts/failures/."""
    contexts: list[BrowserContext] = []

    def make(*, viewport: dict | None = None, **options) -> BrowserContext:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(15_000)
        context.set_default_navigation_timeout(15_000)
        contexts.append(context)
        return context

    yield make

    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        failures = ARTIFACTS / "failures"
        failures.mkdir(parents=True, exist_ok=True)
        for c, context in enumerate(contexts):
            for p, page in enumerate(context.pages):
                try:
                    page.screenshot(path=failures / f"{request.node.name}-{c}-{p}.png", full_page=True)
                except Exception as error:  # a best-effort diagnostic
                    print(f"no failure screenshot for page {c}-{p}: {error}")
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context) -> Page:
    return new_context().new_page()


# --- the shop ---------------------------------------------------------------------------------------------


@pytest.fixture
def shop(live_stack_factory, request):
    """start(**env) → a running stack: daphne, `workers` RQ workers (0 to start them yourself) and the
    reconciler. Its logs are printed when the test fails."""
    stacks = []

    def start(*, workers: int = 1, **env: str):
        env = {"SANDBOX_LATENCY_MS": "300", "SANDBOX_LATENCY_JITTER_MS": "0", **env}
        # The server and the workers keep Django's async-safety checks: an empty value is "not set".
        stack = live_stack_factory(DJANGO_ALLOW_ASYNC_UNSAFE="", **env)
        for _ in range(workers):
            stack.start_worker()
        stack.start_reconciler()
        stacks.append(stack)
        return stack

    yield start

    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for stack in stacks:
            print(stack.logs())


@pytest.fixture
def espresso(transactional_db) -> Product:
    return Product.objects.create(
        slug="espresso-beans",
        name="Espresso beans",
        description="Dark roast, 250 g.",
        price=2400,
        currency="USD",
        stock=10,
    )


def add_to_cart(page: Page, base_url: str, product: Product) -> None:
    """Catalog → "Add <name> to cart" → the cart lists it → "Checkout" → the checkout page."""
    page.goto(base_url + "/")
    page.get_by_role("button", name=f"Add {product.name} to cart", exact=True).click()
    page.wait_for_url(base_url + "/cart")
    expect(page.get_by_role("table", name="Items in your cart")).to_contain_text(product.name)
    page.get_by_role("link", name="Checkout", exact=True).click()
    page.wait_for_url(base_url + "/checkout")
    expect(page.get_by_role("heading", name="Checkout", exact=True)).to_be_visible()


def fill_checkout(page: Page, card_number: str, *, expiry: str = "12/30", cvc: str = "123") -> None:
    page.get_by_label("Email", exact=True).fill("ada@example.com")
    page.get_by_label("Full name", exact=True).fill("Ada Lovelace")
    page.get_by_label("Address", exact=True).fill("12 St James's Square")
    page.get_by_label("City", exact=True).fill("London")
    page.get_by_label("Postcode", exact=True).fill("SW1Y 4JH")
    page.get_by_label("Country", exact=True).select_option(label="United Kingdom")
    page.get_by_label("Card number", exact=True).fill(card_number)
    expiry_input = page.get_by_label("Expiry", exact=True)
    expect(expiry_input).to_have_attribute("placeholder", "MM/YY")
    expiry_input.fill(expiry)
    page.get_by_label("CVC", exact=True).fill(cvc)


PAY_BUTTON_NAME = re.compile(r"^Pay \$\d[\d,]*\.\d\d$")  # the button says what it charges: "Pay $24.00"


def pay_button(page: Page):
    return page.get_by_role("button", name=PAY_BUTTON_NAME)


def pay(page: Page) -> str:
    """Press Pay; the browser lands on the wait page. Returns the payment id from its URL."""
    pay_button(page).click()
    page.wait_for_url(WAIT_URL)
    return payment_id_of(page)


def payment_id_of(page: Page) -> str:
    match = WAIT_URL.search(page.url)
    assert match, page.url
    return match["id"]


def payment_status(page: Page):
    return page.locator("#payment-status")


def expect_status(page: Page, status: str, *, timeout: int = FINAL_TIMEOUT_MS) -> None:
    expect(payment_status(page)).to_have_attribute("data-payment-status", status, timeout=timeout)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True, animations="disabled", caret="hide")
    return path
