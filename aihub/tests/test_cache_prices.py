"""Prompt caching's money: the catalog's cache prices, what the Meter bills for Anthropic's cache reads
and writes (from the adapter's usage), and the worst case of an Anthropic Messages body, which reserves
input at the cache-write price when the body asks for caching, so the bill never passes the reservation."""

import base64
from typing import Any

import pytest

from aihub import estimate
from aihub.adapters.anthropic import usage_of
from aihub.catalog import models_by_id
from aihub.catalog_types import usd
from aihub.metering import Meter
from city.errors import ApiError

MODELS = models_by_id()
SONNET, HAIKU, GPT, FLASH = MODELS["claude-sonnet-4-6"], MODELS["claude-haiku-4-5"], MODELS["gpt-4.1"], MODELS["deepseek-v4-flash"]
EPHEMERAL = {"type": "ephemeral"}


def o200k(text: str) -> int:
    return len(estimate.encoding().encode_ordinary(text))


def meter(model_id: str) -> Meter:
    call: Any = type("FakeCall", (), {"identity": type("I", (), {"token_id": None, "account_id": None})(), "request_id": "r"})()
    call.action = type("A", (), {"name": "messages"})()
    return Meter(call, "studio_x", MODELS[model_id], "chat", ceiling=(0, 0))


def test_catalog_cache_prices_as_the_providers_list_them() -> None:
    # Anthropic: reads 0.1× input, 5-minute writes 1.25×, 1-hour writes 2×.
    for model in (SONNET, HAIKU, MODELS["claude-opus-4-6"]):
        assert model.cache_read_price is not None and model.cache_write_price is not None and model.cache_write_1h_price is not None
        assert (model.cache_read_price * 10, model.cache_write_price * 4, model.cache_write_1h_price) == (
            model.input_price,
            model.input_price * 5,
            model.input_price * 2,
        )
    assert (GPT.cache_read_price, GPT.cache_write_price) == (usd("0.50"), None)
    assert (FLASH.cache_read_price, MODELS["gemini-2.5-flash"].cache_read_price) == (2_800, 30_000)
    assert MODELS["text-embedding-3-small"].cache_read_price is None


def test_anthropic_cache_reads_and_writes_are_metered_at_their_prices_exactly() -> None:
    usage = {
        "input_tokens": 50,
        "cache_read_input_tokens": 10_000,
        "cache_creation_input_tokens": 3_000,
        "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 1_000},
        "output_tokens": 200,
    }
    m = meter("claude-sonnet-4-6")
    assert m.use(usage_of(usage))
    record = m.record(200)
    assert (record["prompt_tokens"], record["cached_tokens"], record["cache_write_tokens"]) == (13_050, 10_000, 3_000)
    # $3 plain, $0.30 read, $3.75 5-minute write, $6 1-hour write, $15 output per million; 1e-12 USD.
    assert record["cost"] == 50 * 3_000_000 + 10_000 * 300_000 + 2_000 * 3_750_000 + 1_000 * 6_000_000 + 200 * 15_000_000
    # Without Anthropic's breakdown every write is a 5-minute one.
    m = meter("claude-sonnet-4-6")
    m.use(usage_of({k: v for k, v in usage.items() if k != "cache_creation"}))
    assert m.record(200)["cost"] == 50 * 3_000_000 + 10_000 * 300_000 + 3_000 * 3_750_000 + 200 * 15_000_000


def test_openai_and_deepseek_cache_hits_are_metered_at_the_cached_price() -> None:
    m = meter("gpt-4.1")
    m.use({"prompt_tokens": 1_000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 800}})
    assert m.record(200)["cost"] == 200 * 2_000_000 + 800 * 500_000 + 10 * 8_000_000
    m = meter("deepseek-v4-flash")  # DeepSeek's own field
    m.use({"prompt_tokens": 1_000, "completion_tokens": 10, "prompt_cache_hit_tokens": 900, "prompt_cache_miss_tokens": 100})
    assert (m.cached_tokens, m.record(200)["cost"]) == (900, 100 * 140_000 + 900 * 2_800 + 10 * 280_000)


TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}}]}


def tool_result(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": content}]}


def body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1_000, "messages": [{"role": "user", "content": "Summarize the design."}], **extra}


