"""How long a change made through one City process takes to reach another.

Starts two Daphne processes on a scratch SQLite database (or DATABASE_URL), then, ROUNDS times:
revokes a token through A while B is being asked every 20 ms; pauses a studio (its token freshly cached
on B); upserts an env key and waits for the model it enables to appear on B, then removes it. Prints
min / median / max seconds for each. With REDIS_URL (or CITY_CHANNEL_LAYER_URL) the change is broadcast;
--no-broadcast points the processes' channel layer at a port nobody listens on (the cache still works),
so that only the caches' TTL carries the change.

    .venv/bin/python bench/propagation.py [--rounds 5] [--no-broadcast]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BASE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE))
from bench.procs import free_port  # noqa: E402

ADMIN_KEY = "bench-admin-key-not-secret-0123456789"


def start(port: int, env: dict[str, str]) -> subprocess.Popen:
    daphne = str(Path(sys.executable).parent / "daphne")
    process = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "-v", "0", "city.asgi:application"],
        cwd=BASE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/system/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"City on port {port} did not start")


def until(check, limit: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if check():
            return time.monotonic() - started
        time.sleep(0.02)
    raise SystemExit("not propagated within 10 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-broadcast", action="store_true", help="the channel layer at a dead port: only the TTL")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="city-propagation-")
    env = {
        **os.environ,
        "ADMIN_SECRET_KEY": ADMIN_KEY,
        "CITY_SECRET_KEY": "bench-city-key-not-secret-0123456789",
        "CITY_LOG_LEVEL": "WARNING",
        "DEEPSEEK_API_KEY": "",
    }
    env.setdefault("DATABASE_URL", f"sqlite:///{scratch}/city.sqlite3")
    if args.no_broadcast:
        env["CITY_CHANNEL_LAYER_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=BASE, env=env, check=True)
    port_a, port_b = free_port(), free_port()
    a, b = start(port_a, env), start(port_b, env)
    try:
        admin = httpx.Client(base_url=f"http://127.0.0.1:{port_a}", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        on_b = f"http://127.0.0.1:{port_b}"
        results: dict[str, list[float]] = {"token revoked": [], "studio paused": [], "env key set": [], "env key removed": []}
        for _ in range(args.rounds):
            studio = admin.post("/v1/studios/create", json={"name": "propagation"}).json()
            token = admin.post("/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "t"}).json()
            user = {"Authorization": f"Bearer {token['token']}"}
            assert httpx.get(f"{on_b}/v1/studios/me", headers=user).status_code == 200
            admin.post("/v1/studios/tokens/revoke", json={"token_id": token["id"]})
            results["token revoked"].append(until(lambda h=user: httpx.get(f"{on_b}/v1/studios/me", headers=h).status_code == 401))
            spare = admin.post("/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "spare"}).json()
            spare_user = {"Authorization": f"Bearer {spare['token']}"}
            # B caches it now: the pause is not helped by an entry that happens to be about to expire.
            assert httpx.get(f"{on_b}/v1/studios/me", headers=spare_user).status_code == 200
            admin.post("/v1/studios/pause", json={"studio_id": studio["id"]})
            results["studio paused"].append(until(lambda h=spare_user: httpx.get(f"{on_b}/v1/studios/me", headers=h).status_code == 403))
            admin.post("/v1/studios/activate", json={"studio_id": studio["id"]})
            until(lambda h=spare_user: httpx.get(f"{on_b}/v1/studios/me", headers=h).status_code == 200)

            def callable_on_b(h: dict[str, str] = spare_user) -> set[str]:
                return {m["id"] for m in httpx.get(f"{on_b}/v1/ai/models", headers=h).json()["items"]}

            callable_on_b()
            admin.post("/v1/env/upsert", json={"key": "DEEPSEEK_API_KEY", "value": "sk-bench-not-a-real-key"})
            results["env key set"].append(until(lambda: "deepseek-v4-flash" in callable_on_b()))
            admin.post("/v1/env/remove", json={"key": "DEEPSEEK_API_KEY"})
            results["env key removed"].append(until(lambda: "deepseek-v4-flash" not in callable_on_b()))
        print(f"{'change through A, seen by B':28s} {'min s':>7s} {'median s':>9s} {'max s':>7s}   ({args.rounds} rounds)")
        for name, seconds in results.items():
            print(f"{name:28s} {min(seconds):7.2f} {statistics.median(seconds):9.2f} {max(seconds):7.2f}")
    finally:
        for process in (a, b):
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
