"""Video models, served through /v1/ai/video and /v1/ai/videos, priced per second of video.

Each model's `meta` says what a request may ask of it (shown in GET /v1/ai/models too): `seconds`,
the clip lengths it renders, and `sizes`, its frame sizes (OpenAI's "WIDTHxHEIGHT"); the first of
each is the default. Video routes refuse anything else, naming the field.

Prices (list prices, USD per second of video):
- sora-2 $0.10 (720x1280, 1280x720); sora-2-pro $0.30 at 720x1280 / 1280x720 and $0.50 at
  1024x1792 / 1792x1024: OpenAI's pricing page (platform.openai.com/docs/pricing, "Video"), the
  prices hosts of OpenAI's video wire format charge on since OpenAI's own API closed in 2026.
- Veo 3 and 3.1 $0.40, Veo 3 Fast and 3.1 Fast $0.15, video with audio, 720p and 1080p alike:
  Google's Gemini API pricing page (ai.google.dev/gemini-api/docs/pricing, "Veo").
Veo's lengths and sizes: Google's Veo guide (ai.google.dev/gemini-api/docs/video): 3.1 renders 4, 6
or 8 seconds, 3.0 renders 8; 16:9 or 9:16 at 720p or 1080p.
"""

from aihub.catalog_deployments import gemini, openai_video
from aihub.catalog_types import SECONDS, VIDEO, Model, usd_per_unit

SORA_SECONDS = (4, 8, 12)
SORA_SIZES = ("720x1280", "1280x720")
SORA_PRO_SIZES = (*SORA_SIZES, "1024x1792", "1792x1024")
VEO_SIZES = ("1280x720", "720x1280", "1920x1080", "1080x1920")


def _sora(model_id: str, name: str, description: str, price: str, sizes: tuple[str, ...], by_size: dict[str, str]) -> Model:
    return Model(
        model_id,
        name,
        (openai_video(model_id),),
        modalities=(VIDEO,),
        default_modes=(VIDEO,),
        description=description,
        tags=("openai", "video"),
        unit=SECONDS,
        unit_price=usd_per_unit(price),
        unit_prices={size: usd_per_unit(p) for size, p in by_size.items()},
        meta={"seconds": list(SORA_SECONDS), "sizes": list(sizes)},
    )


def _veo(model_id: str, name: str, description: str, price: str, seconds: tuple[int, ...]) -> Model:
    return Model(
        model_id,
        name,
        (gemini(model_id),),
        modalities=(VIDEO,),
        default_modes=(VIDEO,),
        description=description,
        tags=("google", "video"),
        unit=SECONDS,
        unit_price=usd_per_unit(price),
        meta={"seconds": list(seconds), "sizes": list(VEO_SIZES)},
    )


MODELS: tuple[Model, ...] = (
    _sora("sora-2", "Sora 2", "OpenAI's video model with synced audio, through a host of OpenAI's Videos API.", "0.10", SORA_SIZES, {}),
    _sora(
        "sora-2-pro",
        "Sora 2 Pro",
        "Sora 2 at higher quality, also in 1024x1792 and 1792x1024, through a host of OpenAI's Videos API.",
        "0.30",
        SORA_PRO_SIZES,
        {"1024x1792": "0.50", "1792x1024": "0.50"},
    ),
    _veo("veo-3.0-generate-001", "Veo 3", "Google's Veo 3: 8-second clips with native audio.", "0.40", (8,)),
    _veo("veo-3.0-fast-generate-001", "Veo 3 Fast", "Veo 3 tuned for speed and cost.", "0.15", (8,)),
    _veo("veo-3.1-generate-preview", "Veo 3.1", "Google's Veo 3.1 (preview): 4 to 8-second clips with audio.", "0.40", (8, 4, 6)),
    _veo("veo-3.1-fast-generate-preview", "Veo 3.1 Fast", "Veo 3.1 tuned for speed and cost (preview).", "0.15", (8, 4, 6)),
)
