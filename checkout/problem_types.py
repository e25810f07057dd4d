"""The problem types the checkout's JSON answers (a checkout form sent with Accept: application/json) add to
HTTP's own (infrastructure/problem_types.py). Registered in CheckoutConfig.ready()."""

from infrastructure.problem_types import ProblemType

CHECKOUT_PROBLEM_TYPES = (
    ProblemType(
        "foreign_checkout_form",
        "Checkout form of another session",
        (409,),
        "The form's checkout token belongs to another shopper's session; nothing of that payment is shown.",
        "Submit again with the `checkout_token` this answer carries: a form of your own.",
    ),
    ProblemType(
        "out_of_stock",
        "Out of stock",
        (409,),
        "A product in the cart has less stock left than the cart asks for. Nothing was charged.",
        "Lower the quantity (or remove the product) and check out again.",
    ),
    ProblemType(
        "empty_cart",
        "Cart empty",
        (409,),
        "The cart has nothing in it (it may have been checked out in another tab). Nothing was charged.",
        "Add products to the cart, then check out.",
    ),
    ProblemType(
        "cart_changed",
        "Cart changed",
        (409,),
        "The cart is not the one the form showed: a price, a quantity or a product changed since the page was "
        "opened. Nothing was charged. The answer carries the new `total`, `currency`, `cart_signature`, "
        "`pay_label`, `checkout_token` and the order summary as `summary_html`.",
        "Show the shopper the new total, then submit again with the new `cart_signature` and `checkout_token`.",
    ),
    ProblemType(
        "mixed_currency",
        "Cart in two currencies",
        (409,),
        "The cart holds prices in two currencies and one payment takes one. Nothing was charged.",
        "Remove the items marked in the cart, then check out.",
    ),
    ProblemType(
        "payment_in_progress",
        "Payment in progress",
        (409,),
        "This session's cart is already being paid for by another checkout form (another tab) whose payment has "
        "no outcome yet. Nothing was charged. The answer carries that payment's `wait_url`.",
        "Follow `wait_url`; if that payment does not go through, check out again.",
    ),
)
