from checkout.models import Product
from payments.models import Payment


def product_list_for_sale():
    return Product.objects.filter(is_active=True)


def product_get_for_sale(*, slug: str) -> Product | None:
    return Product.objects.filter(slug=slug, is_active=True).first()


def order_latest_payment(*, order_id) -> Payment | None:
    """The order's current payment: the last one made for it (a failed one is followed by a new one when the
    shopper tries again)."""
    return Payment.objects.filter(order_id=order_id).order_by("-created_at").first()
