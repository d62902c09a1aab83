"""Image models, served through /v1/ai/image, /v1/ai/images/generations and images/edits, and what
each takes (ImageRules: sizes, qualities, counts, prompt and file limits), which the routes check
before anything is counted.

Prices as the providers list them (read December 2026):
- OpenAI (platform.openai.com/docs/pricing, "Image generation"): gpt-image-1.5 (its GPT image model
  since December 2025) text input $5/M tokens, image input $8/M, image output $32/M — its per-image
  prices ($0.009 / $0.034 / $0.133 at 1024×1024) are the same output-token table at $32/M;
  gpt-image-1 text input $5/M tokens, image input $10/M, image output $40/M; gpt-image-1-mini text input $2/M, image input $2.50/M,
  image output $8/M; dall-e-3 per image, standard 1024×1024 $0.04, standard 1024×1792 / 1792×1024
  $0.08, hd 1024×1024 $0.08, hd wide $0.12. Output tokens per image by quality and size are
  OpenAI's table in its image generation guide (GPT_IMAGE_OUTPUT_TOKENS).
- Google (ai.google.dev/gemini-api/docs/pricing): Imagen 4 $0.04 an image, Imagen 4 Fast $0.02,
  Imagen 4 Ultra $0.06; Gemini 2.5 Flash Image $0.30/M input tokens, $30/M output tokens, 1,290
  output tokens an image (up to 1024×1024).

A model's `input_price` is its text input price. Image input (the pictures an edit sends) costs more
on OpenAI's GPT image models; City bills it as text input tokens at the ratio of the two prices
(IMAGE_INPUT_PRICES): exactly ×2 for gpt-image-1, ×8/5 and ×5/4 rounded up for gpt-image-1.5 and gpt-image-1-mini, so an image
input token costs what OpenAI lists, give or take one text token. Cached input is billed as uncached.
"""

from dataclasses import dataclass, field

from aihub.catalog_deployments import gemini, openai
from aihub.catalog_types import IMAGE, IMAGES, Model, usd, usd_per_unit

MB = 1_000_000  # OpenAI and Google state their file limits in MB


@dataclass(frozen=True)
class ImageRules:
    """What one model takes, as its provider documents it."""

    family: str  # "gpt-image", "dall-e", "imagen", "gemini": which checks and which worst case apply
    prompt_chars: int
    max_n: int
    sizes: tuple[str, ...]  # OpenAI's `size` values (Google's models: the sizes that map to an aspect ratio)
    qualities: tuple[str, ...]
    fields: frozenset[str]  # optional request fields this model takes, besides model, prompt, n, size, quality
    edits: bool = False
    max_file_bytes: int = 0  # each image an edit sends
    max_total_bytes: int = 0  # all of them together (0: no limit but the body's)
    backgrounds: tuple[str, ...] = ()
    output_formats: tuple[str, ...] = ("png",)
    response_formats: tuple[str, ...] = ("b64_json",)
    styles: tuple[str, ...] = ()
    # Google: OpenAI size → (aspectRatio, imageSize or "")
    aspect_ratios: dict[str, tuple[str, str]] = field(default_factory=dict)


