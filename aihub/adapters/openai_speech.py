"""OpenAI audio/speech: the OpenAICompatAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaStream, Upstream

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter


async def speech(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> MediaStream:
    raise NotImplementedError
