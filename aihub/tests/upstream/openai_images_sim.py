"""OpenAI images: POST /images/generations (JSON) and /images/edits (multipart), mixed into the provider's simulator.

Checked as OpenAI's API reference states them (platform.openai.com/docs/api-reference/images): a
bearer key; a known model; a prompt within the model's length; `n` (1–10, dall-e-3 only 1); the
model's sizes and qualities; `response_format` on DALL·E only (the GPT image models always answer
base64 and refuse it); edits as multipart/form-data with `image` (or `image[]`, up to 16 png, jpeg or
webp files) and an optional png `mask`, for the GPT image models only. Answers carry small real PNGs,
`usage` for the GPT image models (tokens by OpenAI's table), and for DALL·E a `url` (served by this
simulator at /images/files/…) and a `revised_prompt`.
"""

from __future__ import annotations

import base64
import struct
import zlib
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from aihub.tests.upstream.sim import Received, Reply

CREATED = 1_767_225_600
GPT_IMAGE_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5")
SIZES = {
    "gpt-image": ("1024x1024", "1024x1536", "1536x1024", "auto"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
}
QUALITIES = {"gpt-image": ("low", "medium", "high", "auto"), "dall-e-3": ("standard", "hd", "auto")}
# OpenAI's image generation guide: output tokens of one image by quality and size ("auto" is high, square).
OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272,
    ("medium", "1024x1024"): 1056,
    ("high", "1024x1024"): 4160,
    ("low", "1024x1536"): 408,
    ("medium", "1024x1536"): 1584,
    ("high", "1024x1536"): 6240,
    ("low", "1536x1024"): 408,
    ("medium", "1536x1024"): 1584,
    ("high", "1536x1024"): 6240,
}
IMAGE_INPUT_TOKENS = 323  # what the simulator reports for each input image of an edit
PROMPT_LIMITS = {"gpt-image": 32_000, "dall-e-3": 4_000}


def tiny_png(red: int = 200, green: int = 80, blue: int = 40, size: int = 2) -> bytes:
    """A valid `size`×`size` RGB PNG of one colour, built by hand (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    rows = b"".join(b"\x00" + bytes((red, green, blue)) * size for _ in range(size))  # filter 0 on each row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = tiny_png()
PNG_B64 = base64.b64encode(PNG).decode("ascii")


class FormPart:
    def __init__(self, name: str, filename: str | None, content_type: str, data: bytes) -> None:
        self.name, self.filename, self.content_type, self.data = name, filename, content_type, data


def parse_form(request: Received) -> list[FormPart] | None:
    """A multipart/form-data body's parts in order (None when the body is not one), read with the stdlib."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data") or "boundary=" not in content_type:
        return None
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body)
    if not message.is_multipart():
        return None
    parts = []
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts.append(FormPart(str(name), part.get_filename(), part.get_content_type(), payload if isinstance(payload, bytes) else b""))
    return parts


def _family(model: str) -> str:
    return "gpt-image" if model in GPT_IMAGE_MODELS else model


