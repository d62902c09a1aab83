"""The one path every AI call takes, whatever route it came by.

    identity (the dispatcher) → studio state → model known (404) → model in plan (403) →
    per-request cap (402) → rate limits (429) → budget reservation (402) → upstream attempts →
    settle → usage record

A route handler checks its own request shape, then asks `admit()` for an `AiCall`: the model, its
callable upstreams and a meter, with the call's worst case already reserved on every scope of its
plans (aihub/ledger.py). It then makes the upstream attempts through the call (`answer`,
`open_stream`) and answers through it (`respond`, `events`), which adds the rate-limit headers and
settles the reservation exactly once: to the real cost when the upstream reported usage, to City's
count when it did not, to nothing when no upstream was reached.

A route added later (media, the Responses API, Anthropic Messages) gets plans, limits and metering
by doing the same.
"""

import asyncio
import logging
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.http import HttpResponseBase

from aihub import ledger, metrics, tracing
from aihub.adapters.base import Upstream, UpstreamError
from aihub.attempts import first_success, open_stream
from aihub.catalog_types import Model
from aihub.estimate import Worst, fitting_max_tokens, rough_counting
from aihub.ledger import dollars
from aihub.metering import CLIENT_CLOSED, Meter
from aihub.streaming import EventStreamResponse, api_error
from aihub.upstreams import callable_model, known_model
from city import background
from city.calls import Call
from city.errors import ApiError, json_response
from studios.plans import PlanLimits, PlanScopes, plan_scopes
from studios.spend import month_key

log = logging.getLogger("aihub.pipeline")

ResponseT = TypeVar("ResponseT", bound=HttpResponseBase)


def model_not_allowed(model_id: str) -> ApiError:
    return ApiError(
        403,
        f"The model '{model_id}' is not in your plan; GET /v1/models lists the models your plan allows.",
        code="model_not_allowed",
        param="model",
    )


def over_the_cap(model: Model, worst: Worst, plan: PlanLimits, cap: int) -> ApiError:
    if worst.units:
        return ApiError(
            402,
            f"This request could cost up to {dollars(worst.cost)} ({worst.units:,} {unit_name(model.unit, worst.units)} of "
            f"'{model.id}'), over the "
            f"per-request cap of {dollars(cap)} of plan '{plan.name}': ask for fewer.",
            code="per_request_budget_exceeded",
        )
    fits = fitting_max_tokens(model, worst, cap)
    source = (
        "max_tokens"
        if worst.explicit_output
        else f"the model's maximum output ({worst.output_tokens:,} tokens, as the request sets no max_tokens)"
    )
    advice = f"set max_tokens to {fits:,} or less to fit" if fits else "the input alone exceeds it; shorten the request"
    return ApiError(
        402,
        f"This request could cost up to {dollars(worst.cost)} ({worst.input_tokens:,} input tokens and {source}), over the "
        f"per-request cap of {dollars(cap)} of plan '{plan.name}': {advice}.",
        code="per_request_budget_exceeded",
        param="max_tokens",
    )


def unit_name(unit: str, count: int) -> str:
    """ "images" → "image" for one."""
    return unit.removesuffix("s") if count == 1 else unit


def needs_exact_count(scopes: PlanScopes) -> bool:
    """Whether the call's tokens must be counted exactly: some plan caps it, budgets it or limits its TPM."""
    for plan in (scopes.studio_plan, scopes.token_plan):
        if plan is not None and (plan.max_cost_per_request is not None or plan.monthly_budget is not None or plan.tpm is not None):
            return True
    return False


def scope_limits(scopes: PlanScopes) -> tuple[ledger.ScopeLimits, ...]:
    """The studio's scope always (it holds the call's lease), the token's when the call has one."""
    found = [_limits("studio", scopes.studio_id, scopes.studio_plan)]
    if scopes.token_id is not None:
        found.append(_limits("token", scopes.token_id, scopes.token_plan))
    return tuple(found)


def _limits(kind: str, scope_id: str, plan: PlanLimits | None) -> ledger.ScopeLimits:
    if plan is None:
        return ledger.ScopeLimits(kind, scope_id, None, None, None, None)
    return ledger.ScopeLimits(kind, scope_id, plan.monthly_budget, plan.rpm, plan.tpm, plan.max_concurrency)


