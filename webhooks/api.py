"""The webhook endpoints API: an API client registers, reads, changes, rotates and deletes its own endpoints.

Who may: any authenticated API client, for its own endpoints only (another client's is a 404, as a payment is).
An endpoint receives only its owner's payments' events, so registering one gives a client nothing it could not
already read with its token; no permission beyond being the client is needed (docs/webhooks.md, "Who may").
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.response import Response

from payments.api import docs
from payments.api.fields import StrictCharField
from payments.api.idempotent import InvalidBody
from payments.api.serializers import plain_text
from payments.api.views import PrivateAPIView
from webhooks.addresses import AddressRefused
from webhooks.models import ALL_EVENTS, EventType, WebhookEndpoint
from webhooks.services import (
    endpoint_create,
    endpoint_delete,
    endpoint_secret_rotate,
    endpoint_update,
    endpoint_url_check,
    endpoints_for_owner,
)

MAX_ENDPOINTS_PER_CLIENT = 20
ENDPOINT_ID = OpenApiParameter(
    "endpoint_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The webhook endpoint's id."
)
EVENT_CHOICES = [*EventType.values, ALL_EVENTS]
NOT_FOUND = docs.problem("No such webhook endpoint for this client", "not_found", 404)
ERRORS = {**docs.COMMON_ERRORS, 404: NOT_FOUND, **docs.NEGOTIATED}
# The list and the create name no endpoint: no 404.
LIST_ERRORS = {**docs.METHOD_ERRORS, **docs.NEGOTIATED}
BODY_ERRORS = {
    **docs.BODY_ERRORS,
    400: docs.problem("A body that is not JSON (or nests too deeply)", "parse_error", 400),
    403: docs.CSRF_FAILED,
}


# --- what the API reads -----------------------------------------------------------------------------------------


class EventsField(serializers.ListField):
    child = serializers.ChoiceField(choices=EVENT_CHOICES)

    def __init__(self, **kwargs):
        super().__init__(min_length=1, max_length=len(EVENT_CHOICES), **kwargs)

    def to_internal_value(self, data):
        events = super().to_internal_value(data)
        if len(set(events)) != len(events):
            raise serializers.ValidationError("Each event at most once.")
        return [ALL_EVENTS] if ALL_EVENTS in events else events


class WebhookEndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(
        max_length=2000,
        help_text="Where events are POSTed: https, and a host whose addresses are all public (422 otherwise).",
    )
    events = EventsField(help_text='The event types to send, or `["*"]` for all, those added later included.')
    description = StrictCharField(max_length=200, required=False, default="", validators=[plain_text])

    def validate_url(self, url: str) -> str:
        try:
            endpoint_url_check(url)
        except AddressRefused as refused:
            raise serializers.ValidationError(str(refused)) from refused
        return url


class WebhookEndpointUpdateSerializer(WebhookEndpointCreateSerializer):
    enabled = serializers.BooleanField(required=False, help_text="false: nothing is sent to it until it is true.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, partial=True, **kwargs)


# --- what the API answers (the documents are built by endpoint_payload; these describe them) --------------------


class WebhookEndpointDocument(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    description = serializers.CharField(allow_blank=True)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))
    enabled = serializers.BooleanField()
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs too (a second `v1=`), after a rotation."
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointWithSecretDocument(WebhookEndpointDocument):
    secret = serializers.CharField(help_text="Shown here once: keep it. Signs every delivery (docs/webhooks.md).")


class WebhookEndpointList(serializers.Serializer):
    results = WebhookEndpointDocument(many=True)


def endpoint_payload(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    document = {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "enabled": endpoint.enabled,
        "previous_secret_expires_at": (
            endpoint.previous_secret_expires_at.isoformat() if endpoint.previous_secret_expires_at else None
        ),
        "created_at": endpoint.created_at.isoformat(),
        "updated_at": endpoint.updated_at.isoformat(),
    }
    if with_secret:
        document["secret"] = endpoint.secret
    return document


def _client(request):
    if not request.user.is_authenticated:
        raise NotAuthenticated()
    return request.user


def _endpoint_of(request, endpoint_id) -> WebhookEndpoint:
    endpoint = endpoints_for_owner(owner=_client(request)).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def _valid(serializer_class, request, **kwargs) -> dict:
    serializer = serializer_class(data=request.data, **kwargs)
    if not serializer.is_valid():
        raise InvalidBody(serializer.errors)
    return serializer.validated_data


CREATE_EXAMPLE = OpenApiExample(
    "Payments' outcomes",
    request_only=True,
    value={
        "url": "https://merchant.example.com/hooks/payments",
        "events": ["payment.succeeded", "payment.failed", "refund.succeeded"],
        "description": "order system",
    },
)


class WebhookEndpointsView(PrivateAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List your webhook endpoints (never their secrets)",
        responses={200: WebhookEndpointList, **LIST_ERRORS},
    )
    def get(self, request):
        endpoints = endpoints_for_owner(owner=_client(request))
        return Response({"results": [endpoint_payload(endpoint) for endpoint in endpoints]})

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Register a webhook endpoint (its secret is in this answer only)",
        request=WebhookEndpointCreateSerializer,
        examples=[CREATE_EXAMPLE],
        responses={
            201: WebhookEndpointWithSecretDocument,
            **LIST_ERRORS,
            **BODY_ERRORS,
            422: docs.problem(
                "Invalid fields: an unknown event, a URL that is not https or resolves to a private address, or "
                f"already {MAX_ENDPOINTS_PER_CLIENT} endpoints",
                "validation_error",
                422,
            ),
        },
    )
    def post(self, request):
        client = _client(request)
        data = _valid(WebhookEndpointCreateSerializer, request)
        if endpoints_for_owner(owner=client).count() >= MAX_ENDPOINTS_PER_CLIENT:
            raise InvalidBody({"non_field_errors": [f"At most {MAX_ENDPOINTS_PER_CLIENT} endpoints per client."]})
        try:
            endpoint = endpoint_create(owner=client, **data)
        except AddressRefused as refused:  # the address changed between the serializer's check and ours
            raise InvalidBody({"url": [str(refused)]}) from refused
        return Response(endpoint_payload(endpoint, with_secret=True), status=http.HTTP_201_CREATED)


class WebhookEndpointDetailView(PrivateAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="A webhook endpoint (never its secret)",
        parameters=[ENDPOINT_ID],
        responses={200: WebhookEndpointDocument, **ERRORS},
    )
    def get(self, request, endpoint_id):
        return Response(endpoint_payload(_endpoint_of(request, endpoint_id)))

    @extend_schema(
        operation_id="webhook_endpoints_update",
        summary="Change a webhook endpoint: enable or disable it, its events, URL or description",
        parameters=[ENDPOINT_ID],
        request=WebhookEndpointUpdateSerializer,
        responses={
            200: WebhookEndpointDocument,
            **ERRORS,
            **BODY_ERRORS,
            422: docs.problem("Invalid fields", "validation_error", 422),
        },
    )
    def patch(self, request, endpoint_id):
        endpoint = _endpoint_of(request, endpoint_id)
        changes = _valid(WebhookEndpointUpdateSerializer, request)
        try:
            endpoint = endpoint_update(endpoint=endpoint, **changes)
        except AddressRefused as refused:
            raise InvalidBody({"url": [str(refused)]}) from refused
        return Response(endpoint_payload(endpoint))

    @extend_schema(
        operation_id="webhook_endpoints_delete",
        summary="Delete a webhook endpoint: nothing more is sent to it",
        parameters=[ENDPOINT_ID],
        responses={204: OpenApiResponse(description="Deleted."), **ERRORS, 403: docs.CSRF_FAILED},
    )
    def delete(self, request, endpoint_id):
        endpoint_delete(endpoint=_endpoint_of(request, endpoint_id))
        return Response(status=http.HTTP_204_NO_CONTENT)


class WebhookEndpointRotateView(PrivateAPIView):
    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="A new secret (in this answer only); the old one keeps signing for 24 hours",
        parameters=[ENDPOINT_ID],
        request=None,
        responses={
            200: WebhookEndpointWithSecretDocument,
            **ERRORS,
            **BODY_ERRORS,
            422: docs.problem("A body was sent: rotating takes none", "validation_error", 422),
        },
    )
    def post(self, request, endpoint_id):
        endpoint = _endpoint_of(request, endpoint_id)
        if request.data:
            raise InvalidBody({"non_field_errors": ["Rotating takes no body (or an empty JSON object)."]})
        endpoint = endpoint_secret_rotate(endpoint=endpoint)
        return Response(endpoint_payload(endpoint, with_secret=True))


def openapi_links_hook(result, generator, request, public):
    """OpenAPI links from a created endpoint to every operation on it: clients' tools (and schemathesis' stateful
    tests) chain the create's `id` into them; the rotate action's would not be inferred from its path alone."""
    create = result.get("paths", {}).get("/api/v1/webhook-endpoints", {}).get("post")
    if create is not None:
        create["responses"]["201"]["links"] = {
            operation_id: {"operationId": operation_id, "parameters": {"endpoint_id": "$response.body#/id"}}
            for operation_id in (
                "webhook_endpoints_retrieve",
                "webhook_endpoints_update",
                "webhook_endpoints_delete",
                "webhook_endpoints_rotate_secret",
            )
        }
    return result