def _sniff(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code


def _error(problem: InvalidRequest) -> Reply:
    code = "invalid_api_key" if problem.status == 401 else problem.code
    error = {"message": problem.message, "type": "invalid_request_error", "param": problem.param, "code": code}
    return Reply.json({"error": error}, status=problem.status)


class ImagesRoutes:
    """The images routes of OpenAI's simulator (tests read an edit's form with `parse_form(sim.last_request)`)."""

    def images_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        path = request.path.rstrip("/")
        if request.method == "GET" and "/images/files/" in path:
            return Reply(body=PNG, content_type="image/png")
        if request.method != "POST" or not (path.endswith("/images/generations") or path.endswith("/images/edits")):
            return None
        try:
            if not request.headers.get("authorization", "").startswith("Bearer "):
                raise InvalidRequest(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth.",
                    status=401,
                )
            if path.endswith("/images/generations"):
                if request.headers.get("content-type", "").split(";")[0] != "application/json" or not isinstance(request.json, dict):
                    raise InvalidRequest("We could not parse the JSON body of your request.")
                fields: dict[str, Any] = dict(request.json)
                files: dict[str, list[FormPart]] = {}
            else:
                fields, files = self._edit_form(request)
            return Reply.json(self._generate(fields, edit=path.endswith("/images/edits"), files=files, base=_base_of(request, path)))
        except InvalidRequest as problem:
            return _error(problem)

    def _edit_form(self, request: Received) -> tuple[dict[str, Any], dict[str, list[FormPart]]]:
        parts = parse_form(request)
        if parts is None:
            raise InvalidRequest("Invalid Content-Type header (expected multipart/form-data with a boundary).")
        fields: dict[str, Any] = {}
        files: dict[str, list[FormPart]] = {}
        for part in parts:
            if part.filename is not None:
                files.setdefault(part.name, []).append(part)
            else:
                fields[part.name] = part.data.decode()
        if "image" in files and "image[]" in files:
            raise InvalidRequest("Send the images as image or as image[], not both.", "image")
        images = files.get("image", []) + files.get("image[]", [])
        if not images:
            raise InvalidRequest("Missing required parameter: 'image'.", "image")
        if len(images) > 16:
            raise InvalidRequest("Too many images: at most 16.", "image")
        for image in images:
            if _sniff(image.data) is None:
                raise InvalidRequest(f"Invalid image file or mode for image '{image.filename}'; use png, webp or jpeg.", "image")
        for mask in files.get("mask", []):
            if _sniff(mask.data) != "png":
                raise InvalidRequest("Invalid mask image format - mask image must be a PNG.", "mask")
        if "n" in fields:
            try:
                fields["n"] = int(fields["n"])
            except ValueError:
                raise InvalidRequest(f"Invalid type for 'n': expected an integer, but got a string '{fields['n']}'.", "n") from None
        return fields, {"image": images, "mask": files.get("mask", [])}

    def _generate(self, fields: dict[str, Any], *, edit: bool, files: dict[str, list[FormPart]], base: str) -> dict[str, Any]:
        model = fields.get("model") or "dall-e-2"
        family = _family(model)
        if family not in SIZES:
            raise InvalidRequest(f"Invalid model {model}. The model must be one of the image models.", "model", code="invalid_value")
        if edit and family != "gpt-image":
            raise InvalidRequest(f"Image edits are not supported for {model}.", "model", code="invalid_value")
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise InvalidRequest("Missing required parameter: 'prompt'.", "prompt")
        if len(prompt) > PROMPT_LIMITS[family]:
            raise InvalidRequest(
                f"Invalid 'prompt': string too long. Expected a string with maximum length {PROMPT_LIMITS[family]}.",
                "prompt",
                code="string_above_max_length",
            )
        n = fields.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= (1 if family == "dall-e-3" else 10):
            raise InvalidRequest(f"Invalid 'n': {n} is not supported for {model}.", "n", code="invalid_value")
        size = fields.get("size") or ("auto" if family == "gpt-image" else "1024x1024")
        if size not in SIZES[family]:
            raise InvalidRequest(
                f"Invalid value: '{size}'. Supported values are: {', '.join(SIZES[family])}.", "size", code="invalid_value"
            )
        quality = fields.get("quality") or "auto"
        if quality not in QUALITIES[family]:
            raise InvalidRequest(f"Invalid value: '{quality}'.", "quality", code="invalid_value")
        response_format = fields.get("response_format")
        if family == "gpt-image" and response_format is not None:
            raise InvalidRequest("Unknown parameter: 'response_format'.", "response_format", code="unknown_parameter")
        if family == "dall-e-3":
            for name in ("background", "output_format", "output_compression", "moderation"):
                if name in fields:
                    raise InvalidRequest(f"Unknown parameter: '{name}'.", name, code="unknown_parameter")
            made = {"url": f"{base}/images/files/img-0.png"} if (response_format or "url") == "url" else {"b64_json": PNG_B64}
            return {"created": CREATED, "data": [{**made, "revised_prompt": f"A picture: {prompt}"}]}
        quality = "high" if quality == "auto" else quality
        size = "1024x1024" if size == "auto" else size
        images = len(files.get("image", []))
        text_tokens = max(1, len(prompt) // 4)
        image_tokens = IMAGE_INPUT_TOKENS * images
        output = OUTPUT_TOKENS[(quality, size)] * n
        return {
            "created": CREATED,
            "background": "opaque" if fields.get("background") != "transparent" else "transparent",
            "data": [{"b64_json": PNG_B64} for _ in range(n)],
            "output_format": fields.get("output_format") or "png",
            "quality": quality,
            "size": size,
            "usage": {
                "input_tokens": text_tokens + image_tokens,
                "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
                "output_tokens": output,
                "total_tokens": text_tokens + image_tokens + output,
            },
        }


def _base_of(request: Received, path: str) -> str:
    host = request.headers.get("host", "127.0.0.1")
    prefix = path.rsplit("/images/", 1)[0]
    return f"http://{host}{prefix}"
