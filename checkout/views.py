from __future__ import annotations

from http import HTTPStatus

from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters

from checkout.forms import CheckoutForm
from checkout.selectors import product_get_for_sale, product_list_for_sale
from checkout.services import OutOfStock, checkout_submit
from payments.api.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE
from payments.guests import guest_id_ensure, guest_id_from_session
from payments.selectors import payment_get_for_viewer, payment_status_payload


def catalog(request):
    return render(request, "checkout/catalog.html", {"products": product_list_for_sale()})


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _problem(status: int, code: str, detail: str, **extra) -> JsonResponse:
    body = {
        "type": PROBLEM_TYPE_BASE + code.replace("_", "-"),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


# Error reports must never carry what the shopper typed into the card fields.
@method_decorator(sensitive_post_parameters("card_number", "expiry", "cvc"), name="dispatch")
class CheckoutView(View):
    template_name = "checkout/checkout.html"

    def _product_or_404(self, slug):
        product = product_get_for_sale(slug=slug)
        if product is None:
            raise Http404("No such product.")
        return product

    def get(self, request, slug):
        product = self._product_or_404(slug)
        return render(request, self.template_name, {"product": product, "form": CheckoutForm()})

    def post(self, request, slug):
        product = self._product_or_404(slug)
        form = CheckoutForm(request.POST)
        if not form.is_valid():
            if _wants_json(request):
                errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()}
                return _problem(422, "validation_error", "Some fields need attention.", errors=errors)
            return render(request, self.template_name, {"product": product, "form": form}, status=422)

        try:
            payment = checkout_submit(
                product=product,
                email=form.cleaned_data["email"],
                card=form.cleaned_data["card"],
                owner_user=request.user,
                owner_guest_id=guest_id_ensure(request.session),
            )
        except OutOfStock:
            message = f"Sorry, {product.name} has just sold out. Nothing was charged."
            if _wants_json(request):
                return _problem(409, "out_of_stock", message)
            form.add_error(None, message)
            return render(request, self.template_name, {"product": product, "form": form}, status=409)
        wait_url = reverse("checkout:wait", kwargs={"payment_id": payment.id})
        if not _wants_json(request):
            # Post/Redirect/Get: a refresh of the next page never re-submits the payment.
            return HttpResponseRedirect(wait_url, status=303)
        document = payment_status_payload(payment)
        response = JsonResponse(
            {
                "payment_id": str(payment.id),
                "status_url": document["links"]["status"],
                "wait_url": wait_url,
                "payment": document,
            },
            status=202,
        )
        response["Location"] = document["links"]["status"]
        return response


def wait(request, payment_id):
    payment = payment_get_for_viewer(
        payment_id=payment_id, user=request.user, guest_id=guest_id_from_session(request.session)
    )
    if payment is None:
        raise Http404("No such payment.")
    return render(
        request,
        "checkout/wait.html",
        {"payment": payment, "order": payment.order, "document": payment_status_payload(payment)},
    )
