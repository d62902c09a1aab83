"""Video, in process: the catalog's prices, OpenAI's create as Veo's, Veo's operations as OpenAI's video
objects, a refund's record, and the embedded ledger's refund."""

import asyncio
import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
import redis
from django.core.management import call_command
from django.utils import timezone

from aihub.adapters.base import MediaFile, UpstreamError
from aihub.adapters.gemini_video import predict_request, video_of
from aihub.catalog import models_by_id
from aihub.catalog_types import SECONDS, VIDEO, usd_per_unit
from aihub.estimate import worst_media
from aihub.ledger import ScopeLimits
from aihub.ledger_local import Budget, LocalLedger
from aihub.ledger_redis import RedisLedger
from aihub.metering import insert_records
from aihub.models import UsageRecord
from aihub.models_video import FAILED, VideoJob
from aihub.refunds import refund, refund_record
from aihub.spend import month_cost, month_start
from aihub.video_jobs import PENDING_STALE, RUN_LIMIT
from city.ids import new_id
from city.liveredis import LiveRedis
from studios.models import Studio
from studios.spend import month_key


def test_the_video_models_are_priced_per_second_with_sora_pro_by_size() -> None:
    models = models_by_id()
    assert (models["sora-2"].unit, models["sora-2"].unit_price) == (SECONDS, usd_per_unit("0.10"))
    pro = models["sora-2-pro"]
    assert pro.unit_price == usd_per_unit("0.30") and pro.unit_prices["1792x1024"] == usd_per_unit("0.50")
    assert models["veo-3.0-fast-generate-001"].unit_price == usd_per_unit("0.15")
    assert all(models[m].modalities == (VIDEO,) for m in ("sora-2", "veo-3.1-generate-preview"))
    assert pro.public_meta()["price"]["per_second_by_variant"] == {"1024x1792": "0.5", "1792x1024": "0.5"}
    # 12 s of sora-2-pro at 1792x1024: $6.00 exactly, reserved in micro-USD
    assert worst_media(pro, 12, pro.unit_prices["1792x1024"]).cost == 6_000_000


def test_openai_seconds_and_size_become_veo_parameters() -> None:
    reference = MediaFile("cat.png", b"\x89PNG", "image/png")
    body = predict_request({"prompt": "A cat", "seconds": 6, "size": "1080x1920", "negative_prompt": "dogs"}, reference)
    assert body == {
        "instances": [{"prompt": "A cat", "image": {"bytesBase64Encoded": "iVBORw==", "mimeType": "image/png"}}],
        "parameters": {"aspectRatio": "9:16", "resolution": "1080p", "durationSeconds": 6, "negativePrompt": "dogs"},
    }
    with pytest.raises(UpstreamError) as refused:
        predict_request({"prompt": "A cat", "size": "1024x1792"}, None)
    assert (refused.value.status, refused.value.param, refused.value.retryable) == (400, "size", False)
    with pytest.raises(UpstreamError) as refused:
        predict_request({"prompt": "A cat"}, MediaFile("a.gif", b"GIF8", "image/gif"))
    assert refused.value.param == "input_reference"


def test_veo_operations_read_as_openai_video_objects() -> None:
    name = "models/veo-3.0-generate-001/operations/abc"
    assert video_of(name, {"name": name})["status"] == "in_progress"
    done = {"name": name, "done": True, "response": {"generateVideoResponse": {"generatedSamples": [{"video": {"uri": "u"}}]}}}
    assert video_of(name, done)["status"] == "completed"
    failed = video_of(name, {"name": name, "done": True, "error": {"code": 3, "message": "Unsafe prompt."}})
    assert (failed["status"], failed["error"]) == ("failed", {"code": "3", "message": "Unsafe prompt."})
    filtered = video_of(name, {"done": True, "response": {"generateVideoResponse": {"raiMediaFilteredReasons": ["People."]}}})
    assert (filtered["status"], filtered["error"]["code"], filtered["error"]["message"]) == ("failed", "content_filtered", "People.")


