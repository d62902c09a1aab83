"""The model catalog, declared in code: one literal table, read top to bottom.

Prices are the providers' list prices per million tokens in USD (standard tier, cache-miss input,
the lowest context tier where a provider tiers by prompt length), written as the provider writes
them and kept as integer micro-USD. Where they come from, as read in November 2026:
- DeepSeek: api-docs.deepseek.com/quick_start/pricing (V4 launch prices; deepseek-chat and
  deepseek-reasoner are DeepSeek's compatibility names for V4 Flash without and with thinking;
  the peak / off-peak schedule announced for 2026-08-16 bills off-peak at half these prices).
- OpenAI: platform.openai.com/docs/pricing (copies checked March–June 2026).
- Anthropic: platform.claude.com/docs/en/about-claude/models/overview and each model's page.
- Google: ai.google.dev/gemini-api/docs/pricing (prompts ≤ 200K tokens).
- Moonshot: platform.moonshot.ai/docs/pricing/chat. Qwen: Alibaba Cloud Model Studio, international
  (Singapore) price list. GLM: docs.z.ai pricing. OpenRouter: openrouter.ai model pages.
Prompt caching, where the provider lists its own prices: `cache_read_price` for input read from
the cache (OpenAI's "cached input", DeepSeek's "cache hit", Gemini's context caching price for text),
`cache_write_price` for input written to it (Anthropic's 5-minute cache writes, 1.25× input;
`cache_write_1h_price` its 1-hour writes, 2× input; reads 0.1× input, from
platform.claude.com/docs/en/about-claude/pricing). DeepSeek's cache-hit prices are
those of 2026-04-26 (a tenth of launch). Models without them bill cached input at the input price.
Prices change; a change is one line here.

Media models (images, speech, transcription, video) live in their own tables, priced in their own
units: aihub/catalog_images.py, catalog_speech.py, catalog_transcription.py and catalog_video.py.
How each provider is reached is aihub/catalog_deployments.py.
"""

from functools import cache

from aihub import catalog_images, catalog_speech, catalog_transcription, catalog_video
from aihub.catalog_deployments import anthropic, deepseek, gemini, local, moonshot, openai, openrouter, qwen, zai
from aihub.catalog_types import EMBEDDINGS, OPENAI, Model, usd
from city.registry import EnvRequirement

EMBEDDING_MODES = (EMBEDDINGS, OPENAI)

