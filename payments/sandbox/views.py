"""The sandbox bank's own page: the 3-D Secure challenge a charge's `next_action_url` points at.

It stands for the bank's site, so it uses nothing of the shop's: its own template, no session. Whoever holds the
URL can answer (its id is random and long, as a real challenge's is), so the buttons post without a CSRF token,
which also lets `curl` press them (docs/api.md).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from payments.currencies import format_money
from payments.sandbox.challenge import authentication_answer
from payments.sandbox.gateway import same_origin_path
from payments.sandbox.models import Authentication

COMPLETE = "complete"
FAIL = "fail"


def _context(authentication: Authentication, **extra) -> dict:
    return {
        "authentication": authentication,
        "amount": format_money(authentication.amount, authentication.currency),
        "merchant": settings.SANDBOX_MERCHANT_NAME,
        "card": authentication.card,
        # Checked again here, not only when the charge stored it: the redirect is this page's responsibility.
        "return_url": same_origin_path(authentication.return_url),
        **extra,
    }


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def challenge(request, public_id: str):
    authentication = get_object_or_404(Authentication.objects.select_related("card"), public_id=public_id)
    if request.method != "POST":
        return _page(request, authentication)
    action = request.POST.get("action")
    if action not in (COMPLETE, FAIL):
        return _page(request, authentication, status=400, error="Choose one of the two buttons.")
    authentication, _ = authentication_answer(public_id=public_id, authenticated=action == COMPLETE)
    if authentication.status == Authentication.Status.VOIDED:
        # Too late: the merchant gave up waiting (the timeout, or a cancel). Said here, never a redirect.
        return _page(request, authentication, status=409)
    return_url = same_origin_path(authentication.return_url)
    if return_url:
        # A redirect's Referrer-Policy is the one the next request goes with: without its own, the site-wide
        # same-origin would send this page's URL (the credential) as the return page's Referer.
        return _private(HttpResponseRedirect(return_url, status=303))
    return _page(request, authentication)


def _page(request, authentication: Authentication, *, status: int = 200, **extra):
    return _private(render(request, "sandbox/challenge.html", _context(authentication, **extra), status=status))


def _private(response):
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the URL is a credential: never sent on to the next page
    return response
