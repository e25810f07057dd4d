"""The wait page while the bank asks the shopper to confirm it's them (issue 16): the question and its link as the
server renders them, and no self-refresh while the shopper reads it."""

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from payments.gateway import decline_message
from payments.guests import SESSION_KEY as GUEST_SESSION_KEY
from payments.models import Payment, PaymentStatus

pytestmark = pytest.mark.django_db

CHALLENGE = "/sandbox-bank/authenticate/tds_challenge"
REFRESH = 'http-equiv="refresh"'


@pytest.fixture
def wait_page(make_payment):
    """(status, **changes) → the payer's wait page for a payment in that state, as HTML."""

    def get(status, **changes) -> str:
        payment = make_payment()
        Payment.objects.filter(pk=payment.pk).update(status=status, seq=3, **changes)
        payer = Client()
        session = payer.session
        session[GUEST_SESSION_KEY] = str(payment.owner_guest_id)
        session.save()
        return payer.get(f"/payments/{payment.pk}/wait").text

    return get


def _at_bank(**changes) -> dict:
    return {
        "next_action_url": CHALLENGE,
        "next_action_expires_at": timezone.now() + timedelta(minutes=15),
        **changes,
    }


def _section(html: str, status: str) -> str:
    return re.search(rf'<div data-when="{status}" >(.*?)\n  </div>', html, re.S)[1]


def test_the_question_shows_the_amount_and_a_link_to_the_banks_page_made_absolute(wait_page):
    html = wait_page(PaymentStatus.REQUIRES_ACTION, **_at_bank())
    section = _section(html, "requires_action")
    assert "Your bank needs to confirm it's you" in section
    assert "<strong>$24.00</strong>" in section
    assert f'<a class="button" data-field="next-action" href="http://testserver{CHALLENGE}">' in section
    assert "<title>Your bank needs to confirm it's you" in html
    # the page's first document names the same absolute URL, for the script to keep the link current
    document = json.loads(re.search(r'id="payment-document" type="application/json">(.*?)</script>', html)[1])
    assert document["next_action"]["url"] == f"http://testserver{CHALLENGE}"
    # no "usually takes a few seconds": that is the processing section's, hidden
    assert "This usually takes a few seconds" not in section
    assert "{#" not in html  # a template comment over two lines is not one: it would be shown


def test_without_javascript_the_page_does_not_refresh_under_the_shopper_reading_the_question(wait_page):
    assert REFRESH not in wait_page(PaymentStatus.REQUIRES_ACTION, **_at_bank())


def test_back_from_the_bank_before_the_job_has_run_the_page_waits_for_the_outcome_and_refreshes(wait_page):
    # The bank's callback has recorded the answer (action_reported_at) and queued the job; the status is still
    # requires_action. Asking again would send the shopper back to the bank for what they have just done.
    html = wait_page(PaymentStatus.REQUIRES_ACTION, **_at_bank(action_reported_at=timezone.now()))
    section = _section(html, "requires_action")
    assert "Your bank has answered" in section
    assert "next-action" not in section and "Confirm with your bank" not in section
    assert REFRESH in html


@pytest.mark.parametrize("status", [PaymentStatus.PENDING, PaymentStatus.PROCESSING])
def test_before_the_bank_asks_the_question_is_rendered_hidden_for_the_script_to_show(wait_page, status):
    html = wait_page(status)
    assert '<div data-when="requires_action" hidden>' in html
    assert 'data-field="next-action"' in html  # its href comes with the document that says requires_action
    assert REFRESH in html


@pytest.mark.parametrize(
    ("decline_code", "words"),
    [
        ("authentication_failed", "Your bank could not confirm it was you. Try again, or use another card."),
        ("authentication_expired", "The confirmation with your bank took too long."),
    ],
)
def test_a_failed_or_expired_authentication_is_declined_in_the_shoppers_words(wait_page, decline_code, words):
    html = wait_page(
        PaymentStatus.FAILED,
        failure_code="card_declined",
        decline_code=decline_code,
        failure_message=decline_message(decline_code),
    )
    section = _section(html, "failed")
    assert words in section and "Nothing was charged" in section
    assert decline_code not in section and "authentication" not in section.lower()
