"""The shapes of the code-declared model catalog (the entries themselves live in aihub/catalog.py)."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from city.registry import EnvRequirement

# Modalities: what a model answers and through which routes.
TEXT = "text"  # POST /v1/ai/text
STREAM = "stream"  # POST /v1/ai/stream
OPENAI = "openai"  # /v1/ai/chat/completions and /v1/ai/completions (and their /v1 twins)
EMBEDDINGS = "embeddings"  # /v1/ai/embeddings
IMAGE = "image"  # /v1/ai/image, /v1/ai/images/generations and images/edits
TTS = "tts"  # /v1/ai/tts, /v1/ai/audio/speech
ASR = "asr"  # /v1/ai/asr, /v1/ai/audio/transcriptions and audio/translations
VIDEO = "video"  # /v1/ai/video, /v1/ai/videos
CHAT_MODES = (TEXT, STREAM, OPENAI)
MEDIA_MODES = (IMAGE, TTS, ASR, VIDEO)

# The units media models are priced in, besides tokens (a usage record's `unit`).
IMAGES = "images"
CHARACTERS = "characters"
SECONDS = "seconds"
UNITS = (IMAGES, CHARACTERS, SECONDS)


@dataclass(frozen=True)
class Deployment:
    """One way to reach a model: a provider, its wire protocol, and the env keys that configure it."""

    provider: str  # "deepseek", "openai", "anthropic", "google", "ollama", …
    adapter: str  # key of aihub.adapters.ADAPTERS: "openai", "anthropic", "gemini"
    upstream_model: str  # the model name the provider expects
    api_key_env: str | None  # e.g. "DEEPSEEK_API_KEY"; None for keyless local servers
    base_url_env: str  # e.g. "DEEPSEEK_BASE_URL" (optional env; default_base_url when unset)
    default_base_url: str  # the provider's public URL, e.g. "https://api.deepseek.com"
    base_url_required: bool = False  # local servers: callable only once their base URL is set
    api_key_required: bool = True  # False: the key is sent when set (a vLLM started with --api-key)
    model_env: str | None = None  # optional env key naming the upstream model instead (local servers)
    legacy_completions: bool = False  # the upstream serves /completions itself (else City uses chat)
    native_responses: bool = False  # the upstream serves OpenAI's Responses API itself (else City translates to chat)

    def env_requirements(self, *, failover: bool = False) -> list[EnvRequirement]:
        """The env this deployment reads. Fail-over deployments never make a key required: the
        model is callable through its first deployment alone."""
        via = " (fail-over)" if failover else ""
        reqs = []
        if self.api_key_env:
            reqs.append(EnvRequirement(self.api_key_env, f"{self.provider} API key{via}", required=self.api_key_required and not failover))
        reqs.append(
            EnvRequirement(
                self.base_url_env,
                f"{self.provider} base URL (default {self.default_base_url or 'none'}){via}",
                required=self.base_url_required and not failover,
            )
        )
        if self.model_env:
            reqs.append(
                EnvRequirement(
                    self.model_env, f"model name on the {self.provider} server (default {self.upstream_model}){via}", required=False
                )
            )
        return reqs


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    deployments: tuple[Deployment, ...]  # tried in order; later ones are fail-over
    modalities: tuple[str, ...] = CHAT_MODES
    default_modes: tuple[str, ...] = CHAT_MODES
    description: str = ""
    tags: tuple[str, ...] = ()
    context_window: int = 0  # tokens
    max_output_tokens: int = 0  # tokens
    input_price: int = 0  # micro-USD per million input tokens
    output_price: int = 0  # micro-USD per million output tokens
    # Prompt tokens read from (written to) the provider's prompt cache, micro-USD per million; None:
    # the provider lists no such price, and they cost input_price.
    cache_read_price: int | None = None
    cache_write_price: int | None = None
    # Writes kept for an hour (Anthropic's `ttl: "1h"`), where the provider prices them apart; None: cache_write_price.
    cache_write_1h_price: int | None = None
    # Media: what a call is billed in besides tokens, and at what price in micro-USD per million of
    # them (so that units × price is in 1e-12 USD, as tokens × price is). `unit_prices` holds the
    # variants a provider lists separately (an image's "quality/size", a video's resolution), read
    # by the route that knows the variant; `unit_price` is the price of anything not listed there.
    unit: str = ""  # "" (tokens only), or one of UNITS
    unit_price: int = 0
    unit_prices: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    created: int = 1_767_225_600  # Unix time shown as OpenAI's `created` (2026-01-01; the catalog has no per-model dates)

    def prompt_cost(self, prompt_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0, cache_write_1h_tokens: int = 0) -> int:
        """The prompt's cost in 1e-12 USD: cache reads and writes (parts of `prompt_tokens`; the hour-long
        writes a part of the writes) at their prices."""
        read = self.input_price if self.cache_read_price is None else self.cache_read_price
        write = self.input_price if self.cache_write_price is None else self.cache_write_price
        write_1h = write if self.cache_write_1h_price is None else self.cache_write_1h_price
        plain = max(prompt_tokens - cached_tokens - cache_write_tokens, 0)
        hour = min(cache_write_1h_tokens, cache_write_tokens)
        return plain * self.input_price + cached_tokens * read + (cache_write_tokens - hour) * write + hour * write_1h

    @property
    def owned_by(self) -> str:
        return self.deployments[0].provider

    def env_requirements(self) -> list[EnvRequirement]:
        seen: dict[str, EnvRequirement] = {}
        for index, deployment in enumerate(self.deployments):
            for req in deployment.env_requirements(failover=index > 0):
                if req.key not in seen or (req.required and not seen[req.key].required):
                    seen[req.key] = req
        return list(seen.values())

    def public_meta(self) -> dict[str, Any]:
        """Context, output limit and list prices (decimal strings in USD: exact, unlike floats)."""
        price: dict[str, Any] = {
            "currency": "USD",
            "input_per_million_tokens": _usd(self.input_price),
            "output_per_million_tokens": _usd(self.output_price),
        }
        for name, cache_price in (
            ("cached_input_per_million_tokens", self.cache_read_price),
            ("cache_write_per_million_tokens", self.cache_write_price),
            ("cache_write_1h_per_million_tokens", self.cache_write_1h_price),
        ):
            if cache_price is not None:
                price[name] = _usd(cache_price)
        meta: dict[str, Any] = {"context_window": self.context_window, "max_output_tokens": self.max_output_tokens, "price": price}
        if self.unit:
            singular = self.unit.removesuffix("s")
            price[f"per_{singular}"] = _usd_per_unit(self.unit_price)
            if self.unit_prices:
                price[f"per_{singular}_by_variant"] = {variant: _usd_per_unit(p) for variant, p in self.unit_prices.items()}
        meta.update(self.meta)
        return meta


def _usd(micro_usd: int) -> str:
    return format((Decimal(micro_usd) / 1_000_000).normalize(), "f")


def _usd_per_unit(micro_usd_per_million: int) -> str:
    return format((Decimal(micro_usd_per_million) / 1_000_000_000_000).normalize(), "f")


def usd(amount: str) -> int:
    """'0.14' (USD) → 140000 (micro-USD), exactly: catalog prices are written as the providers list them."""
    return int(Decimal(amount) * 1_000_000)


def usd_per_unit(amount: str) -> int:
    """'0.04' (USD an image, a character, a second) → micro-USD per million units, exactly."""
    return int(Decimal(amount) * 1_000_000_000_000)
