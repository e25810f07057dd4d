import secrets

from django.db import models
from django.db.models import Q


class Product(models.Model):
    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    price = models.PositiveBigIntegerField(help_text="In the currency's minor units (cents for USD).")
    currency = models.CharField(max_length=3, default="USD")
    stock = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive")]

    def __str__(self) -> str:
        return self.name


def new_order_number() -> str:
    # Short enough to read out over the phone, random enough not to be guessed.
    return secrets.token_hex(4).upper()


class OrderStatus(models.TextChoices):
    """awaiting_payment: stock is reserved; paid: the payment succeeded; payment_failed / canceled: the
    payment ended without money and the stock went back on the shelf; refunded: all the money went back."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    CANCELED = "canceled"
    REFUNDED = "refunded"


class Order(models.Model):
    number = models.CharField(max_length=16, unique=True, default=new_order_number, editable=False)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.AWAITING_PAYMENT)
    email = models.EmailField()
    shipping_name = models.CharField(max_length=120, blank=True)
    shipping_address = models.CharField(max_length=200, blank=True)
    shipping_city = models.CharField(max_length=100, blank=True)
    shipping_postcode = models.CharField(max_length=20, blank=True)
    shipping_country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2.")
    total = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(status__in=OrderStatus.values), name="order_status_known")]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    # What the shopper saw when paying, whatever happens to the product afterwards.
    name = models.CharField(max_length=120)
    unit_price = models.PositiveBigIntegerField()
    quantity = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"{self.quantity} × {self.name}"

    @property
    def line_total(self) -> int:
        return self.unit_price * self.quantity


class CheckoutAttempt(models.Model):
    """One per rendered checkout form (its hidden token): a double click, a resubmit or a back-and-resubmit of
    that form lands on the same order instead of making a second payment. Only when that order's payment
    failed or was canceled does a resubmit start a new order (the shopper is trying again)."""

    token = models.UUIDField(unique=True)
    order = models.ForeignKey(Order, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.token)
