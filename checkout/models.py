import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from payments.text import free_text_validate


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

    def clean(self):
        # One shop, one currency: a cart adds up its lines' prices, so a product in another currency would be
        # charged as if its price were in the shop's.
        super().clean()
        if self.currency != settings.SHOP_CURRENCY:
            shop = settings.SHOP_CURRENCY
            raise ValidationError({"currency": f"The shop sells in {shop} only; set the price in {shop}."})


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
    # Validated here too, not only by the checkout form: staff correct these in the admin.
    shipping_name = models.CharField(max_length=120, blank=True, validators=[free_text_validate])
    shipping_address = models.CharField(max_length=200, blank=True, validators=[free_text_validate])
    shipping_city = models.CharField(max_length=100, blank=True, validators=[free_text_validate])
    shipping_postcode = models.CharField(max_length=20, blank=True, validators=[free_text_validate])
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
    failed or was canceled does a resubmit start a new order (the shopper is trying again).

    Made when the form is rendered, for the shopper it is rendered to (their guest id, and their user when
    signed in): only that shopper's submits may use it, so a token seen by someone else (a shared screen, a
    copied page, a proxy log) neither shows them the payment nor lets them pay on the shopper's form."""

    token = models.UUIDField(unique=True)
    order = models.ForeignKey(Order, null=True, on_delete=models.SET_NULL, related_name="+")
    owner_guest_id = models.UUIDField(null=True, blank=True)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(owner_guest_id__isnull=False) | Q(owner_user__isnull=False),
                name="checkout_attempt_has_owner",
            )
        ]

    def __str__(self) -> str:
        return str(self.token)

    def belongs_to(self, *, user, guest_id) -> bool:
        if self.owner_guest_id is not None and self.owner_guest_id == guest_id:
            return True
        return self.owner_user_id is not None and user is not None and self.owner_user_id == user.pk


class ShopperEmailKind(models.TextChoices):
    RECEIPT = "receipt"
    REFUND_NOTICE = "refund_notice"


class ShopperEmailStatus(models.TextChoices):
    """queued: waiting for its job (or for its next try after a failure); sending: a job claimed it and may have
    handed it to the mail server (never sent again automatically: see checkout/outbox.py); sent; failed: given up
    after EMAIL_SEND_ATTEMPTS tries, none of which reached the server."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class ShopperEmail(models.Model):
    """The outbox: one row per email a status change owes a shopper, written in the change's own transaction
    (checkout/receipts.py), sent by a job once it has committed (checkout/outbox.py). `key` names the event
    (`receipt:<payment id>`, `refund:<refund id>`): unique, so a replayed event never owes a second email."""

    key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=20, choices=ShopperEmailKind.choices)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    payment = models.ForeignKey("payments.Payment", on_delete=models.PROTECT, related_name="+")
    refund = models.ForeignKey("payments.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to = models.EmailField()
    status = models.CharField(max_length=10, choices=ShopperEmailStatus.choices, default=ShopperEmailStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True)
    # When the reconciler queues its job again if it is still queued by then (the job was lost, or a try failed).
    recheck_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ShopperEmailStatus.values), name="shopper_email_status_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key} ({self.status})"
