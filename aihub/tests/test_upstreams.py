"""aihub.upstreams: a deployment resolved against the runtime env carries its model's limits, so
that an adapter reads them from the upstream alone."""

import os
from unittest import mock

from django.test import TestCase

from aihub.catalog import models_by_id
from aihub.upstreams import callable_upstreams
from city.runtime_env import runtime_env


class UpstreamLimitsTests(TestCase):
    def setUp(self) -> None:
        runtime_env.invalidate()
        self.addCleanup(runtime_env.invalidate)

    async def test_every_deployment_of_a_model_carries_its_max_output_tokens(self) -> None:
        keys = {"ANTHROPIC_API_KEY": "sk-ant-test", "OPENROUTER_API_KEY": "sk-or-test"}
        with mock.patch.dict(os.environ, keys):
            (haiku,) = await callable_upstreams(models_by_id()["claude-haiku-4-5"])
            sonnet = await callable_upstreams(models_by_id()["claude-sonnet-4-6"])
        self.assertEqual((haiku.model, haiku.max_output_tokens), ("claude-haiku-4-5-20251001", 64_000))
        # Its fail-over through OpenRouter (another adapter, another upstream name) carries the same limit.
        self.assertEqual(
            [(u.adapter, u.model) for u in sonnet], [("anthropic", "claude-sonnet-4-6"), ("openai", "anthropic/claude-sonnet-4.6")]
        )
        self.assertEqual({u.max_output_tokens for u in sonnet}, {models_by_id()["claude-sonnet-4-6"].max_output_tokens})
        self.assertGreater(sonnet[0].max_output_tokens, 0)
