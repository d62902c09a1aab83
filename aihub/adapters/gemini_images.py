"""Google's images: Imagen (`:predict`) and Gemini's image output (`:generateContent`): the GeminiAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaFile, Upstream

if TYPE_CHECKING:
    from aihub.adapters.gemini import GeminiAdapter


async def images(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    raise NotImplementedError


async def image_edit(
    adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None
) -> dict[str, Any]:
    raise NotImplementedError
