"""How the API picks the answer's representation: DRF's negotiation, with an unknown `?format=` a 406."""

from __future__ import annotations

from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    def filter_renderers(self, renderers, format):
        """`?format=xml` asks for a representation the API does not have: that is Not Acceptable, as the same ask
        in an Accept header is. DRF raises Http404 there, which made every operation answer a 404 it does not
        document (and, before infrastructure.problems read Django's Http404, a 500)."""
        try:
            return super().filter_renderers(renderers, format)
        except Http404:
            raise NotAcceptable(f"No representation for format {format!r}; this API answers JSON.") from None
