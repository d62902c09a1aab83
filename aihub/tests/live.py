"""A City process for the AI hub's end-to-end tests, with its upstreams simulated on loopback.

One Daphne process serves a whole test class (starting one costs about a second); each test gets
a fresh studio and token, its own OpenAI simulator, and points providers at it through
`env/upsert` — the way an admin configures City.
"""

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx
import openai

from aihub.tests.upstream.anthropic_sim import AnthropicSim
from aihub.tests.upstream.gemini_sim import GeminiSim
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.sim import SimServer
from city.livecity import LiveCity, LiveCityTestCase

DEEPSEEK_KEY = "sk-test-deepseek-not-real"
OPENAI_KEY = "sk-test-openai-not-real"


class AiLiveTestCase(LiveCityTestCase):
    city: LiveCity
    city_env: dict[str, str] = {}
    server = "daphne"  # or "uvicorn"
    workers = 1  # uvicorn's --workers

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.city = LiveCity(extra_env=cls.city_env, server=cls.server, workers=cls.workers)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.city.stop()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.admin = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {self.admin_key}"}, timeout=10)
        self.addCleanup(self.admin.close)
        self.studio = self.ok(self.admin.post("/v1/studios/create", json={"name": "Acme Games"}))
        issued = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.studio["id"], "name": "game server"}))
        self.token, self.token_id = issued["token"], issued["id"]
        self.user = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        self.addCleanup(self.user.close)
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)
        self.set_env(
            DEEPSEEK_API_KEY=DEEPSEEK_KEY, DEEPSEEK_BASE_URL=self.sim.url, OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=self.sim.url + "/v1"
        )

    def ok(self, response: httpx.Response) -> Any:
        self.assertEqual(response.status_code, 200, response.text[:500])
        return response.json()

    def set_env(self, **values: str) -> None:
        for key, value in values.items():
            self.ok(self.admin.post("/v1/env/upsert", json={"key": key, "value": value}))

    def remove_env(self, *keys: str) -> None:
        for key in keys:
            self.ok(self.admin.post("/v1/env/remove", json={"key": key}))


SimT = TypeVar("SimT", bound=SimServer)

if TYPE_CHECKING:
    # The mixin is only ever mixed into an AiLiveTestCase: type-check it as one.
    _ThroughCityBase = AiLiveTestCase
else:
    _ThroughCityBase = object


class ThroughCityMixin(Generic[SimT], _ThroughCityBase):
    """The official OpenAI SDK against City, with one provider served behind it by its simulator:
    the caller sees OpenAI's shapes only. A class sets the simulator and the env keys that point
    City at it; each test gets a fresh simulator (`self.provider`) and `self.sdk`."""

    simulator: type[SimT]
    api_key_env: str
    api_key: str
    base_url_env: str
    provider: SimT
    sdk: openai.OpenAI

    def setUp(self) -> None:
        super().setUp()
        self.provider = self.simulator().start()
        self.addCleanup(self.provider.stop)
        self.set_env(**{self.api_key_env: self.api_key, self.base_url_env: self.provider.url})
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)


class AllProtocolsTestCase(AiLiveTestCase):
    """Anthropic's and Gemini's simulators behind City too (`self.anthropic`, `self.gemini`), beside
    the OpenAI-compatible one, for tests that go through all three wire protocols."""

    anthropic: AnthropicSim
    gemini: GeminiSim

    def setUp(self) -> None:
        super().setUp()
        self.anthropic = AnthropicSim().start()
        self.addCleanup(self.anthropic.stop)
        self.gemini = GeminiSim().start()
        self.addCleanup(self.gemini.stop)
        self.set_env(
            ANTHROPIC_API_KEY="test-anthropic-key-not-real",
            ANTHROPIC_BASE_URL=self.anthropic.url,
            GEMINI_API_KEY="test-gemini-key-not-real",
            GEMINI_BASE_URL=self.gemini.url,
        )
