"""Speech recognition through a real City process: the official OpenAI SDK's audio.transcriptions and
audio.translations, City's /v1/ai/asr (multipart, base64, a URL), against the OpenAI and Deepgram
simulators; the limits, the plans, and the usage records in seconds."""

import base64
import time
from typing import Any

import httpx
import openai
import pytest

from aihub.models import UsageRecord
from aihub.tests.live import OPENAI_KEY, AiLiveTestCase
from aihub.tests.openai_schema import validate
from aihub.tests.test_asr_units import wav
from aihub.tests.upstream.deepgram_sim import DeepgramSim
from aihub.tests.upstream.openai_transcription_sim import parse_multipart
from aihub.tests.upstream.sim import Reply, SimServer
from city.waiting import wait_until

# The SDK marks audio.translations deprecated (OpenAI's shutdown notice for whisper-1); it still calls it.
pytestmark = pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")

DEEPGRAM_KEY = "dg-test-key-not-real"
WHISPER_PICO_USD_A_SECOND = 100_000_000  # $0.0001
NOVA_PICO_USD_A_SECOND = 71_666_667


class AudioHost(SimServer):
    """A web server on loopback serving one audio file (the URL /v1/ai/asr fetches)."""

    body = b""

    def handle(self, request: Any) -> Reply:
        return Reply(body=self.body, content_type="audio/wav")


class AsrTestCase(AiLiveTestCase):
    city_env = {"CITY_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32"}

    def sdk(self, base: str = "/v1") -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.city.url + base, api_key=self.token, max_retries=0, timeout=10)
        self.addCleanup(client.close)
        return client

    def error(self, response: httpx.Response, status: int) -> dict[str, Any]:
        self.assertEqual(response.status_code, status, response.text[:500])
        return response.json()["error"]

    def records(self, count: int) -> list[UsageRecord]:
        studio = self.studio["id"]
        wait_until(lambda: UsageRecord.objects.filter(studio_id=studio).count() >= count, timeout=10)
        return list(UsageRecord.objects.filter(studio_id=studio).order_by("id"))

    def asr(self, files: Any = None, **fields: Any) -> httpx.Response:
        if files is not None:
            return self.user.post("/v1/ai/asr", data=fields, files=files)
        return self.user.post("/v1/ai/asr", json=fields)


