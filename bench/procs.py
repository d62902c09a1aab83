"""Processes the benchmark starts: each in its own process group, ended by PID, always."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOOPBACK = "127.0.0.1"


def stop_after(minutes: float) -> None:
    """A benchmark stops by itself: TimeoutError past `minutes` (SIGALRM), and exit on SIGTERM, so
    that its `finally` stops every process it started."""

    def give_up(signum, frame):
        raise TimeoutError(f"the benchmark ran past --max-minutes={minutes}")

    signal.signal(signal.SIGALRM, give_up)
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(1))
    signal.alarm(int(minutes * 60))


def stop_all(started: list) -> None:
    """A benchmark's end (its `finally`): the --max-minutes alarm off, then everything it started
    stopped, last first."""
    signal.alarm(0)
    for item in reversed(started):
        item.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


class Proc:
    """A started server: its own process group, its output in a log file under var/bench/."""

    def __init__(
        self, name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path, pass_fds: tuple[int, ...] = ()
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, pass_fds=pass_fds
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, url: str, timeout_s: float = 60.0, ok=(200,)) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2.0).status_code in ok:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout_s:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the process group (workers included), SIGKILL after 10 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        else:
            # The leader is gone; its workers may not be.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._log.close()


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively (from /proc)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tasks:
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for child in map(int, children):
            found.append(child)
            found.extend(descendants(child))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
