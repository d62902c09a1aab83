"""Google's Veo: `:predictLongRunning`, the operation polled, the video downloaded: the GeminiAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaFile, MediaStream, Upstream

if TYPE_CHECKING:
    from aihub.adapters.gemini import GeminiAdapter


async def video_create(adapter: "GeminiAdapter", upstream: Upstream, body: dict[str, Any], reference: MediaFile | None) -> dict[str, Any]:
    raise NotImplementedError


async def video_status(adapter: "GeminiAdapter", upstream: Upstream, upstream_id: str) -> dict[str, Any]:
    raise NotImplementedError


async def video_content(adapter: "GeminiAdapter", upstream: Upstream, upstream_id: str) -> MediaStream:
    raise NotImplementedError
