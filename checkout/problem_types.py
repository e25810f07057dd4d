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
)
