"""The worst-case cost of an AI call, worked out before any upstream call (plan caps, budgets, TPM).

Input tokens. OpenAI's models that use o200k_base (GPT-4o, GPT-4.1, GPT-5, the o-series: a
deployment whose provider is "openai", or an id starting gpt-, o1, o3, o4 or chatgpt) are counted
exactly as OpenAI counts a chat: 3 tokens per message, each field's text (1 more for a `name`), and 3
priming the reply; tool definitions, `tool_calls` and a JSON `response_format` count as their JSON
plus the cookbook's fixed cost of tools (12 a request, 7 a tool), which keeps the smallest tools
covered: past those, their JSON runs longer than the form OpenAI renders them in.
Every other model is an estimate: its o200k count × 1.25, rounded up, since Claude's and Gemini's
tokenizers (and cl100k_base, which OpenAI's older models and its embeddings use) run longer than
o200k on code and non-English text; Claude's tool-use system prompt (CLAUDE_TOOL_SYSTEM_PROMPT) is
added when a request has tools. The tokenizer is o200k_base bundled in aihub/tokenizer/
(checked against tiktoken's sha256 at load): counting never reaches the network.

Media, per part (the same for every model, never scaled):
- image: `detail: "low"` 85 tokens (OpenAI's fixed price); otherwise 1,600, which covers OpenAI's
  high detail up to 2048 px (85 + 8 tiles × 170 = 1,445), Claude's cap (~1,600) and Gemini's
  258 per tile. IMAGE_TOKENS overrides it for OpenAI models that bill images higher.
- audio (`input_audio`): 10 tokens a second (OpenAI's rate) of audio at 16 kbit/s or more:
  decoded bytes ÷ 200, rounded up.
- file (a PDF): 4,600 tokens a page (Claude's 1,500–3,000 text tokens plus ~1,600 for the page
  image), pages counted from the PDF's `/Type /Page` objects, and never under a token per 4 bytes;
  a file sent by id (no data here) counts as 10 pages.

Output tokens: `max_completion_tokens`, else `max_tokens`, else the model's max output
(DEFAULT_OUTPUT_TOKENS when the catalog gives none); on a model Claude serves, the value its adapter
sends (`reasoning_effort` raises it to make room for thinking); × `n` answers (× prompts for legacy
completions, × `best_of` when larger than `n`).

Cost: prices are micro-USD per million tokens, so tokens × price is in 1e-12 USD; Worst.cost is
that sum in micro-USD, rounded up.
"""

import base64
import binascii
import gzip
import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import tiktoken
from tiktoken_ext.openai_public import ENDOFPROMPT, ENDOFTEXT

from aihub.adapters import anthropic
from aihub.adapters import openai_shapes as oa
from aihub.adapters.base import UpstreamError
from aihub.catalog_types import Model
from aihub.streaming import api_error
from city.errors import ApiError

ENCODING_FILE = Path(__file__).parent / "tokenizer" / "o200k_base.tiktoken.gz"
# tiktoken_ext/openai_public.py's expected_hash for o200k_base.tiktoken (the decompressed file).
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
# o200k_base's pre-tokenizer pattern, copied from tiktoken 0.14.0 (tiktoken_ext/openai_public.py,
# MIT, © OpenAI): it is built inside o200k_base(), which downloads the ranks, so it cannot be imported.
O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_SPECIAL_TOKENS = {ENDOFTEXT: 199999, ENDOFPROMPT: 200018}

# OpenAI's chat accounting (the OpenAI cookbook, "How to count tokens with tiktoken").
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# The OpenAI cookbook's fixed token costs of tools (func_end, func_init; "How to count tokens with tiktoken").
TOOLS_OVERHEAD = 12
TOOL_OVERHEAD = 7
# The system prompt Anthropic adds to a request with tools, billed as input: 346 tokens on Claude 4
# models with tool_choice auto or none (313 with any or tool); Anthropic's tool use pricing.
CLAUDE_TOOL_SYSTEM_PROMPT = 346
# Other tokenizers against o200k: 5/4, applied in integers (ceil(n × 1.25)).
ESTIMATE_NUM, ESTIMATE_DEN = 5, 4
# An answer's length when neither the request nor the catalog bounds it.
DEFAULT_OUTPUT_TOKENS = 4096

