"""Images end to end: a City process, OpenAI's and Google's image APIs simulated on loopback, the
official OpenAI SDK and City's own route as clients; checks, plans, usage records in images, upstream
failures, and a client that leaves mid-call (billed for what was made, its images kept for pickup)."""

import base64
import time
from datetime import timedelta
from typing import Any

import httpx
import openai
from django.utils import timezone

from aihub.models import UsageRecord
from aihub.models_images import KeptImages
from aihub.tests.live import AiLiveTestCase
from aihub.tests.upstream.gemini_sim import GeminiSim
from aihub.tests.upstream.openai_images_sim import PNG, PNG_B64, parse_form

GEMINI_KEY = "test-gemini-key-not-real"
MICRO = 1_000_000  # record cost units (1e-12 USD) per micro-USD


class ImagesLiveTests(AiLiveTestCase):
    city_env = {"UPSTREAM_READ_TIMEOUT_SECONDS": "5"}

    def setUp(self) -> None:
        super().setUp()
        self.gemini = GeminiSim().start()
        self.addCleanup(self.gemini.stop)
        self.set_env(GEMINI_API_KEY=GEMINI_KEY, GEMINI_BASE_URL=self.gemini.url)
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)

    def records(self, count: int, timeout: float = 5.0) -> list[UsageRecord]:
        deadline = time.monotonic() + timeout
        while True:
            rows = list(UsageRecord.objects.filter(studio_id=self.studio["id"]).order_by("id"))
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def error(self, response: httpx.Response, status: int, param: str | None, code: str | None = None) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.text[:500])
        error = response.json()["error"]
        self.assertEqual(set(error), {"message", "type", "param", "code"})
        self.assertEqual(error["param"], param, error)
        if code is not None:
            self.assertEqual(error["code"], code, error)
        return error

    # --- the OpenAI SDK ------------------------------------------------------------------------------

    def test_the_sdk_generates_as_base64_and_as_urls_billed_in_images(self) -> None:
        made = self.sdk.images.generate(model="gpt-image-1", prompt="a red fox in snow", size="1024x1024", quality="low", n=2)
        self.assertEqual([base64.b64decode(d.b64_json or "") for d in made.data or []], [PNG, PNG])
        assert made.usage is not None
        self.assertEqual((made.usage.output_tokens, made.usage.input_tokens_details.image_tokens), (2 * 272, 0))
        sent = self.sim.last_request.json
        self.assertEqual((sent["model"], sent["n"], sent["quality"]), ("gpt-image-1", 2, "low"))
        self.assertNotIn("response_format", sent)  # the GPT image models refuse it: City leaves it out

        as_url = self.sdk.images.generate(model="dall-e-3", prompt="a lighthouse", size="1792x1024", quality="hd", response_format="url")
        assert as_url.data is not None and as_url.data[0].url is not None
        self.assertEqual(httpx.get(as_url.data[0].url).content, PNG)  # the simulator's URL, as OpenAI's CDN would serve it
        self.assertEqual(as_url.data[0].revised_prompt, "A picture: a lighthouse")
        as_b64 = self.sdk.images.generate(model="dall-e-3", prompt="a lighthouse", response_format="b64_json")
        self.assertEqual(base64.b64decode((as_b64.data or [])[0].b64_json or ""), PNG)

        fox, hd, standard = self.records(3)
        text_tokens = len("a red fox in snow") // 4  # what the simulator reports
        self.assertEqual((fox.unit, fox.units, fox.prompt_tokens, fox.completion_tokens), ("images", 2, text_tokens, 544))
        self.assertEqual(fox.cost, text_tokens * 5 * MICRO + 544 * 40 * MICRO)  # $5/M in, $40/M out
        self.assertEqual((hd.units, hd.cost), (1, 120_000 * MICRO))  # hd 1792x1024: $0.12
        self.assertEqual((standard.units, standard.cost, standard.status), (1, 40_000 * MICRO, 200))
        logs = self.ok(self.user.get("/v1/ai/logs"))["items"]
        self.assertEqual(
            {(row["model"], row["unit"], row["units"]) for row in logs}, {("gpt-image-1", "images", 2), ("dall-e-3", "images", 1)}
        )

    def test_the_sdk_edits_images_with_a_mask_as_openai_s_multipart(self) -> None:
        edited = self.sdk.images.edit(
            model="gpt-image-1",
            image=[("room.png", PNG, "image/png"), ("lamp.png", PNG, "image/png")],
            mask=("mask.png", PNG, "image/png"),
            prompt="put the lamp in the room",
            size="1536x1024",
            quality="medium",
        )
        self.assertEqual(base64.b64decode((edited.data or [])[0].b64_json or ""), PNG)
        form = parse_form(self.sim.last_request)
        assert form is not None
        names = [(p.name, p.filename) for p in form if p.filename]
        self.assertEqual(names, [("image[]", "room.png"), ("image[]", "lamp.png"), ("mask", "mask.png")])
        fields = {p.name: p.data.decode() for p in form if not p.filename}
        self.assertEqual(fields, {"model": "gpt-image-1", "prompt": "put the lamp in the room", "size": "1536x1024", "quality": "medium"})

        one = self.sdk.images.edit(
            model="gpt-image-1-mini", image=("room.png", PNG, "image/png"), prompt="brighter", quality="low", size="1024x1024"
        )
        self.assertEqual(len(one.data or []), 1)
        form = parse_form(self.sim.last_request)
        assert form is not None
        self.assertEqual([p.name for p in form if p.filename], ["image"])  # one image goes as `image`, as OpenAI takes it

        edit, mini = self.records(2)
        text = len("put the lamp in the room") // 4
        # 2 input images × 323 tokens at $10/M (twice the text price), 1,584 out at $40/M
        self.assertEqual((edit.units, edit.prompt_tokens, edit.completion_tokens), (1, text + 2 * 2 * 323, 1584))
        self.assertEqual(edit.cost, text * 5 * MICRO + 2 * 323 * 10 * MICRO + 1584 * 40 * MICRO)
        # gpt-image-1-mini: image input at $2.50/M against text at $2/M (×5/4, rounded up)
        mini_text = len("brighter") // 4
        self.assertEqual(mini.prompt_tokens, mini_text + -(-323 * 5 // 4))
        self.assertEqual(mini.cost, (mini_text + 404) * 2 * MICRO + 272 * 8 * MICRO)

    # --- City's route ---------------------------------------------------------------------------------

    def test_city_s_image_route_answers_parts_from_openai_and_google(self) -> None:
        answer = self.ok(
            self.user.post("/v1/ai/image", json={"model": "gpt-image-1", "prompt": "a fox", "quality": "low", "size": "1024x1024"})
        )
        self.assertTrue(answer["id"].startswith("img_"))
        self.assertEqual(answer["parts"], [{"type": "image", "data": PNG_B64, "mime": "image/png"}])
        self.assertEqual(answer["usage"], {"images": 1, "input_tokens": 1, "output_tokens": 272})
        dalle = self.ok(self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "a fox", "style": "natural"}))
        self.assertEqual(dalle["parts"][0]["data"], PNG_B64)  # City's parts carry data unless asked for URLs
        self.assertEqual(self.sim.last_request.json["response_format"], "b64_json")
        url = self.ok(self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "a fox", "response_format": "url"}))
        self.assertTrue(url["parts"][0]["url"].startswith(self.sim.url))
        self.assertEqual(url["parts"][0]["revised_prompt"], "A picture: a fox")

        imagen = self.ok(
            self.user.post("/v1/ai/image", json={"model": "imagen-4.0-generate-001", "prompt": "a fox", "n": 2, "size": "1792x1024"})
        )
        self.assertEqual([p["data"] for p in imagen["parts"]], [PNG_B64, PNG_B64])
        self.assertEqual(imagen["usage"], {"images": 2})
        sent = self.gemini.last_request
        self.assertEqual(sent.path, "/v1beta/models/imagen-4.0-generate-001:predict")
        self.assertEqual(sent.json, {"instances": [{"prompt": "a fox"}], "parameters": {"sampleCount": 2, "aspectRatio": "16:9"}})
        self.assertEqual(sent.headers["x-goog-api-key"], GEMINI_KEY)

        flash = self.sdk.images.generate(model="gemini-2.5-flash-image", prompt="a fox at dawn", size="1536x1024")
        self.assertEqual(base64.b64decode((flash.data or [])[0].b64_json or ""), PNG)
        config = self.gemini.last_request.json["generationConfig"]
        self.assertEqual(config, {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:2"}})
        edit = self.sdk.images.edit(model="gemini-2.5-flash-image", image=("cat.png", PNG, "image/png"), prompt="add a hat")
        self.assertEqual(len(edit.data or []), 1)
        parts = self.gemini.last_request.json["contents"][0]["parts"]
        self.assertEqual(parts, [{"text": "add a hat"}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}])

        records = {r.model: r for r in self.records(6)}
        self.assertEqual((records["imagen-4.0-generate-001"].units, records["imagen-4.0-generate-001"].cost), (2, 2 * 40_000 * MICRO))
        flash_record = [r for r in self.records(6) if r.model == "gemini-2.5-flash-image"]
        text = len("a fox at dawn") // 4
        self.assertEqual((flash_record[0].units, flash_record[0].prompt_tokens, flash_record[0].completion_tokens), (1, text, 1290))
        self.assertEqual(flash_record[0].cost, text * 300_000 + 1290 * 30 * MICRO)  # $0.30/M in, $30/M out
        self.assertEqual(flash_record[1].prompt_tokens, len("add a hat") // 4 + 258)  # Gemini bills an input image as input

    # --- refusals and failures ------------------------------------------------------------------------

    def test_bad_requests_are_refused_naming_the_field_before_anything_is_counted(self) -> None:
        post = self.user.post
        self.error(
            post("/v1/images/generations", json={"model": "gpt-image-1", "prompt": "x", "colour": "red"}), 400, "colour", "unknown_field"
        )
        self.error(post("/v1/ai/image", json={"model": "gpt-image-1", "prompt": "x", "size": "1792x1024"}), 400, "size", "invalid_value")
        self.error(post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "x", "n": 2}), 400, "n", "invalid_value")
        self.error(post("/v1/ai/image", json={"model": "imagen-4.0-generate-001", "prompt": "x", "size": "1536x1024"}), 400, "size")
        self.error(post("/v1/ai/image", json={"model": "gpt-image-1"}), 400, "prompt", "missing_field")
        self.error(post("/v1/ai/image", json={"model": "gpt-5.4", "prompt": "x"}), 400, "model", "unsupported_model")
        files = {"image": ("a.png", PNG, "image/png")}
        self.error(post("/v1/images/edits", data={"model": "dall-e-3", "prompt": "x"}, files=files), 400, "model", "unsupported_model")
        gif = {"image": ("a.gif", b"GIF89a" + b"\x00" * 10, "image/gif")}
        self.error(post("/v1/images/edits", data={"model": "gpt-image-1", "prompt": "x"}, files=gif), 400, "image", "unsupported_file_type")
        jpeg_mask = {"image": ("a.png", PNG, "image/png"), "mask": ("m.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 10, "image/jpeg")}
        self.error(
            post("/v1/images/edits", data={"model": "gpt-image-1", "prompt": "x"}, files=jpeg_mask), 400, "mask", "unsupported_file_type"
        )
        self.error(
            post("/v1/images/edits", data={"model": "gpt-image-1", "prompt": "x", "n": "many"}, files=files), 400, "n", "invalid_type"
        )
        started = time.monotonic()
        huge = {"image": ("huge.png", PNG + b"\x00" * (50_000_001 - len(PNG)), "image/png")}
        error = self.error(
            post("/v1/images/edits", data={"model": "gpt-image-1", "prompt": "x"}, files=huge, timeout=30), 413, "image", "file_too_large"
        )
        self.assertIn("50 MB limit of 'gpt-image-1'", error["message"])
        self.assertLess(time.monotonic() - started, 10)
        with self.assertRaises(openai.BadRequestError) as sdk_error:
            self.sdk.images.generate(model="dall-e-3", prompt="x", n=2)
        self.assertEqual(sdk_error.exception.param, "n")
        self.assertEqual((self.sim.requests, self.gemini.requests), ([], []))
        time.sleep(0.3)  # past the usage writer's flush interval: a record made would be there
        self.assertEqual(list(UsageRecord.objects.filter(studio_id=self.studio["id"])), [])

    def test_an_upstream_failure_is_answered_and_nothing_is_charged(self) -> None:
        self.sim.fail(500)  # every try: City retries, then answers 502
        response = self.user.post("/v1/ai/image", json={"model": "gpt-image-1", "prompt": "x"})
        self.error(response, 502, None, "upstream_error")
        self.sim.reset()
        self.sim.fail(
            400,
            {
                "error": {
                    "message": "Your request was rejected by the safety system.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "moderation_blocked",
                }
            },
            times=1,
        )
        with self.assertRaises(openai.BadRequestError) as refused:
            self.sdk.images.generate(model="gpt-image-1", prompt="x")
        self.assertEqual(refused.exception.code, "moderation_blocked")
        self.gemini.fail(503, times=None)
        self.error(
            self.user.post("/v1/ai/image", json={"model": "imagen-4.0-fast-generate-001", "prompt": "x"}), 503, None, "upstream_unavailable"
        )
        self.gemini.reset()
        self.gemini.image_prompt_blocked = True
        self.addCleanup(setattr, self.gemini, "image_prompt_blocked", False)
        self.error(
            self.user.post("/v1/ai/image", json={"model": "imagen-4.0-generate-001", "prompt": "x"}), 400, "prompt", "content_filtered"
        )
        records = self.records(4)
        self.assertEqual([(r.status, r.units, r.cost) for r in records], [(502, 0, 0), (400, 0, 0), (503, 0, 0), (400, 0, 0)])
        self.assertEqual({r.unit for r in records}, {"images"})

    # --- plans ------------------------------------------------------------------------------------------

    def plan(self, **limits: Any) -> None:
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"Images {time.monotonic()}", **limits}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "token_id": self.token_id}))

    def test_plans_apply_to_image_models(self) -> None:
        self.plan(models=["gpt-5.4"])
        self.error(self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "x"}), 403, "model", "model_not_allowed")
        with self.assertRaises(openai.PermissionDeniedError):
            self.sdk.images.generate(model="gpt-image-1", prompt="x")
        self.plan(models=["dall-e-*"], max_cost_per_request=0.10)
        over = self.error(
            self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "x", "quality": "hd", "size": "1024x1792"}),
            402,
            None,
            "per_request_budget_exceeded",
        )
        self.assertIn("1 image of 'dall-e-3'", over["message"])
        self.plan(monthly_budget=0.05)
        self.ok(self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "x"}))  # $0.04 of $0.05
        self.error(self.user.post("/v1/ai/image", json={"model": "dall-e-3", "prompt": "x"}), 402, None)
        self.assertEqual(len(self.sim.requests), 1)
        self.assertEqual([(r.status, r.cost) for r in self.records(1)], [(200, 40_000 * MICRO)])

    # --- a client that leaves ------------------------------------------------------------------------

    def test_a_client_that_leaves_is_billed_for_the_images_made_and_picks_them_up_by_request_id(self) -> None:
        self.sim.latency_seconds = 1.5
        with self.assertRaises(httpx.ReadTimeout):
            self.user.post(
                "/v1/ai/image",
                json={"model": "gpt-image-1", "prompt": "a slow fox", "quality": "low", "size": "1024x1024", "n": 2},
                headers={"X-Request-Id": "fox-1"},
                timeout=0.8,  # past admit on a busy machine, well before the upstream answers
            )
        [record] = self.records(1, timeout=5)
        self.assertEqual((record.status, record.error_code, record.request_id), (499, "client_closed", "fox-1"))
        text = len("a slow fox") // 4
        self.assertEqual((record.units, record.completion_tokens, record.cost), (2, 544, text * 5 * MICRO + 544 * 40 * MICRO))
        self.assertEqual(self.sim.cancellations, [], "the upstream call ran to its end")
        picked = self.ok(self.user.get("/v1/ai/image/result", params={"request_id": "fox-1"}))
        self.assertEqual([p["data"] for p in picked["parts"]], [PNG_B64, PNG_B64])
        self.assertEqual((picked["model"], picked["usage"]), ("gpt-image-1", {"images": 2, "input_tokens": text, "output_tokens": 544}))

        other = self.ok(
            self.admin.post(
                "/v1/studios/tokens/apply",
                json={"studio_id": self.ok(self.admin.post("/v1/studios/create", json={"name": "Other"}))["id"], "name": "o"},
            )
        )
        stranger = httpx.get(
            self.city.url + "/v1/ai/image/result", params={"request_id": "fox-1"}, headers={"Authorization": f"Bearer {other['token']}"}
        )
        self.error(stranger, 404, "request_id", "not_found")
        self.error(self.user.get("/v1/ai/image/result", params={"request_id": "never"}), 404, "request_id", "not_found")
        # billed once and kept once (the pickups above ran past the usage writer's flush interval)
        self.assertEqual(UsageRecord.objects.filter(request_id="fox-1").count(), 1)
        self.assertEqual(KeptImages.objects.filter(request_id="fox-1").count(), 1)
        KeptImages.objects.filter(request_id="fox-1").update(expires_at=timezone.now() - timedelta(seconds=1))
        self.error(self.user.get("/v1/ai/image/result", params={"request_id": "fox-1"}), 404, "request_id", "not_found")
