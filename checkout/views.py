from __future__ import annotations

from django.contrib import messages
from django.db import DatabaseError
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST, require_safe

from checkout.cart import MAX_QUANTITY, Cart, CurrencyMismatch, cart_add, cart_get, cart_replace, cart_set_quantity
from checkout.forms import CheckoutForm
from checkout.journey import (
    checkout_prefill,
    checkout_prefill_remember,
    payment_in_progress,
    payment_in_progress_remember,
)
from checkout.models import Order, Product
from checkout.order_links import order_page_path
from checkout.order_page import (
    country_name,
    money_format_for,
    order_for_link_key,
    order_status_path,
    order_status_payload,
    order_view_read,
    payment_document_for_order_page,
    payment_socket_path,
    refund_row,
)
from checkout.selectors import order_latest_payment, product_get_for_sale, product_list_for_sale
from checkout.services import (
    CartChanged,
    EmptyCart,
    ForeignCheckoutToken,
    MixedCurrency,
    OutOfStock,
    Shipping,
    checkout_attempt_start,
    checkout_submit,
    order_lines_for_retry,
)
from checkout.wait_page import bank_step
from infrastructure.problems import PROBLEM_CONTENT_TYPE, problem_body
from payments.currencies import format_money
from payments.gateway import GatewayError
from payments.guests import guest_id_ensure, guest_id_from_session
from payments.links import links_absolute, url_absolute
from payments.selectors import payment_get_for_viewer, payment_status_payload


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _problem(status: int, code: str, detail: str, **extra) -> JsonResponse:
    return JsonResponse(
        problem_body(status=status, code=code, detail=detail, **extra),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


# --- catalog and cart -----------------------------------------------------------------------------------


def _shoppers_cart(request) -> Cart:
    """The cart as the page must show it: a payment that ended since the last request is settled first (a paid
    order's lines leave the cart), so the page and the header's count agree."""
    payment_in_progress(request)
    return cart_get(request.session)


def catalog(request):
    products = product_list_for_sale()
    return render(request, "checkout/catalog.html", {"products": products, "cart": _shoppers_cart(request)})


def product_detail(request, slug):
    product = product_get_for_sale(slug=slug)
    if product is None:
        raise Http404("No such product.")
    return render(
        request,
        "checkout/product.html",
        {
            "product": product,
            "cart": _shoppers_cart(request),
            "quantities": range(1, MAX_QUANTITY + 1),
        },
    )


def _quantity(request, default: int) -> int:
    try:
        return int(request.POST.get("quantity", default))
    except ValueError:
        return default


def _posted_product(request, **filters) -> Product:
    """The product a cart form names; 404 for one we do not sell, or for an id that is not a number at all."""
    try:
        product_id = int(request.POST.get("product_id", ""))
    except ValueError:
        raise Http404("No such product.") from None
    if not 0 < product_id < 2**63:  # past a bigint, PostgreSQL would refuse the lookup itself
        raise Http404("No such product.")
    return get_object_or_404(Product, pk=product_id, **filters)


@require_POST
def cart_add_view(request):
    payment_in_progress(request)  # a payment that ended since is settled first: the change applies to its outcome
    product = _posted_product(request, is_active=True)
    if product.stock <= 0:
        messages.error(request, f"Sorry, {product.name} is out of stock.")
        return redirect("checkout:catalog")
    try:
        cart_add(request.session, product=product, quantity=max(1, _quantity(request, 1)))
    except CurrencyMismatch as refused:
        messages.error(request, str(refused))
        return redirect("checkout:cart")
    messages.success(request, f"{product.name} is in your cart.")
    return redirect("checkout:cart")


@require_POST
def cart_update_view(request):
    payment_in_progress(request)  # as cart_add_view
    product = _posted_product(request)
    quantity = 0 if "remove" in request.POST else _quantity(request, 1)
    cart_set_quantity(request.session, product=product, quantity=quantity)
    return redirect("checkout:cart")


@never_cache
def cart_view(request):
    quantities = range(1, MAX_QUANTITY + 1)
    return render(request, "checkout/cart.html", {"cart": _shoppers_cart(request), "quantities": quantities})


# --- checkout -------------------------------------------------------------------------------------------

UNAVAILABLE_MESSAGE = (
    "We could not reach the bank's card vault just now, so nothing was charged. Please try again in a moment."
)
FOREIGN_FORM_MESSAGE = (
    "This checkout form was opened in another browser session, so it cannot be used here. Nothing was charged: "
    "check your details, enter your card again and pay."
)


IN_PROGRESS_MESSAGE = (
    "Your cart is already being paid for in another window, so nothing was charged here. See that payment; if it "
    "does not go through, you can pay again."
)
EMPTY_CART_MESSAGE = "Your cart is empty. Nothing was charged."
MIXED_CURRENCY_MESSAGE = (
    "Your cart holds prices in two currencies, and one payment takes one. Nothing was charged: remove the items "
    "marked in your cart, then pay."
)


def _fresh_form(request, cart: Cart, previous: CheckoutForm | None = None) -> CheckoutForm:
    """A new form with a token of its own, bound to this shopper, promising the cart as it is now. What they
    typed stays, except the card; a first form is filled in from their last unpaid order (checkout/journey.py)."""
    # The shopper's guest id exists before the form does: every submit of this form, even one whose answer is
    # lost (and whose session change with it), pays as the same owner, who can then see it.
    attempt = checkout_attempt_start(owner_user=request.user, owner_guest_id=guest_id_ensure(request.session))
    if previous is not None:
        kept = {name: value for name, value in previous.cleaned_data.items() if name in previous.fields}
        for name in (*CheckoutForm.CARD_FIELDS, *CheckoutForm.PROMISE_FIELDS, "checkout_token"):
            kept.pop(name, None)
    else:
        kept = checkout_prefill(request.session)
    promise = {"cart_signature": cart.signature, "expected_total": cart.total}
    return CheckoutForm(initial={**kept, **promise, "checkout_token": attempt.token})


def pay_label(cart: Cart) -> str:
    return f"Pay {format_money(cart.total, cart.currency)}" if cart.currency else "Pay"


def cart_changed_message(cart: Cart, expected_total: int | None) -> str:
    if expected_total is not None and expected_total != cart.total:
        was, now = format_money(expected_total, cart.currency), format_money(cart.total, cart.currency)
        return (
            f"The total changed from {was} to {now} since you opened this page. "
            "Nothing was charged: check it and pay again."
        )
    return "Your cart changed since you opened this page. Nothing was charged: check the summary and pay again."


# Error reports must never carry what the shopper typed into the card fields; no cache (the browser's, a proxy's)
# may keep a page that holds a form token or a payment.
@method_decorator(sensitive_post_parameters("card_number", "expiry", "cvc"), name="dispatch")
@method_decorator(never_cache, name="dispatch")
class CheckoutView(View):
    template_name = "checkout/checkout.html"

    def _page(self, request, form, cart, status=200, form_error=""):
        context = {"form": form, "cart": cart, "form_error": form_error, "pay_label": pay_label(cart)}
        return render(request, self.template_name, context, status=status)

    def get(self, request):
        cart = _shoppers_cart(request)
        if payment_in_progress(request) is not None:
            # The back button from the wait page lands here: the way back to that payment, not a second form
            # (and no redirect, which would trap the back button in a loop).
            return self._page(request, None, cart)
        if cart.is_empty:
            messages.info(request, "Your cart is empty.")
            return redirect("checkout:cart")
        if cart.unavailable:
            messages.error(request, "Some items in your cart cannot be bought as they are; see below.")
            return redirect("checkout:cart")
        return self._page(request, _fresh_form(request, cart), cart)

    def post(self, request):
        in_progress = payment_in_progress(request)  # a payment that ended since is settled first
        cart = cart_get(request.session)
        form = CheckoutForm(request.POST)
        if not form.is_valid():
            if _wants_json(request):
                errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
                return _problem(422, "validation_error", "Some fields need attention.", errors=errors)
            return self._page(request, form, cart, status=422)
        data = form.cleaned_data
        if (
            in_progress is not None
            and data["cart_signature"]
            and str(data["checkout_token"]) != in_progress.checkout_token
        ):
            # The shop's page of another tab, opened before this payment started, for the cart that payment is
            # paying for: the cart is kept until the payment ends, so paying it again would charge the shopper
            # twice. The same form again (a double click) goes on: checkout_submit answers with its payment. A
            # script's form (no signature: a load test paying again at once) pays on its own token, as before.
            if _wants_json(request):
                return _problem(409, "payment_in_progress", IN_PROGRESS_MESSAGE, wait_url=in_progress.wait_url)
            return self._page(request, None, cart, status=409)
        try:
            payment = checkout_submit(
                cart=cart,
                email=data["email"],
                shipping=Shipping(
                    name=data["shipping_name"],
                    address=data["shipping_address"],
                    city=data["shipping_city"],
                    postcode=data["shipping_postcode"],
                    country=data["shipping_country"],
                ),
                card=data["card"],
                checkout_token=data["checkout_token"],
                owner_user=request.user,
                owner_guest_id=guest_id_ensure(request.session),
                expected_signature=data["cart_signature"] or None,
            )
        except ForeignCheckoutToken:
            # Someone else's form: nothing of its payment is shown, the shopper gets a form of their own.
            fresh = _fresh_form(request, cart, form)
            if _wants_json(request):
                token = str(fresh.initial["checkout_token"])
                return _problem(409, "foreign_checkout_form", FOREIGN_FORM_MESSAGE, checkout_token=token)
            return self._page(request, fresh, cart, status=409, form_error=FOREIGN_FORM_MESSAGE)
        except CartChanged:
            return self._cart_changed(request, form)
        except (GatewayError, DatabaseError):
            # The vault is unreachable, or a lock wait ran past its timeout: nothing was recorded, and the same
            # form (same token) may be submitted again safely.
            if _wants_json(request):
                response = _problem(503, "service_unavailable", UNAVAILABLE_MESSAGE)
                response["Retry-After"] = "5"
                return response
            form.add_error(None, UNAVAILABLE_MESSAGE)
            return self._page(request, form, cart, status=503)
        except (OutOfStock, EmptyCart, MixedCurrency) as refused:
            # One name per line, not a table: tests/api/test_problem_types.py reads each problem code from the source.
            code = "out_of_stock" if isinstance(refused, OutOfStock) else "empty_cart"
            message = f"{refused} Nothing was charged." if isinstance(refused, OutOfStock) else EMPTY_CART_MESSAGE
            if isinstance(refused, MixedCurrency):
                code = "mixed_currency"
                message = MIXED_CURRENCY_MESSAGE
            if _wants_json(request):
                return _problem(409, code, message)
            form.add_error(None, message)
            return self._page(request, form, cart, status=409)

        # The cart is kept until the payment takes money: after a decline it is still there to pay again
        # (checkout/journey.py settles it on the shopper's next request).
        payment_in_progress_remember(request.session, payment=payment, checkout_token=data["checkout_token"])
        wait_url = reverse("checkout:wait", kwargs={"payment_id": payment.id})
        if not _wants_json(request):
            # Post/Redirect/Get: a refresh of the next page never re-submits the payment.
            return HttpResponseRedirect(wait_url, status=303)
        # The status URL and the document's links as the API's 202 gives them: absolute (payments/links.py).
        document = links_absolute(payment_status_payload(payment), request)
        response = JsonResponse(
            {
                "payment_id": str(payment.id),
                "status_url": document["links"]["status"],
                "wait_url": wait_url,  # a page of the shop, a path like every redirect of its pages
                "payment": document,
            },
            status=202,
        )
        response["Location"] = document["links"]["status"]
        return response

    def _cart_changed(self, request, form):
        """Nothing charged: the page again with the cart as it is now, a new promise, and what changed."""
        cart = cart_get(request.session)  # read again: the change may have happened after the first read
        if cart.is_empty:
            message = "Your cart is empty now. Nothing was charged."
            return _problem(409, "empty_cart", message) if _wants_json(request) else redirect("checkout:cart")
        message = cart_changed_message(cart, form.cleaned_data["expected_total"])
        fresh = _fresh_form(request, cart, form)
        if not _wants_json(request):
            return self._page(request, fresh, cart, status=409, form_error=message)
        return _problem(
            409,
            "cart_changed",
            message,
            checkout_token=str(fresh.initial["checkout_token"]),
            cart_signature=cart.signature,
            total=cart.total,
            currency=cart.currency,
            pay_label=pay_label(cart),
            summary_html=render_to_string("checkout/_summary.html", {"cart": cart}, request=request),
        )


@never_cache
def wait(request, payment_id):
    payment = payment_get_for_viewer(
        payment_id=payment_id, user=request.user, guest_id=guest_id_from_session(request.session)
    )
    if payment is None:
        raise Http404("No such payment.")
    order = payment.order
    return render(
        request,
        "checkout/wait.html",
        {
            "payment": payment,
            "order": order,
            "order_url": order_page_path(order) if order else None,
            "lines": order.lines.all() if order else [],
            "document": links_absolute(payment_status_payload(payment), request),
            # A token from now, like the order page's: the shopper may come back to this page days later.
            "socket_url": url_absolute(payment_socket_path(payment), request, websocket=True),
            "money_format": money_format_for(payment.currency),
            **bank_step(payment),
        },
    )


@require_POST
def order_retry(request, number):
    """Try another card: the failed order's items go back in the cart, and the shopper returns to checkout."""
    order = get_object_or_404(Order, number=number)
    payment = order_latest_payment(order_id=order.pk)
    guest_id = guest_id_from_session(request.session)
    if payment is None or payment_get_for_viewer(payment_id=payment.pk, user=request.user, guest_id=guest_id) is None:
        raise Http404("No such order.")
    lines = order_lines_for_retry(order=order)
    if lines is None:
        messages.info(request, "This order's payment did not fail, so there is nothing to retry.")
        return redirect("checkout:wait", payment_id=payment.pk)
    # The cart was kept through the decline: it goes back only if it is gone (another device, a new session),
    # never on top of itself. A cart changed since is the shopper's latest word and stays as it is.
    if _shoppers_cart(request).is_empty:
        cart_replace(request.session, lines)
    checkout_prefill_remember(request.session, order=order)
    return redirect("checkout:checkout")


# --- the order page: opened by its signed link alone (checkout/order_links.py), from any browser --------------


@require_safe
@never_cache
def order_page(request, key):
    """The order page the receipt and the wait page link to: whoever holds the link sees this one order, live."""
    order = order_for_link_key(key)
    if order is None:
        raise Http404("No such order.")
    view = order_view_read(order)
    payment = view.payment
    context = {
        "order": order,
        "lines": order.lines.all(),
        "payment": payment,
        # As the JSON lists them, so the page and its live updates word each refund alike.
        "refunds": [refund_row(refund, order.currency) for refund in view.refunds],
        "country": country_name(order.shipping_country),
    }
    if payment is not None:
        socket_path = payment_socket_path(payment, watch_only=True)
        context |= {
            "document": links_absolute(payment_document_for_order_page(payment, socket_path=socket_path), request),
            # The page's own ways to stay current, both authorized by the link: the fresh socket token (watch-only:
            # the link may have been forwarded), and the order's JSON to poll (the API's status URL wants the
            # payer's session, which this browser may lack).
            "socket_url": url_absolute(socket_path, request, websocket=True),
            "poll_url": order_status_path(order),
            "money_format": money_format_for(payment.currency),
        }
    return render(request, "checkout/order.html", context)


@require_safe
@never_cache
def order_status(request, key):
    """The order page as JSON, for the page to poll when it has no socket; a 404 alike for every key that opens
    no order (tampered, made up, or its order gone), as the page's."""
    order = order_for_link_key(key)
    if order is None:
        return _problem(404, "not_found", "No such order.")
    payload = order_status_payload(order_view_read(order))
    if payload["payment"] is not None:
        payload["payment"] = links_absolute(payload["payment"], request)
    return JsonResponse(payload)
