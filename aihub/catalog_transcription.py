"""Speech recognition models, served through /v1/ai/asr, /v1/ai/audio/transcriptions and audio/translations.

Every call is recorded in seconds of audio (`unit` "seconds", `units` the audio's duration rounded up
to a whole second), whatever its price is made of. List prices, as read in December 2026:
- OpenAI (platform.openai.com/docs/pricing, "Transcription and speech generation"): whisper-1
  $0.006 a minute, billed here as $0.0001 a second. gpt-4o-transcribe and gpt-4o-mini-transcribe
  are billed by tokens: text input $2.50 / $1.25, audio input $6 / $3, text output $10 / $5 per
  million (OpenAI estimates $0.006 and $0.003 a minute). A Model has one input price, so input is
  billed at the audio rate: the audio tokens are nearly all of a call's input, and the few text
  tokens of a prompt are billed at most $3.50 (mini $1.75) per million above their list price, never
  below it. When the upstream reports no token usage, the call is billed by its duration at
  `unit_price`, OpenAI's per-minute estimate per second.
- Deepgram (deepgram.com/pricing, pay as you go, pre-recorded): Nova-3 and Nova-2 $0.0043 a minute.
  $0.0043 / 60 a second is not a whole number of pico-USD (1e-12 USD, the unit of `unit_price`:
  micro-USD per million seconds): it is 71,666,666.67 pico-USD, priced here rounded up to 71,666,667.
"""

from aihub.catalog_deployments import deepgram, openai
from aihub.catalog_types import ASR, SECONDS, Model, usd, usd_per_unit

ASR_MODES = (ASR,)

MODELS: tuple[Model, ...] = (
    Model(
        "whisper-1",
        "Whisper",
        (openai("whisper-1"),),
        modalities=ASR_MODES,
        default_modes=ASR_MODES,
        description="OpenAI's Whisper V2: transcription and translation to English, with segment and word timestamps.",
        tags=("openai", "asr"),
        unit=SECONDS,
        unit_price=usd_per_unit("0.0001"),  # $0.006 a minute
    ),
    Model(
        "gpt-4o-transcribe",
        "GPT-4o Transcribe",
        (openai("gpt-4o-transcribe"),),
        modalities=ASR_MODES,
        default_modes=ASR_MODES,
        description="OpenAI's GPT-4o speech-to-text: transcripts as json or text, billed by tokens.",
        tags=("openai", "asr"),
        input_price=usd("6.00"),  # audio input; text input lists at $2.50 (see the module docstring)
        output_price=usd("10.00"),
        unit=SECONDS,
        unit_price=usd_per_unit("0.0001"),  # OpenAI's estimate, $0.006 a minute: used only when no usage is reported
    ),
    Model(
        "gpt-4o-mini-transcribe",
        "GPT-4o mini Transcribe",
        (openai("gpt-4o-mini-transcribe"),),
        modalities=ASR_MODES,
        default_modes=ASR_MODES,
        description="OpenAI's smaller GPT-4o speech-to-text: transcripts as json or text, billed by tokens.",
        tags=("openai", "asr"),
        input_price=usd("3.00"),  # audio input; text input lists at $1.25
        output_price=usd("5.00"),
        unit=SECONDS,
        unit_price=usd_per_unit("0.00005"),  # OpenAI's estimate, $0.003 a minute: only when no usage is reported
    ),
    Model(
        "nova-3",
        "Deepgram Nova-3",
        (deepgram("nova-3"),),
        modalities=ASR_MODES,
        default_modes=ASR_MODES,
        description="Deepgram's Nova-3 pre-recorded transcription: punctuation, utterances, word timestamps, language detection.",
        tags=("deepgram", "asr"),
        unit=SECONDS,
        unit_price=71_666_667,  # $0.0043 a minute, per second rounded up to the pico-dollar
    ),
    Model(
        "nova-2",
        "Deepgram Nova-2",
        (deepgram("nova-2"),),
        modalities=ASR_MODES,
        default_modes=ASR_MODES,
        description="Deepgram's Nova-2 pre-recorded transcription.",
        tags=("deepgram", "asr"),
        unit=SECONDS,
        unit_price=71_666_667,  # $0.0043 a minute, per second rounded up to the pico-dollar
    ),
)
