"""The budget counters as the ledger keeps them in Redis, read from outside City: what the plan tests
compare with the usage records ("the counters equal the sum of the records").

A budget counter is a Redis hash per scope and month with `micro` (whole micro-USD spent), `pico`
(the remainder, 1e-12 USD) and `held` (micro-USD reserved by calls in flight); see
aihub/ledger_scripts.py.
"""

from typing import Any

import redis
from django.utils import timezone

from studios.spend import month_key


def _budget_keys(client: Any, kind: str, scope_id: str, month: str) -> list[bytes]:
    found = []
    for key in client.scan_iter(match=f"*{scope_id}*", count=1000):
        text = key.decode()
        if month not in text or client.type(key) != b"hash" or not client.hexists(key, "micro"):
            continue
        if kind == "studio" and "tok_" in text:
            continue  # the token's counter carries its studio's id as its hash tag
        found.append(key)
    return found


def budget_counter(redis_url: str, kind: str, scope_id: str, month: str | None = None) -> tuple[int, int]:
    """(spent in 1e-12 USD, held in micro-USD) of a studio's ("studio") or token's ("token") budget
    this month (or `month`, '2026-12'); (0, 0) when it has no counter."""
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = _budget_keys(client, kind, scope_id, month or month_key(timezone.now()))
        assert len(keys) <= 1, f"more than one budget counter for {kind} {scope_id}: {keys}"
        if not keys:
            return 0, 0
        micro, pico, held = (int(v or 0) for v in client.hmget(keys[0], "micro", "pico", "held"))
        return micro * 1_000_000 + pico, held
    finally:
        client.close()


def month_spent(redis_url: str, kind: str, scope_id: str) -> int:
    """This month's spend of the scope (1e-12 USD), once no call of it is in flight (held is 0)."""
    spent, held = budget_counter(redis_url, kind, scope_id)
    assert held == 0, f"{held} micro-USD still held by calls in flight on {kind} {scope_id}"
    return spent
