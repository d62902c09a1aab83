"""OpenAI audio/transcriptions and audio/translations: the OpenAICompatAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaFile, Upstream

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter


async def transcribe(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
    raise NotImplementedError


async def translate(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], audio: MediaFile) -> dict[str, Any]:
    raise NotImplementedError
