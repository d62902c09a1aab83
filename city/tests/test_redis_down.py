"""Redis stopped: every route answers as it does with Redis up, or a typed 503; back to normal within seconds.

The test runs its own redis-server on a free port (nothing saved to disk) and points a live City
process at it. It calls every action that GET /v1/services lists, the OpenAI aliases, the dashboard
and the admin: with Redis up (the baseline), hung (SIGSTOP: connections open but nothing answers),
stopped, and started again on the same port.
"""

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import redis
from django.contrib.auth import get_user_model

from aihub.image_results import keep as keep_images
from aihub.tests.test_asr_units import wav
from aihub.tests.upstream.openai_images_sim import PNG, PNG_B64
from aihub.tests.upstream.openai_sim import OpenAISim
from city.livecity import BASE_DIR, LiveCityTestCase, free_port

# Seconds any answer may take while Redis is down or hung (REDIS_TIMEOUT_SECONDS is 1 s).
ANSWER_LIMIT_SECONDS = 5.0
# Seconds within which City answers as before once Redis is back.
RECOVERY_LIMIT_SECONDS = 10.0
PASSWORD = "a long passphrase for dana"
# Routes refused while the cache is down (their throttles live there); every other route answers as usual.
REFUSED_WHEN_DOWN = {"accounts/login", "accounts/register", "dashboard signin", "system/health"}


