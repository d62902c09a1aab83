"""`POST /v1/messages/count_tokens`: Anthropic's own count on an Anthropic upstream, City's count
elsewhere. Owned by the Messages work (issue 11)."""

from typing import Any

from city.calls import Call
from city.errors import ApiError


async def count_tokens(call: Call) -> dict[str, Any]:
    raise ApiError(501, "count_tokens is being built.", code="not_implemented")
