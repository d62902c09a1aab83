"""Text to speech end to end: a City process, the official OpenAI SDK and City's /v1/ai/tts, in front
of the OpenAI and ElevenLabs simulators; metering, plans and errors."""

import base64
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

from aihub.catalog import models_by_id
from aihub.estimate import count_tokens, rough_counting
from aihub.models import UsageRecord
from aihub.speech_request import CITY_NAMES, Speech, speech_tokens, worst_speech
from aihub.tests.live import OPENAI_KEY, AiLiveTestCase
from aihub.tests.upstream.elevenlabs_sim import ElevenLabsSim
from aihub.tests.upstream.openai_speech_sim import speech_audio
from city.waiting import wait_until

ELEVENLABS_KEY = "test-elevenlabs-key-not-real"
TEXT = "The quick brown fox jumps over the lazy dog, twice."
PICO_PER_MICRO = 1_000_000  # a record's cost is in 1e-12 USD


class SpeechLiveTests(AiLiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.eleven = ElevenLabsSim().start()
        self.addCleanup(self.eleven.stop)
        self.set_env(ELEVENLABS_API_KEY=ELEVENLABS_KEY, ELEVENLABS_BASE_URL=self.eleven.url + "/v1")
        self.sdk = openai.OpenAI(base_url=self.city.url + "/v1", api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(self.sdk.close)

    def records(self, count: int) -> list[UsageRecord]:
        wait_until(lambda: UsageRecord.objects.filter(studio_id=self.studio["id"]).count() >= count, 10, message=f"{count} records")
        return list(UsageRecord.objects.filter(studio_id=self.studio["id"]).order_by("created_at", "id"))

    def assert_error(self, response: httpx.Response, status: int, param: str | None, code: str | None = None) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.text[:300])
        error: dict[str, Any] = response.json()["error"]
        self.assertEqual(set(error), {"message", "type", "code", "param"})
        self.assertEqual(error["param"], param, error)
        if code is not None:
            self.assertEqual(error["code"], code, error)
        return error

    def test_the_openai_sdk_makes_speech_and_streams_it_to_a_file(self) -> None:
        made = self.sdk.audio.speech.create(model="tts-1", voice="nova", input=TEXT)
        self.assertEqual(made.content, speech_audio("mp3", TEXT, "nova"))
        self.assertEqual(made.response.headers["content-type"], "audio/mpeg")
        self.assertTrue(made.response.headers["x-request-id"])
        sent = self.sim.last_request
        self.assertEqual(sent.headers["authorization"], f"Bearer {OPENAI_KEY}")
        self.assertEqual(sent.json, {"model": "tts-1", "input": TEXT, "voice": "nova", "response_format": "mp3"})

        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "speech.wav"
            with self.sdk.audio.speech.with_streaming_response.create(
                model="gpt-4o-mini-tts", voice="ballad", input=TEXT, response_format="wav", speed=1.25, instructions="Cheerfully."
            ) as response:
                self.assertEqual(response.headers["content-type"], "audio/wav")
                response.stream_to_file(target)
            audio = target.read_bytes()
        self.assertEqual(audio, speech_audio("wav", TEXT, "ballad"))
        self.assertEqual(audio[:4] + audio[8:12], b"RIFFWAVE")
        self.assertEqual(self.sim.last_request.json["instructions"], "Cheerfully.")

        # OpenAI's speech events, passed through; their last one's usage is what City bills.
        events = self.sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=TEXT, stream_format="sse")
        self.assertEqual(events.response.headers["content-type"], "text/event-stream")
        data = [json.loads(line[6:]) for line in events.text.splitlines() if line.startswith("data: ")]
        self.assertEqual([e["type"] for e in data], ["speech.audio.delta"] * (len(data) - 1) + ["speech.audio.done"])
        self.assertEqual(b"".join(base64.b64decode(e["audio"]) for e in data[:-1]), speech_audio("mp3", TEXT, "coral"))
        reported = data[-1]["usage"]
        # A count past the reservation (nothing caps a speech answer's tokens upstream) is billed at it.
        self.sim.speech_output_tokens = 50_000
        past = self.sdk.audio.speech.create(model="gpt-4o-mini-tts", voice="coral", input=TEXT, stream_format="sse")
        self.assertIn('"output_tokens":50000', past.text.replace(" ", ""))

        plain, steered, evented, capped = self.records(4)
        self.assertEqual((plain.status, plain.unit, plain.units, plain.modality), (200, "characters", len(TEXT), "tts"))
        self.assertEqual(plain.cost, len(TEXT) * 15 * PICO_PER_MICRO)  # $15 per million characters
        self.assertTrue(plain.streamed)
        # gpt-4o-mini-tts: tokens counted by City (no plan: the rough count), audio measured from the WAV's PCM.
        model = models_by_id()["gpt-4o-mini-tts"]
        with rough_counting():
            prompt = count_tokens(model, TEXT) + count_tokens(model, "Cheerfully.")
        ask = Speech("gpt-4o-mini-tts", TEXT, "ballad", "wav", 1.25, "Cheerfully.", CITY_NAMES)
        output = speech_tokens(ask, len(audio))
        self.assertGreater(output, 0)
        self.assertEqual((steered.prompt_tokens, steered.completion_tokens, steered.usage_estimated), (prompt, output, True))
        self.assertEqual((steered.unit, steered.units), ("characters", len(TEXT)))
        self.assertEqual(steered.cost, prompt * 600_000 + output * 12_000_000)
        usage = (evented.prompt_tokens, evented.completion_tokens, evented.usage_estimated, evented.units)
        self.assertEqual(usage, (reported["input_tokens"], reported["output_tokens"], False, len(TEXT)))
        self.assertEqual(evented.cost, reported["input_tokens"] * 600_000 + reported["output_tokens"] * 12_000_000)
        with rough_counting():
            worst = worst_speech(model, Speech("gpt-4o-mini-tts", TEXT, "coral", None, None, None, CITY_NAMES))
        self.assertLess(reported["output_tokens"], worst.output_tokens)  # the simulator's count is OpenAI's rate
        self.assertEqual((capped.status, capped.completion_tokens, capped.usage_estimated), (200, worst.output_tokens, True))
        self.assertLessEqual(capped.cost, worst.cost * PICO_PER_MICRO)

    def test_tts_answers_parts_or_the_raw_audio_streamed(self) -> None:
        answer = self.ok(self.user.post("/v1/ai/tts", json={"model": "tts-1-hd", "text": TEXT}))
        self.assertTrue(answer["id"].startswith("tts_"))
        self.assertEqual((answer["model"], answer["usage"]), ("tts-1-hd", {"characters": len(TEXT)}))
        (part,) = answer["parts"]
        self.assertEqual((part["type"], part["mime"]), ("audio", "audio/mpeg"))
        self.assertEqual(base64.b64decode(part["data"]), speech_audio("mp3", TEXT, "alloy"))  # the default voice
        self.assertEqual(self.sim.last_request.json["voice"], "alloy")

        raw = self.user.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT, "voice": "echo"}, headers={"Accept": "audio/wav"})
        self.assertEqual((raw.status_code, raw.headers["content-type"]), (200, "audio/wav"))
        self.assertEqual(raw.content, speech_audio("wav", TEXT, "echo"))
        pcm = self.user.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT, "format": "pcm"}, headers={"Accept": "audio/*"})
        self.assertEqual((pcm.headers["content-type"], pcm.content), ("audio/pcm", speech_audio("pcm", TEXT, "alloy")))
        refused = self.user.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT, "format": "pcm"}, headers={"Accept": "audio/mpeg"})
        self.assert_error(refused, 406, "format", "not_acceptable")

        # Streamed as it is made: the first bytes arrive long before the last.
        self.sim.chunk_delay_seconds = 0.05
        long_text = TEXT * 2  # 7 s of simulated mp3 at 128 kbit/s: 27 chunks
        started = time.monotonic()
        with self.user.stream("POST", "/v1/ai/tts", json={"model": "tts-1", "text": long_text}, headers={"Accept": "audio/*"}) as streamed:
            chunks = streamed.iter_bytes()
            first = next(chunks)
            first_at = time.monotonic() - started
            rest = b"".join(chunks)
            whole_at = time.monotonic() - started
        self.assertEqual(first + rest, speech_audio("mp3", long_text, "alloy"))
        self.assertGreater(whole_at, 1.0)
        self.assertLess(first_at, whole_at / 2)

        records = self.records(4)
        self.assertEqual([r.status for r in records], [200, 200, 200, 200])  # the 406 was refused before admission
        self.assertEqual([r.units for r in records], [len(TEXT)] * 3 + [len(long_text)])
        self.assertEqual(records[0].cost, len(TEXT) * 30 * PICO_PER_MICRO)  # tts-1-hd: $30 per million characters

    def test_elevenlabs_speaks_through_both_routes(self) -> None:
        answer = self.ok(self.user.post("/v1/ai/tts", json={"model": "eleven_multilingual_v2", "text": TEXT}))
        self.assertEqual(base64.b64decode(answer["parts"][0]["data"]), speech_audio("mp3", TEXT, "JBFqnCBsd6RMkjVDRZzb"))
        sent = self.eleven.last_request
        self.assertEqual(sent.path, "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream")
        self.assertEqual((sent.query, sent.headers["xi-api-key"]), ({"output_format": "mp3_44100_128"}, ELEVENLABS_KEY))
        self.assertEqual(sent.json, {"text": TEXT, "model_id": "eleven_multilingual_v2"})

        made = self.sdk.audio.speech.create(
            model="eleven_flash_v2_5", voice="21m00Tcm4TlvDq8ikWAM", input=TEXT, response_format="pcm", speed=1.1
        )
        self.assertEqual(made.content, speech_audio("pcm", TEXT, "21m00Tcm4TlvDq8ikWAM"))
        self.assertEqual(made.response.headers["content-type"], "audio/pcm")
        sent = self.eleven.last_request
        self.assertEqual((sent.query["output_format"], sent.json["voice_settings"]), ("pcm_24000", {"speed": 1.1}))

        tts = "/v1/ai/tts"
        self.assert_error(self.user.post(tts, json={"model": "eleven_v3", "text": TEXT, "voice": "alloy"}), 400, "voice")
        unknown = self.user.post(tts, json={"model": "eleven_v3", "text": TEXT, "voice": "A" * 20})
        self.assert_error(unknown, 400, "voice", "voice_not_found")  # ElevenLabs' own refusal, named
        self.assert_error(self.user.post(tts, json={"model": "eleven_v3", "text": TEXT, "format": "wav"}), 400, "format")
        wav = self.user.post(tts, json={"model": "eleven_v3", "text": TEXT}, headers={"Accept": "audio/wav"})
        self.assert_error(wav, 406, None, "not_acceptable")  # the model makes no wav; the request named no format
        pcm_flash = self.user.post(tts, json={"model": "eleven_flash_v2_5", "text": TEXT}, headers={"Accept": "audio/wav, audio/pcm;q=0.5"})
        self.assertEqual(
            (pcm_flash.headers["content-type"], pcm_flash.content), ("audio/pcm", speech_audio("pcm", TEXT, "JBFqnCBsd6RMkjVDRZzb"))
        )
        self.assert_error(self.user.post(tts, json={"model": "eleven_v3", "text": TEXT, "speed": 1.5}), 400, "speed")
        self.assert_error(self.user.post(tts, json={"model": "eleven_multilingual_v2", "text": "a" * 10_001}), 400, "text", "text_too_long")
        self.ok(self.user.post(tts, json={"model": "eleven_flash_v2_5", "text": "a" * 10_001}))  # Flash takes 40,000
        # 12 minutes of PCM (35 MB) is more than a JSON answer holds: the request's to change, and billed, as it was made.
        too_long = self.user.post(tts, json={"model": "eleven_flash_v2_5", "text": "a" * 11_000, "format": "pcm"})
        self.assert_error(too_long, 400, "text", "audio_too_large")
        self.eleven.fail(500)
        failed = self.user.post(tts, json={"model": "eleven_turbo_v2_5", "text": TEXT})
        self.assert_error(failed, 502, None, "upstream_error")

        records = self.records(7)
        self.assertEqual([r.status for r in records], [200, 200, 400, 200, 200, 400, 502])
        multilingual, flash, unknown_voice, _, long_flash, too_long_record, broken = records
        self.assertEqual((too_long_record.units, too_long_record.cost), (11_000, 11_000 * 50 * PICO_PER_MICRO))
        self.assertEqual(multilingual.cost, len(TEXT) * 100 * PICO_PER_MICRO)  # $0.10 per 1,000 characters
        self.assertEqual((flash.units, flash.cost), (len(TEXT), len(TEXT) * 50 * PICO_PER_MICRO))
        self.assertEqual((long_flash.units, long_flash.provider), (10_001, "elevenlabs"))
        self.assertEqual((unknown_voice.cost, broken.cost, broken.units), (0, 0, 0))

    def test_bad_requests_are_refused_before_anything_is_counted(self) -> None:
        speech = "/v1/audio/speech"
        base = {"model": "tts-1", "input": TEXT, "voice": "alloy"}
        cases = [
            ({**base, "voice": "ballad"}, "voice", "invalid_value"),  # gpt-4o-mini-tts's, not tts-1's
            ({**base, "voice": "nobody"}, "voice", "invalid_value"),
            ({**base, "input": "x" * 4097}, "input", "text_too_long"),
            ({**base, "input": ""}, "input", "invalid_value"),
            ({"model": "tts-1", "voice": "alloy"}, "input", "missing_field"),
            ({**base, "response_format": "ogg"}, "response_format", "invalid_value"),
            ({**base, "speed": 4.5}, "speed", "invalid_value"),
            ({**base, "speed": "fast"}, "speed", "invalid_type"),
            ({**base, "instructions": "Whisper."}, "instructions", "unsupported_parameter"),
            ({**base, "stream_format": "sse"}, "stream_format", "unsupported_value"),
            ({**base, "pitch": 2}, "pitch", "unknown_field"),
            ({**base, "model": "deepseek-v4-flash"}, "model", "unsupported_model"),
        ]
        for body, param, code in cases:
            with self.subTest(param=param, body=str(body)[:80]):
                self.assert_error(self.user.post(speech, json=body), 400, param, code)
        self.assert_error(self.user.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT, "pitch": 2}), 400, "pitch", "unknown_field")
        self.assert_error(self.user.post("/v1/ai/tts", json={"model": "tts-1", "input": TEXT}), 400, "input", "unknown_field")
        with self.assertRaises(openai.BadRequestError) as refused:
            self.sdk.audio.speech.create(model="tts-1", voice="verse", input=TEXT)
        self.assertEqual(refused.exception.body["param"], "voice")  # type: ignore[index]
        self.assertEqual(self.sim.requests, [])
        time.sleep(0.5)  # a record, were one written, is in the database by now
        self.assertEqual(UsageRecord.objects.filter(studio_id=self.studio["id"]).count(), 0)

    def test_upstream_failures_before_the_first_byte_are_retried_or_answered_cleanly(self) -> None:
        self.sim.fail(503, times=1)
        retried = self.sdk.audio.speech.create(model="tts-1", voice="alloy", input=TEXT)
        self.assertEqual(retried.content, speech_audio("mp3", TEXT, "alloy"))
        self.assertEqual(len(self.sim.requests), 2)
        self.sim.fail(500)
        failed = self.user.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alloy"})
        self.assert_error(failed, 502, None, "upstream_error")
        parts = self.user.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT})
        self.assert_error(parts, 502, None, "upstream_error")
        # Broken mid-stream: the bytes sent are not taken back, and the connection is cut before the
        # body's end, so the client knows its audio is short; billed as made.
        self.sim.reset()
        self.sim.fail_after_chunks, self.sim.chunk_delay_seconds = 3, 0.05
        received = bytearray()
        with self.assertRaises(httpx.TransportError):  # not a clean, truncated 200
            with self.user.stream("POST", "/v1/audio/speech", json={"model": "tts-1", "input": TEXT * 2, "voice": "alloy"}) as cut:
                self.assertEqual(cut.status_code, 200)
                for chunk in cut.iter_bytes():
                    received += chunk
        self.assertTrue(speech_audio("mp3", TEXT * 2, "alloy").startswith(bytes(received)))
        self.assertEqual(len(received), 3 * 4096)  # the three chunks sent before the break
        ok, *broken, short = self.records(4)
        self.assertEqual((ok.status, ok.units), (200, len(TEXT)))
        self.assertEqual([(r.status, r.units, r.cost) for r in broken], [(502, 0, 0), (502, 0, 0)])
        self.assertEqual((short.status, short.error_code, short.units), (502, "upstream_error", len(TEXT) * 2))

    def test_a_client_that_leaves_mid_stream_is_recorded_as_499_and_the_upstream_closed(self) -> None:
        self.sim.chunk_delay_seconds = 0.3
        body = {"model": "tts-1", "input": TEXT * 4, "voice": "alloy"}
        with self.user.stream("POST", "/v1/ai/audio/speech", json=body) as response:
            self.assertEqual(response.status_code, 200)
            next(response.iter_bytes())
        self.assertTrue(self.sim.wait_for_cancellation(5), "City closed the upstream answer")
        (record,) = self.records(1)
        self.assertEqual((record.status, record.error_code, record.cancelled), (499, "client_closed", True))
        self.assertEqual((record.units, record.cost), (len(TEXT) * 4, len(TEXT) * 4 * 15 * PICO_PER_MICRO))

    def test_plans_apply_to_speech(self) -> None:
        def planned(**limits: Any) -> httpx.Client:
            studio = self.ok(self.admin.post("/v1/studios/create", json={"name": "Planned speech"}))
            plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"plan {studio['id']}", **limits}))
            self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": studio["id"]}))
            token = self.ok(self.admin.post("/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "t"}))["token"]
            client = httpx.Client(base_url=self.city.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
            self.addCleanup(client.close)
            return client

        text_only = planned(models=["deepseek-*", "tts-1-hd"])
        self.assert_error(text_only.post("/v1/ai/tts", json={"model": "tts-1", "text": TEXT}), 403, "model", "model_not_allowed")
        self.assertEqual(text_only.post("/v1/ai/tts", json={"model": "tts-1-hd", "text": TEXT}).status_code, 200)
        capped = planned(max_cost_per_request=0.01)  # 1,000 characters of tts-1 cost $0.015
        over = capped.post("/v1/audio/speech", json={"model": "tts-1", "input": "a" * 1000, "voice": "alloy"})
        error = self.assert_error(over, 402, None, "per_request_budget_exceeded")
        self.assertIn("1,000 characters", error["message"])
        self.assertEqual(capped.post("/v1/audio/speech", json={"model": "tts-1", "input": "a" * 600, "voice": "alloy"}).status_code, 200)
        budget = planned(monthly_budget=0.001)  # gpt-4o-mini-tts's worst case for 4,000 characters is far over it
        out = budget.post("/v1/ai/tts", json={"model": "gpt-4o-mini-tts", "text": "b" * 4000})
        self.assert_error(out, 402, None)
        # One call at a time: a streamed call's slot is free once its last byte is read.
        single = planned(max_concurrency=1)
        for _ in range(3):
            self.assertEqual(single.post("/v1/audio/speech", json={"model": "tts-1", "input": TEXT, "voice": "alloy"}).status_code, 200)
        self.assertEqual(len(self.sim.requests), 5)  # the calls within their plans
