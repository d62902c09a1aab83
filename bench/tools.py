"""The benchmark's own tools, installed on first use: wrk (Debian), LiteLLM's proxy (its own venv)
and Portkey's open-source gateway (npm, its own directory)."""

import json
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


PORTKEY_PACKAGE = "@portkey-ai/gateway"
HONO_NODE_SERVER = "@hono/node-server"


def ensure_portkey(directory: Path) -> Path:
    """Path of Portkey's gateway server script (`build/start-server.js`) under `directory`, installed
    with npm from bench/portkey-package.json and its lock when missing or when they changed.

    The lock pins every package; the package's `overrides` make the gateway itself import
    @hono/node-server 1.13.5 (it otherwise gets its own newer copy, whose streaming the issue's
    measurement did not use)."""
    server = directory / "node_modules" / PORTKEY_PACKAGE / "build" / "start-server.js"
    stamp = directory / ".bench-installed"
    package = (BENCH_DIR / "portkey-package.json").read_text()
    lock = (BENCH_DIR / "portkey-package-lock.json").read_text()
    if server.exists() and stamp.exists() and stamp.read_text() == package + lock:
        return server
    npm = shutil.which("npm")
    if not npm or not shutil.which("node"):
        sys.exit("bench: Portkey's gateway needs Node.js 18+ and npm; install them, or run with --no-portkey.")
    print(f"bench: installing Portkey's gateway into {directory} (once)…", flush=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "package.json").write_text(package)
    (directory / "package-lock.json").write_text(lock)
    subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=directory, check=True)
    versions = portkey_versions(directory)
    wanted = json.loads(package)["dependencies"]
    if versions != {"gateway": wanted[PORTKEY_PACKAGE], "node_server": wanted[HONO_NODE_SERVER]}:
        sys.exit(f"bench: npm installed {versions} in {directory}, not the pinned {wanted}.")
    stamp.write_text(package + lock)
    return server


def portkey_versions(directory: Path) -> dict[str, str]:
    """The installed gateway's version and that of the @hono/node-server it imports (its own nested
    copy if it has one, which is the one Node resolves first)."""
    modules = directory / "node_modules"
    gateway = modules / PORTKEY_PACKAGE
    nested = gateway / "node_modules" / HONO_NODE_SERVER / "package.json"
    node_server = nested if nested.exists() else modules / HONO_NODE_SERVER / "package.json"
    return {
        "gateway": json.loads((gateway / "package.json").read_text())["version"],
        "node_server": json.loads(node_server.read_text())["version"],
    }
