"""Base URL keys as people write them: with or without the API's path, and a 404 that says where it came from."""

from django.test import SimpleTestCase

from aihub.attempts import shown_url
from aihub.tests.live import DEEPSEEK_KEY, AiLiveTestCase
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.sim import Reply
from aihub.upstreams import configured_base_url

HI = [{"role": "user", "content": "Hi"}]


class ConfiguredBaseUrlTests(SimpleTestCase):
    def test_each_form_becomes_the_base_the_adapter_expects(self) -> None:
        cases = [
            # (value, adapter, the provider's default) → base URL
            ("http://127.0.0.1:8000", "openai", "https://api.openai.com/v1", "http://127.0.0.1:8000/v1"),
            ("http://127.0.0.1:8000/", "openai", "https://api.openai.com/v1", "http://127.0.0.1:8000/v1"),
            ("http://127.0.0.1:8000/v1", "openai", "https://api.openai.com/v1", "http://127.0.0.1:8000/v1"),
            ("http://proxy/openai/v1/", "openai", "https://api.openai.com/v1", "http://proxy/openai/v1"),
            ("http://proxy", "openai", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "http://proxy/compatible-mode/v1"),
            ("http://127.0.0.1:11434", "openai", "", "http://127.0.0.1:11434/v1"),  # a local server
            ("http://127.0.0.1:9000", "openai", "https://api.deepseek.com", "http://127.0.0.1:9000"),  # DeepSeek serves the root
            ("http://127.0.0.1:9000/v1", "anthropic", "https://api.anthropic.com", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/", "anthropic", "https://api.anthropic.com", "http://127.0.0.1:9000"),
            ("http://gw/anthropic/v1", "anthropic", "https://api.anthropic.com", "http://gw/anthropic"),
            ("http://127.0.0.1:9000/v1beta", "gemini", "https://generativelanguage.googleapis.com", "http://127.0.0.1:9000"),
            ("http://127.0.0.1:9000/v1/", "gemini", "https://generativelanguage.googleapis.com", "http://127.0.0.1:9000"),
        ]
        for value, adapter, default, expected in cases:
            with self.subTest(value=value, adapter=adapter):
                self.assertEqual(configured_base_url(value, adapter, default), expected)


class ShownUrlTests(SimpleTestCase):
    def test_errors_show_a_base_url_without_its_password_or_query(self) -> None:
        self.assertEqual(shown_url("http://user:secret@proxy.internal:8080/v1?key=abc"), "http://proxy.internal:8080/v1")
        self.assertEqual(shown_url("http://[::1]:9000/v1"), "http://[::1]:9000/v1")


class BaseUrlThroughCityTests(AiLiveTestCase):
    def test_a_local_server_named_by_host_alone_is_called_at_v1(self) -> None:
        self.set_env(LOCAL_OPENAI_BASE_URL=self.sim.url)  # no /v1, as Ollama's docs write the host
        self.ok(self.user.post("/v1/chat/completions", json={"model": "local-chat", "messages": HI}))
        self.assertEqual(self.sim.last_request.path, "/v1/chat/completions")

    def test_an_upstream_404_names_the_base_url_and_its_key(self) -> None:
        only_v1 = OpenAISim().start()
        self.addCleanup(only_v1.stop)
        only_v1.handler = lambda request: (
            only_v1.handle(request)
            if request.path.startswith("/v1/")
            else Reply.json({"error": {"message": f"Invalid URL (POST {request.path})", "type": "invalid_request_error"}}, status=404)
        )
        self.set_env(DEEPSEEK_BASE_URL=only_v1.url)
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-chat", "messages": HI})
        self.assertEqual(response.status_code, 404, response.text)
        message = response.json()["error"]["message"]
        self.assertIn("Invalid URL (POST /chat/completions)", message)
        self.assertIn(only_v1.url, message)
        self.assertIn("DEEPSEEK_BASE_URL", message)
        self.set_env(DEEPSEEK_BASE_URL=only_v1.url + "/v1")  # the fix the message suggests
        self.ok(self.user.post("/v1/chat/completions", json={"model": "deepseek-chat", "messages": HI}))

    def test_an_upstream_refusing_citys_key_is_a_502_naming_that_key(self) -> None:
        self.sim.fail(401, message="Incorrect API key provided", times=1)
        response = self.user.post("/v1/chat/completions", json={"model": "deepseek-chat", "messages": HI})
        self.assertEqual(response.status_code, 502, response.text)  # not 401: the client's City token is fine
        error = response.json()["error"]
        self.assertEqual(error["code"], "upstream_auth_failed")
        self.assertIn("Incorrect API key provided", error["message"])
        self.assertIn("DEEPSEEK_API_KEY", error["message"])
        self.assertNotIn(DEEPSEEK_KEY, response.text)
        self.ok(self.user.post("/v1/chat/completions", json={"model": "deepseek-chat", "messages": HI}))  # one refusal only
