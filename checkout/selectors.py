from checkout.models import Product


def product_list_for_sale():
    return Product.objects.filter(is_active=True)


def product_get_for_sale(*, slug: str) -> Product | None:
    return Product.objects.filter(slug=slug, is_active=True).first()