TEXT_MODELS: tuple[Model, ...] = (
    # --- DeepSeek -------------------------------------------------------------------------------
    Model(
        "deepseek-v4-flash",
        "DeepSeek V4 Flash",
        (deepseek("deepseek-v4-flash"), openrouter("deepseek/deepseek-v4-flash")),
        description="DeepSeek's fast, low-cost MoE model (284B, 13B active); thinking and non-thinking modes, tools, JSON output.",
        tags=("deepseek", "reasoning", "tools"),
        context_window=1_000_000,
        max_output_tokens=384_000,
        input_price=usd("0.14"),
        output_price=usd("0.28"),
        cache_read_price=usd("0.0028"),
    ),
    Model(
        "deepseek-v4-pro",
        "DeepSeek V4 Pro",
        (deepseek("deepseek-v4-pro"), openrouter("deepseek/deepseek-v4-pro")),
        description="DeepSeek's flagship V4 model for harder reasoning, coding and agent work.",
        tags=("deepseek", "reasoning", "tools"),
        context_window=1_000_000,
        max_output_tokens=384_000,
        input_price=usd("0.435"),
        output_price=usd("0.87"),
        cache_read_price=usd("0.003625"),
    ),
    Model(
        "deepseek-chat",
        "DeepSeek Chat",
        (deepseek("deepseek-chat"),),
        description="DeepSeek's chat model name: V4 Flash in non-thinking mode.",
        tags=("deepseek", "tools"),
        context_window=1_000_000,
        max_output_tokens=384_000,
        input_price=usd("0.14"),
        output_price=usd("0.28"),
        cache_read_price=usd("0.0028"),
    ),
    Model(
        "deepseek-reasoner",
        "DeepSeek Reasoner",
        (deepseek("deepseek-reasoner"),),
        description="DeepSeek's reasoning model name: V4 Flash in thinking mode; streams its reasoning as reasoning_content.",
        tags=("deepseek", "reasoning"),
        context_window=1_000_000,
        max_output_tokens=384_000,
        input_price=usd("0.14"),
        output_price=usd("0.28"),
        cache_read_price=usd("0.0028"),
    ),
    # --- OpenAI ---------------------------------------------------------------------------------
    Model(
        "gpt-5.4",
        "GPT-5.4",
        (openai("gpt-5.4"),),
        description="OpenAI's current flagship reasoning model.",
        tags=("openai", "reasoning", "tools", "vision"),
        context_window=272_000,
        max_output_tokens=128_000,
        input_price=usd("2.50"),
        output_price=usd("15.00"),
        cache_read_price=usd("0.25"),
    ),
    Model(
        "gpt-5",
        "GPT-5",
        (openai("gpt-5"),),
        description="OpenAI GPT-5: reasoning, coding and agentic tasks.",
        tags=("openai", "reasoning", "tools", "vision"),
        context_window=400_000,
        max_output_tokens=128_000,
        input_price=usd("1.25"),
        output_price=usd("10.00"),
        cache_read_price=usd("0.125"),
    ),
    Model(
        "gpt-5-mini",
        "GPT-5 mini",
        (openai("gpt-5-mini"), openrouter("openai/gpt-5-mini")),
        description="Faster, cheaper GPT-5 for well-defined tasks.",
        tags=("openai", "reasoning", "tools", "vision"),
        context_window=400_000,
        max_output_tokens=128_000,
        input_price=usd("0.25"),
        output_price=usd("2.00"),
        cache_read_price=usd("0.025"),
    ),
    Model(
        "gpt-5-nano",
        "GPT-5 nano",
        (openai("gpt-5-nano"),),
        description="The fastest, cheapest GPT-5: classification and summaries.",
        tags=("openai", "tools"),
        context_window=400_000,
        max_output_tokens=128_000,
        input_price=usd("0.05"),
        output_price=usd("0.40"),
        cache_read_price=usd("0.005"),
    ),
    Model(
        "gpt-4.1",
        "GPT-4.1",
        (openai("gpt-4.1"),),
        description="OpenAI's non-reasoning model with a 1M-token context.",
        tags=("openai", "tools", "vision"),
        context_window=1_047_576,
        max_output_tokens=32_768,
        input_price=usd("2.00"),
        output_price=usd("8.00"),
        cache_read_price=usd("0.50"),
    ),
    Model(
        "gpt-4.1-mini",
        "GPT-4.1 mini",
        (openai("gpt-4.1-mini"),),
        description="Smaller, faster GPT-4.1.",
        tags=("openai", "tools", "vision"),
        context_window=1_047_576,
        max_output_tokens=32_768,
        input_price=usd("0.40"),
        output_price=usd("1.60"),
        cache_read_price=usd("0.10"),
    ),
    Model(
        "gpt-4o-mini",
        "GPT-4o mini",
        (openai("gpt-4o-mini"),),
        description="Small, inexpensive multimodal chat model.",
        tags=("openai", "tools", "vision"),
        context_window=128_000,
        max_output_tokens=16_384,
        input_price=usd("0.15"),
        output_price=usd("0.60"),
        cache_read_price=usd("0.075"),
    ),
    Model(
        "gpt-3.5-turbo-instruct",
        "GPT-3.5 Turbo Instruct",
        (openai("gpt-3.5-turbo-instruct", legacy_completions=True),),
        description="OpenAI's model for the legacy completions endpoint.",
        tags=("openai", "completions"),
        context_window=4_096,
        max_output_tokens=4_096,
        input_price=usd("1.50"),
        output_price=usd("2.00"),
    ),
    Model(
        "text-embedding-3-small",
        "Text Embedding 3 Small",
        (openai("text-embedding-3-small"),),
        modalities=EMBEDDING_MODES,
        default_modes=EMBEDDING_MODES,
        description="OpenAI embeddings, 1536 dimensions (shortenable with `dimensions`).",
        tags=("openai", "embeddings"),
        context_window=8_191,
        input_price=usd("0.02"),
        meta={"dimensions": 1536},
    ),
    Model(
        "text-embedding-3-large",
        "Text Embedding 3 Large",
        (openai("text-embedding-3-large"),),
        modalities=EMBEDDING_MODES,
        default_modes=EMBEDDING_MODES,
        description="OpenAI's most capable embeddings, 3072 dimensions (shortenable with `dimensions`).",
        tags=("openai", "embeddings"),
        context_window=8_191,
        input_price=usd("0.13"),
        meta={"dimensions": 3072},
    ),
    # --- Anthropic ------------------------------------------------------------------------------
    Model(
        "claude-sonnet-4-6",
        "Claude Sonnet 4.6",
        (anthropic("claude-sonnet-4-6"), openrouter("anthropic/claude-sonnet-4.6")),
        description="Anthropic's balance of speed and intelligence for production work.",
        tags=("anthropic", "tools", "vision"),
        context_window=1_000_000,
        max_output_tokens=64_000,
        input_price=usd("3.00"),
        output_price=usd("15.00"),
        cache_read_price=usd("0.30"),
        cache_write_price=usd("3.75"),
        cache_write_1h_price=usd("6.00"),
    ),
    Model(
        "claude-opus-4-6",
        "Claude Opus 4.6",
        (anthropic("claude-opus-4-6"),),
        description="Anthropic's most capable model for complex agents and coding.",
        tags=("anthropic", "tools", "vision", "reasoning"),
        context_window=1_000_000,
        max_output_tokens=128_000,
        input_price=usd("5.00"),
        output_price=usd("25.00"),
        cache_read_price=usd("0.50"),
        cache_write_price=usd("6.25"),
        cache_write_1h_price=usd("10.00"),
    ),
    Model(
        "claude-haiku-4-5",
        "Claude Haiku 4.5",
        (anthropic("claude-haiku-4-5-20251001"),),
        description="Anthropic's fastest model, near-frontier intelligence.",
        tags=("anthropic", "tools", "vision"),
        context_window=200_000,
        max_output_tokens=64_000,
        input_price=usd("1.00"),
        output_price=usd("5.00"),
        cache_read_price=usd("0.10"),
        cache_write_price=usd("1.25"),
        cache_write_1h_price=usd("2.00"),
    ),
    # --- Google Gemini --------------------------------------------------------------------------
    Model(
        "gemini-3.1-pro-preview",
        "Gemini 3.1 Pro (preview)",
        (gemini("gemini-3.1-pro-preview"),),
        description="Google's most capable Gemini model (preview).",
        tags=("google", "reasoning", "tools", "vision"),
        context_window=1_048_576,
        max_output_tokens=65_536,
        input_price=usd("2.00"),
        output_price=usd("12.00"),
        cache_read_price=usd("0.20"),
    ),
    Model(
        "gemini-3-flash-preview",
        "Gemini 3 Flash (preview)",
        (gemini("gemini-3-flash-preview"),),
        description="Fast frontier-class Gemini (preview).",
        tags=("google", "reasoning", "tools", "vision"),
        context_window=1_048_576,
        max_output_tokens=65_536,
        input_price=usd("0.50"),
        output_price=usd("3.00"),
        cache_read_price=usd("0.05"),
    ),
    Model(
        "gemini-2.5-pro",
        "Gemini 2.5 Pro",
        (gemini("gemini-2.5-pro"),),
        description="Gemini 2.5 thinking model for complex reasoning and code.",
        tags=("google", "reasoning", "tools", "vision"),
        context_window=1_048_576,
        max_output_tokens=65_536,
        input_price=usd("1.25"),
        output_price=usd("10.00"),
        cache_read_price=usd("0.125"),
    ),
    Model(
        "gemini-2.5-flash",
        "Gemini 2.5 Flash",
        (gemini("gemini-2.5-flash"),),
        description="Gemini 2.5's price-performance model with thinking.",
        tags=("google", "reasoning", "tools", "vision"),
        context_window=1_048_576,
        max_output_tokens=65_536,
        input_price=usd("0.30"),
        output_price=usd("2.50"),
        cache_read_price=usd("0.03"),
    ),
    Model(
        "gemini-2.5-flash-lite",
        "Gemini 2.5 Flash-Lite",
        (gemini("gemini-2.5-flash-lite"),),
        description="Gemini's fastest, lowest-cost model.",
        tags=("google", "tools", "vision"),
        context_window=1_048_576,
        max_output_tokens=65_536,
        input_price=usd("0.10"),
        output_price=usd("0.40"),
        cache_read_price=usd("0.01"),
    ),
    Model(
        "gemini-embedding-001",
        "Gemini Embedding",
        (gemini("gemini-embedding-001"),),
        modalities=EMBEDDING_MODES,
        default_modes=EMBEDDING_MODES,
        description="Google's text embeddings, 3072 dimensions (shortenable with `dimensions`).",
        tags=("google", "embeddings"),
        context_window=2_048,
        input_price=usd("0.15"),
        meta={"dimensions": 3072},
    ),
    # --- Moonshot (Kimi) ------------------------------------------------------------------------
    Model(
        "kimi-k2.5",
        "Kimi K2.5",
        (moonshot("kimi-k2.5"),),
        description="Moonshot's multimodal Kimi model: text and image input, thinking and non-thinking modes, tools.",
        tags=("moonshot", "kimi", "tools", "vision"),
        context_window=262_144,
        max_output_tokens=32_768,
        input_price=usd("0.60"),
        output_price=usd("3.00"),
    ),
    Model(
        "kimi-k2-0905-preview",
        "Kimi K2 (0905)",
        (moonshot("kimi-k2-0905-preview"),),
        description="Kimi K2 MoE model for code and agents.",
        tags=("moonshot", "kimi", "tools"),
        context_window=262_144,
        max_output_tokens=32_768,
        input_price=usd("0.60"),
        output_price=usd("2.50"),
    ),
    Model(
        "kimi-k2-thinking",
        "Kimi K2 Thinking",
        (moonshot("kimi-k2-thinking"),),
        description="Kimi K2 with long thinking for multi-step reasoning and tool use.",
        tags=("moonshot", "kimi", "reasoning", "tools"),
        context_window=262_144,
        max_output_tokens=32_768,
        input_price=usd("0.60"),
        output_price=usd("2.50"),
    ),
    # --- Qwen (Alibaba Cloud Model Studio) ------------------------------------------------------
    Model(
        "qwen3-max",
        "Qwen3 Max",
        (qwen("qwen3-max"),),
        description="Alibaba's flagship Qwen3 model for agents and tool use.",
        tags=("qwen", "tools"),
        context_window=262_144,
        max_output_tokens=65_536,
        input_price=usd("1.20"),
        output_price=usd("6.00"),
    ),
    Model(
        "qwen-plus",
        "Qwen Plus",
        (qwen("qwen-plus"),),
        description="Balanced Qwen3 model with thinking and non-thinking modes.",
        tags=("qwen", "tools", "reasoning"),
        context_window=1_000_000,
        max_output_tokens=32_768,
        input_price=usd("0.40"),
        output_price=usd("1.20"),
    ),
    Model(
        "qwen-flash",
        "Qwen Flash",
        (qwen("qwen-flash"),),
        description="Fast, low-cost Qwen3 model.",
        tags=("qwen", "tools"),
        context_window=1_000_000,
        max_output_tokens=32_768,
        input_price=usd("0.05"),
        output_price=usd("0.40"),
    ),
    # --- GLM (Z.ai) -----------------------------------------------------------------------------
    Model(
        "glm-5",
        "GLM-5",
        (zai("glm-5"),),
        description="Z.ai's flagship GLM model for reasoning, coding and agents.",
        tags=("glm", "zai", "reasoning", "tools"),
        context_window=200_000,
        max_output_tokens=128_000,
        input_price=usd("1.00"),
        output_price=usd("3.20"),
    ),
    Model(
        "glm-4.7",
        "GLM-4.7",
        (zai("glm-4.7"),),
        description="GLM-4.7: strong coding and tool use with switchable thinking.",
        tags=("glm", "zai", "reasoning", "tools"),
        context_window=200_000,
        max_output_tokens=128_000,
        input_price=usd("0.60"),
        output_price=usd("2.20"),
    ),
    # --- OpenRouter -----------------------------------------------------------------------------
    Model(
        "llama-4-maverick",
        "Llama 4 Maverick",
        (openrouter("meta-llama/llama-4-maverick"),),
        description="Meta's open-weight multimodal MoE model, served through OpenRouter.",
        tags=("openrouter", "meta", "vision"),
        context_window=1_048_576,
        max_output_tokens=16_384,
        input_price=usd("0.15"),
        output_price=usd("0.60"),
    ),
    # --- A local OpenAI-compatible server (Ollama, vLLM, llama.cpp) -------------------------------
    Model(
        "local-chat",
        "Local chat model",
        (local("llama3.2", "LOCAL_OPENAI_MODEL"),),
        description="The chat model of your own OpenAI-compatible server (Ollama, vLLM, llama.cpp): set LOCAL_OPENAI_BASE_URL, and LOCAL_OPENAI_MODEL to its model name.",
        tags=("local",),
        context_window=131_072,
        max_output_tokens=8_192,
    ),
    Model(
        "local-embedding",
        "Local embedding model",
        (local("nomic-embed-text", "LOCAL_OPENAI_EMBEDDING_MODEL"),),
        modalities=EMBEDDING_MODES,
        default_modes=EMBEDDING_MODES,
        description="The embedding model of your own OpenAI-compatible server: set LOCAL_OPENAI_BASE_URL, and LOCAL_OPENAI_EMBEDDING_MODEL to its model name.",
        tags=("local", "embeddings"),
        context_window=8_192,
    ),
)

