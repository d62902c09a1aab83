"""Image requests: their shape (the routes' InputSpecs), what each model takes (aihub/catalog_images.py
ImageRules), the files an edit sends, the worst case reserved, and the usage a call is billed.

Checked in that order, all before `admit` counts anything: a refused request changes nothing.
"""

import logging
import re
from dataclasses import dataclass
from typing import Any

from aihub.adapters.base import MediaFile
from aihub.catalog_images import GEMINI_IMAGE_OUTPUT_TOKENS, GPT_IMAGE_OUTPUT_TOKENS, IMAGE_INPUT_PRICES, MB, ImageRules
from aihub.catalog_types import Model
from aihub.estimate import Worst, count_tokens, counting_roughly, worst_media
from aihub.metering import Meter
from city.errors import ApiError

log = logging.getLogger("aihub.images")

# Fields by route: City's /v1/ai/image, and OpenAI's images/generations and images/edits.
STRING_FIELDS = {
    "model",
    "prompt",
    "size",
    "quality",
    "background",
    "output_format",
    "moderation",
    "style",
    "user",
    "safety_identifier",
    "response_format",
    "input_fidelity",
    "person_generation",
    "studio_id",
}
INTEGER_FIELDS = {"n", "output_compression"}
CITY_FIELDS = frozenset(
    {"model", "prompt", "size", "n", "quality", "background", "output_format", "output_compression", "style", "response_format"}
    | {"person_generation", "studio_id"}
)
GENERATION_FIELDS = frozenset(
    {"model", "prompt", "size", "n", "quality", "background", "output_format", "output_compression", "moderation", "style", "user"}
    | {"response_format", "safety_identifier", "person_generation", "stream", "studio_id"}
)
EDIT_FIELDS = (GENERATION_FIELDS | {"input_fidelity"}) - {"style", "moderation"}
# Files an edit takes: the images (`image`, or `image[]` as the SDKs send several) and a mask.
EDIT_FILES = ("image", "mask")
# Request fields every image model takes; the others only where its ImageRules lists them.
ALWAYS = frozenset({"model", "prompt", "n", "size", "quality", "studio_id", "stream"})
CHOICES: dict[str, tuple[str, ...]] = {
    "moderation": ("low", "auto"),
    "input_fidelity": ("high", "low"),
    "person_generation": ("dont_allow", "allow_adult", "allow_all"),
}
MAX_IMAGES = 16  # images one edit takes (OpenAI's limit for the GPT image models)
# Input tokens reserved for one input image. GPT image: 85 + 8 tiles × 170 (OpenAI's high-detail
# vision maximum), and 6,240 more at `input_fidelity: high` (a landscape image at high fidelity).
# Gemini: 24 tiles of 768 px at 258 tokens (a 4K photo). Each call settles at what the upstream reports.
GPT_IMAGE_INPUT_TOKENS = 1_445
GPT_IMAGE_HIGH_FIDELITY_TOKENS = 6_240
GEMINI_IMAGE_INPUT_TOKENS = 24 * 258

PNG, JPEG, WEBP = "image/png", "image/jpeg", "image/webp"
FORM_INTEGER = re.compile(r"-?[0-9]{1,9}")


class ImageInput:
    """The input spec of one image route: known fields of the right types (a form's strings coerced),
    anything else refused naming it. What a model takes is checked once the model is known (check)."""

    def __init__(self, title: str, fields: frozenset[str], description: str) -> None:
        self.title, self.fields, self.description = title, fields, description

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in data.items():
            if name not in self.fields:
                raise ApiError(
                    400,
                    f"{name} is not a field of this route; it takes {', '.join(sorted(self.fields))}.",
                    param=name,
                    code="unknown_field",
                )
            if value is None:
                continue
            out[name] = _typed(name, value)
        for name in ("model", "prompt"):
            if not out.get(name):
                raise ApiError(400, f"{name} is required.", param=name, code="missing_field")
        if out.get("stream") is True:
            raise ApiError(400, "stream is not supported: City answers images whole.", param="stream", code="unsupported_parameter")
        out.pop("stream", None)
        return out

    def json_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for name in sorted(self.fields):
            kind = "integer" if name in INTEGER_FIELDS else "boolean" if name == "stream" else "string"
            properties[name] = {"type": kind}
        properties["prompt"]["maxLength"] = 32_000
        properties["n"].update(minimum=1, maximum=10)
        return {
            "title": self.title,
            "description": self.description,
            "type": "object",
            "properties": properties,
            "required": ["model", "prompt"],
            "additionalProperties": False,
        }


