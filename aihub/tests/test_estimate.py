"""aihub/estimate.py: token counts against known values, the output cap, cost rounding, the advised
max_tokens, and the bundled tokenizer (its hash check, and that counting never reaches the network)."""

import base64
import gc
import gzip
import math
import os
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import orjson
import pytest
import tiktoken_ext.openai_public

from aihub import estimate
from aihub.adapters import anthropic
from aihub.adapters.base import Upstream
from aihub.catalog import models_by_id
from aihub.catalog_types import Deployment, Model, usd
from city.errors import ApiError

GPT = models_by_id()["gpt-4.1"]  # o200k, $2 in / $8 out per million: costs come out in whole micro-USD
CLAUDE = models_by_id()["claude-sonnet-4-6"]
HELLO = [{"role": "user", "content": "Hello, how are you?"}]

# The OpenAI cookbook's example ("How to count tokens with tiktoken"), which the OpenAI API counts as
# 124 prompt tokens on gpt-4o and gpt-4o-mini.
COOKBOOK_MESSAGES = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
    },
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def o200k(text: str) -> int:
    return len(estimate.encoding().encode_ordinary(text))


def test_hello_world_is_two_o200k_tokens():
    assert estimate.count_tokens(GPT, "hello world") == 2
    assert estimate.encoding().encode_ordinary("hello world") == [24912, 2375]


@pytest.mark.parametrize("model_id", ["gpt-4o-mini", "gpt-4.1", "gpt-5"])
def test_a_chat_counts_as_openai_counts_it(model_id):
    assert estimate.worst_chat(models_by_id()[model_id], {"messages": COOKBOOK_MESSAGES}).input_tokens == 124


@pytest.mark.parametrize(
    ("message", "count"),
    [
        # Counts the Azure openai-messages-token-helper tests hold for o200k models ("count_omni").
        ({"role": "system", "content": "You are a bot."}, 12),
        (COOKBOOK_MESSAGES[0], 24),
        (COOKBOOK_MESSAGES[1], 20),
        ({"role": "user", "content": "á"}, 8),
        (HELLO[0], 13),
    ],
)
def test_one_message(message, count):
    assert estimate.worst_chat(GPT, {"messages": [message]}).input_tokens == count


def test_content_parts_count_their_text():
    parts = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "how are you?"}]
    worst = estimate.worst_chat(GPT, {"messages": [{"role": "user", "content": parts}]})
    assert worst.input_tokens == 3 + 3 + o200k("user") + o200k("Hello, ") + o200k("how are you?")


def test_tool_definitions_count_as_their_json():
    plain = estimate.worst_chat(GPT, {"messages": HELLO})
    with_tools = estimate.worst_chat(GPT, {"messages": HELLO, "tools": TOOLS})
    assert with_tools.input_tokens - plain.input_tokens == 12 + 7 + o200k(orjson.dumps(TOOLS).decode())


@pytest.mark.parametrize(
    ("tool", "cookbook"),
    [
        # What the OpenAI cookbook's num_tokens_for_tools counts for gpt-4o: JSON plus the fixed costs
        # never falls below it, even for a tool with nothing but a name.
        ({"name": "f"}, 21),
        (TOOLS[0]["function"], 36),
    ],
)
def test_tools_never_count_under_the_cookbooks_count(tool, cookbook):
    plain = estimate.worst_chat(GPT, {"messages": HELLO})
    with_tool = estimate.worst_chat(GPT, {"messages": HELLO, "tools": [{"type": "function", "function": tool}]})
    assert with_tool.input_tokens - plain.input_tokens >= cookbook


def test_claude_bills_its_tool_use_system_prompt():
    plain = estimate.worst_chat(CLAUDE, {"messages": HELLO})
    tools_json = math.ceil((13 + 19 + o200k(orjson.dumps(TOOLS).decode())) * 1.25) - math.ceil(13 * 1.25)
    assert estimate.worst_chat(CLAUDE, {"messages": HELLO, "tools": TOOLS}).input_tokens == plain.input_tokens + tools_json + 346
    json_answer = {"messages": HELLO, "response_format": {"type": "json_object"}}
    assert estimate.worst_chat(CLAUDE, json_answer).input_tokens > plain.input_tokens + 346
    assert estimate.worst_chat(GPT, json_answer).input_tokens < estimate.worst_chat(GPT, {"messages": HELLO}).input_tokens + 20