async def admit(
    call: Call,
    model_id: object,
    needs: tuple[str, ...],
    modality: str,
    worst_of: Callable[[Model], Worst],
    prepare: Callable[[list[Upstream]], None] | None = None,
) -> "AiCall":
    """The checks of the pipeline up to the reservation, in its order; raises the first refusal.
    `prepare(upstreams)` checks what a route can only check once it knows the upstreams (legacy
    completions served through chat), before anything is counted."""
    try:
        return await _admit(call, model_id, needs, modality, worst_of, prepare)
    except ApiError as exc:
        metrics.refusal(exc.status, exc.code or "")
        raise


async def precheck(call: Call, model_id: object, needs: tuple[str, ...]) -> list[Upstream]:
    """The refusals of `admit` that need no worst case — the model unknown (404), outside the plan
    (403), not callable or not serving `needs` — for a route that must do costly work before it can
    know its worst case (fetch a user's URL), so that a refused caller cannot make City do it; or that
    reserves nothing (a token count). Returns the model's callable upstreams."""
    try:
        scopes = await plan_scopes(call.identity, call.studio_id())
        model = known_model(model_id)
        if scopes.effective is not None and not scopes.effective.allows(model.id):
            raise model_not_allowed(model.id)
        return await callable_model(model, *needs)
    except ApiError as exc:
        metrics.refusal(exc.status, exc.code or "")
        raise


async def _admit(
    call: Call,
    model_id: object,
    needs: tuple[str, ...],
    modality: str,
    worst_of: Callable[[Model], Worst],
    prepare: Callable[[list[Upstream]], None] | None,
) -> "AiCall":
    studio_id = call.studio_id()
    scopes = await plan_scopes(call.identity, studio_id)
    model = known_model(model_id)
    plan = scopes.effective
    if plan is not None and not plan.allows(model.id):
        raise model_not_allowed(model.id)
    upstreams = await callable_model(model, *needs)
    if prepare is not None:
        prepare(upstreams)
    if needs_exact_count(scopes):
        worst = worst_of(model)
    else:
        with rough_counting():
            worst = worst_of(model)
    if plan is not None and plan.max_cost_per_request is not None and worst.cost > plan.max_cost_per_request:
        raise over_the_cap(model, worst, plan, plan.max_cost_per_request)
    meter = Meter(
        call,
        studio_id,
        model,
        modality,
        ceiling=(worst.input_tokens, worst.output_tokens),
        unit_price=worst.unit_price,
        worst_units=worst.units,
        worst_input_price=worst.input_price,
    )
    meter.provider, meter.deployment = upstreams[0].provider, upstreams[0].model
    # What is billed if this process dies mid-call: the worst case, as the model may have run.
    interrupted = meter.record(INTERRUPTED, "interrupted", at_worst=True)
    reservation = ledger.Reservation(
        call_id=meter.call_id,
        studio_id=studio_id,
        scopes=scope_limits(scopes),
        month=month_key(meter.created_at),
        cost=worst.cost,
        tokens=worst.input_tokens + worst.output_tokens,
        record=interrupted,
    )
    ai = AiCall(model=model, upstreams=upstreams, meter=meter, headers={})
    meter.on_finish = ai.settle
    ai.headers = await reserved(reservation, meter)
    ai.settle_first = reservation.tight
    return ai


async def reserved(reservation: ledger.Reservation, meter: Meter) -> dict[str, str]:
    """The reservation, made even if the client leaves meanwhile: a reserve cut off after Redis took
    it would hold its slot and budget for as long as this process lives. A call reserved for a
    client that left is settled at once, to nothing (no upstream was reached)."""
    task = asyncio.ensure_future(ledger.reserve(reservation))
    try:
        headers = await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(lambda done: _release_if_reserved(done, meter))
        raise
    metrics.reservation_taken()  # until AiCall._settle
    return headers


def _release_if_reserved(task: "asyncio.Future[dict[str, str]]", meter: Meter) -> None:
    if not task.cancelled() and task.exception() is None:
        metrics.reservation_taken()
        meter.finish(CLIENT_CLOSED, "client_closed")


# A usage record's status when City never answered: its process ended mid-call (error_code "interrupted").
INTERRUPTED = 0