def _typed(name: str, value: Any) -> Any:
    if name in INTEGER_FIELDS:
        if isinstance(value, str) and FORM_INTEGER.fullmatch(value.strip()):
            value = int(value)  # ASCII digits only: str.isdigit() also passes "²", which int() refuses
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, f"{name} must be an integer.", param=name, code="invalid_type")
        return value
    if name == "stream":
        if value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise ApiError(400, "stream must be true or false.", param=name, code="invalid_type")
        return value
    if not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string.", param=name, code="invalid_type")
    return value


def _one_of(name: str, value: Any, allowed: tuple[str, ...], model: Model) -> None:
    if value is not None and value not in allowed:
        raise ApiError(
            400, f"{name} '{value}' is not one '{model.id}' takes; it takes {', '.join(allowed)}.", param=name, code="invalid_value"
        )


def check(model: Model, rules: ImageRules, data: dict[str, Any], *, edit: bool = False) -> None:
    """What this model takes; raises a 400 naming the first field it does not."""
    if edit and not rules.edits:
        raise ApiError(400, f"The model '{model.id}' makes images but does not edit them.", param="model", code="unsupported_model")
    for name in data:
        if name not in ALWAYS and name not in rules.fields:
            raise ApiError(400, f"{name} is not supported by '{model.id}'.", param=name, code="unsupported_parameter")
    if len(data["prompt"]) > rules.prompt_chars:
        raise ApiError(
            400,
            f"prompt is {len(data['prompt']):,} characters; '{model.id}' takes at most {rules.prompt_chars:,}.",
            param="prompt",
            code="string_above_max_length",
        )
    n = data.get("n", 1)
    if not 1 <= n <= rules.max_n:
        most = "only n=1" if rules.max_n == 1 else f"n from 1 to {rules.max_n}"
        raise ApiError(400, f"n must be within what '{model.id}' makes: {most}.", param="n", code="invalid_value")
    _one_of("size", data.get("size"), rules.sizes, model)
    _one_of("quality", data.get("quality"), rules.qualities, model)
    _one_of("background", data.get("background"), rules.backgrounds, model)
    _one_of("output_format", data.get("output_format"), rules.output_formats, model)
    _one_of("response_format", data.get("response_format"), rules.response_formats, model)
    _one_of("style", data.get("style"), rules.styles, model)
    for name, allowed in CHOICES.items():
        _one_of(name, data.get(name), allowed, model)
    compression = data.get("output_compression")
    if compression is not None and not 0 <= compression <= 100:
        raise ApiError(400, "output_compression must be from 0 to 100.", param="output_compression", code="invalid_value")
    if data.get("background") == "transparent" and data.get("output_format") == "jpeg":
        raise ApiError(400, "A transparent background needs output_format png or webp.", param="background", code="invalid_value")


# --- Files an edit sends ------------------------------------------------------------------------


def sniffed_type(data: bytes) -> str | None:
    """The image type from the file's first bytes (a client's content type or extension may be wrong)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


@dataclass
class Upload:
    """An uploaded file as the route received it: its name, size and (read on a worker thread) bytes."""

    field: str
    name: str
    size: int
    data: bytes


def check_uploads(model: Model, rules: ImageRules, uploads: list[Upload]) -> tuple[list[MediaFile], MediaFile | None]:
    """The edit's images and mask, checked: count, size (each and together), type; a 4xx naming the limit."""
    check_sizes(model, rules, uploads)
    return typed_files(model, rules, uploads)