def test_worst_messages_counts_system_blocks_and_tools() -> None:
    system = "You are City's assistant."
    expected = estimate.REPLY_PRIMING + o200k(system) + estimate.TOKENS_PER_MESSAGE + o200k("user") + o200k("Summarize the design.")
    worst = estimate.worst_messages(GPT, body(system=system))  # o200k counts GPT exactly
    assert (worst.input_tokens, worst.output_tokens, worst.explicit_output) == (expected, 1_000, True)
    assert worst.cost == -(-(expected * GPT.input_price + 1_000 * GPT.output_price) // 1_000_000)
    blocks = estimate.worst_messages(GPT, body(system=[{"type": "text", "text": system}]))
    assert blocks.input_tokens == expected
    # Claude: the o200k estimate × 1.25, and Claude's tool system prompt with tools.
    tools = [{"name": "read_file", "description": "Read a file.", "input_schema": {"type": "object"}}]
    plain, with_tools = estimate.worst_messages(SONNET, body()), estimate.worst_messages(SONNET, body(tools=tools))
    assert with_tools.input_tokens - plain.input_tokens >= estimate.CLAUDE_TOOL_SYSTEM_PROMPT + o200k('"read_file"')
    # Without max_tokens: the model's max output.
    assert estimate.worst_messages(SONNET, {"messages": []}).output_tokens == SONNET.max_output_tokens


def test_worst_messages_counts_every_kind_of_block() -> None:
    pdf = base64.b64encode(b"%PDF-1.4 /Type /Page /Type /Page /Type /Pages").decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}
    turns = [
        {"role": "user", "content": [image, document, {"type": "text", "text": "What is in these?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"page": 2}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [image]}]},
    ]
    worst = estimate.worst_messages(SONNET, body(messages=turns))
    media = 2 * estimate.IMAGE_TOKENS_WORST + 2 * estimate.FILE_TOKENS_PER_PAGE
    assert media < worst.input_tokens < media + 100


CACHED_DOCUMENT = {
    "type": "document",
    "source": {"type": "content", "content": [{"type": "text", "text": "Notes.", "cache_control": EPHEMERAL}]},
}


def test_a_body_asking_for_caching_reserves_its_input_at_the_cache_write_price() -> None:
    plain = estimate.worst_messages(SONNET, body())
    assert plain.input_price is None
    for where, asking, price in [
        ("system", body(system=[{"type": "text", "text": "Rules.", "cache_control": EPHEMERAL}]), SONNET.cache_write_price),
        ("top level", body(cache_control=EPHEMERAL), SONNET.cache_write_price),
        ("tool", body(tools=[{"name": "f", "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}]), SONNET.cache_write_price),
        ("1 hour", body(cache_control={"type": "ephemeral", "ttl": "1h"}), SONNET.cache_write_1h_price),
        (
            "tool result",
            body(messages=[TOOL_USE, tool_result([{"type": "text", "text": "42", "cache_control": EPHEMERAL}])]),
            SONNET.cache_write_price,
        ),
        # A document's content source holds text blocks, which take cache_control too (Anthropic's TextBlockParam).
        ("document content", body(messages=[{"role": "user", "content": [CACHED_DOCUMENT]}]), SONNET.cache_write_price),
        ("document in a tool result", body(messages=[TOOL_USE, tool_result([CACHED_DOCUMENT])]), SONNET.cache_write_price),
    ]:
        assert price is not None
        worst = estimate.worst_messages(SONNET, asking)
        assert worst.input_price == price, where
        assert worst.cost == -(-(worst.input_tokens * price + worst.output_tokens * SONNET.output_price) // 1_000_000), where
        # The bill if Claude writes the whole prompt to the cache (for an hour, at worst) stays within it.
        m = meter("claude-sonnet-4-6")
        writes = {"cache_creation": {"ephemeral_1h_input_tokens": worst.input_tokens}} if price == SONNET.cache_write_1h_price else {}
        m.use(usage_of({"cache_creation_input_tokens": worst.input_tokens, "output_tokens": worst.output_tokens, **writes}))
        assert m.record(200)["cost"] <= worst.cost * 1_000_000, where
        # A crash bills the worst case as it was reserved.
        crashed = Meter(m.call, "studio_x", SONNET, "messages", ceiling=(worst.input_tokens, worst.output_tokens), worst_input_price=price)
        assert -(-crashed.record(0, "interrupted", at_worst=True)["cost"] // 1_000_000) == worst.cost, where
    # A tool's input that happens to hold the key asks for nothing.
    quoted = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"cache_control": EPHEMERAL}}],
    }
    assert estimate.worst_messages(SONNET, body(messages=[quoted, tool_result("42")])).input_price is None
    # A model without a write price (served through translation) reserves at its input price.
    assert estimate.worst_messages(GPT, body(cache_control=EPHEMERAL)).input_price is None
    # The advised max_tokens leaves room for the input at the price it was reserved at.
    cached = estimate.worst_messages(SONNET, body(system=[{"type": "text", "text": "Rule. " * 2_000, "cache_control": EPHEMERAL}]))
    cap = cached.cost
    fits = estimate.fitting_max_tokens(SONNET, cached, cap)
    assert fits * SONNET.output_price + cached.input_tokens * (SONNET.cache_write_price or 0) <= cap * 1_000_000


def test_a_chat_body_with_anthropics_top_level_cache_control_reserves_at_the_write_price_on_claude() -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 10}
    assert estimate.worst_chat(HAIKU, chat).input_price is None
    assert estimate.worst_chat(HAIKU, {**chat, "cache_control": EPHEMERAL}).input_price == HAIKU.cache_write_price


def test_openrouters_cache_writes_are_billed_and_reserved_at_the_write_price() -> None:
    # OpenRouter passes a content part's cache_control on to Claude and reports the writes as cache_write_tokens.
    part = {"type": "text", "text": "The whole design document.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    chat = {"model": "m", "messages": [{"role": "user", "content": [part]}], "max_tokens": 10}
    assert estimate.worst_chat(SONNET, chat).input_price == SONNET.cache_write_1h_price
    m = meter("claude-sonnet-4-6")
    m.use({"prompt_tokens": 1_000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 900}})
    assert (m.cache_write_tokens, m.record(200)["cost"]) == (900, 100 * 3_000_000 + 900 * 3_750_000 + 10 * 15_000_000)


def test_an_impossible_max_tokens_is_a_400_naming_it() -> None:
    with pytest.raises(ApiError) as caught:
        estimate.worst_messages(SONNET, body(max_tokens=estimate.MOST_OUTPUT_TOKENS + 1))
    assert (caught.value.status, caught.value.param) == (400, "max_tokens")
