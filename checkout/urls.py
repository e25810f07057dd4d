from django.urls import path

from checkout import views

app_name = "checkout"

urlpatterns = [
    path("", views.catalog, name="catalog"),
    path("products/<slug:slug>/checkout", views.CheckoutView.as_view(), name="checkout"),
    path("payments/<uuid:payment_id>/wait", views.wait, name="wait"),
]
