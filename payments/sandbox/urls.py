from django.urls import path

from payments.sandbox import views

app_name = "sandbox-bank"

urlpatterns = [
    # secrets.token_urlsafe: a slug; anything else (a NUL byte) never reaches the database
    path("authenticate/<slug:public_id>", views.challenge, name="challenge"),
]