MODELS: tuple[Model, ...] = (
    TEXT_MODELS + catalog_images.MODELS + catalog_speech.MODELS + catalog_transcription.MODELS + catalog_video.MODELS
)


@cache
def models_by_id() -> dict[str, Model]:
    by_id = {model.id: model for model in MODELS}
    if len(by_id) != len(MODELS):
        raise RuntimeError("A model id is declared twice in aihub/catalog.py.")
    return by_id


def provider_keys() -> tuple[EnvRequirement, ...]:
    """The keys that make a provider's models callable, for GET /v1/services: none is required on
    its own, since any one provider is enough for the ai service to serve."""
    found: dict[str, EnvRequirement] = {}
    for model in MODELS:
        for deployment in model.deployments:
            key = deployment.base_url_env if deployment.base_url_required else deployment.api_key_env
            if key and key not in found:
                what = "base URL" if deployment.base_url_required else "API key"
                found[key] = EnvRequirement(key, f"{deployment.provider} {what}: makes its models callable", required=False)
    return tuple(found.values())


def env_consumers() -> list[tuple[str, str, EnvRequirement]]:
    """Every model's env keys, for GET /v1/env/list: ("model", model id, requirement)."""
    return [("model", model.id, req) for model in MODELS for req in model.env_requirements()]
