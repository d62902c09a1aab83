"""The ledger's keeper: two daemon threads per process, started with the server (ledger.start) or by the
first reserve, whichever comes first.

The heartbeat thread only renews the process's heartbeat, `city:proc:<proc_id>` (expires after
HEARTBEAT_TTL_SECONDS), every HEARTBEAT_INTERVAL_SECONDS: no database stall and no long reaping round
can starve it, so no reaper takes a live process for dead. The keeper thread, every
KEEP_INTERVAL_SECONDS,
1. retries the settles that failed (Redis down, or an unexpected error: `settle_later`); their
   records are already written;
2. reaps, in one process at a time, for at most REAP_ROUND_SECONDS a round: an open call older than
   REAP_AGE_SECONDS whose owner's heartbeat was missing at two observations MISSING_CONFIRM_SECONDS
   apart is settled atomically and dropped: a reserved call at the cost of its usage record when one
   is already in the database (written while Redis was down), else at its estimate with its record
   (status "interrupted") written; a settled call has its kept record written. A reserved call of a
   live owner whose record is already in the database (its settle was lost) is settled the same way
   once older than RESERVED_CHECK_SECONDS, and a settled call whose record is still unwritten after
   SETTLED_STALE_SECONDS (its writer could not reach the database) is written, whatever its owner.
   Each studio's open calls are read REAP_BATCH_CALLS at a time from a cursor kept in Redis, so any
   number of long-lived live calls cannot hide a dead process's newer ones.
A record the database refuses (REFUSED_ATTEMPTS times, for a reason other than being unreachable) is
set aside in the DEAD_LETTER_KEY list with the error, logged once, and its reservation dropped.
So a dead process's calls are settled and recorded within about HEARTBEAT_TTL_SECONDS +
MISSING_CONFIRM_SECONDS + 2 × KEEP_INTERVAL_SECONDS.
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

import redis
from django.conf import settings
from django.db import close_old_connections
from redis.exceptions import RedisError, ResponseError

from aihub.ledger import DATABASE_AWAY, split_cost

if TYPE_CHECKING:
    from aihub.ledger_redis import RedisLedger

log = logging.getLogger("aihub.ledger")

KEEP_INTERVAL_SECONDS = 5.0
HEARTBEAT_INTERVAL_SECONDS = 5.0
HEARTBEAT_TTL_SECONDS = 15
HEARTBEAT_RETRY_SECONDS = 0.5  # after a failed beat: back within a second of Redis (a reaper waits longer)
# An owner is dead only if its heartbeat was missing at two observations at least this far apart.
MISSING_CONFIRM_SECONDS = 3.0
# A reaping round stops walking studios after this long (the reaper lock lasts 0.9 × KEEP_INTERVAL_SECONDS).
REAP_ROUND_SECONDS = 3.0
# Calls younger than this are never reaped (their owner may not have sent its first heartbeat yet).
REAP_AGE_SECONDS = 5.0
# A live owner's reserved call this old is looked up in the database (its settle may have been lost).
RESERVED_CHECK_SECONDS = 60.0
SETTLED_STALE_SECONDS = 60.0
# A studio leaves the reapers' set this long after its last reservation, once no call of it is open.
STUDIO_PRUNE_SECONDS = 600.0
REAP_BATCH_CALLS = 500
REAP_ROUND_CALLS = 5000
# A lost reserve's undo is tried this many rounds while Redis does not show the reservation (it may land late).
UNDO_TRIES = 3
REFUSED_ATTEMPTS = 3
REAPER_LOCK_KEY = "city:ledger:reaper"
REAP_CURSOR_KEY = "city:ledger:reap-cursor"  # hash: studio id → offset into its open calls
DEAD_LETTER_KEY = "city:ledger:dead-letter"  # list of {"record", "error"} the database refused for good


def check_eviction(client: redis.Redis) -> str | None:
    """Log an ERROR unless Redis's maxmemory-policy is noeviction: an evicted budget counter is rebuilt
    without the calls in flight (budgets overshoot by what they hold), an evicted rate key forgets its
    concurrency count. Budget counters carry a TTL, so volatile-* policies may evict them too. The
    policy read, or None when CONFIG is disabled (managed Redis)."""
    try:
        found = cast(dict[str, str], client.config_get("maxmemory-policy"))
    except ResponseError as exc:  # CONFIG disabled or renamed; an unreachable Redis raises (checked again later)
        log.warning("could not read Redis's maxmemory-policy (%s): make sure it is noeviction, or budgets may overshoot", exc)
        return None
    policy = found.get("maxmemory-policy")
    if isinstance(policy, bytes):
        policy = policy.decode()
    if policy is not None and policy != "noeviction":
        log.error(
            "Redis (REDIS_URL) has maxmemory-policy %s: when it fills, it may evict the ledger's budget and concurrency "
            "counters, and budgets and concurrency limits would then be overshot; set maxmemory-policy noeviction",
            policy,
        )
    return policy


class Keeper:
    reap_age_seconds = REAP_AGE_SECONDS  # tests set 0
    missing_confirm_seconds = MISSING_CONFIRM_SECONDS  # tests set 0 (two observations are still needed)
    reap_batch_calls = REAP_BATCH_CALLS  # tests make it small

    def __init__(self, ledger: "RedisLedger") -> None:
        self.ledger = ledger
        self.proc_id = ""
        self._pid = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # call_id → what its failed settle needs: studio, opened (keys, plan) or None, micro, pico, tokens, record, tries.
        self._pending: dict[str, tuple[Any, ...]] = {}
        # owner → (monotonic time, round) its heartbeat was first seen missing.
        self._missing: dict[str, tuple[float, int]] = {}
        self._round = 0
        self._refusals: dict[str, int] = {}  # call_id → how many times the database refused its record
        self._policy_checked = False

    def ensure_started(self) -> None:
        """Start the threads in this process (again after a fork: threads do not survive one). Idempotent."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.proc_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            self._stop = threading.Event()
            self._pending, self._missing, self._refusals = {}, {}, {}
            self._threads = [
                threading.Thread(target=self._beat, name="aihub-ledger-heartbeat", daemon=True),
                threading.Thread(target=self._run, name="aihub-ledger-keeper", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
            atexit.register(self.close)
            self._pid = os.getpid()

    def close(self) -> None:
        """Stop the threads and drop the heartbeat, so other processes reap what this one leaves open."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(2)
        try:
            self.ledger.sync_client().delete(f"city:proc:{self.proc_id}")
        except Exception:  # noqa: S110 (exiting; the heartbeat expires by itself)
            pass

    def settle_later(
        self, studio_id: str, call_id: str, micro: int, pico: int, tokens: int, record: dict[str, Any] | None, opened: Any = None
    ) -> None:
        """Settle this call in a later round (its record is written already); `record` None: a reserve whose
        answer was lost and whose call was refused, undone (settled at zero and dropped, no record)."""
        with self._lock:
            self._pending[call_id] = (studio_id, opened, micro, pico, tokens, record, 0)

    # --- threads --------------------------------------------------------------------------------

    def _beat(self) -> None:
        """The heartbeat, on a client of its own: nothing else this process does can hold it up."""
        timeout = settings.REDIS_TIMEOUT_SECONDS
        client = redis.Redis.from_url(self.ledger.url, socket_connect_timeout=timeout, socket_timeout=timeout)
        while not self._stop.is_set():
            pause = HEARTBEAT_INTERVAL_SECONDS
            try:
                client.set(f"city:proc:{self.proc_id}", "1", ex=HEARTBEAT_TTL_SECONDS)
            except Exception as exc:  # Redis away (the ledger logs outages): beat again as soon as it is back
                log.debug("heartbeat failed: %s", exc)
                pause = HEARTBEAT_RETRY_SECONDS
            self._stop.wait(pause)
        client.close()

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
            if not self._policy_checked:
                check_eviction(client)
                self._policy_checked = True
            self.retry_pending()
            got_lock = client.set(REAPER_LOCK_KEY, self.proc_id, nx=True, px=int(KEEP_INTERVAL_SECONDS * 900))
        except (RedisError, OSError) as exc:  # Redis away: nothing to do until it answers (the ledger logs outages)
            log.debug("the ledger keeper skips a round: %s", exc)
            return
        if got_lock:
            self.reap()

    # --- failed settles -------------------------------------------------------------------------

    def retry_pending(self) -> None:
        from aihub.ledger_redis import call_key, plan_keys, record_json, settle_plan

        with self._lock:
            pending = list(self._pending.items())
        for call_id, (studio_id, opened, micro, pico, tokens, record, tries) in pending:
            if opened is None:
                opened = plan_keys(studio_id, call_id, self.ledger.sync_client().hmget(call_key(studio_id, call_id), ["plan", "month"]))
            result = -1
            if opened is not None:
                keys, args = settle_plan(opened, tokens)
                reply = self.ledger.evalsha_sync("SETTLE", keys, [micro, pico, record_json(record or {}), len(opened[1]["scopes"]), *args])
                result = int(reply[0])
                if result == 1 and record is None:
                    self.ledger.forget([{"studio_id": studio_id, "call_id": call_id}])
                elif result == 1:  # the writer has (or will have) the record: make sure, then drop the reservation
                    self.ledger.forget(self._write([record]))
            with self._lock:
                if record is None and result == -1 and tries + 1 < UNDO_TRIES:
                    # The lost reserve may not have reached Redis's script yet: look again next round.
                    self._pending[call_id] = (studio_id, opened, micro, pico, tokens, record, tries + 1)
                else:
                    self._pending.pop(call_id, None)

    # --- reaping --------------------------------------------------------------------------------

    def reap(self) -> int:
        """One reaping round over the studios with open calls, bounded in time and calls; the number of
        records written."""
        from aihub.ledger_redis import STUDIOS_KEY, open_key

        client = self.ledger.sync_client()
        seconds, micros = client.time()
        now_ms = seconds * 1000 + micros // 1000
        deadline = time.monotonic() + REAP_ROUND_SECONDS
        self._round += 1
        self._forget_old_sightings()
        studios = [raw.decode() for raw in cast(list[bytes], client.zrange(STUDIOS_KEY, 0, -1))]
        cursors = {key.decode(): int(value) for key, value in cast(dict[bytes, bytes], client.hgetall(REAP_CURSOR_KEY)).items()}
        # Start where the last round stopped, so a round cut short does not starve the studios after it.
        start = cursors.get("", 0) % max(len(studios), 1)
        written = budget = 0
        cutoff = now_ms - int(self.reap_age_seconds * 1000)
        for n, studio_id in enumerate(studios[start:] + studios[:start]):
            if time.monotonic() > deadline or budget >= REAP_ROUND_CALLS:
                client.hset(REAP_CURSOR_KEY, "", (start + n) % len(studios))
                break
            offset = cursors.get(studio_id, 0)
            while True:
                calls = cast(
                    list[bytes], client.zrangebyscore(open_key(studio_id), "-inf", cutoff, start=offset, num=self.reap_batch_calls)
                )
                if not calls:
                    offset = 0  # the end: the next round starts from the oldest again
                    break
                done, dropped = self._reap_studio(studio_id, [call.decode() for call in calls], now_ms)
                written += done
                budget += len(calls)
                offset += len(calls) - dropped
                if len(calls) < self.reap_batch_calls:
                    offset = 0
                    break
                if time.monotonic() > deadline or budget >= REAP_ROUND_CALLS:
                    break
            if offset != cursors.get(studio_id, 0):
                client.hset(REAP_CURSOR_KEY, studio_id, offset)
            if client.zcard(open_key(studio_id)):
                client.zadd(STUDIOS_KEY, {studio_id: int(time.time() * 1000)})
        else:
            if cursors.get("", 0):
                client.hset(REAP_CURSOR_KEY, "", 0)
        pruned = [
            raw.decode()
            for raw in cast(list[bytes], client.zrangebyscore(STUDIOS_KEY, "-inf", int((time.time() - STUDIO_PRUNE_SECONDS) * 1000)))
        ]
        if pruned:
            client.zrem(STUDIOS_KEY, *pruned)
            client.hdel(REAP_CURSOR_KEY, *pruned)
        return written

    def _dead(self, owners: list[str], alive: set[str]) -> set[str]:
        """The owners whose heartbeat is missing now and was missing at an earlier round, long enough ago."""
        now = time.monotonic()
        dead: set[str] = set()
        for owner in owners:
            if owner in alive:
                self._missing.pop(owner, None)
                continue
            first = self._missing.setdefault(owner, (now, self._round))
            if first[1] < self._round and now - first[0] >= self.missing_confirm_seconds:
                dead.add(owner)
        return dead

    def _forget_old_sightings(self) -> None:
        old = time.monotonic() - STUDIO_PRUNE_SECONDS
        for owner in [owner for owner, (seen, _) in self._missing.items() if seen < old]:
            del self._missing[owner]

    def _reap_studio(self, studio_id: str, call_ids: list[str], now_ms: int) -> tuple[int, int]:
        """Reap one page of a studio's open calls: (records written, calls dropped)."""
        from aihub.ledger_redis import call_key

        client = self.ledger.sync_client()
        pipe = client.pipeline(transaction=False)
        for call_id in call_ids:
            pipe.hmget(call_key(studio_id, call_id), ["proc", "state", "at", "plan", "month", "record"])
        rows = pipe.execute()
        owners = sorted({row[0].decode() for row in rows if row[0] is not None})
        pipe = client.pipeline(transaction=False)
        for owner in owners:
            pipe.exists(f"city:proc:{owner}")
        dead = self._dead(owners, {owner for owner, exists in zip(owners, pipe.execute(), strict=True) if exists})
        to_settle: list[tuple[str, Any, Any, Any, bool]] = []
        records: list[dict[str, Any]] = []
        for call_id, (proc, state, at, plan, month, record) in zip(call_ids, rows, strict=True):
            if state is None:  # written and dropped meanwhile; the ZSET member goes with forget
                records.append({"studio_id": studio_id, "call_id": call_id, "_gone": True})
                continue
            owner_dead = proc is None or proc.decode() in dead
            age_ms = now_ms - int(at)
            if state == b"reserved" and (owner_dead or age_ms > RESERVED_CHECK_SECONDS * 1000):
                to_settle.append((call_id, plan, month, record, owner_dead))
            elif state == b"settled" and (owner_dead or age_ms > SETTLED_STALE_SECONDS * 1000):
                kept = json.loads(record)  # {}: an undone reserve (see settle_later), nothing to write
                records.append(kept or {"studio_id": studio_id, "call_id": call_id, "_gone": True})
        if to_settle:
            written = self._written_costs([call_id for call_id, *_ in to_settle])
            for call_id, plan, month, record, owner_dead in to_settle:
                settled = self._settle_reaped(studio_id, call_id, plan, month, record, written, owner_dead=owner_dead)
                if settled is not None:
                    records.append(settled)
        gone = [record for record in records if record.get("_gone")]
        done = self._write([record for record in records if not record.get("_gone")])
        self.ledger.forget(gone + done)
        return len(done), len(gone) + len(done)

    def _settle_reaped(
        self, studio_id: str, call_id: str, plan: Any, month: Any, record: Any, written: dict[str, int], *, owner_dead: bool
    ) -> dict[str, Any] | None:
        """Settle a reserved call: at its written record's cost when the database has one (then nothing is
        left to write), else (its owner dead) at the cost its interrupted record bills. The record to write
        or drop, or None (a live owner's call with no record yet: it runs on)."""
        from aihub.ledger_redis import plan_keys

        opened = plan_keys(studio_id, call_id, [plan, month])
        assert opened is not None
        if call_id in written:
            cost: Any = written[call_id]
        elif owner_dead:
            # At the cost its record bills (the worst case, exact to 1e-12 USD), so that the counters stay
            # equal to the sum of the records.
            cost = json.loads(record).get("cost") if record else None
        else:
            return None
        micro, pico = split_cost(cost) if isinstance(cost, int) else (-1, 0)
        args = [f"{tpm or 0} 0 0 {1 if took_slot else 0}" for tpm, took_slot in opened[1]["scopes"]]
        result = self.ledger.evalsha_sync("SETTLE", opened[0], [micro, pico, "", len(opened[1]["scopes"]), *args])
        if int(result[0]) != 1:
            return None
        if call_id in written:
            return {"studio_id": studio_id, "call_id": call_id, "_gone": True}
        return cast(dict[str, Any], json.loads(result[1]))

    def _written_costs(self, call_ids: list[str]) -> dict[str, int]:
        """call_id → cost of the usage records already in the database among these calls."""
        from aihub.models import UsageRecord

        close_old_connections()
        try:
            return dict(UsageRecord.objects.filter(call_id__in=call_ids).values_list("call_id", "cost"))  # type: ignore[arg-type]
        finally:
            close_old_connections()

    # --- writing --------------------------------------------------------------------------------

    def _write(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the records (idempotently); those now in the database, or set aside as refused for good,
        so their reservations may go. A database that does not answer raises: the reservations stay for
        the next round."""
        from aihub.metering import insert_records

        if not records:
            return []
        close_old_connections()
        try:
            try:
                insert_records(records)
                return records
            except DATABASE_AWAY:
                raise
            except Exception:  # noqa: S110 (one record spoils the batch: each alone below)
                pass
            done: list[dict[str, Any]] = []
            for record in records:
                try:
                    insert_records([record])
                    done.append(record)
                except DATABASE_AWAY:
                    raise
                except Exception as exc:
                    if self._refused(record, exc):
                        done.append(record)
            return done
        finally:
            close_old_connections()

    def _refused(self, record: dict[str, Any], exc: Exception) -> bool:
        """Count a refusal of `record`; at REFUSED_ATTEMPTS, move it to the dead-letter list (logged once)
        and say it may go."""
        from aihub.ledger_redis import record_json

        call_id = str(record.get("call_id"))
        count = self._refusals[call_id] = self._refusals.get(call_id, 0) + 1
        if count < REFUSED_ATTEMPTS:
            return False
        self.ledger.sync_client().rpush(DEAD_LETTER_KEY, record_json({"record": record, "error": f"{type(exc).__name__}: {exc}"}))
        self._refusals.pop(call_id, None)
        log.error(
            "the database refused the usage record of call %s %s times (%s: %s); it is set aside in Redis's %s list",
            call_id,
            count,
            type(exc).__name__,
            exc,
            DEAD_LETTER_KEY,
        )
        return True
