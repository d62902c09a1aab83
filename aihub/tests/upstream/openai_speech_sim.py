"""OpenAI speech: POST /audio/speech, mixed into the provider's simulator."""

from __future__ import annotations

from aihub.tests.upstream.sim import Received, Reply


class SpeechRoutes:
    def speech_route(self, request: Received) -> Reply | None:
        """The answer when `request` is one of these routes, else None."""
        return None
