"""Video jobs through a live City: the official OpenAI SDK's videos resource and City's /v1/ai/video against
the OpenAI-compatible and Veo simulators, the bad requests, plans and budgets, a failed job's refund,
and the retention purge."""

import io
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import openai
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone

from aihub.catalog_types import usd_per_unit
from aihub.models import UsageRecord
from aihub.models_video import VideoJob
from aihub.tests.live import AiLiveTestCase
from aihub.tests.upstream.gemini_sim import GeminiSim
from aihub.tests.upstream.openai_videos_sim import VIDEO_BYTES
from city.waiting import wait_until

VIDEO_KEY = "sk-test-video-host-not-real"
GEMINI_KEY = "test-gemini-key-not-real"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
POLL_SECONDS = 15.0

# The SDK marks its videos resource deprecated (OpenAI's own API closes in 2026); City serves it on.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


class VideoLiveTests(AiLiveTestCase):
    plans_made = 0

    def setUp(self) -> None:
        super().setUp()
        self.gemini = GeminiSim().start()
        self.addCleanup(self.gemini.stop)
        self.set_env(
            VIDEO_OPENAI_BASE_URL=self.sim.url + "/v1",
            VIDEO_OPENAI_API_KEY=VIDEO_KEY,
            GEMINI_API_KEY=GEMINI_KEY,
            GEMINI_BASE_URL=self.gemini.url,
        )
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)

    # --- helpers ------------------------------------------------------------------------------------

    def result(self, job_id: str, client: httpx.Client | None = None) -> dict[str, Any]:
        return self.ok((client or self.user).get("/v1/ai/video/result", params={"id": job_id}))

    def until(self, job_id: str, *statuses: str, client: httpx.Client | None = None) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            found = self.result(job_id, client)
            return found if found["status"] in statuses else None

        found = wait_until(reached, timeout=POLL_SECONDS, interval=0.2, message=f"video {job_id} reaches {statuses}")
        assert found is not None
        return found

    def error(self, response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.text[:500])
        error = response.json()["error"]
        self.assertEqual(set(error), {"message", "type", "code", "param"})
        if param is not None:
            self.assertEqual(error["param"], param, error)
        return error

    def records(self, count: int) -> list[UsageRecord]:
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"]).count() >= count, timeout=5)
        return list(UsageRecord.objects.filter(studio_id=self.studio["id"]).order_by("id"))

    def plan(self, **fields: Any) -> None:
        VideoLiveTests.plans_made += 1
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"video plan {self.plans_made}", **fields}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))

    # --- the OpenAI SDK -----------------------------------------------------------------------------

    def test_the_openai_sdk_creates_retrieves_downloads_lists_and_deletes(self) -> None:
        video = self.sdk.videos.create(model="sora-2-pro", prompt="A lighthouse at dawn", seconds="8", size="1792x1024")
        self.assertTrue(video.id.startswith("video_"))
        self.assertEqual(
            (video.object, video.status, video.model, video.seconds, video.size), ("video", "queued", "sora-2-pro", "8", "1792x1024")
        )
        deadline = time.monotonic() + POLL_SECONDS
        while (video := self.sdk.videos.retrieve(video.id)).status != "completed":
            self.assertIn(video.status, ("queued", "in_progress"))
            self.assertLess(time.monotonic(), deadline, "the video completes")
            time.sleep(0.2)
        self.assertEqual((video.progress, video.error), (100, None))
        self.assertIsNotNone(video.expires_at)
        content = self.sdk.videos.download_content(video.id)
        self.assertEqual(content.read(), VIDEO_BYTES)
        self.assertEqual(VIDEO_BYTES[4:8], b"ftyp")
        self.assertEqual(
            self.sim.requests[0].json, {"prompt": "A lighthouse at dawn", "seconds": "8", "size": "1792x1024", "model": "sora-2-pro"}
        )
        self.assertEqual(self.sim.requests[0].headers["authorization"], f"Bearer {VIDEO_KEY}")

        # A reference image goes upstream as multipart, as OpenAI's API takes it.
        second = self.sdk.videos.create(prompt="The same, at noon", input_reference=("ref.png", io.BytesIO(PNG), "image/png"))
        self.assertEqual((second.model, second.seconds, second.size), ("sora-2", "4", "720x1280"))  # OpenAI's defaults
        upstream = self.sim.videos[sorted(self.sim.videos)[-1]]
        self.assertEqual(upstream.reference, ("ref.png", "image/png", PNG))

        listed = self.sdk.videos.list(limit=1)
        self.assertEqual([v.id for v in listed.data], [second.id])  # newest first
        self.assertTrue(listed.has_more)
        older = self.sdk.videos.list(limit=1, after=second.id)
        self.assertEqual([v.id for v in older.data], [video.id])
        self.assertEqual([v.id for v in self.sdk.videos.list(order="asc").data], [video.id, second.id])

        # Another studio sees none of it.
        other = self.ok(self.admin.post("/v1/studios/create", json={"name": "Other"}))
        token = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": other["id"], "name": "o"}))["token"]
        stranger = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.addCleanup(stranger.close)
        self.assertEqual(self.error(stranger.get(f"/v1/videos/{video.id}"), 404)["code"], "video_not_found")
        self.assertEqual(self.error(stranger.get(f"/v1/videos/{video.id}/content"), 404)["code"], "video_not_found")
        self.assertEqual(self.error(stranger.delete(f"/v1/videos/{video.id}"), 404)["code"], "video_not_found")
        self.assertEqual(self.ok(stranger.get("/v1/videos"))["data"], [])
        self.error(self.user.get(f"/v1/videos/{video.id}/content", params={"variant": "thumbnail"}), 400, "variant")

        stored = VideoJob.objects.get(pk=video.id).content_name
        self.assertTrue(default_storage.exists(stored))
        deleted = self.sdk.videos.delete(video.id)
        self.assertEqual((deleted.id, deleted.object, deleted.deleted), (video.id, "video.deleted", True))
        self.assertFalse(default_storage.exists(stored))
        self.assertEqual(self.error(self.user.get(f"/v1/videos/{video.id}"), 404)["code"], "video_not_found")

        # Billed at the requested seconds, by the size's price: 8 s × $0.50, then 4 s × $0.10.
        records = self.records(2)
        self.assertEqual(
            [(r.unit, r.units, r.cost, r.modality, r.status) for r in records],
            [
                ("seconds", 8, 8 * usd_per_unit("0.50"), "video", 200),
                ("seconds", 4, 4 * usd_per_unit("0.10"), "video", 200),
            ],
        )

    def test_bad_requests_are_4xx_naming_the_field_and_change_nothing(self) -> None:
        post = self.user.post
        cases = [
            (post("/v1/videos", json={"model": "sora-2", "prompt": "x", "seconds": "5"}), 400, "seconds"),
            (post("/v1/videos", json={"model": "veo-3.0-generate-001", "prompt": "x", "seconds": 4}), 400, "seconds"),
            (post("/v1/videos", json={"model": "sora-2", "prompt": "x", "size": "1792x1024"}), 400, "size"),
            (post("/v1/ai/video", json={"model": "sora-2"}), 400, "prompt"),
            (post("/v1/ai/video", json={"model": "sora-2", "prompt": "x" * 10_001}), 400, "prompt"),
            (post("/v1/ai/video", json={"model": "sora-2", "prompt": "x", "fps": 30}), 400, "fps"),
            (post("/v1/ai/video", json={"model": "sora-2", "prompt": "x", "negative_prompt": "y"}), 400, "negative_prompt"),
            (post("/v1/ai/video", json={"model": "gpt-5.4", "prompt": "x"}), 400, "model"),
            (post("/v1/ai/video", json={"prompt": "x"}), 400, "model"),
            (
                post("/v1/ai/video", data={"model": "sora-2", "prompt": "x"}, files={"input_reference": ("a.txt", b"hi", "text/plain")}),
                400,
                "input_reference",
            ),
            (
                post(
                    "/v1/videos",
                    data={"model": "sora-2", "prompt": "x"},
                    files={"input_reference": ("a.png", b"\0" * (20 * 1024 * 1024 + 1), "image/png")},
                ),
                413,
                "input_reference",
            ),
            (self.user.get("/v1/ai/video/result", params={"id": "video_01kbx0000000000000000000zz"}), 404, "id"),
            (self.user.get("/v1/videos/video_unknown%00x"), 404, None),
            (self.user.get("/v1/ai/video/result"), 400, "id"),
            (self.user.get("/v1/videos", params={"limit": "0"}), 400, "limit"),
        ]
        for response, status, param in cases:
            with self.subTest(param=param, status=status):
                self.error(response, status, param)
        self.assertEqual(self.sim.requests, [])
        self.assertFalse(VideoJob.objects.exists())
        self.assertFalse(UsageRecord.objects.filter(studio_id=self.studio["id"]).exists())

    # --- City's route, both upstreams ------------------------------------------------------------

    def test_city_s_video_route_on_the_openai_compatible_host_and_on_veo(self) -> None:
        for model, seconds, size in (("sora-2", 12, "1280x720"), ("veo-3.1-fast-generate-preview", 6, "1080x1920")):
            with self.subTest(model=model):
                job = self.ok(
                    self.user.post("/v1/ai/video", json={"model": model, "prompt": "A red kite", "seconds": seconds, "size": size})
                )
                self.assertEqual((job["object"], job["status"], job["seconds"], job["size"]), ("video", "queued", str(seconds), size))
                self.assertNotIn("parts", job)
                done = self.until(job["id"], "completed")
                self.assertEqual(
                    done["parts"], [{"type": "video", "url": f"{self.city.url}/v1/ai/videos/{job['id']}/content", "mime": "video/mp4"}]
                )
                self.assertEqual(done["usage"], {"seconds": seconds})
                self.assertEqual(self.user.get(done["parts"][0]["url"]).content, VIDEO_BYTES)
        sent = next(r for r in self.gemini.requests if r.method == "POST")
        self.assertEqual(sent.path, "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning")
        self.assertEqual(sent.headers["x-goog-api-key"], GEMINI_KEY)
        self.assertEqual(sent.json["parameters"], {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 6})
        downloads = [r.path for r in self.gemini.requests if "download" in r.path or "storage" in r.path]
        self.assertEqual(len(downloads), 2)  # the download URI, then Google's redirect on the same host
        # Past its retention, purge_media deletes the video; its id then answers video_expired.
        sora = VideoJob.objects.get(model="sora-2")
        VideoJob.objects.filter(pk=sora.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
        out = io.StringIO()
        call_command("purge_media", stdout=out)
        self.assertIn("videos: 1 deleted", out.getvalue())
        self.assertIn("kept images: 0 deleted", out.getvalue())
        self.assertFalse(default_storage.exists(sora.content_name))
        self.assertEqual(self.error(self.user.get(f"/v1/ai/videos/{sora.id}/content"), 404)["code"], "video_expired")
        self.assertNotIn("parts", self.result(sora.id))
        # A video deleted (or purged) between the row's read and the file's: 404, not a 500.
        veo = VideoJob.objects.get(model="veo-3.1-fast-generate-preview")
        default_storage.delete(veo.content_name)
        self.assertEqual(self.error(self.user.get(f"/v1/videos/{veo.id}/content"), 404)["code"], "video_expired")
        records = self.records(2)
        self.assertEqual(
            [(r.model, r.units, r.cost) for r in records],
            [
                ("sora-2", 12, 12 * usd_per_unit("0.10")),
                ("veo-3.1-fast-generate-preview", 6, 6 * usd_per_unit("0.15")),
            ],
        )

    def test_a_veo_video_on_another_host_is_never_fetched_with_the_key(self) -> None:
        self.gemini.veo_uri_base = "http://127.0.0.1:9"  # another port: another origin
        job = self.ok(self.user.post("/v1/ai/video", json={"model": "veo-3.0-fast-generate-001", "prompt": "A kite"}))
        # Polled until the operation is done (its URI given), and once more: the video is never fetched.
        wait_until(
            lambda: self.result(job["id"]) and max((op.polls for op in self.gemini.operations.values()), default=0) >= 2,
            timeout=POLL_SECONDS,
            interval=0.3,
            message="the operation is polled until done",
        )
        time.sleep(1.1)  # past CHECK_INTERVAL: the next poll asks again
        self.assertEqual(self.result(job["id"])["status"], "in_progress")
        self.assertFalse([r for r in self.gemini.requests if "download" in r.path or "storage" in r.path])

    # --- refunds, plans and budgets ----------------------------------------------------------------

    def test_a_failed_job_is_refunded_once_and_the_budget_admits_again(self) -> None:
        self.plan(monthly_budget=0.40)  # one sora-2 job of 4 s
        self.sim.video_failure = {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."}
        job = self.ok(self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "A storm", "seconds": 4}))
        self.assertEqual(
            self.error(self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "Again"}), 402)["code"], "monthly_budget_exceeded"
        )
        failed = self.until(job["id"], "failed")
        self.assertEqual(failed["error"], {"code": "moderation_blocked", "message": "Your request was blocked by our moderation system."})
        self.assertNotIn("parts", failed)
        # Polled again, several at once on both routes: refunded once.
        with ThreadPoolExecutor(6) as pool:
            polls = [f"/v1/ai/video/result?id={job['id']}", f"/v1/videos/{job['id']}"] * 3
            self.assertEqual({r.status_code for r in pool.map(self.user.get, polls)}, {200})
        records = self.records(2)
        self.assertEqual(
            [(r.call_id, r.units, r.cost, r.unit, r.modality, r.route) for r in records],
            [
                (records[0].call_id, 4, 4 * usd_per_unit("0.10"), "seconds", "video", "video"),
                (f"{records[0].call_id}:refund", -4, -4 * usd_per_unit("0.10"), "seconds", "video", "video"),
            ],
        )
        self.assertTrue(VideoJob.objects.get(pk=job["id"]).refund_settled)
        self.sim.video_failure = None
        again = self.ok(self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "Calm sea", "seconds": 4}))
        self.assertEqual(again["status"], "queued")
        # The month's spend is back to $0.40 spent, not below: one more job is over the budget.
        over = self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "Once more", "seconds": 4})
        self.assertEqual(self.error(over, 402)["code"], "monthly_budget_exceeded")

    def test_a_veo_operation_error_is_a_failed_job_refunded(self) -> None:
        self.gemini.veo_failure = {"code": 3, "message": "The prompt could not be submitted."}
        job = self.ok(self.user.post("/v1/ai/video", json={"model": "veo-3.0-generate-001", "prompt": "A storm"}))
        failed = self.until(job["id"], "failed")
        self.assertEqual(failed["error"], {"code": "3", "message": "The prompt could not be submitted."})
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"], units=-8).exists(), timeout=5)
        self.assertEqual(sum(r.cost for r in UsageRecord.objects.filter(studio_id=self.studio["id"])), 0)

    def test_a_client_that_leaves_mid_create_still_gets_its_job_written_before_the_upstream_answers(self) -> None:
        self.sim.latency_seconds = 1.5
        with self.assertRaises(httpx.ReadTimeout):
            self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "A kite", "seconds": 8}, timeout=0.5)
        self.sim.latency_seconds = 0.0
        # The upstream is still being asked; the job's row is there already (a crash now leaves a job to refund).
        pending = VideoJob.objects.get(studio_id=self.studio["id"])
        self.assertEqual((pending.upstream_id, pending.status), ("", "queued"))
        wait_until(lambda: VideoJob.objects.filter(pk=pending.pk).exclude(upstream_id="").exists(), timeout=5, message="accepted")
        listed = self.ok(self.user.get("/v1/videos"))["data"]
        self.assertEqual([(v["id"], v["seconds"]) for v in listed], [(pending.id, "8")])
        self.assertEqual(self.until(pending.id, "completed")["progress"], 100)
        self.assertEqual([(r.call_id, r.units, r.cost) for r in self.records(1)], [(pending.call_id, 8, 8 * usd_per_unit("0.10"))])

    def test_an_upstream_failure_at_create_makes_no_job_and_costs_nothing(self) -> None:
        self.sim.fail(500, times=2)  # the first try and its retry
        error = self.error(self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "A kite", "seconds": 12}), 502)
        self.assertEqual(error["code"], "upstream_error")
        self.assertFalse(VideoJob.objects.exists())
        self.assertEqual([(r.status, r.units, r.cost) for r in self.records(1)], [(502, 0, 0)])
        self.sim.video_seconds_to_complete = 0.5  # the simulator's clock instead of its poll count
        job = self.ok(self.user.post("/v1/ai/video", json={"model": "sora-2", "prompt": "A kite"}))
        self.assertEqual(self.until(job["id"], "completed")["progress"], 100)

    def test_plans_apply_a_model_outside_is_403_and_a_clip_over_the_cap_402(self) -> None:
        self.plan(models=["sora-2*"], max_cost_per_request=1.50)
        denied = self.error(self.user.post("/v1/ai/video", json={"model": "veo-3.0-generate-001", "prompt": "x"}), 403, "model")
        self.assertEqual(denied["code"], "model_not_allowed")
        capped = self.error(
            self.user.post("/v1/videos", json={"model": "sora-2-pro", "prompt": "x", "seconds": "4", "size": "1024x1792"}), 402
        )
        self.assertEqual(capped["code"], "per_request_budget_exceeded")
        self.assertIn("4 seconds", capped["message"])  # $2.00: 4 s × $0.50
        self.ok(self.user.post("/v1/videos", json={"model": "sora-2-pro", "prompt": "x", "seconds": "4", "size": "1280x720"}))  # $1.20