@dataclass
class AiCall:
    """One admitted call. Use it as `async with ai:` around the handler's work, so that any failure
    not already recorded settles the reservation too."""

    model: Model
    upstreams: list[Upstream]
    meter: Meter
    headers: dict[str, str]
    _settlement: asyncio.Task[None] | None = field(default=None, repr=False)
    _written: "asyncio.Future[None] | None" = field(default=None, repr=False)  # set once the settlement is on Redis's socket
    settle_first: bool = False  # the reservation was tight: the answer waits for the settlement's reply (`before_answer`)
    _detached: bool = field(default=False, repr=False)  # answer_kept: the upstream runs on without the client

    async def __aenter__(self) -> "AiCall":
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if kind is None or self._detached:
            return  # answered, or handed over to a stream (or a detached answer) that finishes the meter itself
        if issubclass(kind, asyncio.CancelledError):
            self.meter.finish(CLIENT_CLOSED, "client_closed")
        elif isinstance(exc, ApiError):
            self.meter.finish(exc.status, exc.code or "")
        else:
            self.meter.finish(500, "internal_error")
        await self.before_answer()

    # --- upstream attempts --------------------------------------------------------------------------

    async def answer(self, attempt: Callable[[Upstream], Any]) -> dict[str, Any]:
        """One non-streamed answer with retries and fail-over; an upstream failure is recorded and
        raised as City's ApiError."""
        with self._failures_recorded():
            return await first_success(self.upstreams, attempt, self.meter)

    async def open_stream(
        self, start: Callable[[Upstream], AsyncGenerator[dict[str, Any], None]]
    ) -> tuple[AsyncGenerator[dict[str, Any], None], dict[str, Any] | None]:
        """A stream committed to the upstream that sent its first chunk (see aihub/attempts.py)."""
        self.meter.streamed = True
        with self._failures_recorded():
            return await open_stream(self.upstreams, start, self.meter)

    async def answer_kept(
        self, attempt: Callable[[Upstream], Any], orphaned: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> dict[str, Any]:
        """`answer`, for calls whose upstream bills what it makes even if no one takes it (images):
        if the client leaves, the upstream call runs on; `orphaned(answer)` then takes its usage
        onto the meter and keeps the result for pickup, and the call is settled as cancelled (499)
        at what was made. An upstream failure after the client left is recorded as for `answer`.
        `orphaned` runs after the request's ThreadSensitiveContext has exited: database work in it
        goes through `sync_to_async(..., thread_sensitive=False)` and closes its connection."""
        task = asyncio.ensure_future(self.answer(attempt))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and (task.cancelled() or task.exception() is not None):
                raise  # failed: already recorded (or, for a bug, recorded as the client's leaving by __aexit__)
            # Still running, or answered in the same turn of the loop as the client left: either way
            # the upstream made something, which is billed and kept.
            self._detached = True
            finishing = asyncio.ensure_future(self._finish_orphaned(task, orphaned))
            background.keep(finishing)
            raise

    async def _finish_orphaned(self, task: "asyncio.Future[dict[str, Any]]", orphaned: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        try:
            answer = await task
        except Exception:
            await self.settled()
            return
        try:
            await orphaned(answer)
        except Exception:
            log.exception("keeping the answer of call %s for its departed client failed", self.meter.call_id)
        self.meter.finish(CLIENT_CLOSED, "client_closed")
        await self.settled()

    @contextmanager
    def _failures_recorded(self) -> Iterator[None]:
        """Settle a failed attempt: to nothing when the upstream refused or was not reached, to the
        worst case when the model may have run without telling what it used (a timeout while it
        worked, or the client leaving while it did)."""
        try:
            yield
        except UpstreamError as exc:
            if exc.status == 504:
                self.meter.estimate_worst()
            self.meter.finish(exc.status, exc.code or "upstream_error")
            error = api_error(exc)
            error.headers.update(self.headers)  # the call was counted: its answer says where the limits stand
            raise error from None
        except asyncio.CancelledError:
            self.meter.estimate_worst()
            self.meter.finish(CLIENT_CLOSED, "client_closed")
            raise

    # --- answers ------------------------------------------------------------------------------------

    async def respond(self, answer: dict[str, Any]) -> HttpResponseBase:
        """A whole JSON answer, once `before_answer`: the client's next call finds its concurrency slot
        free. A reply of Redis not waited for, a server stopping gracefully waits for (city/background.py)."""
        self.meter.finish(200)
        await self.before_answer()
        return self._with_headers(json_response(answer))

    async def respond_with(self, response: ResponseT) -> ResponseT:
        """A whole answer of any kind (raw audio, say), once `before_answer`, as `respond`."""
        self.meter.finish(200)
        await self.before_answer()
        return self._with_headers(response)

    def events(self, source: AsyncGenerator[bytes, None], content_type: str = "text/event-stream") -> EventStreamResponse:
        """A stream of events (or of any bytes: audio as it is made). The source finishes the meter just
        before its last frame; that frame waits for `before_answer`, so a client that reads to the end
        finds its slot free again."""
        response = self._with_headers(EventStreamResponse(self._settled_before_last(source), content_type))
        # A response never sent (the client left before its first byte) never runs its generator:
        # the call is settled when the response is dropped instead.
        weakref.finalize(response, _abandoned, self.meter, asyncio.get_running_loop())
        return response

    def _with_headers(self, response: ResponseT) -> ResponseT:
        for name, value in self.headers.items():
            response[name] = value
        return response

    async def _settled_before_last(self, source: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        try:
            async for frame in source:
                if self.meter.finished:
                    await self.before_answer()
                yield frame
        finally:
            await source.aclose()
            if self.meter.finished:
                await self.before_answer()

    # --- settlement ---------------------------------------------------------------------------------

    def settle(self, record: dict[str, Any]) -> None:
        """The meter's finish: settle the reservation and hand the record to the writer (the ledger
        keeps it too until it is written, so a crash loses neither). The metrics and the trace are
        taken from the same record, once the settlement is under way (a bug there must not stop it)."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        task = loop.create_task(self._settle(record, lambda: _set_once(written)))
        background.keep(task)
        self._settlement, self._written = task, written
        try:
            metrics.observe_call(record)
            if tracing.ENABLED:
                tracing.record_span(record)
        except Exception:
            log.exception("could not observe call %s", self.meter.call_id)

    async def _settle(self, record: dict[str, Any], on_written: Callable[[], None]) -> None:
        try:
            await ledger.settle(
                self.meter.call_id,
                self.meter.studio_id,
                cost=record["cost"],
                tokens=record["prompt_tokens"] + record["completion_tokens"],
                record=record,
                on_written=on_written,
            )
        except Exception:  # a bug: the ledger settles it again later, and writes the record now
            log.exception("settling call %s failed", self.meter.call_id)
            tokens = record["prompt_tokens"] + record["completion_tokens"]
            ledger.settle_later(self.meter.call_id, self.meter.studio_id, cost=record["cost"], tokens=tokens, record=record)
        finally:
            metrics.reservation_settled()

    async def settled(self) -> None:
        """Wait for the settlement (it goes on even if this wait is cancelled)."""
        if self._settlement is not None:
            await asyncio.shield(self._settlement)

    async def before_answer(self) -> None:
        """What an answer (or a stream's last frame) waits for: the settlement written to Redis's socket,
        or ended (in process; or Redis away, when the keeper settles it later). Redis's reply, one round
        trip, is waited for only when the reservation was tight (`settle_first`): the client's next call
        may need what this one holds, and it could reach Redis first on another connection (Redis reads
        its connections in no promised order, nor does a proxy in front of it). Otherwise a call like it
        fitted beside this one when it was reserved."""
        if self.settle_first:
            await self.settled()
        elif self._settlement is not None and self._written is not None:
            await asyncio.wait((self._settlement, self._written), return_when=asyncio.FIRST_COMPLETED)


def _set_once(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _abandoned(meter: Meter, loop: asyncio.AbstractEventLoop) -> None:
    """A stream dropped before its first byte went out: its upstream had already sent a first chunk,
    so the model ran; with nothing counted, it is billed at the worst case."""
    if meter.finished or loop.is_closed():
        return

    def finish() -> None:
        meter.estimate_worst()
        meter.finish(CLIENT_CLOSED, "client_closed")

    loop.call_soon_threadsafe(finish)


def settle_usage(meter: Meter, answer: dict[str, Any], generated_tokens: Callable[[], int]) -> None:
    """Take a whole answer's usage: the upstream's, else City's count (then shown in the answer too)."""
    if not meter.use(answer.get("usage")):
        meter.estimate(generated_tokens())
        answer["usage"] = meter.usage()
