"""Speech recognition: POST /v1/ai/asr (City's parts), /v1/ai/audio/transcriptions and audio/translations (OpenAI's)."""

from city.registry import Action

# The routes, added to the ai service (aihub/services.py), and their /v1/… twins (Service.aliases).
ACTIONS: tuple[Action, ...] = ()
ALIASES: dict[str, str] = {}
