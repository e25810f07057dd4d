"""How an order follows its payment. Called by the payment transition, inside its transaction, so the order
and the payment can never disagree after a commit."""

from django.db.models import F

from checkout.models import Order, OrderStatus, Product

# Payment status → what it means for the order. Statuses not listed leave the order as it is.
ORDER_STATUS_FOR_PAYMENT = {
    "succeeded": OrderStatus.PAID,
    "failed": OrderStatus.PAYMENT_FAILED,
    "canceled": OrderStatus.CANCELED,
    "refunded": OrderStatus.REFUNDED,
}
RELEASES_STOCK = frozenset({OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELED})


def order_apply_payment_status(*, order_id: int, payment_status: str) -> None:
    new_status = ORDER_STATUS_FOR_PAYMENT.get(payment_status)
    if new_status is None:
        return
    order = Order.objects.select_for_update().get(pk=order_id)
    if new_status in RELEASES_STOCK and order.status == OrderStatus.AWAITING_PAYMENT:
        # The reservation made at submit goes back on the shelf, once: only an order still awaiting its
        # payment holds one.
        for line in order.lines.all():
            Product.objects.filter(pk=line.product_id).update(stock=F("stock") + line.quantity)
    order.status = new_status
    order.save(update_fields=["status"])
