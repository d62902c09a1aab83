"""OpenAI's videos API (POST /videos, GET /videos/{id}, GET /videos/{id}/content), served by OpenAI-compatible video hosts: the OpenAICompatAdapter methods of these names delegate here."""

from typing import TYPE_CHECKING, Any

from aihub.adapters.base import MediaFile, MediaStream, Upstream

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter


async def video_create(
    adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], reference: MediaFile | None
) -> dict[str, Any]:
    raise NotImplementedError


async def video_status(adapter: "OpenAICompatAdapter", upstream: Upstream, upstream_id: str) -> dict[str, Any]:
    raise NotImplementedError


async def video_content(adapter: "OpenAICompatAdapter", upstream: Upstream, upstream_id: str) -> MediaStream:
    raise NotImplementedError
