import os
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from django.conf import settings
from django.test import SimpleTestCase

from city.bootstrap import ensure_local_secrets
from city.envconfig import CityEnv


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


class StartupSettingsTests(SimpleTestCase):
    def test_a_malformed_value_stops_startup_naming_the_key_not_the_value(self) -> None:
        result = manage("check", env={"CITY_PORT": "not-a-port-8x7q"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("CITY_PORT", result.stderr)
        self.assertNotIn("not-a-port-8x7q", result.stderr)

    def test_a_short_secret_key_stops_startup_naming_the_key_not_the_value(self) -> None:
        for key in ("ADMIN_SECRET_KEY", "CITY_SECRET_KEY"):
            with self.subTest(key):
                result = manage("check", env={key: "short-key-9q7w"})
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(f"{key} is too short", result.stderr)
                self.assertNotIn("short-key-9q7w", result.stderr)

    def test_a_malformed_size_names_the_key(self) -> None:
        result = manage("check", env={"CITY_MAX_BODY_BYTES": "lots"})
        self.assertIn("CITY_MAX_BODY_BYTES", result.stderr)


class GeneratedSecretsTests(SimpleTestCase):
    def setUp(self) -> None:
        self.saved = {k: os.environ.pop(k) for k in ("ADMIN_SECRET_KEY", "CITY_SECRET_KEY") if k in os.environ}
        self.addCleanup(os.environ.update, self.saved)
        self.addCleanup(lambda: [os.environ.pop(k, None) for k in ("ADMIN_SECRET_KEY", "CITY_SECRET_KEY")])

    def test_missing_secrets_are_generated_once_into_the_env_file(self) -> None:
        with TemporaryDirectory() as folder:
            env_file = Path(folder) / ".env"
            ensure_local_secrets(CityEnv(), env_file)
            first = env_file.read_text()
            admin_key = os.environ["ADMIN_SECRET_KEY"]
            self.assertGreaterEqual(len(admin_key), 40)
            self.assertIn(f"ADMIN_SECRET_KEY={admin_key}", first)
            self.assertIn("CITY_SECRET_KEY=", first)
            self.assertEqual(oct(env_file.stat().st_mode & 0o777), "0o600")
            for key in ("ADMIN_SECRET_KEY", "CITY_SECRET_KEY"):
                os.environ.pop(key)
            ensure_local_secrets(CityEnv(), env_file)  # a second start keeps them
            self.assertEqual(env_file.read_text(), first)
            self.assertEqual(os.environ["ADMIN_SECRET_KEY"], admin_key)

    def test_the_admin_key_is_printed_once(self) -> None:
        with TemporaryDirectory() as folder:
            code = (
                "from pathlib import Path; from city.bootstrap import ensure_local_secrets; "
                f"from city.envconfig import CityEnv; ensure_local_secrets(CityEnv(), Path({folder!r}) / '.env')"
            )
            env = {k: v for k, v in os.environ.items() if k not in {"ADMIN_SECRET_KEY", "CITY_SECRET_KEY"}}
            first = subprocess.run([sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=30)
            second = subprocess.run(
                [sys.executable, "-c", code], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=30
            )
            self.assertIn("generated ADMIN_SECRET_KEY=", first.stderr)
            self.assertEqual(second.stderr, "")
