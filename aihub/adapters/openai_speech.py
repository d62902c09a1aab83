"""OpenAI audio/speech: the OpenAICompatAdapter methods of these names delegate here.

`POST {base}/audio/speech` `{model, input, voice, response_format, speed, instructions?,
stream_format?}` answers the audio itself (or, with `stream_format: "sse"`, OpenAI's speech events). The answer is opened, its status checked (an error is read and raised as
UpstreamError, so that retries and fail-over happen before any byte reaches City's client), and
handed back as a MediaStream whose chunks are relayed as they arrive.
"""

from typing import TYPE_CHECKING, Any

import orjson

from aihub.adapters.base import MediaStream, Upstream
from aihub.adapters.media_stream import opened

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter

# OpenAI's speech fields; anything else in the body is City's own and stays here.
SPEECH_FIELDS = ("input", "voice", "response_format", "speed", "instructions", "stream_format")


async def speech(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> MediaStream:
    payload = {name: body[name] for name in SPEECH_FIELDS if body.get(name) is not None}
    payload["model"] = upstream.model
    headers = {**adapter.headers(upstream), "Accept": "*/*"}
    request = adapter.client.build_request("POST", upstream.base_url + "/audio/speech", content=orjson.dumps(payload), headers=headers)
    return await opened(adapter.client, request, upstream.provider)