def test_a_refund_record_is_the_job_negated() -> None:
    job = VideoJob(
        id="video_x", studio_id="studio_x", token_id="tok_x", call_id="call_" + "a" * 26, cost=400_000_000_000, seconds=4, model="sora-2"
    )
    job.route, job.upstream_model, job.provider = "videos", "sora-2", "openai-video"
    record = refund_record(job, job.created_at, job.cost, job.seconds)
    assert (record["call_id"], record["units"], record["cost"], record["unit"]) == (
        "call_" + "a" * 26 + ":refund",
        -4,
        -400_000_000_000,
        "seconds",
    )
    assert len(str(record["call_id"])) <= 40  # UsageRecord.call_id's max_length


def test_the_embedded_ledger_refunds_once_with_the_remainder_borrowed() -> None:
    ledger = LocalLedger()
    studio, token = ScopeLimits("studio", "s1", 10, None, None, None), ScopeLimits("token", "t1", None, None, None, None)
    ledger._budgets["studio:s1:2026-12"] = Budget(micro=400_000, pico=5)
    ledger._budgets["token:t1:2026-12"] = Budget(micro=400_000, pico=5)
    cost = 100_000 * 1_000_000 + 7  # $0.1 and 7e-12 USD
    scopes = [("studio", "s1"), ("token", "t1")]
    assert asyncio.run(ledger.refund("call_1:refund", "s1", scopes, "2026-12", cost)) is True
    assert asyncio.run(ledger.refund("call_1:refund", "s1", scopes, "2026-12", cost)) is False  # once
    for scope in (studio, token):
        budget = ledger.budget(scope, "2026-12")
        assert budget is not None and (budget.micro, budget.pico) == (299_999, 999_998)
    # A counter that somehow holds less than a refund stops at zero.
    assert asyncio.run(ledger.refund("call_2:refund", "s1", scopes, "2026-12", 300_000 * 1_000_000)) is True
    budget = ledger.budget(studio, "2026-12")
    assert budget is not None and (budget.micro, budget.pico) == (0, 0)


def test_the_redis_ledger_refunds_once_in_one_script_with_the_remainder_borrowed(settings: Any) -> None:
    own = None if settings.REDIS_URL else LiveRedis()
    url = settings.REDIS_URL or own.url  # type: ignore[union-attr]
    try:
        client = redis.Redis.from_url(url)
        studio = f"studio_refund_{uuid.uuid4().hex[:8]}"
        keys = [f"city:{{{studio}}}:budget:studio:{studio}:2026-12", f"city:{{{studio}}}:budget:token:tok_1:2026-12"]
        for key in keys:
            client.hset(key, mapping={"micro": 400_000, "pico": 5, "held": 0})
        ledger = RedisLedger(url)
        scopes = [("studio", studio), ("token", "tok_1"), ("token", "tok_never_built")]
        for cost in (100_000 * 1_000_000 + 7, 200_000 * 1_000_000):  # a remainder borrowed, then none (no "-0" sent)
            assert asyncio.run(ledger.refund(f"call_{cost}:refund", studio, scopes, "2026-12", cost)) is True
        assert asyncio.run(ledger.refund(f"call_{cost}:refund", studio, scopes, "2026-12", cost)) is False  # once
        for key in keys:
            assert client.hmget(key, ["micro", "pico"]) == [b"99999", b"999998"]
        # A counter that somehow holds less than a refund stops at zero, never below.
        assert asyncio.run(ledger.refund("call_big:refund", studio, scopes, "2026-12", 100_000 * 1_000_000)) is True
        for key in keys:
            assert client.hmget(key, ["micro", "pico"]) == [b"0", b"0"]
        assert not client.exists(f"city:{{{studio}}}:budget:token:tok_never_built:2026-12")  # left to its rebuild
        client.delete(*keys)
        client.close()
    finally:
        if own is not None:
            own.stop()


# --- refunds and the sweep, on the database -----------------------------------------------------------

