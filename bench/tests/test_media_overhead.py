"""bench/media_overhead.py's arithmetic and request bodies (no server started)."""

import io
import wave

from django.test import SimpleTestCase

from bench.media_overhead import compare, multipart, percentile, report, wav_file


class MediaOverheadTests(SimpleTestCase):
    def test_percentiles_interpolate_between_ranks(self) -> None:
        values = [float(v) for v in range(1, 101)]  # 1 … 100; the order given must not matter
        self.assertEqual(percentile(list(reversed(values)), 50), 50.5)
        self.assertAlmostEqual(percentile(values, 90), 90.1)
        self.assertAlmostEqual(percentile(values, 99), 99.01)
        self.assertEqual((percentile([7.0], 99), percentile([1.0, 3.0], 0), percentile([1.0, 3.0], 100)), (7.0, 1.0, 3.0))
        with self.assertRaises(ValueError):
            percentile([], 50)

    def test_added_latency_is_city_minus_direct_and_the_report_shows_it(self) -> None:
        direct, city = [1.0, 2.0, 3.0], [2.0, 4.0, 3.5]
        compared = compare(direct, city)
        self.assertEqual((compared["added_p50"], compared["added_paired_median"]), (1.5, 1.0))
        self.assertAlmostEqual(compared["added_p99"], 3.99 - 2.98)
        row = {"route": "POST /v1/x", "total": compared, "first_byte": compared, "cpu_ms_per_request": 0.5}
        row |= {"request_bytes": 10, "city_answer_bytes": 1234}
        meta = dict.fromkeys(("commit", "city", "database", "cpus", "python", "load_before", "load_after", "requests", "warmup"), "x")
        table = report([row], {**meta, "command": "python bench/media_overhead.py", "errors": 0, "errors_logged": 0})
        self.assertIn("| POST /v1/x | 2.00 / 2.80 / 2.98 | 3.50 / 3.90 / 3.99 | +1.50 | +1.01 | +1.00 | 0.50 |", table)
        self.assertIn("| POST /v1/x, first byte |", table)
        self.assertIn("gets 1,234 B from City", table)

    def test_the_upload_is_a_one_megabyte_wav_in_a_multipart_form(self) -> None:
        audio = wav_file()
        self.assertLessEqual(abs(len(audio) - 1_000_000), 2)
        with wave.open(io.BytesIO(audio)) as read:
            self.assertEqual((read.getnchannels(), read.getsampwidth(), read.getframerate()), (1, 2, 16_000))
        form = multipart({"model": "whisper-1"}, "file", "a.wav", "audio/wav", b"RIFF")
        self.assertIn(b'name="model"\r\n\r\nwhisper-1\r\n', form)
        self.assertIn(b'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n', form)
        self.assertTrue(form.endswith(b"--\r\n"))
