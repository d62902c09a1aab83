"""The Anthropic Messages API, `/v1/messages` (and `/v1/ai/messages`) and `/v1/messages/count_tokens`,
onto every provider: errors in Anthropic's shape, City's token also accepted in `x-api-key`.

An Anthropic upstream gets the request as the client sent it (cache_control, thinking signatures,
betas unchanged); every other provider through translation to OpenAI chat (aihub/messages_translate.py,
aihub/messages_events.py). Owned by the Messages work (issue 11).
"""

from django.http import HttpResponseBase

from aihub import messages_count
from aihub.anthropic_errors import anthropic_error_response
from city.calls import Call
from city.errors import ApiError
from city.inputs import PassedOn
from city.registry import USER, Action

JSON, SSE = "application/json", "text/event-stream"

MESSAGES_INPUT = PassedOn({"model": {"type": "string"}, "messages": {"type": "array"}, "max_tokens": {"type": "integer"}}, ())
COUNT_TOKENS_INPUT = PassedOn({"model": {"type": "string"}, "messages": {"type": "array"}}, ())


async def messages(call: Call) -> HttpResponseBase:
    raise ApiError(501, "The Messages API is being built.", code="not_implemented")


ACTIONS: tuple[Action, ...] = (
    Action(
        "messages",
        messages,
        allow=(USER,),
        large_body=True,
        input=MESSAGES_INPUT,
        api_key_header=True,
        error_response=anthropic_error_response,
        description="Anthropic's Messages API on every model, streaming included; the token in x-api-key or as a bearer.",
        responds=(JSON, SSE),
    ),
    Action(
        "messages/count_tokens",
        messages_count.count_tokens,
        allow=(USER,),
        large_body=True,
        input=COUNT_TOKENS_INPUT,
        api_key_header=True,
        error_response=anthropic_error_response,
        description="Anthropic's token count of a Messages request, on every model.",
    ),
)
ALIASES: dict[str, str] = {"messages": "messages", "messages/count_tokens": "messages/count_tokens"}
