"""The ledger's keeper: one daemon thread per process (started by its first reserve, like the usage writer).

Every KEEP_INTERVAL_SECONDS it
1. renews the process's heartbeat, `city:proc:<proc_id>` (expires after HEARTBEAT_TTL_SECONDS): while it
   lives, no reaper touches this process's calls;
2. retries the settles that failed while Redis was down (their records are already written);
3. reaps, in one process at a time: every open call older than REAP_AGE_SECONDS whose owner's heartbeat
   is gone is settled atomically at its estimate (a reserved call; its record, status "interrupted",
   is written) or has its kept record written (a settled call whose writer died), idempotently, and is
   dropped. A settled call whose record is still unwritten after SETTLED_STALE_SECONDS (its writer
   could not reach the database) is written the same way, whatever its owner.
So a dead process's calls are settled and recorded within about HEARTBEAT_TTL_SECONDS + KEEP_INTERVAL_SECONDS.
"""

import atexit
import json
import logging
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, cast

from django.db import IntegrityError, close_old_connections

from aihub.ledger import split_cost

if TYPE_CHECKING:
    from aihub.ledger_redis import RedisLedger

log = logging.getLogger("aihub.ledger")

KEEP_INTERVAL_SECONDS = 5.0
HEARTBEAT_TTL_SECONDS = 15
# Calls younger than this are never reaped (their owner may not have sent its first heartbeat yet).
REAP_AGE_SECONDS = 5.0
SETTLED_STALE_SECONDS = 60.0
# A studio leaves the reapers' set this long after its last reservation, once no call of it is open.
STUDIO_PRUNE_SECONDS = 600.0
REAP_BATCH_CALLS = 500
REAPER_LOCK_KEY = "city:ledger:reaper"


