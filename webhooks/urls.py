from django.urls import path

from webhooks import api

app_name = "webhooks-api"

urlpatterns = [
    path("webhook-endpoints", api.WebhookEndpointsView.as_view(), name="endpoints"),
    path("webhook-endpoints/<uuid:endpoint_id>", api.WebhookEndpointDetailView.as_view(), name="endpoint-detail"),
    path(
        "webhook-endpoints/<uuid:endpoint_id>/rotate-secret",
        api.WebhookEndpointRotateView.as_view(),
        name="endpoint-rotate-secret",
    ),
]
