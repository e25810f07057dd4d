from django.urls import path

from payments.sandbox import views

app_name = "sandbox-bank"

urlpatterns = [
    path("authenticate/<str:public_id>", views.challenge, name="challenge"),
]
