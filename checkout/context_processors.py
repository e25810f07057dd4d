from checkout.cart import SESSION_KEY
from checkout.journey import payment_in_progress


def cart_count(request):
    """The header's cart count and the pointer to a payment under way, on every page. The count comes from the
    session alone; the payment costs one query, and only while the session remembers one (checkout/journey.py).
    Settled first, so a paid order's lines are already out of the count."""
    if not hasattr(request, "session"):
        return {"cart_count": 0, "payment_in_progress": None}
    in_progress = payment_in_progress(request)
    raw = request.session.get(SESSION_KEY, {})
    return {"cart_count": sum(raw.values()), "payment_in_progress": in_progress}
