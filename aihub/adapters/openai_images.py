"""OpenAI images/generations and images/edits (also any OpenAI-compatible host): the OpenAICompatAdapter
methods of these names delegate here.

Generations go as JSON, with `model` the upstream's name; edits as multipart/form-data exactly as
OpenAI's API takes them: one image as `image`, several as repeated `image[]`, the mask as `mask`,
every other field a string. The answer is OpenAI's images response as the upstream sent it.
"""

from typing import TYPE_CHECKING, Any

import httpx
import orjson

from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import MediaFile, Upstream, error_from_response, error_from_transport

if TYPE_CHECKING:
    from aihub.adapters.openai_compat import OpenAICompatAdapter


async def images(adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any]) -> dict[str, Any]:
    return await adapter._post(upstream, "/images/generations", {**body, "model": upstream.model})


async def image_edit(
    adapter: "OpenAICompatAdapter", upstream: Upstream, body: dict[str, Any], images: list[MediaFile], mask: MediaFile | None
) -> dict[str, Any]:
    fields = {name: form_value(value) for name, value in {**body, "model": upstream.model}.items() if value is not None}
    name = "image" if len(images) == 1 else "image[]"
    files = [(name, (image.name, image.data, image.content_type)) for image in images]
    if mask is not None:
        files.append(("mask", (mask.name, mask.data, mask.content_type)))
    headers = {"Accept": "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    try:
        response = await adapter.client.post(upstream.base_url + "/images/edits", data=fields, files=files, headers=headers)
    except httpx.HTTPError as exc:
        raise error_from_transport(exc, upstream.provider) from None
    if response.status_code >= 400:
        raise error_from_response(response.status_code, response.content, upstream.provider)
    return oa.json_of(response.content, upstream.provider)


def form_value(value: Any) -> str:
    """A field as a form sends it: strings as they are, numbers as digits, booleans as OpenAI's SDK writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()
