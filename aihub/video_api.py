"""Video jobs: POST /v1/ai/video and GET /v1/ai/video/result (City's), and /v1/ai/videos (OpenAI's videos resource)."""

from city.registry import Action

# The routes, added to the ai service (aihub/services.py), and their /v1/… twins (Service.aliases).
ACTIONS: tuple[Action, ...] = ()
ALIASES: dict[str, str] = {}
