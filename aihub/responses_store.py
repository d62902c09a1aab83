"""Stored responses (aihub/models_responses.py): save, the conversation behind a
`previous_response_id`, and the GET / DELETE / input_items routes. Owned by the Responses work (issue 11)."""

from typing import Any

from city.calls import Call
from city.errors import ApiError


async def save(
    studio_id: str, token_id: str | None, response: dict[str, Any], input_items: list[dict[str, Any]], previous_response_id: str | None
) -> None:
    """Keep a finished response (completed, incomplete or failed) and its own request's input items."""
    raise NotImplementedError


async def history(studio_id: str, previous_response_id: str) -> list[dict[str, Any]]:
    """The conversation up to and including that response, as Responses input items in order (each
    earlier request's input items, then its output items). ApiError 404 (param previous_response_id)
    when it is not this studio's, was deleted or has expired."""
    raise NotImplementedError


async def retrieve(call: Call, response_id: str) -> dict[str, Any]:
    raise ApiError(404, f"No response '{response_id}'.", code="not_found")


async def delete(call: Call, response_id: str) -> dict[str, Any]:
    raise ApiError(404, f"No response '{response_id}'.", code="not_found")


async def input_items(call: Call, response_id: str) -> dict[str, Any]:
    raise ApiError(404, f"No response '{response_id}'.", code="not_found")


async def cancel(call: Call, response_id: str) -> dict[str, Any]:
    raise ApiError(404, f"No response '{response_id}'.", code="not_found")