class OpenAITranscriptionTests(AsrTestCase):
    def test_the_sdk_gets_every_response_format_and_each_call_is_billed_in_seconds(self) -> None:
        self.sim.script.text = "Hello from the tape. Goodbye now."
        audio = wav(2.5)
        sdk = self.sdk()
        as_json = sdk.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio, "audio/wav"), language="en")
        self.assertEqual(as_json.text, self.sim.script.text)
        sent = parse_multipart(self.sim.last_request)
        assert sent is not None
        self.assertEqual(self.sim.last_request.headers["authorization"], f"Bearer {OPENAI_KEY}")
        self.assertEqual((sent.one("model"), sent.one("response_format"), sent.one("language")), ("whisper-1", "verbose_json", "en"))
        self.assertEqual(sent.files["file"][0], "talk.wav")
        self.assertEqual(sent.files["file"][2], audio)

        raw = sdk.audio.transcriptions.with_raw_response.create(model="whisper-1", file=("talk.wav", audio, "audio/wav"))
        validate(raw.http_response.json(), "CreateTranscriptionResponseJson")
        self.assertEqual(raw.http_response.json()["usage"], {"type": "duration", "seconds": 3})

        text = sdk.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio), response_format="text")
        self.assertEqual(text, self.sim.script.text + "\n")
        subtitles = sdk.audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio), response_format="srt")
        self.assertEqual(
            subtitles, "1\n00:00:00,000 --> 00:00:01,250\nHello from the\n\n2\n00:00:01,250 --> 00:00:02,500\ntape. Goodbye now.\n\n"
        )
        web = self.sdk("/v1/ai").audio.transcriptions.create(model="whisper-1", file=("talk.wav", audio), response_format="vtt")
        self.assertTrue(web.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.250\nHello from the\n"), web)

        raw_verbose = sdk.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("talk.wav", audio), response_format="verbose_json", timestamp_granularities=["word", "segment"]
        )
        validate(raw_verbose.http_response.json(), "CreateTranscriptionResponseVerboseJson")
        verbose = raw_verbose.parse()
        self.assertEqual(
            (verbose.duration, verbose.language, len(verbose.segments or []), len(verbose.words or [])), (2.5, "english", 2, 6)
        )
        self.assertEqual(parse_multipart(self.sim.last_request).fields["timestamp_granularities[]"], ["word", "segment"])  # type: ignore[union-attr]

        token_raw = sdk.audio.transcriptions.with_raw_response.create(
            model="gpt-4o-transcribe", file=("talk.wav", audio), prompt="Two short sentences"
        )
        validate(token_raw.http_response.json(), "CreateTranscriptionResponseJson")
        usage = token_raw.http_response.json()["usage"]
        self.assertEqual((usage["type"], usage["input_tokens"], usage["output_tokens"]), ("tokens", 28, 7))  # 25 audio + 3 text
        self.assertEqual(parse_multipart(self.sim.last_request).one("response_format"), "json")  # type: ignore[union-attr]

        records = self.records(7)
        self.assertEqual({(r.unit, r.units, r.status) for r in records}, {("seconds", 3, 200)})
        whisper = [r for r in records if r.model == "whisper-1"]
        self.assertEqual([r.cost for r in whisper], [3 * WHISPER_PICO_USD_A_SECOND] * 6)
        token = next(r for r in records if r.model == "gpt-4o-transcribe")
        self.assertEqual((token.prompt_tokens, token.completion_tokens), (28, 7))
        self.assertEqual(token.cost, 28 * 6_000_000 + 7 * 10_000_000)
        self.assertEqual({r.route for r in records}, {"audio/transcriptions"})

    def test_translations_and_the_formats_a_model_cannot_give(self) -> None:
        sdk = self.sdk()
        sdk.audio.transcriptions.create(
            model="gpt-4o-mini-transcribe",
            file=("talk.wav", wav(1.0)),
            chunking_strategy={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 300},
        )
        sent = parse_multipart(self.sim.last_request)
        assert sent is not None
        self.assertEqual(
            {k: v for k, v in sent.fields.items() if k.startswith("chunking")},
            {
                "chunking_strategy[type]": ["server_vad"],
                "chunking_strategy[threshold]": ["0.5"],
                "chunking_strategy[silence_duration_ms]": ["300"],
            },
        )
        translated = sdk.audio.translations.create(model="whisper-1", file=("speech.wav", wav(1.0)))
        self.assertEqual(translated.text, self.sim.script.text)
        self.assertTrue(self.sim.last_request.path.endswith("/audio/translations"))
        verbose = sdk.audio.translations.create(model="whisper-1", file=("speech.wav", wav(1.0)), response_format="verbose_json")
        self.assertEqual(verbose.model_dump()["task"], "translate")
        asked = len(self.sim.requests)
        with self.assertRaises(openai.BadRequestError) as caught:
            sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=("talk.wav", wav(1.0)), response_format="srt")
        self.assertEqual(caught.exception.body["param"], "response_format")  # type: ignore[index]
        with self.assertRaises(openai.BadRequestError) as caught:
            sdk.audio.translations.create(model="gpt-4o-mini-transcribe", file=("talk.wav", wav(1.0)))
        self.assertEqual(caught.exception.body["param"], "model")  # type: ignore[index]
        self.assertIn("gpt-4o-mini-transcribe", caught.exception.message)
        self.assertEqual(len(self.sim.requests), asked, "nothing refused reached the upstream")

    def test_city_asr_takes_a_file_base64_or_a_url(self) -> None:
        self.sim.script.text = "One two three four."
        audio = wav(1.5)
        answer = self.ok(self.asr(files={"file": ("clip.wav", audio, "audio/wav")}, model="whisper-1", language="en"))
        self.assertEqual(answer["parts"], [{"type": "text", "text": "One two three four."}])
        self.assertTrue(answer["id"].startswith("asr_"))
        self.assertEqual(
            (answer["model"], answer["language"], answer["duration"], answer["usage"]), ("whisper-1", "english", 1.5, {"seconds": 2})
        )
        self.assertEqual(
            answer["segments"], [{"start": 0.0, "end": 0.75, "text": "One two"}, {"start": 0.75, "end": 1.5, "text": "three four."}]
        )

        encoded = self.ok(self.asr(model="gpt-4o-mini-transcribe", data=base64.b64encode(audio).decode(), prompt="Counting"))
        self.assertEqual(encoded["parts"][0]["text"], "One two three four.")
        self.assertEqual(encoded["usage"], {"seconds": 2, "input_tokens": 16, "output_tokens": 5})
        self.assertNotIn("segments", encoded)
        data_url = self.ok(self.asr(model="whisper-1", data="data:audio/wav;base64," + base64.b64encode(audio).decode()))
        self.assertEqual(data_url["usage"], {"seconds": 2})

        host = AudioHost().start()
        self.addCleanup(host.stop)
        host.body = audio
        fetched = self.ok(self.asr(model="whisper-1", url=host.url + "/media/clip.wav"))
        self.assertEqual(fetched["parts"][0]["text"], "One two three four.")
        self.assertEqual(parse_multipart(self.sim.last_request).files["file"][2], audio)  # type: ignore[union-attr]
        self.ok(self.asr(model="whisper-1", url=host.url + "/download?id=7"))  # no extension: typed by its content type
        self.assertEqual(parse_multipart(self.sim.last_request).files["file"][0], "audio.wav")  # type: ignore[union-attr]
        for private in ("http://10.0.0.1/clip.wav", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/a.wav"):
            error = self.error(self.asr(model="whisper-1", url=private), 400)
            self.assertEqual((error["param"], error["code"]), ("url", "url_not_allowed"))

        records = self.records(5)
        self.assertEqual([(r.route, r.unit, r.units) for r in records], [("asr", "seconds", 2)] * 5)
        mini = records[1]
        self.assertEqual(mini.cost, 16 * 3_000_000 + 5 * 5_000_000)

    def test_bad_audio_is_refused_naming_the_limit_and_nothing_is_billed(self) -> None:
        big = b"RIFF" + b"\x00" * (25 * 1024 * 1024)
        error = self.error(self.user.post("/v1/audio/transcriptions", data={"model": "whisper-1"}, files={"file": ("big.wav", big)}), 413)
        self.assertEqual((error["code"], error["param"]), ("file_too_large", "file"))
        self.assertIn("26,214,400", error["message"])
        error = self.error(self.asr(files={"file": ("notes.txt", b"hello", "text/plain")}, model="whisper-1"), 415)
        self.assertEqual((error["code"], error["param"]), ("unsupported_file_type", "file"))
        error = self.error(self.asr(files={"file": ("long.wav", wav(3601, rate=1), "audio/wav")}, model="whisper-1"), 400)
        self.assertEqual((error["code"], error["param"]), ("audio_too_long", "file"))
        error = self.error(self.asr(model="whisper-1", data=base64.b64encode(wav(1)).decode(), speaker="x"), 400)
        self.assertEqual((error["code"], error["param"]), ("unknown_field", "speaker"))
        error = self.error(self.asr(model="whisper-1"), 400)
        self.assertEqual(error["param"], "file")
        error = self.error(self.user.post("/v1/audio/transcriptions", json={"model": "whisper-1"}), 400)
        self.assertEqual((error["code"], error["param"]), ("missing_field", "file"))
        self.assertEqual(self.sim.requests, [])
        self.assertEqual(UsageRecord.objects.filter(studio_id=self.studio["id"]).count(), 0)

    def test_an_upstream_failure_is_answered_and_recorded(self) -> None:
        self.sim.fail(400, message="Audio file might be corrupted or unsupported")
        with self.assertRaises(openai.BadRequestError) as caught:
            self.sdk().audio.transcriptions.create(model="whisper-1", file=("talk.wav", wav(1.0)))
        self.assertIn("corrupted", caught.exception.message)
        self.sim.fail(500)
        started = time.monotonic()
        error = self.error(self.asr(files={"file": ("clip.wav", wav(1.0), "audio/wav")}, model="whisper-1"), 502)
        self.assertEqual(error["code"], "upstream_error")
        self.assertLess(time.monotonic() - started, 8)
        records = self.records(2)
        self.assertEqual([(r.status, r.cost) for r in records], [(400, 0), (502, 0)])

    def test_plans_apply_to_transcription_models(self) -> None:
        plan = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"asr {self.studio['id']}", "models": ["nova-*"]}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": plan["id"], "studio_id": self.studio["id"]}))
        error = self.error(self.asr(files={"file": ("clip.wav", wav(1.0), "audio/wav")}, model="whisper-1"), 403)
        self.assertEqual((error["code"], error["param"]), ("model_not_allowed", "model"))
        host = AudioHost().start()
        self.addCleanup(host.stop)
        host.body = wav(1.0)
        error = self.error(self.asr(model="whisper-1", url=host.url + "/clip.wav"), 403)
        self.assertEqual(error["code"], "model_not_allowed")
        self.assertEqual(host.requests, [])  # refused before City fetched anything for it
        # A cap under a minute of whisper-1 ($0.006): 61 seconds are refused before the upstream.
        capped = self.ok(
            self.admin.post("/v1/studios/plans/create", json={"name": f"cap {self.studio['id']}", "max_cost_per_request": 0.006})
        )
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": capped["id"], "studio_id": self.studio["id"]}))
        self.ok(self.asr(files={"file": ("minute.wav", wav(60, rate=100), "audio/wav")}, model="whisper-1"))
        error = self.error(self.asr(files={"file": ("long.wav", wav(61, rate=100), "audio/wav")}, model="whisper-1"), 402)
        self.assertEqual(error["code"], "per_request_budget_exceeded")
        self.assertIn("61 seconds", error["message"])
        budget = self.ok(self.admin.post("/v1/studios/plans/create", json={"name": f"budget {self.studio['id']}", "monthly_budget": 0.001}))
        self.ok(self.admin.post("/v1/studios/plans/assign", json={"plan_id": budget["id"], "studio_id": self.studio["id"]}))
        error = self.error(self.asr(files={"file": ("long.wav", wav(61, rate=100), "audio/wav")}, model="whisper-1"), 402)
        self.assertIn("budget", error["message"])
        self.assertEqual(len(self.sim.requests), 1)


