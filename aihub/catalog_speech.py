"""Text-to-speech models, served through /v1/ai/tts and /v1/ai/audio/speech.

Each model's `meta` says what it takes, and the routes check requests against it (aihub/speech_api.py):
`voices` (None: any voice id of the provider's own form), `default_voice` (City's route, when the
request names none), `formats`, `max_characters`, `speed` (its range), `instructions`, `custom_voices` (OpenAI's `{"id"}` voices) and `sse` (OpenAI's
`stream_format: "sse"`).

Prices, as read in December 2026:
- OpenAI: platform.openai.com/docs/pricing, "Transcription and speech generation": tts-1 $15.00 and
  tts-1-hd $30.00 per million characters; gpt-4o-mini-tts $0.60 per million text input tokens and
  $12.00 per million audio output tokens (the page estimates $0.015 a minute of audio). Limits, voices
  and formats: the API reference, "Create speech" (input at most 4,096 characters; tts-1 and tts-1-hd
  predate the voices ballad, verse, marin and cedar and take no instructions).
- ElevenLabs: elevenlabs.io/pricing/api, text to speech: Multilingual v2 and v3 $0.10, Flash and Turbo
  v2.5 $0.05 per 1,000 characters. Character limits per request: elevenlabs.io/docs/models
  (Multilingual v2 10,000; v3 5,000; Flash and Turbo v2.5 40,000); speed 0.7–1.2: the API reference,
  "Create speech", voice_settings.speed.

gpt-4o-mini-tts's raw-audio answer carries no usage: City counts its tokens itself (see
aihub/speech_request.py), unless the client asked for OpenAI's speech events (`stream_format: "sse"`),
whose last event reports them; the characters are recorded too, at no price of their own.
"""

from aihub.catalog_deployments import elevenlabs, openai
from aihub.catalog_types import CHARACTERS, TTS, Model, usd, usd_per_unit

# OpenAI's built-in voices; tts-1 and tts-1-hd lack the newer ones.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse", "marin", "cedar")
TTS_1_VOICES = ("alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer")
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
# What ElevenLabs can answer of OpenAI's formats (aihub/adapters/elevenlabs.py OUTPUT_FORMATS maps them).
ELEVENLABS_FORMATS = ("mp3", "opus", "pcm")
# ElevenLabs' voice "George", one of its default voices: the voice of a request that names none.
ELEVENLABS_DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"

OPENAI_SPEED = {"min": 0.25, "max": 4.0}
ELEVENLABS_SPEED = {"min": 0.7, "max": 1.2}


def _openai_meta(voices: tuple[str, ...], *, instructions: bool) -> dict[str, object]:
    return {
        "voices": list(voices),
        "default_voice": "alloy",
        "formats": list(OPENAI_FORMATS),
        "max_characters": 4096,
        "speed": OPENAI_SPEED,
        "instructions": instructions,
        "custom_voices": instructions,  # {"id": "voice_…"}: gpt-4o-mini-tts only, as instructions
        "sse": instructions,  # stream_format "sse" (OpenAI's speech events, with usage): the same
    }


def _elevenlabs_meta(max_characters: int) -> dict[str, object]:
    return {
        "voices": None,
        "default_voice": ELEVENLABS_DEFAULT_VOICE,
        "formats": list(ELEVENLABS_FORMATS),
        "max_characters": max_characters,
        "speed": ELEVENLABS_SPEED,
        "instructions": False,
        "sse": False,
    }


MODELS: tuple[Model, ...] = (
    # --- OpenAI -------------------------------------------------------------------------------------
    Model(
        "tts-1",
        "OpenAI TTS-1",
        (openai("tts-1"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="OpenAI's text-to-speech model tuned for low latency.",
        tags=("openai", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.000015"),  # $15.00 per million characters
        meta=_openai_meta(TTS_1_VOICES, instructions=False),
    ),
    Model(
        "tts-1-hd",
        "OpenAI TTS-1 HD",
        (openai("tts-1-hd"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="OpenAI's text-to-speech model tuned for quality.",
        tags=("openai", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.00003"),  # $30.00 per million characters
        meta=_openai_meta(TTS_1_VOICES, instructions=False),
    ),
    Model(
        "gpt-4o-mini-tts",
        "GPT-4o mini TTS",
        (openai("gpt-4o-mini-tts"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="OpenAI's text-to-speech model steered by instructions (tone, accent, pace).",
        tags=("openai", "speech"),
        input_price=usd("0.60"),  # text input tokens
        output_price=usd("12.00"),  # audio output tokens
        unit=CHARACTERS,  # recorded, not priced: the tokens are
        unit_price=0,
        meta=_openai_meta(OPENAI_VOICES, instructions=True),
    ),
    # --- ElevenLabs ---------------------------------------------------------------------------------
    Model(
        "eleven_multilingual_v2",
        "ElevenLabs Multilingual v2",
        (elevenlabs("eleven_multilingual_v2"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="ElevenLabs' lifelike, emotionally rich speech in 29 languages.",
        tags=("elevenlabs", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.0001"),  # $0.10 per 1,000 characters
        meta=_elevenlabs_meta(10_000),
    ),
    Model(
        "eleven_v3",
        "ElevenLabs v3",
        (elevenlabs("eleven_v3"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="ElevenLabs' most expressive model, in 70+ languages.",
        tags=("elevenlabs", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.0001"),  # $0.10 per 1,000 characters
        meta=_elevenlabs_meta(5_000),
    ),
    Model(
        "eleven_flash_v2_5",
        "ElevenLabs Flash v2.5",
        (elevenlabs("eleven_flash_v2_5"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="ElevenLabs' fastest model (about 75 ms), in 32 languages.",
        tags=("elevenlabs", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.00005"),  # $0.05 per 1,000 characters
        meta=_elevenlabs_meta(40_000),
    ),
    Model(
        "eleven_turbo_v2_5",
        "ElevenLabs Turbo v2.5",
        (elevenlabs("eleven_turbo_v2_5"),),
        modalities=(TTS,),
        default_modes=(TTS,),
        description="ElevenLabs' balance of quality and low latency, in 32 languages.",
        tags=("elevenlabs", "speech"),
        unit=CHARACTERS,
        unit_price=usd_per_unit("0.00005"),  # $0.05 per 1,000 characters
        meta=_elevenlabs_meta(40_000),
    ),
)