def test_tool_calls_and_results_count():
    calls = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    messages = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 °C, sunny"},
    ]
    worst = estimate.worst_chat(GPT, {"messages": messages})
    expected = (
        13 + 3 + o200k("assistant") + o200k(orjson.dumps(calls).decode()) + 3 + o200k("tool") + o200k("call_1") + o200k("18 °C, sunny")
    )
    assert worst.input_tokens == expected


def test_a_json_schema_response_format_counts():
    response_format = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
    plain = estimate.worst_chat(GPT, {"messages": HELLO})
    assert estimate.worst_chat(GPT, {"messages": HELLO, "response_format": response_format}).input_tokens == plain.input_tokens + o200k(
        orjson.dumps(response_format).decode()
    )


def image_message(detail: str | None) -> list[dict]:
    image_url = {"url": "https://example.com/cat.png"} | ({"detail": detail} if detail else {})
    return [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": image_url}]}]


def test_images_low_detail_is_85_tokens_and_otherwise_the_worst_case():
    text_only = estimate.worst_chat(GPT, {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]})
    assert estimate.worst_chat(GPT, {"messages": image_message("low")}).input_tokens == text_only.input_tokens + 85
    for detail in ("high", "auto", None):
        assert estimate.worst_chat(GPT, {"messages": image_message(detail)}).input_tokens == text_only.input_tokens + 1600


def test_images_cost_what_their_model_bills():
    # gpt-4o-mini bills images at 2,833 + 5,667 a tile (to match gpt-4o's price): far above 85 / 1,600.
    mini = models_by_id()["gpt-4o-mini"]
    assert estimate.image_tokens(mini, {"url": "x", "detail": "low"}) == 2833
    assert estimate.image_tokens(mini, {"url": "x", "detail": "high"}) == 2833 + 8 * 5667
    # Other models' images are not scaled by the tokenizer factor.
    text_only = estimate.worst_chat(CLAUDE, {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]})
    assert estimate.worst_chat(CLAUDE, {"messages": image_message("high")}).input_tokens == text_only.input_tokens + 1600


def test_audio_and_files_are_estimated_from_their_size():
    audio = base64.b64encode(b"\0" * 4000).decode()  # 4,000 bytes: 0.25 s at 128 kbit/s, 2 s at 16 kbit/s
    audio_part = {"type": "input_audio", "input_audio": {"data": audio, "format": "mp3"}}
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Pages /Kids [2 0 R 3 0 R] >>\n2 0 obj << /Type /Page >>\n3 0 obj <</Type/Page>>\n"
    file_part = {"type": "file", "file": {"file_data": "data:application/pdf;base64," + base64.b64encode(pdf).decode()}}
    no_media = estimate.worst_chat(GPT, {"messages": [{"role": "user", "content": []}]}).input_tokens
    assert estimate.worst_chat(GPT, {"messages": [{"role": "user", "content": [audio_part]}]}).input_tokens == no_media + 20
    assert estimate.worst_chat(GPT, {"messages": [{"role": "user", "content": [file_part]}]}).input_tokens == no_media + 2 * 4600
    big = b"x" * 40_000  # no page objects seen (compressed object streams): a token per 4 bytes
    assert estimate.file_tokens(base64.b64encode(big).decode()) == 10_000
    assert estimate.file_tokens(None) == 10 * 4600  # a file id: its content is not here


def test_other_models_count_a_quarter_more_rounded_up():
    assert estimate.count_tokens(CLAUDE, "hello world") == 3  # ceil(2 × 1.25)
    exact = estimate.worst_chat(GPT, {"messages": COOKBOOK_MESSAGES, "max_tokens": 10})
    for model_id in ("claude-sonnet-4-6", "gemini-2.5-flash", "deepseek-chat", "local-chat"):
        assert estimate.worst_chat(models_by_id()[model_id], {"messages": COOKBOOK_MESSAGES}).input_tokens == math.ceil(124 * 1.25)
    assert exact.input_tokens == 124


def test_which_models_are_counted_exactly():
    exact = {m.id for m in models_by_id().values() if estimate.is_exact(m)}
    assert {"gpt-5.4", "gpt-5-mini", "gpt-4.1", "gpt-4o-mini"} <= exact
    # cl100k_base models: gpt-3.5-turbo-instruct and the text-embedding models.
    assert not exact & {"gpt-3.5-turbo-instruct", "text-embedding-3-small", "claude-sonnet-4-6", "gemini-2.5-pro", "kimi-k2.5"}
    assert estimate.count_tokens(models_by_id()["gpt-3.5-turbo-instruct"], "hello world") == 3


