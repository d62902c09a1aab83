"""Text-to-speech: POST /v1/ai/tts (City's parts, or raw audio) and /v1/ai/audio/speech (OpenAI's)."""

from city.registry import Action

# The routes, added to the ai service (aihub/services.py), and their /v1/… twins (Service.aliases).
ACTIONS: tuple[Action, ...] = ()
ALIASES: dict[str, str] = {}
