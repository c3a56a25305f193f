"""Chaos: faults, latency or chosen results injected into calls at a set rate, for drills.

A resilience policy is only known to work once it has seen the failures it is
for. `Chaos` (Polly's Simmy strategies) makes them happen on purpose: a share
``rate`` of the calls through it raise a chosen error, wait a chosen time first,
or answer a chosen result without running. It is switched on and off at run time
(a flag, or a callable asked on every call: a feature flag, an environment
variable), and seeded for drills and tests that must repeat exactly.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Never, ParamSpec, TypeAlias, TypeVar

from rustok_core.resilience import _waiting
from rustok_core.resilience._decorate import Decorates, Paths, R_co
from rustok_core.resilience._hedging import tell

__all__ = ["Chaos", "ChaosInjected", "ChaosKind", "ChaosListener"]

P = ParamSpec("P")
T = TypeVar("T")
V = TypeVar("V")

ChaosKind: TypeAlias = Literal["fault", "latency", "result"]
"""What a `Chaos` injects."""


@dataclass(frozen=True, slots=True)
class ChaosInjected:
    """A chaos strategy injected a fault, latency or result into a call."""

    name: str
    """The name of the chaos strategy."""
    kind: ChaosKind
    """What it injected."""
    latency: float = 0.0
    """Seconds of latency injected (0.0 for a fault or a result)."""


ChaosListener: TypeAlias = Callable[[ChaosInjected], None]
"""A callable told of every injection; its exceptions are logged, never raised."""


def _switched_off(enabled: bool | Callable[[], bool]) -> bool:
    """Whether ``enabled`` is a flag that is off (a callable is asked on each call instead):
    a policy holding the drill then leaves it out of the call without asking it."""
    return not callable(enabled) and not enabled


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


class Chaos(Decorates[R_co]):
    """Inject a fault, latency or a chosen result into a share ``rate`` of the calls.

    Build one with `Chaos.fault`, `Chaos.latency` or `Chaos.result`. Each call
    through it (``await chaos.call(fn, *args)``, ``chaos.call_sync(fn, *args)``, or
    ``@chaos`` on either kind of function) is picked for injection with probability
    ``rate``, drawn from its own ``random.Random(seed)``: with a seed, the calls
    picked are the same on every run. A picked call raises the fault without
    running, waits the latency and then runs, or answers the result without
    running; the others run untouched. While `enabled` is false nothing is
    injected and nothing is drawn, so a drill switched off and on again goes on
    where it stopped.

    Put it innermost (inside the timeout, the breaker and the retry), so that
    those see the injected failures as they would see real ones.

    Latency waits through ``sleep`` (async) and ``sleep_sync``; by default they
    honour test mode (``rustok_core.testing.test_mode``): the wait is skipped and
    counted on ``clock`` (a ``ManualClock`` is advanced).

    Args:
        name: what the drill is called, for events and descriptions.
        kind: ``"fault"``, ``"latency"`` or ``"result"`` (the constructors set it).
        rate: the share of calls injected, from 0.0 (none) to 1.0 (every call).
        fault: the exception raised, or a callable making one (an exception class).
        latency: seconds waited before the call runs.
        result: the value answered instead of the call's.
        enabled: whether it injects: a flag, or a callable asked on every call.
        seed: seeds the draws, for drills and tests that repeat exactly.
        listeners: callables told of every `ChaosInjected`.
        sleep: waits out the latency in async calls.
        sleep_sync: waits out the latency in plain calls.
        clock: monotonic seconds, advanced by skipped waits in test mode.

    Raises:
        ValueError: for an empty name, a rate outside 0..1, or a latency that is not
            a positive number.
        TypeError: for a fault that is neither an exception nor a callable.

    Example::

        drill = Chaos.fault("payments-drill", ConnectionError, rate=0.1, seed=7)
        receipt = await drill.call(charge, order)
    """

    __slots__ = (
        "_clock",
        "_enabled",
        "_fault",
        "_injected",
        "_kind",
        "_latency",
        "_listeners",
        "_name",
        "_off",
        "_random",
        "_rate",
        "_result",
        "_sleep",
        "_sleep_sync",
    )

    def __init__(
        self,
        name: str,
        kind: ChaosKind,
        *,
        rate: float,
        fault: Exception | Callable[[], Exception] | None = None,
        latency: float = 0.0,
        result: R_co | None = None,
        enabled: bool | Callable[[], bool] = True,
        seed: int | None = None,
        listeners: Iterable[ChaosListener] = (),
        sleep: Callable[[float], Awaitable[object]] | None = None,
        sleep_sync: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not name:
            raise ValueError("a chaos strategy needs a non-empty name, e.g. 'payments-drill'")
        given: object = rate
        if not _is_number(given) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be a number from 0.0 to 1.0, got {rate!r}")
        if kind == "fault" and not (isinstance(fault, Exception) or callable(fault)):
            raise TypeError(
                "fault must be an exception (ConnectionError('drill')) or a callable making "
                f"one (ConnectionError), got {fault!r}"
            )
        seconds: object = latency
        if kind == "latency" and (not _is_number(seconds) or not latency > 0):
            raise ValueError(f"latency must be a positive number of seconds, got {latency!r}")
        if kind not in ("fault", "latency", "result"):
            raise ValueError(f"kind must be 'fault', 'latency' or 'result', got {kind!r}")
        self._name = name
        self._kind: ChaosKind = kind
        self._rate = float(rate)
        self._fault = fault
        self._latency = float(latency)
        self._result = result
        self._enabled = enabled
        self._off = _switched_off(enabled)
        self._random = random.Random(seed)
        self._listeners = list(listeners)
        self._clock = clock
        # By default the waits honour test mode (skipped, and counted on the clock).
        if sleep is None:
            sleep = functools.partial(_waiting.sleep_async, clock=clock)
        if sleep_sync is None:
            sleep_sync = functools.partial(_waiting.sleep_sync, clock=clock)
        self._sleep = sleep
        self._sleep_sync = sleep_sync
        self._injected = 0

    # -- constructors -------------------------------------------------------------

    @staticmethod
    def fault(
        name: str,
        fault: Exception | Callable[[], Exception],
        *,
        rate: float,
        enabled: bool | Callable[[], bool] = True,
        seed: int | None = None,
        listeners: Iterable[ChaosListener] = (),
    ) -> Chaos[Never]:
        """Raise ``fault`` instead of running a share ``rate`` of the calls.

        ``fault`` is an exception, raised each time (its traceback reset), or a
        callable making a fresh one for each injection: an exception class, or
        ``lambda: OSError(errno.ECONNRESET, "reset by chaos")``.
        """
        return Chaos(
            name, "fault", rate=rate, fault=fault, enabled=enabled, seed=seed, listeners=listeners
        )

    @staticmethod
    def latency(
        name: str,
        seconds: float,
        *,
        rate: float,
        enabled: bool | Callable[[], bool] = True,
        seed: int | None = None,
        listeners: Iterable[ChaosListener] = (),
        sleep: Callable[[float], Awaitable[object]] | None = None,
        sleep_sync: Callable[[float], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Chaos[Never]:
        """Wait ``seconds`` before running a share ``rate`` of the calls.

        ``sleep`` and ``sleep_sync`` replace the waits (tests pass their own); by
        default they honour test mode.
        """
        return Chaos(
            name,
            "latency",
            rate=rate,
            latency=seconds,
            enabled=enabled,
            seed=seed,
            listeners=listeners,
            sleep=sleep,
            sleep_sync=sleep_sync,
            clock=clock,
        )

    @staticmethod
    def result(
        name: str,
        value: V,
        *,
        rate: float,
        enabled: bool | Callable[[], bool] = True,
        seed: int | None = None,
        listeners: Iterable[ChaosListener] = (),
    ) -> Chaos[V]:
        """Answer ``value`` instead of running a share ``rate`` of the calls (an HTTP 503
        response, an empty page); calls through it return their own type or ``V``."""
        return Chaos(
            name, "result", rate=rate, result=value, enabled=enabled, seed=seed, listeners=listeners
        )

    # -- state --------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name given at construction."""
        return self._name

    @property
    def kind(self) -> ChaosKind:
        """What it injects."""
        return self._kind

    @property
    def rate(self) -> float:
        """The share of calls injected while enabled."""
        return self._rate

    @property
    def enabled(self) -> bool:
        """Whether it injects now (a callable given as ``enabled`` is asked)."""
        enabled = self._enabled
        return bool(enabled()) if callable(enabled) else enabled

    @enabled.setter
    def enabled(self, value: bool | Callable[[], bool]) -> None:
        """Switch injection on or off (takes effect on the next call), or hand it to a
        callable asked on every call."""
        self._enabled = value
        self._off = _switched_off(value)

    @property
    def injected(self) -> int:
        """Calls injected so far."""
        return self._injected

    def add_listener(self, listener: ChaosListener) -> None:
        """Tell ``listener`` of every later injection."""
        self._listeners.append(listener)

    def describe(self) -> str:
        """A short description, e.g. ``"chaos('drill', fault, rate=0.1)"`` or
        ``"chaos('drill', latency=2 s, rate=0.5)"``."""
        what = f"latency={self._latency:g} s" if self._kind == "latency" else self._kind
        return f"chaos({self._name!r}, {what}, rate={self._rate:g})"

    # -- calls ----------------------------------------------------------------------

    async def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | R_co:
        """Await ``fn(*args, **kwargs)``, or inject into it; return its result or the
        injected one.

        Raises:
            Exception: the injected fault (``fn`` is not called).
            BaseException: whatever ``fn`` raised, unchanged.
        """
        if self._picked():
            if self._kind != "latency":
                return self._inject()
            await self._sleep(self._latency)
        return await fn(*args, **kwargs)

    def call_sync(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T | R_co:
        """Call the plain callable ``fn(*args, **kwargs)``, or inject into it.

        Raises:
            Exception: the injected fault (``fn`` is not called).
            BaseException: whatever ``fn`` raised, unchanged.
        """
        if self._picked():
            if self._kind != "latency":
                return self._inject()
            self._sleep_sync(self._latency)
        return fn(*args, **kwargs)

    def _paths(self) -> Paths:
        return self.call, self.call_sync

    def __repr__(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"<Chaos {self.describe()} {state}>"

    # -- injection ------------------------------------------------------------------

    def _picked(self) -> bool:
        """Whether this call is injected; draws only while enabled."""
        if not self.enabled or self._random.random() >= self._rate:
            return False
        self._injected += 1
        if self._listeners:
            latency = self._latency if self._kind == "latency" else 0.0
            tell(self._listeners, ChaosInjected(self._name, self._kind, latency))
        return True

    def _inject(self) -> R_co:
        """What a picked call of a fault or result drill does instead of running: raise
        the fault, or answer the result."""
        if self._kind == "fault":
            raise self._error()
        return self._answer()

    def _error(self) -> Exception:
        fault = self._fault
        if isinstance(fault, Exception):
            return fault.with_traceback(None)
        assert fault is not None  # checked at construction
        error: object = fault()
        if not isinstance(error, Exception):
            raise TypeError(
                f"the fault factory of chaos {self._name!r} returned {error!r}, not an exception"
            )
        return error

    def _answer(self) -> R_co:
        # Set by Chaos.result, the only constructor of kind "result".
        return self._result  # type: ignore[return-value]