def test_output_cap_comes_from_the_request_else_the_model():
    assert estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100}).output_tokens == 100
    assert estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100, "max_completion_tokens": 50}).output_tokens == 50
    unset = estimate.worst_chat(GPT, {"messages": HELLO})
    assert (unset.output_tokens, unset.explicit_output) == (32_768, False)
    assert estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100}).explicit_output is True
    with pytest.raises(ApiError) as refused:
        estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 0})
    assert refused.value.status == 400


def test_a_model_without_a_known_output_limit_gets_the_default():
    unknown = Model("x", "X", (Deployment("local", "openai", "x", None, "X_BASE_URL", ""),), max_output_tokens=0, output_price=usd("1"))
    assert estimate.worst_chat(unknown, {"messages": HELLO}).output_tokens == estimate.DEFAULT_OUTPUT_TOKENS == 4096


def test_n_answers_multiply_the_output_not_the_input():
    one = estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100})
    three = estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100, "n": 3})
    assert (three.input_tokens, three.output_tokens, three.answers) == (one.input_tokens, 300, 3)
    assert three.cost == 13 * 2 + 300 * 8


def test_claude_thinking_raises_the_cap_as_its_adapter_does():
    body = {"messages": HELLO, "max_tokens": 1000, "reasoning_effort": "high"}
    upstream = Upstream(
        "anthropic", "anthropic", "claude-sonnet-4-6", "http://127.0.0.1:1", None, max_output_tokens=CLAUDE.max_output_tokens
    )
    sent = anthropic.messages_request(upstream, body, stream=False)["max_tokens"]
    assert sent == 16384 + 1000
    worst = estimate.worst_chat(CLAUDE, body)
    assert (worst.output_tokens, worst.explicit_output) == (sent, True)
    # A limit above the thinking budget is kept; no effort, no raise.
    assert estimate.worst_chat(CLAUDE, {**body, "max_tokens": 20_000}).output_tokens == 20_000
    assert estimate.worst_chat(CLAUDE, {"messages": HELLO, "max_tokens": 1000}).output_tokens == 1000
    # Without a limit: the model's max output, which bounds the raised value too.
    assert estimate.worst_chat(CLAUDE, {"messages": HELLO, "reasoning_effort": "high"}).output_tokens == 64_000


def test_cost_is_micro_usd_rounded_up():
    worst = estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 100})
    assert worst.cost == 13 * 2 + 100 * 8  # $2 and $8 per million tokens: 2 and 8 micro-USD a token
    nano = models_by_id()["gpt-5-nano"]  # $0.05 in: 0.05 micro-USD a token
    assert estimate.cost_of(nano, 1, 0) == 1
    assert estimate.cost_of(nano, 20, 0) == 1
    assert estimate.cost_of(nano, 21, 0) == 2


def test_fitting_max_tokens_at_the_boundaries():
    worst = estimate.worst_chat(GPT, {"messages": HELLO})  # 13 input tokens: 26 micro-USD
    assert worst.input_tokens == 13
    assert estimate.fitting_max_tokens(GPT, worst, 26 + 8 * 500) == 500  # exactly at the cap
    assert estimate.fitting_max_tokens(GPT, worst, 26 + 8 * 500 - 1) == 499  # one micro-USD short
    fitted = estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 500})
    assert fitted.cost == 26 + 8 * 500
    assert estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 501}).cost > 26 + 8 * 500
    assert estimate.fitting_max_tokens(GPT, worst, 26) == 0  # the input alone, no room for an answer
    assert estimate.fitting_max_tokens(GPT, worst, 25) == 0  # even the input does not fit
    assert estimate.fitting_max_tokens(GPT, worst, 10**9) == GPT.max_output_tokens


def test_fitting_max_tokens_is_per_answer():
    worst = estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": 1000, "n": 4})
    fit = estimate.fitting_max_tokens(GPT, worst, 26 + 8 * 400)
    assert fit == 100
    assert estimate.worst_chat(GPT, {"messages": HELLO, "max_tokens": fit, "n": 4}).cost == 26 + 8 * 400


def test_fitting_max_tokens_with_rounding():
    nano = models_by_id()["gpt-5-nano"]  # 0.05 in, 0.40 out micro-USD a token
    worst = estimate.worst_chat(nano, {"messages": HELLO})
    cap = estimate.cost_of(nano, worst.input_tokens, 1000)
    fit = estimate.fitting_max_tokens(nano, worst, cap)
    assert estimate.cost_of(nano, worst.input_tokens, fit) <= cap < estimate.cost_of(nano, worst.input_tokens, fit + 1)


