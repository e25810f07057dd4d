"""How an order follows its payment: a `status_changing` receiver (payments/events.py), so it runs inside the
payment transition's transaction, and the order and the payment can never disagree after a commit."""

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


def order_follow_payment(sender, change, **kwargs) -> None:
    """Connected to payments.events.status_changing in CheckoutConfig.ready()."""
    if change.kind == "payment" and change.order_id is not None:
        order_apply_payment_status(order_id=change.order_id, payment_status=change.to_status)