IMAGE_LOW_DETAIL_TOKENS = 85
IMAGE_TOKENS_WORST = 1600
# OpenAI models whose images cost more than the defaults: (detail "low", any other detail). From
# OpenAI's vision guide and, where it is silent or wrong, the developer forum's measurements
# (December 2026): gpt-4o-mini bills 2,833 + 5,667 per tile (8 tiles at most); the patch-billed
# models ignore `detail` and bill at most 1,536 patches × 1.62 (mini) or × 2.46 (nano); gpt-5.4 takes
# up to 10,000 patches at `detail: "original"`, billed × 1.2.
IMAGE_TOKENS: dict[str, tuple[int, int]] = {
    "gpt-4o-mini": (2833, 2833 + 8 * 5667),
    "gpt-4.1-mini": (2489, 2489),
    "gpt-4.1-nano": (3779, 3779),
    "gpt-5-mini": (2489, 2489),
    "gpt-5-nano": (3779, 3779),
    "gpt-5.4": (12000, 12000),
}
AUDIO_BYTES_PER_TOKEN = 200
FILE_TOKENS_PER_PAGE = 4600
FILE_BYTES_PER_TOKEN = 4
FILE_PAGES_UNSEEN = 10

_OPENAI_IDS = re.compile(r"gpt-|o1|o3|o4|chatgpt")
# OpenAI models on cl100k_base, not o200k: GPT-3.5, GPT-4 (not 4o or 4.1), the text-embedding models.
_CL100K_IDS = re.compile(r"gpt-3\.5|gpt-4(-|$)|text-embedding-")
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


@dataclass(frozen=True)
class Worst:
    input_tokens: int
    output_tokens: int  # all answers together: the output cap × answers (see the module docstring)
    cost: int  # micro-USD, rounded up: input × input_price + output × output_price
    explicit_output: bool  # True when the request set its own output cap
    answers: int = 1  # answers the output cap applies to (n, × prompts), so a cap can be advised per answer
    # Media: the units reserved (images × n, characters, seconds; Model.unit) and their price in
    # micro-USD per million, the variant's the request asked for (see worst_media).
    units: int = 0
    unit_price: int = 0
    # The price the input was reserved at, micro-USD per million, when not the model's input price: an
    # Anthropic body asking for prompt caching may have all of it written to the cache (see worst_messages).
    input_price: int | None = None


class TokenizerCorrupted(RuntimeError):
    """The bundled tokenizer file is not the one tiktoken expects: refuse it rather than miscount."""


_lock = threading.Lock()
_encoding: tiktoken.Encoding | None = None


def encoding() -> tiktoken.Encoding:
    """o200k_base, loaded once per process on first use (about 0.3 s), from the bundled file only."""
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = load_encoding(ENCODING_FILE)
    return _encoding


def load_encoding(path: Path) -> tiktoken.Encoding:
    """The Encoding for a gzipped `.tiktoken` ranks file, built with tiktoken's public API (so tiktoken
    neither downloads nor caches anything); TokenizerCorrupted unless its sha256 is O200K_SHA256."""
    raw = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != O200K_SHA256:
        raise TokenizerCorrupted(f"{path} is not o200k_base (sha256 {digest}, expected {O200K_SHA256}); restore it from the repository.")
    ranks = {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in raw.splitlines() if line)}
    built = tiktoken.Encoding("o200k_base", pat_str=O200K_PAT_STR, mergeable_ranks=ranks, special_tokens=O200K_SPECIAL_TOKENS)
    # Encoding copies the ranks into its Rust tokenizer and keeps the Python dict only to be pickled,
    # which City never does: emptied, the dict's 200,000 entries (about 23 MB per process) are freed.
    ranks.clear()
    return built


# Counting roughly (four characters a token) instead: for calls whose plans have no cap, budget or
# TPM, where the count only sets what a crash would bill. Such deployments never load the tokenizer
# (0.5 s and about 47 MB per process).
_rough = ContextVar("rough_counting", default=False)


@contextmanager
def rough_counting() -> Iterator[None]:
    token = _rough.set(True)
    try:
        yield
    finally:
        _rough.reset(token)


def counting_roughly() -> bool:
    """Whether counts are rough here (inside rough_counting): a route may bound its input otherwise."""
    return _rough.get()


