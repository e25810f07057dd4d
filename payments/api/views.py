from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from payments.guests import guest_id_from_session
from payments.selectors import payment_get_for_viewer, payment_status_payload


class PaymentStatusView(APIView):
    """The status URL handed out with every 202: poll it until the payment has an outcome."""

    def get(self, request, payment_id):
        guest_id = guest_id_from_session(request.session)
        if not request.user.is_authenticated and guest_id is None:
            raise NotAuthenticated("Sign in, or use the session that made the payment.")
        payment = payment_get_for_viewer(payment_id=payment_id, user=request.user, guest_id=guest_id)
        if payment is None:
            raise NotFound("No such payment.")
        response = Response(payment_status_payload(payment))
        if not payment.has_outcome:
            response["Retry-After"] = str(settings.PAYMENTS_POLL_INTERVAL)
        response["Cache-Control"] = "no-store"
        return response
