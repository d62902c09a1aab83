"""`POST /v1/messages/count_tokens` (and `/v1/ai/messages/count_tokens`): how many input tokens a
Messages request would be, on any model.

The plan's model checks apply (404 unknown, 403 outside the plan) but nothing is reserved or billed:
a count is free on Anthropic's API too. A model with an Anthropic deployment asks it (the request as
the client sent it, its `anthropic-version` / `anthropic-beta` passed on), with the pipeline's retries
and fail-over; every other model, or Anthropic unreachable, gets City's own count: the input of
aihub/estimate.py's worst case of the request, the count plans reserve by (exact for OpenAI's o200k
models, an upper estimate for others).
"""

import logging
from typing import Any

from aihub.adapters import adapter_for
from aihub.adapters.base import Upstream, UpstreamError
from aihub.attempts import first_success
from aihub.catalog_types import OPENAI, TEXT
from aihub.estimate import worst_messages
from aihub.metering import Meter
from aihub.pipeline import precheck
from aihub.streaming import api_error
from aihub.upstreams import known_model
from city.calls import Call

log = logging.getLogger("aihub.messages_count")

NATIVE = "anthropic"  # the adapter whose provider counts Messages requests itself
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")
CITY_FIELDS = ("studio_id",)  # City's own request fields, never sent upstream


async def count_tokens(call: Call) -> dict[str, Any]:
    body = {key: value for key, value in call.data.items() if key not in CITY_FIELDS}
    upstreams = await precheck(call, body.get("model"), (OPENAI, TEXT))
    model = known_model(body["model"])
    native = [up for up in upstreams if up.adapter == NATIVE]
    if native:
        headers = {name: value for name in PASSED_HEADERS if (value := call.request.headers.get(name, "").strip())}
        # A meter only names the deployment tried; it is never finished, so the count leaves no usage record.
        meter = Meter(call, call.studio_id(), model, "count_tokens", ceiling=(0, 0))

        async def attempt(upstream: Upstream) -> dict[str, Any]:
            return await adapter_for(upstream).count_tokens(upstream, {**body, "model": upstream.model}, headers)

        try:
            counted = await first_success(native, attempt, meter)
            return {"input_tokens": counted["input_tokens"]}
        except UpstreamError as exc:
            if exc.status < 500:
                raise api_error(exc) from None  # the request's own fault, in Anthropic's words
            log.warning("count_tokens: %s failed (%s); answering City's count", meter.provider, exc.message)
    return {"input_tokens": worst_messages(model, body).input_tokens}
