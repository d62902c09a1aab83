"""OpenAI images/generations and images/edits (also any OpenAI-compatible host): the OpenAICompatAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaFile, Upstream

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter


async def images(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    raise NotImplementedError


async def image_edit(
    adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None
) -> dict[str, Any]:
    raise NotImplementedError