class RedisServer:
    """A redis-server of the test's own, on a free loopback port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise AssertionError("redis-server is not installed; `apt-get install -y redis-server` (.ci/run does it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        argv = [self.binary or "", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(argv, cwd=BASE_DIR / "var", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise AssertionError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def hang(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped process would not see SIGTERM until continued
            self.process.terminate()
            self.process.wait(10)
        self.process = None


@dataclass
class Answer:
    label: str
    status: int
    seconds: float
    response: httpx.Response


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)


class RedisDownTests(LiveCityTestCase):
    def setUp(self) -> None:
        self.redis = RedisServer()
        self.addCleanup(self.redis.stop)
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)
        self.city = self.start_city(extra_env={"REDIS_URL": self.redis.url})
        self.clients: list[httpx.Client] = []
        self.admin = self.http(token=self.admin_key)
        for key, value in {
            "DEEPSEEK_API_KEY": "sk-test-deepseek-not-real",
            "DEEPSEEK_BASE_URL": self.sim.url,
            "OPENAI_API_KEY": "sk-test-openai-not-real",
            "OPENAI_BASE_URL": self.sim.url + "/v1",
            "VIDEO_OPENAI_BASE_URL": self.sim.url + "/v1",
            "VIDEO_OPENAI_API_KEY": "sk-test-video-not-real",
            "GITHUB_CLIENT_ID": "city-test-client",
            "GITHUB_CLIENT_SECRET": "city-test-secret-not-real",
        }.items():
            self.ok(self.admin.post("/v1/env/upsert", json={"key": key, "value": value}))
        self.studio = self.ok(self.admin.post("/v1/studios/create", json={"name": "Redis-down"}))["id"]
        self.user_token = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": self.studio, "name": "u"}))["token"]
        self.user = self.http(token=self.user_token)
        self.ok(self.admin.post("/v1/accounts/settings", json={"studio_id": self.studio, "self_registration": True}))
        self.ok(self.admin.post("/v1/accounts/create", json={"studio_id": self.studio, "email": "dana@example.com", "password": PASSWORD}))
        self.login = {"studio_id": self.studio, "email": "dana@example.com", "password": PASSWORD}
        self.account = self.http(token=self.ok(self.http().post("/v1/accounts/login", json=self.login))["user_token"])
        self.flow_id = self.ok(self.http().post("/v1/accounts/oauth/start", json={"provider": "github", "studio_id": self.studio}))[
            "flow_id"
        ]
        self.dashboard = self.http()  # a browser signed in to /dashboard/keys, its session in the database
        page = self.dashboard.get("/dashboard/keys/signin")
        signed_in = self.dashboard.post("/dashboard/keys/signin", data={**self.login, "csrfmiddlewaretoken": csrf_of(page)})
        self.assertEqual((signed_in.status_code, signed_in.headers["location"]), (302, "/dashboard/keys"))
        self.kept_images = keep_images(
            request_id="kept-while-redis-down",
            studio_id=self.studio,
            call_id="call_kept_redis_down",
            model="gpt-image-1",
            answer_id="img_kept",
            parts=[{"type": "image", "data": PNG_B64, "mime": "image/png"}],
            usage={"images": 1},
        ).request_id
        get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
        self.admin_browser = self.http()
        self.admin_login(self.admin_browser)

    def http(self, *, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.city.url, headers=headers, timeout=30)
        self.addCleanup(client.close)
        return client

    def ok(self, response: httpx.Response) -> Any:
        self.assertEqual(response.status_code, 200, response.text[:500])
        return response.json()

    def admin_login(self, browser: httpx.Client) -> httpx.Response:
        page = browser.get("/admin/login/")
        return browser.post(
            "/admin/login/", data={"username": "root", "password": PASSWORD, "csrfmiddlewaretoken": csrf_of(page), "next": "/admin/"}
        )

    def every_route(self, tag: str) -> list[Answer]:
        """One call of every route, in an order where each finds what it needs; `tag` keeps names apart."""
        answers: list[Answer] = []

        def call(label: str, send: Callable[[], httpx.Response]) -> httpx.Response:
            start = time.monotonic()
            response = send()
            answers.append(Answer(label, response.status_code, time.monotonic() - start, response))
            return response

        def value(response: httpx.Response, field: str) -> Any:
            return response.json()[field] if response.status_code == 200 else "missing"

        admin, user, account, guest = self.admin, self.user, self.account, self.http()
        call("/v1/services", lambda: admin.get("/v1/services"))
        call("system/health", lambda: guest.get("/v1/system/health"))
        call("system/whoami", lambda: user.get("/v1/system/whoami"))
        call("system/openapi", lambda: guest.get("/v1/system/openapi"))
        call("system/reference", lambda: guest.get("/v1/system/reference"))
        call("env/upsert", lambda: admin.post("/v1/env/upsert", json={"key": "DOWNTIME_TEST_KEY", "value": f"value-{tag}"}))
        call("env/list", lambda: admin.get("/v1/env/list"))
        call("env/import", lambda: admin.post("/v1/env/import", json={"content": f"DOWNTIME_TEST_OTHER=import-{tag}\n"}))
        call("env/remove", lambda: admin.post("/v1/env/remove", json={"key": "DOWNTIME_TEST_KEY"}))
        call("audit/list", lambda: admin.get("/v1/audit/list"))
        studio = value(call("studios/create", lambda: admin.post("/v1/studios/create", json={"name": f"Studio {tag}"})), "id")
        call("studios/list", lambda: admin.get("/v1/studios/list"))
        call("studios/pause", lambda: admin.post("/v1/studios/pause", json={"studio_id": studio}))
        call("studios/activate", lambda: admin.post("/v1/studios/activate", json={"studio_id": studio}))
        call("studios/me", lambda: user.get("/v1/studios/me"))
        token = value(
            call("studios/tokens/apply", lambda: admin.post("/v1/studios/tokens/apply", json={"studio_id": studio, "name": tag})), "id"
        )
        call("studios/tokens/list", lambda: admin.get("/v1/studios/tokens/list", params={"studio_id": studio}))
        call("studios/tokens/rotate", lambda: admin.post("/v1/studios/tokens/rotate", json={"token_id": token}))
        plan = value(call("studios/plans/create", lambda: admin.post("/v1/studios/plans/create", json={"name": f"Plan {tag}"})), "id")
        call("studios/plans/list", lambda: admin.get("/v1/studios/plans/list"))
        call("studios/plans/update", lambda: admin.post("/v1/studios/plans/update", json={"plan_id": plan, "monthly_budget": 12.5}))
        call("studios/plans/assign", lambda: admin.post("/v1/studios/plans/assign", json={"plan_id": plan, "token_id": token}))
        call("studios/tokens/revoke", lambda: admin.post("/v1/studios/tokens/revoke", json={"token_id": token}))
        call("studios/remove", lambda: admin.post("/v1/studios/remove", json={"studio_id": studio}))
        call("studios/plans/remove", lambda: admin.post("/v1/studios/plans/remove", json={"plan_id": plan}))
        chat = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Hi"}]}
        for route in ("ai/models", "models"):
            call(route, partial(user.get, f"/v1/{route}"))
        call("ai/text", lambda: user.post("/v1/ai/text", json={"model": "deepseek-v4-flash", "prompt": "Hi"}))
        call("ai/stream", lambda: user.post("/v1/ai/stream", json={"model": "deepseek-v4-flash", "prompt": "Hi"}))
        for route in ("ai/chat/completions", "chat/completions"):
            call(route, partial(user.post, f"/v1/{route}", json=chat))
        # The Anthropic Messages API, the token in x-api-key as Anthropic's SDKs send it.
        anthropic_key = {"x-api-key": self.user_token}
        messages = {"model": "deepseek-v4-flash", "max_tokens": 20, "messages": [{"role": "user", "content": "Hi"}]}
        for route in ("ai/messages", "messages"):
            call(route, partial(guest.post, f"/v1/{route}", json=messages, headers=anthropic_key))
        for route in ("ai/messages/count_tokens", "messages/count_tokens"):
            call(
                route,
                partial(
                    guest.post, f"/v1/{route}", json={"model": "deepseek-v4-flash", "messages": messages["messages"]}, headers=anthropic_key
                ),
            )
        for route in ("ai/completions", "completions"):
            call(route, partial(user.post, f"/v1/{route}", json={"model": "gpt-3.5-turbo-instruct", "prompt": "Hi"}))
        for route in ("ai/responses", "responses"):
            call(route, partial(user.post, f"/v1/{route}", json={"model": "deepseek-v4-flash", "input": "Hi"}))
        # A stored response is read, listed and deleted from the database alone.
        stored = value(
            call("responses (stored)", lambda: user.post("/v1/responses", json={"model": "deepseek-v4-flash", "input": "Hi"})), "id"
        )
        call("responses retrieve", lambda: user.get(f"/v1/responses/{stored}"))
        call("responses input_items", lambda: user.get(f"/v1/responses/{stored}/input_items"))
        call("responses delete", lambda: user.delete(f"/v1/responses/{stored}"))
        for route in ("ai/embeddings", "embeddings"):
            call(route, partial(user.post, f"/v1/{route}", json={"model": "text-embedding-3-small", "input": "Hi"}))
        audio = {"file": ("clip.wav", wav(1.0), "audio/wav")}
        call("ai/asr", lambda: user.post("/v1/ai/asr", data={"model": "whisper-1"}, files=audio))
        for route in ("ai/audio/transcriptions", "audio/transcriptions", "ai/audio/translations", "audio/translations"):
            call(route, partial(user.post, f"/v1/{route}", data={"model": "whisper-1"}, files=audio))
        image = {"model": "gpt-image-1", "prompt": "Hi", "quality": "low", "size": "1024x1024"}
        call("ai/image", lambda: user.post("/v1/ai/image", json=image))
        for route in ("ai/images/generations", "images/generations"):
            call(route, partial(user.post, f"/v1/{route}", json=image))
        edit, png = {"model": "gpt-image-1", "prompt": "Hi"}, {"image": ("a.png", PNG, "image/png")}
        for route in ("ai/images/edits", "images/edits"):
            call(route, partial(user.post, f"/v1/{route}", data=edit, files=png))
        call("ai/image/result", lambda: user.get("/v1/ai/image/result", params={"request_id": self.kept_images}))
        call("ai/tts", lambda: user.post("/v1/ai/tts", json={"model": "tts-1", "text": "Hi"}))
        for route in ("ai/audio/speech", "audio/speech"):
            call(route, partial(user.post, f"/v1/{route}", json={"model": "tts-1", "input": "Hi", "voice": "alloy"}))
        video = {"model": "sora-2", "prompt": "A kite"}
        job = value(call("ai/video", lambda: user.post("/v1/ai/video", json=video)), "id")
        call("ai/video/result", lambda: user.get("/v1/ai/video/result", params={"id": job}))
        call("ai/videos", lambda: user.post("/v1/videos", json=video))
        call("videos", lambda: user.get("/v1/videos"))
        call("ai/logs", lambda: user.get("/v1/ai/logs"))
        call("ai/usage", lambda: user.get("/v1/ai/usage"))
        call("accounts/login", lambda: guest.post("/v1/accounts/login", json=self.login))
        register = {"studio_id": self.studio, "email": f"reg-{tag}@example.com", "password": PASSWORD}
        call("accounts/register", lambda: guest.post("/v1/accounts/register", json=register))
        call("accounts/me", lambda: account.get("/v1/accounts/me"))
        call("accounts/oauth/start", lambda: guest.post("/v1/accounts/oauth/start", json={"provider": "github", "studio_id": self.studio}))
        call("accounts/oauth/result", lambda: guest.get("/v1/accounts/oauth/result", params={"flow_id": self.flow_id}))
        # An unknown state: a full provider round trip is test_oauth_live's; this route never reads the cache.
        call("accounts/oauth/callback", lambda: guest.get("/v1/accounts/oauth/callback", params={"state": "unknown", "code": "c"}))
        # An unknown flow and an unknown code: refused alike whether Redis answers or not.
        call("accounts/oauth/confirm", lambda: guest.post("/v1/accounts/oauth/confirm", data={"flow": "unknown", "csrf_token": "x"}))
        call(
            "accounts/oauth/token", lambda: guest.post("/v1/accounts/oauth/token", json={"code": "oac_unknown", "code_verifier": "v" * 43})
        )
        created = {"studio_id": self.studio, "email": f"made-{tag}@example.com"}
        new_account = value(call("accounts/create", lambda: admin.post("/v1/accounts/create", json=created)), "id")
        call("accounts/list", lambda: admin.get("/v1/accounts/list", params={"studio_id": self.studio}))
        call("accounts/disable", lambda: admin.post("/v1/accounts/disable", json={"account_id": new_account}))
        call("accounts/enable", lambda: admin.post("/v1/accounts/enable", json={"account_id": new_account}))
        call("accounts/settings", lambda: admin.get("/v1/accounts/settings", params={"studio_id": self.studio}))
        call(
            "accounts/settings POST",
            lambda: admin.post("/v1/accounts/settings", json={"studio_id": self.studio, "self_registration": True}),
        )
        # The dashboard and the admin: browser pages with sessions and CSRF.
        browser = self.http()
        page = call("dashboard signin page", lambda: browser.get("/dashboard/keys/signin"))
        form = {**self.login, "csrfmiddlewaretoken": csrf_of(page)}
        call("dashboard signin", lambda: browser.post("/dashboard/keys/signin", data=form))
        oauth_form = {"studio_id": self.studio, "provider": "github", "csrfmiddlewaretoken": csrf_of(page)}
        call("dashboard oauth start", lambda: browser.post("/dashboard/keys/oauth/start", data=oauth_form))
        call("dashboard keys", lambda: self.dashboard.get("/dashboard/keys"))
        call("admin login", lambda: self.admin_login(self.http()))
        call("admin index", lambda: self.admin_browser.get("/admin/"))
        for model in ("studios/studio", "studios/usertoken", "studios/plan", "accounts/account", "city/envvar", "city/auditentry"):
            call(f"admin {model}", partial(self.admin_browser.get, f"/admin/{model}/"))
        return answers

    def test_every_route_answers_while_redis_is_down_and_all_is_normal_once_it_returns(self) -> None:
        listed = self.ok(self.admin.get("/v1/services"))
        actions = {f"{s['id']}/{a['name']}" for s in listed["items"] for a in s["actions"]}
        baseline = self.every_route("up")
        self.assertEqual(actions - {a.label for a in baseline}, set(), "every action GET /v1/services lists is called")
        expected = {a.label: a.status for a in baseline}
        refused = {"accounts/oauth/callback", "accounts/oauth/confirm", "accounts/oauth/token"}
        self.assertEqual({label for label, status in expected.items() if status not in (200, 302)}, refused)

        self.redis.hang()
        self.assertAnswersWithout(self.every_route("hung"), expected)
        self.redis.resume()
        self.redis.stop()
        self.assertAnswersWithout(self.every_route("down"), expected)

        self.redis.start()
        back = time.monotonic()
        while self.http().post("/v1/accounts/login", json=self.login).status_code != 200:
            self.assertLess(time.monotonic() - back, RECOVERY_LIMIT_SECONDS, "sign-in works again soon after Redis returns")
            time.sleep(0.1)
        recovered = self.every_route("back")
        self.assertEqual({a.label: a.status for a in recovered}, expected, "everything answers as before Redis went down")

    def assertAnswersWithout(self, answers: list[Answer], expected: dict[str, int]) -> None:
        for answer in answers:
            with self.subTest(answer.label):
                self.assertLess(answer.seconds, ANSWER_LIMIT_SECONDS, "no call waits long on a Redis that does not answer")
                if answer.label not in REFUSED_WHEN_DOWN:
                    self.assertEqual(answer.status, expected[answer.label], answer.response.text[:300])
                    continue
                self.assertEqual(answer.status, 503, answer.response.text[:300])
                self.assertGreaterEqual(int(answer.response.headers.get("Retry-After", "0")), 1)
                if answer.label.startswith("dashboard"):
                    self.assertIn("cache", answer.response.text)  # the sign-in page says why
                else:
                    error = answer.response.json()["error"]
                    self.assertEqual((error["code"], set(error)), ("cache_unavailable", {"message", "type", "code", "param"}))
