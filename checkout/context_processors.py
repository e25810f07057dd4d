from checkout.cart import SESSION_KEY


def cart_count(request):
    # From the session alone (no query): the header shows it on every page.
    raw = request.session.get(SESSION_KEY, {}) if hasattr(request, "session") else {}
    return {"cart_count": sum(raw.values())}
