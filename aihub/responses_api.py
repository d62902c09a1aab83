"""The OpenAI Responses API, `/v1/responses` (and `/v1/ai/responses`), onto every provider.

One action serves the resource: `POST /responses` creates (aihub/responses_create.py: the request
translated to what the chosen upstream speaks), `GET /responses/{id}`, `DELETE /responses/{id}` and
`GET /responses/{id}/input_items` read and delete stored responses (aihub/responses_store.py).
"""

from typing import Any

from django.http import HttpResponseBase

from aihub import responses_create, responses_store
from aihub.responses_request import RESPONSES_INPUT
from city.calls import Call
from city.errors import ApiError
from city.registry import USER, Action

JSON, SSE = "application/json", "text/event-stream"


async def responses(call: Call) -> HttpResponseBase | dict[str, Any]:
    """/v1/ai/responses[/{id}[/input_items | /cancel]]: OpenAI's responses resource."""
    method, parts = call.request.method, [p for p in call.subpath.split("/") if p]
    if not parts and method == "POST":
        return await responses_create.create(call)
    if len(parts) == 1 and method == "GET":
        return await responses_store.retrieve(call, parts[0])
    if len(parts) == 1 and method == "DELETE":
        return await responses_store.delete(call, parts[0])
    if len(parts) == 2 and parts[1] == "input_items" and method == "GET":
        return await responses_store.input_items(call, parts[0])
    if len(parts) == 2 and parts[1] == "cancel" and method == "POST":
        return await responses_store.cancel(call, parts[0])
    raise ApiError(404, f"No such route: {method} /v1/responses/{call.subpath}.".replace("responses/.", "responses."), code="unknown_route")


ACTIONS: tuple[Action, ...] = (
    Action(
        "responses",
        responses,
        methods=("GET", "POST", "DELETE"),
        allow=(USER,),
        large_body=True,
        input=RESPONSES_INPUT,
        subpaths=True,
        description="OpenAI's Responses API on every model: create (streaming included), /responses/{id} retrieve and delete, "
        "/responses/{id}/input_items.",
        responds=(JSON, SSE),
    ),
)
ALIASES: dict[str, str] = {"responses": "responses"}