class Keeper:
    reap_age_seconds = REAP_AGE_SECONDS  # tests set 0

    def __init__(self, ledger: "RedisLedger") -> None:
        self.ledger = ledger
        self.proc_id = ""
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # call_id → what its failed settle needs: studio, opened (keys, plan) or None, micro, pico, tokens, record.
        self._pending: dict[str, tuple[Any, ...]] = {}

    def ensure_started(self) -> None:
        """Start the thread in this process (again after a fork: threads do not survive one)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.proc_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            self._stop = threading.Event()
            self._pending = {}
            self._thread = threading.Thread(target=self._run, name="aihub-ledger-keeper", daemon=True)
            self._thread.start()
            atexit.register(self.close)
            self._pid = os.getpid()

    def close(self) -> None:
        """Stop the thread and drop the heartbeat, so other processes reap what this one leaves open."""
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(2)
        try:
            self.ledger.sync_client().delete(f"city:proc:{self.proc_id}")
        except Exception:  # noqa: S110 (exiting; the heartbeat expires by itself)
            pass

    def retry_settle(
        self, studio_id: str, call_id: str, micro: int, pico: int, tokens: int, record: dict[str, Any] | None, opened: Any = None
    ) -> None:
        """Settle this call once Redis answers; `record` None: a reserve whose answer was lost, undone
        (settled at zero and dropped, no record: the call did not run)."""
        with self._lock:
            self._pending[call_id] = (studio_id, opened, micro, pico, tokens, record)

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                log.exception("the ledger keeper failed a round")
            if self._stop.wait(KEEP_INTERVAL_SECONDS):
                return

    def tick(self) -> None:
        client = self.ledger.sync_client()
        try:
            client.set(f"city:proc:{self.proc_id}", "1", ex=HEARTBEAT_TTL_SECONDS)
        except Exception as exc:  # Redis away: nothing to do until it answers (the ledger logs outages)
            log.debug("heartbeat failed: %s", exc)
            return
        self.retry_pending()
        if client.set(REAPER_LOCK_KEY, self.proc_id, nx=True, px=int(KEEP_INTERVAL_SECONDS * 900)):
            self.reap()

    def retry_pending(self) -> None:
        from aihub.ledger_redis import call_key, plan_keys, record_json, settle_plan

        with self._lock:
            pending = list(self._pending.items())
        for call_id, (studio_id, opened, micro, pico, tokens, record) in pending:
            if opened is None:
                opened = plan_keys(studio_id, call_id, self.ledger.sync_client().hmget(call_key(studio_id, call_id), ["plan", "month"]))
            if opened is not None:
                keys, args = settle_plan(opened, tokens)
                result = self.ledger.evalsha_sync("SETTLE", keys, [micro, pico, record_json(record or {}), len(opened[1]["scopes"]), *args])
                if int(result[0]) == 1 and record is None:
                    self.ledger.forget([{"studio_id": studio_id, "call_id": call_id}])
                elif int(result[0]) == 1:  # the writer has (or will have) the record: make sure, then drop the reservation
                    self.ledger.forget(self._write([record]))
            with self._lock:
                self._pending.pop(call_id, None)

    def reap(self) -> int:
        """One reaping round over every studio with open calls; the number of calls written."""
        from aihub.ledger_redis import STUDIOS_KEY, open_key

        client = self.ledger.sync_client()
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        written = 0
        for raw in cast(list[bytes], client.zrange(STUDIOS_KEY, 0, -1)):
            studio_id = raw.decode()
            calls = client.zrangebyscore(
                open_key(studio_id), "-inf", now_ms - int(self.reap_age_seconds * 1000), start=0, num=REAP_BATCH_CALLS
            )
            if calls:
                written += self._reap_studio(studio_id, [call.decode() for call in cast(list[bytes], calls)], now_ms)
            if client.zcard(open_key(studio_id)):
                client.zadd(STUDIOS_KEY, {studio_id: int(time.time() * 1000)})
        client.zremrangebyscore(STUDIOS_KEY, "-inf", int((time.time() - STUDIO_PRUNE_SECONDS) * 1000))
        return written

    def _reap_studio(self, studio_id: str, call_ids: list[str], now_ms: int) -> int:
        from aihub.ledger_redis import call_key, plan_keys

        client = self.ledger.sync_client()
        pipe = client.pipeline(transaction=False)
        for call_id in call_ids:
            pipe.hmget(call_key(studio_id, call_id), ["proc", "state", "at", "plan", "month", "record"])
        rows = pipe.execute()
        owners = sorted({row[0].decode() for row in rows if row[0] is not None})
        pipe = client.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(f"city:proc:{owner}")
        alive = {owner for owner, exists in zip(owners, pipe.execute(), strict=True) if exists}
        records: list[dict[str, Any]] = []
        for call_id, (proc, state, at, plan, month, record) in zip(call_ids, rows, strict=True):
            if state is None:  # written and dropped meanwhile; the ZSET member goes with forget
                records.append({"studio_id": studio_id, "call_id": call_id, "_gone": True})
                continue
            owner_dead = proc is None or proc.decode() not in alive
            if state == b"reserved" and owner_dead:
                opened = plan_keys(studio_id, call_id, [plan, month])
                assert opened is not None
                keys, args = opened[0], []
                for tpm, took_slot in opened[1]["scopes"]:
                    args.append(f"{tpm or 0} 0 0 {1 if took_slot else 0}")
                # Settled at the cost its record bills (the worst case, exact to 1e-12 USD), so that the
                # counters stay equal to the sum of the records.
                cost = json.loads(record).get("cost") if record else None
                micro, pico = split_cost(cost) if isinstance(cost, int) else (-1, 0)
                result = self.ledger.evalsha_sync("SETTLE", keys, [micro, pico, "", len(opened[1]["scopes"]), *args])
                if int(result[0]) == 1:
                    records.append(json.loads(result[1]))
            elif state == b"settled" and (owner_dead or now_ms - int(at) > SETTLED_STALE_SECONDS * 1000):
                kept = json.loads(record)  # {}: an undone reserve (see retry_settle), nothing to write
                records.append(kept or {"studio_id": studio_id, "call_id": call_id, "_gone": True})
        gone = [record for record in records if record.get("_gone")]
        written = self._write([record for record in records if not record.get("_gone")])
        self.ledger.forget(gone + written)
        return len(written)

    def _write(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the records (idempotently); those now in the database, or that it refuses for good (their
        studio was deleted: logged), so their reservations may go. A database that does not answer
        raises: the reservations stay for the next round."""
        from aihub.metering import insert_records

        if not records:
            return []
        close_old_connections()
        try:
            try:
                insert_records(records)
                return records
            except IntegrityError:
                pass
            for record in records:
                try:
                    insert_records([record])
                except IntegrityError:
                    log.exception("dropping the usage record of call %s, which the database refuses", record.get("call_id"))
            return records
        finally:
            close_old_connections()