class DeepgramTranscriptionTests(AsrTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.deepgram = DeepgramSim().start()
        self.addCleanup(self.deepgram.stop)
        self.set_env(DEEPGRAM_API_KEY=DEEPGRAM_KEY, DEEPGRAM_BASE_URL=self.deepgram.url)

    def test_nova_transcribes_through_both_apis_in_deepgrams_wire_format(self) -> None:
        self.deepgram.script.text = "Hello there. General Kenobi!"
        audio = wav(2.0)
        answer = self.ok(self.asr(files={"file": ("clip.wav", audio, "audio/wav")}, model="nova-3"))
        sent = self.deepgram.last_request
        self.assertEqual(
            (sent.path, sent.headers["authorization"], sent.headers["content-type"]), ("/v1/listen", f"Token {DEEPGRAM_KEY}", "audio/wav")
        )
        self.assertEqual(
            sent.query, {"model": "nova-3", "smart_format": "true", "punctuate": "true", "utterances": "true", "detect_language": "true"}
        )
        self.assertEqual(sent.body, audio)
        self.assertEqual((answer["parts"][0]["text"], answer["language"], answer["duration"]), ("Hello there. General Kenobi!", "en", 2.0))
        self.assertEqual([s["text"] for s in answer["segments"]], ["Hello there.", "General Kenobi!"])

        sdk = self.sdk()
        subtitles = sdk.audio.transcriptions.create(model="nova-2", file=("clip.wav", audio), response_format="srt", language="de")
        self.assertEqual(
            subtitles, "1\n00:00:00,000 --> 00:00:01,000\nHello there.\n\n2\n00:00:01,000 --> 00:00:02,000\nGeneral Kenobi!\n\n"
        )
        self.assertEqual(self.deepgram.last_request.query["language"], "de")
        raw = sdk.audio.transcriptions.with_raw_response.create(
            model="nova-3", file=("clip.wav", audio), response_format="verbose_json", timestamp_granularities=["word"]
        )
        validate(raw.http_response.json(), "CreateTranscriptionResponseVerboseJson")
        self.assertEqual([w.word for w in raw.parse().words or []], ["Hello", "there.", "General", "Kenobi!"])

        with self.assertRaises(openai.BadRequestError) as caught:
            sdk.audio.translations.create(model="nova-3", file=("clip.wav", audio))
        self.assertEqual(caught.exception.body["param"], "model")  # type: ignore[index]

        self.deepgram.fail(400, message="No such model/language/tier combination found.")
        error = self.error(self.asr(files={"file": ("clip.wav", audio, "audio/wav")}, model="nova-3", language="xx"), 400)
        self.assertIn("No such model/language/tier combination found.", error["message"])

        records = self.records(4)
        self.assertEqual([(r.provider, r.unit, r.units, r.status) for r in records][:3], [("deepgram", "seconds", 2, 200)] * 3)
        self.assertEqual([r.cost for r in records], [2 * NOVA_PICO_USD_A_SECOND] * 3 + [0])