GPT_IMAGE_SIZES = ("1024x1024", "1024x1536", "1536x1024", "auto")
# Output tokens of one image by (quality, size); "auto" quality or size is billed as its largest.
GPT_IMAGE_OUTPUT_TOKENS: dict[tuple[str, str], int] = {
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
GPT_IMAGE_RULES = ImageRules(
    family="gpt-image",
    prompt_chars=32_000,
    max_n=10,
    sizes=GPT_IMAGE_SIZES,
    qualities=("low", "medium", "high", "auto"),
    fields=frozenset(
        {
            "background",
            "output_format",
            "output_compression",
            "moderation",
            "user",
            "safety_identifier",
            "input_fidelity",
            "response_format",
        }
    ),
    edits=True,
    max_file_bytes=50 * MB,  # OpenAI: "each image should be a png, webp, or jpg file less than 50MB"
    backgrounds=("transparent", "opaque", "auto"),
    output_formats=("png", "jpeg", "webp"),
)
DALL_E_3_RULES = ImageRules(
    family="dall-e",
    prompt_chars=4_000,
    max_n=1,
    sizes=("1024x1024", "1792x1024", "1024x1792"),
    qualities=("standard", "hd", "auto"),  # auto is standard, the default
    fields=frozenset({"style", "user", "response_format"}),
    response_formats=("url", "b64_json"),
    styles=("vivid", "natural"),
)
# Imagen's aspect ratios at its 1K and 2K sizes (Google's Imagen guide), and OpenAI's sizes that are
# them; DALL·E's 1792×1024 (7:4) is near enough 16:9 to read as it.
IMAGEN_RATIOS = {
    "1024x1024": ("1:1", ""),
    "896x1280": ("3:4", ""),
    "1280x896": ("4:3", ""),
    "768x1408": ("9:16", ""),
    "1408x768": ("16:9", ""),
    "1024x1792": ("9:16", ""),
    "1792x1024": ("16:9", ""),
}
IMAGEN_2K = {"2048x2048": ("1:1", "2K")}


def imagen_rules(max_n: int, two_k: bool) -> ImageRules:
    ratios = {**IMAGEN_RATIOS, **(IMAGEN_2K if two_k else {})}
    return ImageRules(
        family="imagen",
        prompt_chars=1_920,  # Imagen takes 480 tokens of prompt: about 4 characters each
        max_n=max_n,
        sizes=(*ratios, "auto"),
        qualities=("auto",),
        fields=frozenset({"person_generation", "user", "response_format", "output_format"}),
        aspect_ratios=ratios,
    )


# Gemini 2.5 Flash Image's aspect ratios and the size each makes (Google's image generation guide).
GEMINI_IMAGE_RATIOS = {
    "1024x1024": ("1:1", ""),
    "832x1248": ("2:3", ""),
    "1248x832": ("3:2", ""),
    "864x1184": ("3:4", ""),
    "1184x864": ("4:3", ""),
    "896x1152": ("4:5", ""),
    "1152x896": ("5:4", ""),
    "768x1344": ("9:16", ""),
    "1344x768": ("16:9", ""),
    "1536x672": ("21:9", ""),
    # OpenAI's GPT image and DALL·E sizes, at the ratio they have
    "1024x1536": ("2:3", ""),
    "1536x1024": ("3:2", ""),
    "1024x1792": ("9:16", ""),
    "1792x1024": ("16:9", ""),
}
GEMINI_IMAGE_RULES = ImageRules(
    family="gemini",
    prompt_chars=32_000,
    max_n=1,  # one image a call
    sizes=(*GEMINI_IMAGE_RATIOS, "auto"),
    qualities=("auto",),
    fields=frozenset({"user", "response_format", "output_format"}),
    edits=True,
    max_file_bytes=20 * MB,  # Gemini: a request with inline data is at most 20 MB in all
    max_total_bytes=20 * MB,
    aspect_ratios=GEMINI_IMAGE_RATIOS,
)
GEMINI_IMAGE_OUTPUT_TOKENS = 1290  # each image (Google's pricing page)

MODELS: tuple[Model, ...] = (
    Model(
        "gpt-image-1.5",
        "GPT Image 1.5",
        (openai("gpt-image-1.5"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="OpenAI's current GPT image model: generations and edits (up to 16 input images, masks), billed by tokens.",
        tags=("openai", "image"),
        input_price=usd("5"),
        output_price=usd("32"),
        unit=IMAGES,
        meta={"image_input_per_million_tokens": "8"},
    ),
    Model(
        "gpt-image-1",
        "GPT Image 1",
        (openai("gpt-image-1"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="OpenAI's GPT image model: generations and edits (up to 16 input images, masks), billed by tokens.",
        tags=("openai", "image"),
        input_price=usd("5"),
        output_price=usd("40"),
        unit=IMAGES,
        meta={"image_input_per_million_tokens": "10"},
    ),
    Model(
        "gpt-image-1-mini",
        "GPT Image 1 Mini",
        (openai("gpt-image-1-mini"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="The smaller, cheaper GPT image model: generations and edits, billed by tokens.",
        tags=("openai", "image"),
        input_price=usd("2"),
        output_price=usd("8"),
        unit=IMAGES,
        meta={"image_input_per_million_tokens": "2.50"},
    ),
    Model(
        "dall-e-3",
        "DALL·E 3",
        (openai("dall-e-3"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="OpenAI's DALL·E 3: one image a request, standard or hd, as a URL or base64; no edits.",
        tags=("openai", "image"),
        unit=IMAGES,
        unit_price=usd_per_unit("0.04"),
        unit_prices={
            "standard/1024x1024": usd_per_unit("0.04"),
            "standard/1024x1792": usd_per_unit("0.08"),
            "standard/1792x1024": usd_per_unit("0.08"),
            "hd/1024x1024": usd_per_unit("0.08"),
            "hd/1024x1792": usd_per_unit("0.12"),
            "hd/1792x1024": usd_per_unit("0.12"),
        },
    ),
    Model(
        "imagen-4.0-generate-001",
        "Imagen 4",
        (gemini("imagen-4.0-generate-001"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="Google's Imagen 4: up to 4 images a request, 1K or 2K; no edits.",
        tags=("google", "image"),
        unit=IMAGES,
        unit_price=usd_per_unit("0.04"),
    ),
    Model(
        "imagen-4.0-fast-generate-001",
        "Imagen 4 Fast",
        (gemini("imagen-4.0-fast-generate-001"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="Google's fastest, cheapest Imagen 4: up to 4 images a request at 1K; no edits.",
        tags=("google", "image"),
        unit=IMAGES,
        unit_price=usd_per_unit("0.02"),
    ),
    Model(
        "imagen-4.0-ultra-generate-001",
        "Imagen 4 Ultra",
        (gemini("imagen-4.0-ultra-generate-001"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="Google's most faithful Imagen 4: one image a request, 1K or 2K; no edits.",
        tags=("google", "image"),
        unit=IMAGES,
        unit_price=usd_per_unit("0.06"),
    ),
    Model(
        "gemini-2.5-flash-image",
        "Gemini 2.5 Flash Image",
        (gemini("gemini-2.5-flash-image"),),
        modalities=(IMAGE,),
        default_modes=(IMAGE,),
        description="Gemini's image model (“nano banana”): generations and edits from input images, billed by tokens.",
        tags=("google", "image"),
        context_window=32_768,
        input_price=usd("0.30"),
        output_price=usd("30"),
        unit=IMAGES,
    ),
)

RULES: dict[str, ImageRules] = {
    "gpt-image-1.5": GPT_IMAGE_RULES,
    "gpt-image-1": GPT_IMAGE_RULES,
    "gpt-image-1-mini": GPT_IMAGE_RULES,
    "dall-e-3": DALL_E_3_RULES,
    "imagen-4.0-generate-001": imagen_rules(4, two_k=True),
    "imagen-4.0-fast-generate-001": imagen_rules(4, two_k=False),
    "imagen-4.0-ultra-generate-001": imagen_rules(1, two_k=True),
    "gemini-2.5-flash-image": GEMINI_IMAGE_RULES,
}

# Image input prices as (numerator, denominator) of the text input price: see the module docstring.
IMAGE_INPUT_PRICES: dict[str, tuple[int, int]] = {"gpt-image-1.5": (8, 5), "gpt-image-1": (2, 1), "gpt-image-1-mini": (5, 4)}


def aspect_ratio(model_id: str, size: str) -> tuple[str, str] | None:
    """Google's (aspectRatio, imageSize or "") for an OpenAI `size` on this model; ("", "") for
    "auto" or no size (the model's default, 1:1), None when the size has no ratio the model makes."""
    if size in ("", "auto"):
        return "", ""
    rules = RULES.get(model_id)
    return rules.aspect_ratios.get(size) if rules is not None else None
