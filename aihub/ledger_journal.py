"""The embedded ledger's crash journal: what Redis keeps for the calls in flight, on local disk.

Each process appends one line per reserve (the record to write if it dies, status "interrupted"),
settle (the real record) and write (records the usage writer committed) to a file of its own,
which it holds locked (flock) while it lives. A process that starts replays the files no live
process holds: every call reserved or settled there but not written gets its record written
(idempotently, by call_id), then the file goes. A record the database refuses (any failure but its
being unreachable) is set aside in DEAD_LETTER_FILE with the error, logged once, so that one bad
record cannot stop the replay, nor every start after it. Lines are flushed to the OS at once (a kill -9
loses nothing; a power cut may lose the last lines: no fsync on the request path).

Files live under var/ledger/<a digest of the database's name>/, so a test run never replays the
development server's journal, nor the reverse.
"""

import fcntl
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import close_old_connections, connection

from aihub.ledger import DATABASE_AWAY

log = logging.getLogger("aihub.ledger")

# A journal with no call in flight is emptied once it is larger than this.
ROTATE_BYTES = 1_000_000
# Records the database refused, one JSON line each ({"record", "error"}); not a journal (*.jsonl).
DEAD_LETTER_FILE = "dead-letter.ndjson"


def journal_dir() -> Path:
    name = str(connection.settings_dict["NAME"])
    return Path(settings.BASE_DIR) / "var" / "ledger" / hashlib.sha256(name.encode()).hexdigest()[:16]


def dumps(entry: dict[str, Any]) -> str:
    from aihub.ledger_redis import record_json

    return record_json(entry).decode()


class Journal:
    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or journal_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / f"{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self.file: IO[str] = open(self.path, "a", encoding="utf-8")
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def append(self, op: str, call_id: str, record: dict[str, Any] | None = None) -> None:
        self.file.write(dumps({"op": op, "call": call_id, "record": record}) + "\n")
        self.file.flush()

    def close(self, *, idle: bool) -> None:
        """At exit: with no call in flight, the journal has nothing to say and goes."""
        self.file.close()
        if idle:
            self.path.unlink(missing_ok=True)

    def rotate_if_idle(self) -> None:
        """Called with no call in flight: start the file again once it is large."""
        if self.file.tell() > ROTATE_BYTES:
            self.file.truncate(0)
            self.file.seek(0)

    def replay_orphans(self) -> int:
        """Write the unwritten records of every journal no live process holds, then delete it; how many
        records were written (sync: database)."""
        from aihub.metering import insert_records

        count = 0
        for path in sorted(self.directory.glob("*.jsonl")):
            if path == self.path:
                continue
            with open(path, "r+", encoding="utf-8") as file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its process lives
                records = unwritten(file.read())
                close_old_connections()
                for record in records:
                    try:
                        insert_records([record])
                        count += 1
                    except DATABASE_AWAY:
                        raise  # the file stays, for the next try
                    except Exception as exc:
                        self.set_aside(record, exc)
                path.unlink()
        return count

    def set_aside(self, record: dict[str, Any], exc: Exception) -> None:
        with open(self.directory / DEAD_LETTER_FILE, "a", encoding="utf-8") as file:
            file.write(dumps({"record": record, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
        log.error(
            "the database refused the journaled usage record of call %s (%s: %s); it is set aside in %s",
            record.get("call_id"),
            type(exc).__name__,
            exc,
            self.directory / DEAD_LETTER_FILE,
        )


def unwritten(text: str) -> list[dict[str, Any]]:
    """The last record of each call a journal's lines leave reserved or settled but not written."""
    records: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by the crash
        if not isinstance(entry, dict) or not isinstance(entry.get("call"), str):
            continue
        if entry.get("op") == "written":
            records.pop(entry["call"], None)
        elif isinstance(entry.get("record"), dict):
            records[entry["call"]] = entry["record"]
    return list(records.values())
