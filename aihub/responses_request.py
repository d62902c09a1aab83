"""What `POST /v1/responses` takes: OpenAI's CreateResponse request, checked field by field (a 400
naming the first wrong field). Owned by the Responses work (issue 11)."""

from typing import Any

from city.inputs import PassedOn

# The action's declared input (the action also serves GET and DELETE, which check their own query):
# it describes the create request for GET /v1/openapi.json; `create` checks it (see check_request).
RESPONSES_INPUT = PassedOn({"model": {"type": "string"}, "input": {"type": ["string", "array"]}}, ())


def check_request(data: dict[str, Any]) -> dict[str, Any]:
    """The create request as sent, or ApiError 400 naming the first wrong field."""
    raise NotImplementedError