def check_sizes(model: Model, rules: ImageRules, uploads: list[Upload]) -> None:
    """The count and sizes of an edit's files, which need none of their bytes: checked before any is read."""
    images = [u for u in uploads if u.field == "image"]
    masks = [u for u in uploads if u.field == "mask"]
    if not images:
        raise ApiError(400, "image is required: one to 16 png, jpeg or webp files.", param="image", code="missing_field")
    if len(images) > MAX_IMAGES:
        raise ApiError(400, f"{len(images)} images sent; an edit takes at most {MAX_IMAGES}.", param="image", code="too_many_files")
    if len(masks) > 1:
        raise ApiError(400, "Send one mask at most.", param="mask", code="too_many_files")
    limit_mb = rules.max_file_bytes // MB
    for upload in images + masks:
        if upload.size > rules.max_file_bytes:
            raise ApiError(
                413,
                f"The file '{upload.name}' ({upload.field}) is {upload.size:,} bytes, over the {limit_mb} MB limit of '{model.id}' for each image.",
                param=upload.field,
                code="file_too_large",
            )
    total = sum(u.size for u in images + masks)
    if rules.max_total_bytes and total > rules.max_total_bytes:
        raise ApiError(
            413,
            f"The files are {total:,} bytes together, over the {rules.max_total_bytes // MB} MB limit of '{model.id}' for one request.",
            param="image",
            code="file_too_large",
        )


def typed_files(model: Model, rules: ImageRules, uploads: list[Upload]) -> tuple[list[MediaFile], MediaFile | None]:
    """The edit's files as read, typed by their first bytes (not by the name or type the client gave)."""
    images = [u for u in uploads if u.field == "image"]
    masks = [u for u in uploads if u.field == "mask"]
    files = []
    for upload in images:
        kind = sniffed_type(upload.data)
        if kind is None:
            raise ApiError(
                400,
                f"The file '{upload.name}' is not a png, jpeg or webp image.",
                param="image",
                code="unsupported_file_type",
            )
        files.append(MediaFile(upload.name, upload.data, kind))
    mask = None
    if masks:
        if rules.family != "gpt-image":
            raise ApiError(
                400, f"'{model.id}' takes no mask: describe the change in the prompt.", param="mask", code="unsupported_parameter"
            )
        if sniffed_type(masks[0].data) != PNG:
            raise ApiError(400, f"The mask '{masks[0].name}' must be a png image.", param="mask", code="unsupported_file_type")
        mask = MediaFile(masks[0].name, masks[0].data, PNG)
    return files, mask


# --- Worst case and billing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pricing:
    """How a call is billed, fixed when it is admitted: its worst case, and what City bills when the
    upstream reports no usage (output tokens per image made; the input as reserved)."""

    worst: Worst
    output_per_image: int = 0


def gpt_image_output_tokens(data: dict[str, Any]) -> int:
    quality = data.get("quality") or "auto"
    quality = "high" if quality == "auto" else quality
    size = data.get("size") or "auto"
    sizes = ("1024x1024", "1024x1536", "1536x1024") if size == "auto" else (size,)
    return max(GPT_IMAGE_OUTPUT_TOKENS[(quality, s)] for s in sizes)