def _o200k(text: str) -> int:
    if _rough.get():
        return (len(text) + 3) // 4
    # encode_ordinary: text that looks like a special token is text, as OpenAI's API treats it.
    return len(encoding().encode_ordinary(text))


def is_exact(model: Model) -> bool:
    """Whether o200k counts this model's tokens exactly (OpenAI's o200k models), not as an estimate."""
    openai = any(d.provider == "openai" for d in model.deployments) or _OPENAI_IDS.match(model.id) is not None
    return openai and _CL100K_IDS.match(model.id) is None


def _scaled(model: Model, tokens: int) -> int:
    return tokens if is_exact(model) else -(-tokens * ESTIMATE_NUM // ESTIMATE_DEN)


def count_tokens(model: Model, text: str) -> int:
    """Tokens of `text` for `model`: o200k exactly for OpenAI's o200k models, × 1.25 otherwise."""
    return _scaled(model, _o200k(text))


# --- Chat -------------------------------------------------------------------------------------


def worst_chat(model: Model, body: dict[str, Any]) -> Worst:
    """The worst case of an OpenAI chat completions body (also City's text API after translation)."""
    text, media = _chat_input(model, body)
    if _served_by_claude(model) and _uses_tools(body):
        media += CLAUDE_TOOL_SYSTEM_PROMPT
    answers = _answers(body, "n")
    # Claude's adapter forwards fields that are not OpenAI's as they are: a top-level `cache_control`
    # (Anthropic's automatic caching) may have the prompt written to the cache, and so may one on a
    # content part, which OpenRouter passes on to Claude.
    controls = [body["cache_control"]] if "cache_control" in body else []
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        controls += (
            [part["cache_control"] for part in content if isinstance(part, dict) and "cache_control" in part]
            if isinstance(content, list)
            else []
        )
    price = max((_messages_input_price(model, {"cache_control": control}) or 0 for control in controls), default=0) or None
    return _worst(model, _scaled(model, text) + media, body, answers, input_price=price)


def _chat_input(model: Model, body: dict[str, Any]) -> tuple[int, int]:
    """(text tokens in o200k, media tokens) of a chat body's prompt."""
    text, media = REPLY_PRIMING, 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        text += TOKENS_PER_MESSAGE
        if not isinstance(message, dict):
            text += _json_tokens(message)
            continue
        for key, value in message.items():
            if key == "content" and isinstance(value, list):
                for part in value:
                    part_text, part_media = _part(model, part)
                    text += part_text
                    media += part_media
            elif isinstance(value, str):
                text += _o200k(value) + (TOKENS_PER_NAME if key == "name" else 0)
            elif value is not None:
                text += _json_tokens(value)  # tool_calls, thinking_blocks, function_call …
    # Definitions the model reads besides the messages, each serialized and encoded once.
    for field in ("tools", "functions", "response_format"):
        if body.get(field):
            text += _json_tokens(body[field])
    for field in ("tools", "functions"):
        if isinstance(body.get(field), list) and body[field]:
            text += TOOLS_OVERHEAD + TOOL_OVERHEAD * len(body[field])
    if isinstance(body.get("tool_choice"), dict):
        text += _json_tokens(body["tool_choice"])
    return text, media


def _served_by_claude(model: Model) -> bool:
    return any(d.adapter == "anthropic" for d in model.deployments)


def _uses_tools(body: dict[str, Any]) -> bool:
    """Tools, or a JSON `response_format` (which Claude's adapter turns into a tool)."""
    response_format = body.get("response_format")
    json_answer = isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema")
    return bool(body.get("tools") or body.get("functions") or json_answer)


def _part(model: Model, part: Any) -> tuple[int, int]:
    """(text tokens in o200k, media tokens) of one content part."""
    if not isinstance(part, dict):
        return _json_tokens(part), 0
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return _o200k(part["text"]), 0
    if kind == "image_url":
        return 0, image_tokens(model, part.get("image_url"))
    if kind == "input_audio":
        audio = part.get("input_audio")
        return 0, -(-_decoded_size(audio.get("data") if isinstance(audio, dict) else None) // AUDIO_BYTES_PER_TOKEN)
    if kind == "file":
        file = part.get("file")
        return 0, file_tokens(file.get("file_data") if isinstance(file, dict) else None)
    return _json_tokens(part), 0


def image_tokens(model: Model, image_url: Any) -> int:
    """An image part's worst case: see the module docstring and IMAGE_TOKENS."""
    low, other = IMAGE_TOKENS.get(model.id, (IMAGE_LOW_DETAIL_TOKENS, IMAGE_TOKENS_WORST))
    detail = image_url.get("detail") if isinstance(image_url, dict) else None
    return low if detail == "low" else other


def file_tokens(file_data: Any) -> int:
    """A file part's estimate: 4,600 tokens a PDF page, at least a token per 4 bytes; 10 pages unseen."""
    if not isinstance(file_data, str):
        return FILE_PAGES_UNSEEN * FILE_TOKENS_PER_PAGE
    data = _decoded(file_data)
    pages = max(1, len(_PDF_PAGE.findall(data)))
    return max(pages * FILE_TOKENS_PER_PAGE, -(-len(data) // FILE_BYTES_PER_TOKEN))


def _decoded(data_url: str) -> bytes:
    payload = data_url.partition(",")[2] if data_url.startswith("data:") else data_url
    try:
        return base64.b64decode(payload)
    except (binascii.Error, ValueError):
        return payload.encode()  # not base64: its size still bounds it


def _decoded_size(data: Any) -> int:
    """The size of base64 `data` decoded, without decoding it (3 bytes in 4 characters, less the padding)."""
    if not isinstance(data, str):
        return 0
    return len(data) * 3 // 4 - (len(data) - len(data.rstrip("=")))


def _json_tokens(value: Any) -> int:
    try:
        serialized = orjson.dumps(value)
    except TypeError:
        serialized = str(value).encode()
    return _o200k(serialized.decode())


# --- Anthropic Messages ------------------------------------------------------------------------


def worst_messages(model: Model, body: dict[str, Any]) -> Worst:
    """The worst case of an Anthropic Messages body (POST /v1/messages), whichever provider serves it.

    Input: `system` (a string or text blocks), each message's blocks (text; images and documents as
    for chat; tool_use input, tool_result content and thinking as their text) with chat's per-message
    overhead, `tools` and `tool_choice` as their JSON plus the tool overhead of whoever serves the model
    (Claude's tool system prompt, or OpenAI's fixed costs when translated). Output: `max_tokens`, which
    on Anthropic's API holds any thinking budget too (the model's max output without one).
    A body with `cache_control` anywhere may have its whole input written to the prompt cache, billed
    at the cache-write price (the 1-hour one for a `ttl` of "1h"): the input is reserved at that price, so
    a call never bills more than it reserved.
    """
    text, media = REPLY_PRIMING + _system_tokens(body.get("system")), 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        text += TOKENS_PER_MESSAGE
        if not isinstance(message, dict):
            text += _json_tokens(message)
            continue
        if isinstance(message.get("role"), str):
            text += _o200k(message["role"])
        block_text, block_media = _blocks(model, message.get("content"))
        text, media = text + block_text, media + block_media
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        text += _json_tokens(tools)
        if _served_by_claude(model):
            media += CLAUDE_TOOL_SYSTEM_PROMPT
        else:
            text += TOOLS_OVERHEAD + TOOL_OVERHEAD * len(tools)
    if isinstance(body.get("tool_choice"), dict):
        text += _json_tokens(body["tool_choice"])
    input_tokens = _scaled(model, text) + media
    cap, explicit = _messages_output_cap(model, body)
    price = _messages_input_price(model, body)
    cost = -(-(input_tokens * price + cap * model.output_price) // 1_000_000)
    return Worst(input_tokens, cap, cost, explicit, input_price=None if price == model.input_price else price)


def _system_tokens(system: Any) -> int:
    if isinstance(system, str):
        return _o200k(system)
    if system is None:
        return 0
    return sum(_block_text(block) for block in system) if isinstance(system, list) else _json_tokens(system)


def _blocks(model: Model, content: Any) -> tuple[int, int]:
    """(text tokens in o200k, media tokens) of a message's content: a string or a list of blocks."""
    if isinstance(content, str):
        return _o200k(content), 0
    if not isinstance(content, list):
        return (_json_tokens(content), 0) if content is not None else (0, 0)
    text, media = 0, 0
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "image":
            media += IMAGE_TOKENS_WORST
        elif kind == "document":
            media += _document_tokens(model, block.get("source"))
        elif kind == "tool_result":
            block_text, block_media = _blocks(model, block.get("content"))
            text, media = text + block_text + _o200k(str(block.get("tool_use_id") or "")), media + block_media
        else:
            text += _block_text(block)
    return text, media


def _block_text(block: Any) -> int:
    """A block read as text: its text, a tool call's name and input, a thinking block's thinking; else its JSON."""
    if not isinstance(block, dict):
        return _json_tokens(block)
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return _o200k(block["text"])
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        return _o200k(block["thinking"])
    if kind == "tool_use":
        return _o200k(str(block.get("name") or "")) + _json_tokens(block.get("input"))
    return _json_tokens(block)


def _document_tokens(model: Model, source: Any) -> int:
    """A document block: a base64 PDF as a chat file part; plain text as its text; a PDF by URL or id unseen."""
    if not isinstance(source, dict):
        return FILE_PAGES_UNSEEN * FILE_TOKENS_PER_PAGE
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return _scaled(model, _o200k(source["data"]))
    if source.get("type") == "content":
        return _scaled(model, _blocks(model, source.get("content"))[0])
    return file_tokens(source.get("data") if source.get("type") == "base64" else None)


def _messages_output_cap(model: Model, body: dict[str, Any]) -> tuple[int, bool]:
    requested = body.get("max_tokens")
    if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
        if requested > MOST_OUTPUT_TOKENS:
            raise ApiError(400, f"max_tokens must be at most {MOST_OUTPUT_TOKENS:,}.", param="max_tokens", code="invalid_value")
        return requested, True
    return model.max_output_tokens or DEFAULT_OUTPUT_TOKENS, False


def _messages_input_price(model: Model, body: dict[str, Any]) -> int:
    """The input price to reserve at: the cache-write price (if higher) when the body asks for caching."""
    ttls = set(_cache_ttls(body))
    if not ttls:
        return model.input_price
    write = model.input_price if model.cache_write_price is None else model.cache_write_price
    if "1h" in ttls and model.cache_write_1h_price is not None:
        write = max(write, model.cache_write_1h_price)
    return max(model.input_price, write)


def _cache_ttls(body: dict[str, Any]) -> Iterator[str]:
    """The `ttl` of every `cache_control` ("5m" when it names none) where Anthropic takes one: the
    request's top level, system blocks, tools, message blocks, the blocks of a tool result (or search
    result) and of a document's content source."""
    places: list[Any] = [body]
    for name in ("system", "tools"):
        if isinstance(body.get(name), list):
            places.extend(body[name])
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            places.append(block)
            inner = block.get("content") if isinstance(block, dict) else None
            if isinstance(inner, list):
                places.extend(inner)
    for place in list(places):  # a document's content source holds text blocks, which take it too
        source = place.get("source") if isinstance(place, dict) else None
        inner = source.get("content") if isinstance(source, dict) else None
        if isinstance(inner, list):
            places.extend(inner)
    for place in places:
        control = place.get("cache_control") if isinstance(place, dict) else None
        if isinstance(control, dict):
            yield str(control.get("ttl") or "5m")


# --- Legacy completions and embeddings ----------------------------------------------------------


def worst_completion(model: Model, body: dict[str, Any]) -> Worst:
    """The worst case of a legacy completions body: every prompt, and each prompt's answers. A model
    without native completions gets the prompt as a one-message chat: that chat's overhead counts too."""
    prompts = _prompts(body.get("prompt"))
    text, ids = 0, 0
    for prompt in prompts:
        if isinstance(prompt, str):
            text += _o200k(prompt)
        else:
            ids += len(prompt)
    if not any(d.legacy_completions for d in model.deployments):
        text += TOKENS_PER_MESSAGE + _o200k("user") + REPLY_PRIMING
    answers = max(_answers(body, "n"), _answers(body, "best_of")) * max(1, len(prompts))
    return _worst(model, _scaled(model, text) + ids, body, answers)


def _prompts(prompt: Any) -> list[Any]:
    """A completions `prompt` as a list of prompts, each a string or a list of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
        return [prompt]  # one prompt as token ids
    if isinstance(prompt, list):
        return [p for p in prompt if isinstance(p, (str, list))]
    return []


def worst_embedding(model: Model, body: dict[str, Any]) -> Worst:
    """The worst case of an embeddings body: its inputs (strings, or token ids counted as they are); no output."""
    value = body.get("input")
    inputs = [value] if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)) else value
    text, ids = 0, 0
    for item in inputs if isinstance(inputs, list) else ():
        if isinstance(item, str):
            text += _o200k(item)
        elif isinstance(item, list):
            ids += len(item)
    input_tokens = _scaled(model, text) + ids
    return Worst(input_tokens, 0, cost_of(model, input_tokens, 0), explicit_output=False)


# --- Output and cost ----------------------------------------------------------------------------


# Bounds no real request reaches, so that a worst case stays an exact integer everywhere it goes
# (Redis scripts compute in doubles): more output tokens than any model writes, more answers than OpenAI gives.
MOST_OUTPUT_TOKENS = 10_000_000
MOST_ANSWERS = 128


def output_cap(model: Model, body: dict[str, Any]) -> tuple[int, bool]:
    """(the most tokens one answer may have, whether the request set it); see the module docstring."""
    try:
        requested = oa.max_output_tokens(body)
        if requested is not None and requested > MOST_OUTPUT_TOKENS:
            name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
            raise ApiError(400, f"{name} must be at most {MOST_OUTPUT_TOKENS:,}.", param=name, code="invalid_value")
        cap = requested if requested is not None else model.max_output_tokens or DEFAULT_OUTPUT_TOKENS
        if any(d.adapter == "anthropic" for d in model.deployments):
            # Claude's adapter may send more than asked: room for thinking besides the answer.
            cap = max(cap, anthropic.max_tokens_for(model.max_output_tokens, body))
    except UpstreamError as exc:  # a limit or effort the adapter would refuse: the same 400, now
        raise api_error(exc) from None
    return cap, requested is not None


def _worst(model: Model, input_tokens: int, body: dict[str, Any], answers: int, input_price: int | None = None) -> Worst:
    cap, explicit = output_cap(model, body)
    output_tokens = cap * answers
    if input_price is None or input_price == model.input_price:
        return Worst(input_tokens, output_tokens, cost_of(model, input_tokens, output_tokens), explicit, answers)
    cost = -(-(input_tokens * input_price + output_tokens * model.output_price) // 1_000_000)
    return Worst(input_tokens, output_tokens, cost, explicit, answers, input_price=input_price)


def cost_of(model: Model, input_tokens: int, output_tokens: int) -> int:
    """micro-USD, rounded up, of these tokens at the model's list prices (micro-USD per million)."""
    return -(-(input_tokens * model.input_price + output_tokens * model.output_price) // 1_000_000)


def worst_media(model: Model, units: int, unit_price: int | None = None, input_tokens: int = 0, output_tokens: int = 0) -> Worst:
    """The worst case of a media call: `units` of the model's unit at `unit_price` (the model's own
    unless a route priced a variant), plus any tokens the model also bills (token-priced image and
    speech models), all rounded up to micro-USD once."""
    price = model.unit_price if unit_price is None else unit_price
    pico = input_tokens * model.input_price + output_tokens * model.output_price + units * price
    return Worst(input_tokens, output_tokens, -(-pico // 1_000_000), explicit_output=True, units=units, unit_price=price)


def fitting_max_tokens(model: Model, worst: Worst, cap: int) -> int:
    """The largest `max_tokens` (per answer) that brings `worst` within `cap` micro-USD; 0 when even
    its input does not fit. Never above the model's max output (its free output when it has no price)."""
    ceiling = model.max_output_tokens or DEFAULT_OUTPUT_TOKENS
    room = cap * 1_000_000 - worst.input_tokens * (model.input_price if worst.input_price is None else worst.input_price)
    if room < 0:
        return 0
    if model.output_price == 0:
        return ceiling
    return min(ceiling, room // (model.output_price * worst.answers))


def _answers(body: dict[str, Any], name: str) -> int:
    """`n` (or `best_of`): how many answers one request asks for; 400 past MOST_ANSWERS."""
    answers = _positive_int(body.get(name))
    if answers > MOST_ANSWERS:
        raise ApiError(400, f"{name} must be at most {MOST_ANSWERS}.", param=name, code="invalid_value")
    return answers


def _positive_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1
