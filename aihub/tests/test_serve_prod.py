"""`make serve-prod` (city/serve_prod.py) stops cleanly: SIGTERM with AI calls in flight, and every
call is answered, its usage record is written by the process that served it before it exits, and the
master exits with status 0 — with one process and with two workers.

uvicorn's own command would lose the race checked here: its processes die by the re-raised signal,
so the records still queued in the usage writer wait for Redis's reaper (about 25 s) or the journal's
replay at the next start. Here the records are counted the moment the master has exited, and what
the exiting processes leave behind shows that nobody else wrote them: embedded (no Redis), no crash
journal of theirs is left to replay; with Redis, no heartbeat of theirs is left for a reaper.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import redis
from django.conf import settings

from aihub.ledger_journal import journal_dir
from aihub.models import UsageRecord
from aihub.tests.live_plans import MODEL, OPENAI_KEY, chat_body
from aihub.tests.upstream.openai_sim import OpenAISim
from city.livecity import BASE_DIR, LiveCityTestCase, database_url, free_port
from city.waiting import wait_until

CALLS = 6  # per round, all in flight at once
EXIT_WAIT_SECONDS = 30.0


class ServeProd:
    """`python -m city.serve_prod` as the Makefile runs it, on a free loopback port."""

    def __init__(self, workers: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = BASE_DIR / "var" / f"serve-prod-{self.port}.log"
        self._log = self.log_path.open("wb")
        argv = [sys.executable, "-m", "city.serve_prod", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)]
        self.process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.workers = workers

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def worker_pids(self) -> set[int]:
        """The processes that serve: the master itself, or the children it spawned (uvicorn's workers;
        not multiprocessing's resource tracker)."""
        if self.workers == 1:
            return {self.process.pid}
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return {int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


def serve_prod_env(**extra: str) -> dict[str, str]:
    """This process's environment for `ServeProd`, on the test database with the test run's keys, and `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=database_url(),
        ADMIN_SECRET_KEY=settings.ADMIN_SECRET_KEY,
        CITY_SECRET_KEY=settings.CITY_SECRET_KEY,
        CITY_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class ServeProdExitTests(LiveCityTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.sim = OpenAISim().start()
        self.addCleanup(self.sim.stop)
        self.addCleanup(self.sim.release)  # a failed test must not leave answers held

    def start(self, workers: int) -> ServeProd:
        env = serve_prod_env(
            REDIS_URL=settings.REDIS_URL,
            CITY_CHANNEL_LAYER_URL=settings.REDIS_URL,
            OPENAI_API_KEY=OPENAI_KEY,
            OPENAI_BASE_URL=self.sim.url + "/v1",
        )
        city = ServeProd(workers, env)
        self.addCleanup(city.stop)

        def ready() -> bool:
            if city.process.poll() is not None:
                self.fail(f"serve-prod exited early:\n{city.log()}")
            try:
                return httpx.get(city.url + "/v1/services", timeout=1).status_code == 200 and len(city.worker_pids()) == workers
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, message=f"serve-prod answering with {workers} processes")
        return city

    def token(self, city: ServeProd) -> tuple[str, str]:
        admin = {"Authorization": f"Bearer {self.admin_key}"}
        studio = httpx.post(city.url + "/v1/studios/create", json={"name": "Acme Games"}, headers=admin, timeout=10).json()
        issued = httpx.post(
            city.url + "/v1/studios/tokens/apply", json={"studio_id": studio["id"], "name": "game server"}, headers=admin, timeout=10
        )
        return studio["id"], issued.json()["token"]

    def calls(self, city: ServeProd, token: str) -> tuple[list[threading.Thread], list[int]]:
        """CALLS chat calls on new connections, each in a thread; the list their statuses go to."""
        statuses: list[int] = []

        def call() -> None:
            response = httpx.post(
                city.url + "/v1/chat/completions",
                json=chat_body("Hi", 20, model=MODEL),
                headers={"Authorization": f"Bearer {token}"},
                timeout=EXIT_WAIT_SECONDS,
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=call) for _ in range(CALLS)]
        for thread in threads:
            thread.start()
        return threads, statuses

    def journals_of(self, pids: set[int]) -> list[Path]:
        folder = journal_dir()
        return [path for path in folder.glob("*.jsonl") if int(path.name.split("-")[0]) in pids] if folder.exists() else []

    def heartbeats_of(self, pids: set[int]) -> list[bytes]:
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            return [key for key in client.scan_iter("city:proc:*") if int(key.split(b":")[3]) in pids]
        finally:
            client.close()

    def check_clean_exit(self, workers: int) -> None:
        city = self.start(workers)
        studio_id, token = self.token(city)
        pids = city.worker_pids()
        # Calls held upstream, so that SIGTERM finds them in flight. Embedded, each process's journal
        # shows which processes served calls: rounds go on until every worker has (the kernel picks).
        answered = 0
        for _ in range(10):
            self.sim.hold()
            threads, statuses = self.calls(city, token)
            self.assertTrue(self.sim.wait_for_in_flight(CALLS, timeout=10), city.log())
            if settings.REDIS_URL or len(self.journals_of(pids)) == workers:
                break
            self.sim.release()
            for thread in threads:
                thread.join()
            self.assertEqual(statuses, [200] * CALLS)
            answered += CALLS
        else:
            self.fail(f"the calls never reached every worker: {self.journals_of(pids)}")

        city.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the supervisor passes SIGTERM on within 0.5 s; the workers then wait for their calls
        self.sim.release()
        for thread in threads:
            thread.join()
        self.assertEqual(statuses, [200] * CALLS, "calls in flight at SIGTERM are answered")
        answered += CALLS
        self.assertEqual(city.process.wait(EXIT_WAIT_SECONDS), 0, city.log())

        self.assertEqual(UsageRecord.objects.filter(studio_id=studio_id).count(), answered, city.log())
        if settings.REDIS_URL:
            self.assertEqual(self.heartbeats_of(pids), [], "the ledger keepers closed (atexit)")
        else:
            self.assertEqual(self.journals_of(pids), [], "the journals closed idle (atexit): nothing left to replay")
        self.assertNotIn("Traceback", city.log())

    def test_one_process(self) -> None:
        self.check_clean_exit(1)

    def test_two_workers(self) -> None:
        self.check_clean_exit(2)
