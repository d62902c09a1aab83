"""For the benchmarks that run City inside their own process: the repository on sys.path and the
settings City refuses to start without, with fake keys (a benchmark never reads a real .env's)."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def configure() -> Path:
    """Call before importing Django or City; returns the repository's root."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city.settings")
    os.environ.setdefault("ADMIN_SECRET_KEY", "bench-admin-key-not-secret-0123456789")
    os.environ.setdefault("CITY_SECRET_KEY", "bench-city-key-not-secret-0123456789")
    return ROOT
