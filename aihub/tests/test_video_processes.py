"""A video job lives in the database: started on one City process, polled on another, and polled again
after both stopped, on a third that never saw it start."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from aihub.models_video import VideoJob
from aihub.tests.upstream.openai_sim import OpenAISim
from aihub.tests.upstream.openai_videos_sim import VIDEO_BYTES
from city.livecity import LiveCity, LiveCityTestCase
from city.waiting import wait_until


class VideoJobAcrossProcessesTests(LiveCityTestCase):
    def http(self, city: LiveCity, token: str) -> httpx.Client:
        client = httpx.Client(base_url=city.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        self.addCleanup(client.close)
        return client

    def ok(self, response: httpx.Response) -> Any:
        self.assertEqual(response.status_code, 200, response.text[:500])
        return response.json()

    def test_a_job_started_on_one_process_is_polled_on_another_and_after_both_restart(self) -> None:
        sim = OpenAISim().start()
        self.addCleanup(sim.stop)
        sim.video_polls_to_complete = 3
        # The first two start together (each takes a second or more).
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(lambda _: self.start_city(), range(2))
        admin = self.http(first, self.admin_key)
        self.ok(admin.post("/v1/env/upsert", json={"key": "VIDEO_OPENAI_BASE_URL", "value": sim.url + "/v1"}))
        self.ok(admin.post("/v1/env/upsert", json={"key": "VIDEO_OPENAI_API_KEY", "value": "sk-test-video-not-real"}))
        studio = self.ok(admin.post("/v1/studios/create", json={"name": "Across"}))["id"]
        token = self.ok(admin.post("/v1/studios/tokens/apply", json={"studio_id": studio, "name": "t"}))["token"]

        job = self.ok(self.http(first, token).post("/v1/ai/video", json={"model": "sora-2", "prompt": "A train", "seconds": 8}))
        on_second = self.http(second, token)
        polled = self.ok(on_second.get("/v1/ai/video/result", params={"id": job["id"]}))
        self.assertEqual((polled["id"], polled["status"], polled["progress"]), (job["id"], "in_progress", 50))
        self.assertEqual(sim.videos["video_sim0001"].polls, 1)
        first.stop()
        second.stop()

        third = self.start_city()
        on_third = self.http(third, token)
        done = wait_until(
            lambda: (found := self.ok(on_third.get("/v1/ai/video/result", params={"id": job["id"]})))["status"] == "completed" and found,
            timeout=15,
            interval=0.2,
            message="the job completes on the new process",
        )
        self.assertEqual(done["parts"][0]["url"], f"{third.url}/v1/ai/videos/{job['id']}/content")
        self.assertEqual(on_third.get(f"/v1/videos/{job['id']}/content").content, VIDEO_BYTES)
        self.assertEqual(sim.videos["video_sim0001"].polls, 3)  # one check per CHECK_INTERVAL, whoever polls
        self.assertEqual(VideoJob.objects.get(pk=job["id"]).content_bytes, len(VIDEO_BYTES))
