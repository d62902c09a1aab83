"""`POST /v1/responses`: a Responses request through the one AI-call pipeline, onto any provider.
Owned by the Responses work (issue 11)."""

from django.http import HttpResponseBase

from city.calls import Call
from city.errors import ApiError


async def create(call: Call) -> HttpResponseBase:
    raise ApiError(501, "The Responses API is being built.", code="not_implemented")