PRICE = usd_per_unit("0.10")  # sora-2, per second


def _job(**fields: Any) -> VideoJob:
    studio_id = fields.pop("studio_id", None) or Studio.objects.create(name="Refunds").id
    values: dict[str, Any] = {
        "id": new_id("video"),
        "studio_id": studio_id,
        "call_id": new_id("call"),
        "model": "sora-2",
        "provider": "openai-video",
        "upstream_model": "sora-2",
        "seconds": 4,
        "size": "720x1280",
        "route": "video",
        "upstream_id": "video_upstream1",
        "cost": 4 * PRICE,
        **fields,
    }
    return VideoJob.objects.create(**values)


def _charge(job: VideoJob, when: datetime, cost: int) -> None:
    """The usage record that billed `job`'s call (a refund's record, negated back)."""
    insert_records([{**refund_record(job, when, -cost, -job.seconds), "call_id": job.call_id, "error_code": ""}])


def _spent(studio_id: str, when: datetime) -> int:
    return month_cost("studio", studio_id, month_key(when))


@pytest.mark.django_db(transaction=True)
def test_a_refund_lands_in_its_charge_s_month_and_gives_back_what_was_billed() -> None:
    last_month = month_start(timezone.now()) - timedelta(hours=1)
    job = _job(status=FAILED, created_at=last_month)
    _charge(job, last_month, job.cost)
    assert asyncio.run(refund(job)) is True
    back = UsageRecord.objects.get(call_id=job.call_id + ":refund")
    assert (back.created_at, back.cost, back.units) == (last_month, -job.cost, -4)
    # That month's spend is what it was without the job; this month's is untouched (not below zero).
    assert (_spent(job.studio_id, last_month), _spent(job.studio_id, timezone.now())) == (0, 0)

    # A create that died before its upstream id was written: refunded what the reaper billed, once billed.
    lost = _job(studio_id=job.studio_id, status=FAILED, upstream_id="", cost=0)
    assert asyncio.run(refund(lost)) is False
    assert not UsageRecord.objects.filter(call_id=lost.call_id + ":refund").exists()
    _charge(lost, lost.created_at, 4 * PRICE)
    assert asyncio.run(refund(lost)) is True
    assert UsageRecord.objects.get(call_id=lost.call_id + ":refund").cost == -4 * PRICE
    assert _spent(job.studio_id, timezone.now()) == 0


@pytest.mark.django_db(transaction=True)
def test_purge_media_ends_the_jobs_nobody_polls_and_refunds_them() -> None:
    now = timezone.now()
    lost_at = now - PENDING_STALE - timedelta(minutes=1)
    lost = _job(upstream_id="", cost=0, created_at=lost_at)  # its process died mid-create
    _charge(lost, lost_at, 4 * PRICE)  # … and the ledger's reaper billed its call
    stuck_at = now - RUN_LIMIT - timedelta(minutes=1)
    stuck = _job(studio_id=lost.studio_id, status="in_progress", created_at=stuck_at)
    _charge(stuck, stuck_at, stuck.cost)
    young = _job(studio_id=lost.studio_id, upstream_id="", cost=0)  # its create may be under way: left alone
    out = io.StringIO()
    call_command("purge_media", stdout=out)
    assert "unfinished videos: 3 polled" in out.getvalue()
    found = {job.pk: job for job in VideoJob.objects.all()}
    assert (found[lost.pk].status, found[lost.pk].error_code, found[lost.pk].refund_settled) == (FAILED, "create_lost", True)
    assert (found[stuck.pk].status, found[stuck.pk].error_code, found[stuck.pk].refund_settled) == (FAILED, "timed_out", True)
    assert (found[young.pk].status, found[young.pk].refunded) == ("queued", False)
    assert _spent(lost.studio_id, lost_at) + _spent(lost.studio_id, stuck_at) + _spent(lost.studio_id, now) == 0
    assert UsageRecord.objects.filter(studio_id=lost.studio_id, error_code="refunded").count() == 2