def image_input_tokens(model: Model, image_tokens: int) -> int:
    """Image input tokens as the text input tokens that cost the same (the catalog's docstring)."""
    num, den = IMAGE_INPUT_PRICES.get(model.id, (1, 1))
    return -(-image_tokens * num // den)


def pricing(model: Model, rules: ImageRules, data: dict[str, Any], input_images: int = 0) -> Pricing:
    n = data.get("n", 1)
    if rules.family == "dall-e":
        quality = "hd" if data.get("quality") == "hd" else "standard"
        variant = f"{quality}/{data.get('size') or '1024x1024'}"
        return Pricing(worst_media(model, n, model.unit_prices.get(variant, model.unit_price)))
    if rules.family == "imagen":
        return Pricing(worst_media(model, n))
    if counting_roughly():
        # No plan caps or budgets this call, so the tokenizer stays unloaded (a second on a busy
        # event loop); but the bill never passes the reservation, and a quarter of the characters
        # would undercharge a CJK prompt. A token is at least one byte of UTF-8, in any tokenizer.
        text = len(data["prompt"].encode("utf-8"))
    else:
        text = count_tokens(model, data["prompt"])
    if rules.family == "gemini":
        image_tokens = input_images * GEMINI_IMAGE_INPUT_TOKENS
        per_image = GEMINI_IMAGE_OUTPUT_TOKENS
    else:
        fidelity = GPT_IMAGE_HIGH_FIDELITY_TOKENS if data.get("input_fidelity") == "high" else 0
        image_tokens = input_images * (GPT_IMAGE_INPUT_TOKENS + fidelity)
        per_image = gpt_image_output_tokens(data)
    input_tokens = text + image_input_tokens(model, image_tokens)
    return Pricing(worst_media(model, n, 0, input_tokens=input_tokens, output_tokens=per_image * n), per_image)


def images_made(answer: dict[str, Any]) -> list[dict[str, Any]]:
    data = answer.get("data")
    return [item for item in data if isinstance(item, dict) and (item.get("b64_json") or item.get("url"))] if isinstance(data, list) else []


def at_most(answer: dict[str, Any], n: int) -> dict[str, Any]:
    """The answer with the images asked for and no more: Gemini may make several in one answer,
    and City answers (and bills) the n the request reserved."""
    made = images_made(answer)
    if len(made) > n:
        answer = {**answer, "data": made[:n]}
    return answer


def bill(meter: Meter, model: Model, price: Pricing, answer: dict[str, Any], *, edit: bool) -> None:
    """Put what the call made on the meter: the images, and for token-priced models the upstream's
    token usage (image input at its own price), else City's count (the input as reserved, each image
    at its worst-case output). Never past the reservation: the budgets were checked against it, and
    an upstream can report more (a larger input image than reserved for, Gemini's text or thinking
    tokens, more images than asked), which City then bears rather than overrun a budget."""
    made = min(len(images_made(answer)), meter.worst_units)
    meter.units = made
    if not (model.input_price or model.output_price):
        return
    usage = answer.get("usage")
    input_tokens = usage.get("input_tokens") if isinstance(usage, dict) else None
    output_tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
    if _count(input_tokens) and isinstance(output_tokens, int) and output_tokens >= 0:
        assert isinstance(usage, dict) and isinstance(input_tokens, int)
        details = usage.get("input_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("image_tokens"), int):
            image = min(max(details["image_tokens"], 0), input_tokens)
        else:
            image = input_tokens if edit else 0  # no split given: an edit's input is taken as images, at their price
        prompt_tokens = input_tokens - image + image_input_tokens(model, image)
        meter.prompt_tokens, meter.completion_tokens = within_reservation(meter, model, prompt_tokens, output_tokens)
        meter.usage_estimated = False
        if (meter.prompt_tokens, meter.completion_tokens) != (prompt_tokens, output_tokens):
            log.warning(
                "call %s: %s reported %s input and %s output tokens, past the reservation (%s and %s); billed %s and %s",
                meter.call_id,
                model.id,
                prompt_tokens,
                output_tokens,
                *meter.ceiling,
                meter.prompt_tokens,
                meter.completion_tokens,
            )
        return
    meter.prompt_tokens = meter.ceiling[0]
    meter.completion_tokens = min(price.output_per_image * made, meter.ceiling[1])
    meter.usage_estimated = True


def within_reservation(meter: Meter, model: Model, prompt: int, completion: int) -> tuple[int, int]:
    """The upstream's tokens as reported while their cost (with the images) is within the reservation;
    past it, the output at most as reserved and the input what the rest of the reservation pays for."""
    reserved = meter.ceiling[0] * model.input_price + meter.ceiling[1] * model.output_price + meter.worst_units * meter.unit_price
    images = meter.units * meter.unit_price
    if prompt * model.input_price + completion * model.output_price + images <= reserved:
        return prompt, completion
    completion = min(completion, meter.ceiling[1])
    if model.input_price:
        prompt = min(prompt, (reserved - images - completion * model.output_price) // model.input_price)
    return prompt, completion


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def usage_shown(meter: Meter, answer: dict[str, Any]) -> dict[str, int]:
    """City's usage: the images made, and the upstream's own token counts where it gave them."""
    shown = {"images": meter.units}
    usage = answer.get("usage")
    if isinstance(usage, dict):
        for name in ("input_tokens", "output_tokens"):
            if _count(usage.get(name)):
                shown[name] = usage[name]
    return shown
