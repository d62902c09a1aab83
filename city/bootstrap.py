"""First-start secrets: generated once into the local, git-ignored `.env`, never into the database."""

import fcntl
import os
import secrets
import sys
from pathlib import Path

import environ

GENERATED_KEYS = {
    # key: what it protects, written as a comment above it in .env
    "ADMIN_SECRET_KEY": "bearer credential of the City admin",
    "CITY_SECRET_KEY": "server key: token digests and env encryption derive from it",
}


def ensure_local_secrets(env: environ.Env, env_file: Path) -> None:
    """Generate each missing secret into `env_file` (under a lock, so parallel starts agree).

    A generated ADMIN_SECRET_KEY is printed once to stderr; afterwards it is read from `.env`.
    """
    missing = [key for key in GENERATED_KEYS if not os.environ.get(key)]
    if not missing:
        return
    env_file.touch(mode=0o600, exist_ok=True)
    with env_file.open("r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        present = _keys_in(handle.read())
        handle.seek(0, os.SEEK_END)
        for key in missing:
            if key in present:
                continue
            value = secrets.token_urlsafe(32)
            handle.write(f"\n# {GENERATED_KEYS[key]}\n{key}={value}\n")
            if key == "ADMIN_SECRET_KEY":
                print(f"City: generated ADMIN_SECRET_KEY={value} (kept in {env_file}; shown once)", file=sys.stderr)
        handle.flush()
    env.read_env(str(env_file), overwrite=False)


def _keys_in(text: str) -> set[str]:
    keys = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].removeprefix("export ").strip())
    return keys