def test_embeddings_count_strings_and_token_ids():
    small = models_by_id()["text-embedding-3-small"]  # cl100k: × 1.25
    worst = estimate.worst_embedding(small, {"input": ["hello world", "hello world"]})
    assert (worst.input_tokens, worst.output_tokens, worst.explicit_output) == (5, 0, False)  # ceil(4 × 1.25)
    assert estimate.worst_embedding(small, {"input": "hello world"}).input_tokens == 3
    assert estimate.worst_embedding(small, {"input": [1, 2, 3]}).input_tokens == 3
    assert estimate.worst_embedding(small, {"input": [[1, 2, 3], [4, 5]]}).input_tokens == 5
    assert estimate.worst_embedding(small, {"input": ["x" * 1000] * 50}).cost == math.ceil(50 * 157 * 20_000 / 1e6)


def test_legacy_completions_count_every_prompt_and_answer():
    instruct = models_by_id()["gpt-3.5-turbo-instruct"]  # native completions, cl100k: × 1.25
    worst = estimate.worst_completion(instruct, {"prompt": ["hello world", "hello world"], "max_tokens": 10, "n": 2})
    assert (worst.input_tokens, worst.output_tokens, worst.answers) == (5, 40, 4)
    assert estimate.worst_completion(instruct, {"prompt": [1, 2, 3], "max_tokens": 10}).input_tokens == 3
    assert estimate.worst_completion(instruct, {"prompt": "hello world", "max_tokens": 10, "best_of": 3}).output_tokens == 30
    # Served through chat: the one-message chat around the prompt counts too.
    assert estimate.worst_completion(GPT, {"prompt": "Hello, how are you?", "max_tokens": 10}).input_tokens == 13


# --- The bundled tokenizer ------------------------------------------------------------------------


def test_the_tokenizer_is_tiktokens_o200k(monkeypatch):
    """The copied pattern and special tokens are tiktoken's own (its o200k_base(), which reads no ranks
    file here: it is fed an empty dict, the ranks play no part in what is compared)."""
    monkeypatch.setattr(tiktoken_ext.openai_public, "load_tiktoken_bpe", lambda *a, **k: {})
    theirs = tiktoken_ext.openai_public.o200k_base()
    assert theirs["pat_str"] == estimate.O200K_PAT_STR
    assert theirs["special_tokens"] == estimate.O200K_SPECIAL_TOKENS
    assert estimate.encoding().n_vocab == 200019


def test_counting_needs_no_network_and_no_cache(tmp_path, monkeypatch):
    """The root conftest's network guard fails this test on any connection beyond loopback."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    encoding = estimate.load_encoding(estimate.ENCODING_FILE)
    assert len(encoding.encode_ordinary("hello world")) == 2
    assert list(cache.iterdir()) == []


def test_a_loaded_tokenizer_keeps_no_python_copy_of_its_ranks():
    """The ranks live in tiktoken's Rust tokenizer; the 200,000-entry dict they were built from is freed
    (about 23 MB a process), and encoding and decoding are unchanged."""
    tracemalloc.start()
    try:
        encoding = estimate.load_encoding(estimate.ENCODING_FILE)
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2_000_000  # bytes Python allocated and still holds (the dict alone: over 20 MB)
    tokens = encoding.encode_ordinary("Say hello to the benchmark, in Français too.")
    assert encoding.decode(tokens) == "Say hello to the benchmark, in Français too."
    assert encoding.n_vocab == 200019


def test_a_corrupted_tokenizer_is_refused(tmp_path):
    raw = bytearray(gzip.decompress(estimate.ENCODING_FILE.read_bytes()))
    raw[100] ^= 1
    corrupted = tmp_path / "o200k_base.tiktoken.gz"
    corrupted.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(estimate.TokenizerCorrupted, match="not o200k_base"):
        estimate.load_encoding(corrupted)
    intact = tmp_path / "intact.tiktoken.gz"
    shutil.copy(estimate.ENCODING_FILE, intact)
    assert estimate.load_encoding(intact).n_vocab == 200019


def test_threads_share_one_tokenizer_load():
    """In a fresh process, threads asking at once all get the one Encoding (a second load would replace it)."""
    script = """
import threading
from aihub import estimate
got = []
threads = [threading.Thread(target=lambda: got.append(estimate.encoding())) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert len(got) == 8 and all(g is got[0] for g in got), got
print("ok")
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr
