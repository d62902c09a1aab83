"""The benchmark's own tools, installed on first use: wrk (Debian) and LiteLLM's proxy (its own venv)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
UV_VERSION = "0.13.9"  # resolves LiteLLM with the overrides pip cannot express


def ensure_wrk() -> str:
    """Path of wrk, installed with apt-get when missing (the benchmark's load generator)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("bench: wrk is missing; install it (Debian/Ubuntu: apt-get install -y wrk) and run again.")
    print("bench: installing wrk (apt-get)…", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = shutil.which("wrk")
    if not found:
        sys.exit("bench: apt-get did not install wrk.")
    return found


def ensure_litellm(venv: Path) -> Path:
    """Path of the `litellm` command in `venv`, created and installed when missing."""
    litellm = venv / "bin" / "litellm"
    stamp = venv / ".bench-installed"
    wanted = (BENCH_DIR / "litellm-requirements.txt").read_text() + (BENCH_DIR / "litellm-overrides.txt").read_text()
    if litellm.exists() and stamp.exists() and stamp.read_text() == wanted:
        return litellm
    print(f"bench: installing LiteLLM's proxy into {venv} (once)…", flush=True)
    python = shutil.which("python3.11") or sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"uv=={UV_VERSION}"], check=True)
    env = {**os.environ, "UV_NATIVE_TLS": "1"}  # the system's CA store, like pip
    subprocess.run(
        [
            str(venv / "bin" / "uv"),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(BENCH_DIR / "litellm-requirements.txt"),
            "--override",
            str(BENCH_DIR / "litellm-overrides.txt"),
        ],
        check=True,
        env=env,
    )
    stamp.write_text(wanted)
    return litellm
