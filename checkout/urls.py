from django.urls import path

from checkout import views

app_name = "checkout"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<slug:slug>", views.product_detail, name="product"),
    path("cart", views.cart_view, name="cart"),
    path("cart/add", views.cart_add_view, name="cart-add"),
    path("cart/update", views.cart_update_view, name="cart-update"),
    path("checkout", views.CheckoutView.as_view(), name="checkout"),
    path("payments/<uuid:payment_id>/wait", views.wait, name="wait"),
    path("orders/<slug:number>/retry", views.order_retry, name="order-retry"),
    path("orders/<str:key>", views.order_page, name="order"),
    path("orders/<str:key>/status", views.order_status, name="order-status"),
]
