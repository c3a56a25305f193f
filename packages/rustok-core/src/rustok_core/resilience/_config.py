"""PolicyRegistry: named resilience policies built from plain data, reloadable at run time.

The data is what a TOML or JSON file, or a settings object, holds: a mapping from policy
names to the steps of each policy, every key named after the argument it sets::

    [payments]
    timeout = 2.0
    order = ["retry", "breaker", "timeout"]   # optional; DEFAULT_ORDER otherwise

    [payments.breaker]          # CircuitBreakerConfig's arguments, and an optional name
    failure_threshold = 5
    timeout = 30.0

    [payments.retry]            # RetryPolicy's max_attempts and budget, and a backoff
    max_attempts = 3
    backoff = { exponential = { base = 0.1, cap = 2.0 } }

    [payments.bulkhead]         # Bulkhead's max_concurrent and max_wait
    max_concurrent = 10

    [payments.limiter]          # RateLimiter's rate and burst (in this process's memory)
    rate = 50.0
    burst = 100

    [payments.hedge]            # Hedge's delay, max_hedged and hedge_on_failure
    delay = 0.2

Each breaker, bulkhead, limiter, hedge and retry policy is named after its policy unless its
table gives a ``name``; policies that name the same breaker (or bulkhead, limiter...) share
one, and must then give it the same settings. What only code can say (the exceptions a
breaker excludes or a retry retries, fallbacks, chaos drills) has no data form: build such
policies in code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from rustok_core.error import ErrorKind, RichError
from rustok_core.resilience._breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitState,
    StateListener,
)
from rustok_core.resilience._bulkhead import Bulkhead
from rustok_core.resilience._events import EventListener
from rustok_core.resilience._hedging import Hedge
from rustok_core.resilience._policy import DEFAULT_ORDER, PolicyStep, ResiliencePolicy
from rustok_core.resilience._ratelimit import RateLimiter
from rustok_core.resilience._retry import (
    Backoff,
    Exponential,
    Fixed,
    Linear,
    RetryAttempt,
    RetryPolicy,
)
from rustok_core.resilience._storage import CircuitStorage

if TYPE_CHECKING:
    from pydantic import ValidationError

    from rustok_core.resilience._config_data import BackoffData, Data, PolicyData

__all__ = [
    "PolicyChanges",
    "PolicyConfigError",
    "PolicyProblem",
    "PolicyRegistry",
    "PolicyWatcher",
]

Clock: TypeAlias = Callable[[], float]


# -- errors and reports -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One thing wrong with the data of one policy."""

    policy: str
    """The name of the policy (empty when the data as a whole is not a mapping)."""
    key: str
    """Where in the policy, dotted: ``"breaker.failure_threshold"``, ``"retry.backoff"``."""
    message: str
    """What is wrong, and what was expected."""

    def __str__(self) -> str:
        where = ".".join(part for part in (self.policy, self.key) if part)
        return f"{where or '<data>'}: {self.message}"


class PolicyConfigError(RichError, ValueError):
    """The data given to a `PolicyRegistry` does not describe valid policies.

    Its message lists every problem found, one a line, each naming the policy and key. A
    registry that raises it on `PolicyRegistry.reload` keeps the policies it had.

    Attributes:
        problems: each problem, with its policy and key.

    Args:
        problems: what is wrong (at least one).
    """

    problems: tuple[PolicyProblem, ...]

    def __init__(self, problems: Iterable[PolicyProblem]) -> None:
        found = tuple(problems)
        lines = "\n".join(f"  {problem}" for problem in found)
        super().__init__(
            ErrorKind.INTERNAL,
            f"invalid resilience policy configuration ({len(found)} problem"
            f"{'s' if len(found) != 1 else ''}):\n{lines}",
        )
        self.problems = found


@dataclass(frozen=True, slots=True)
class PolicyChanges:
    """What a `PolicyRegistry.reload` did, by policy name (each tuple sorted)."""

    added: tuple[str, ...]
    """Policies the new data has and the registry did not."""
    changed: tuple[str, ...]
    """Policies rebuilt: their data changed, or a strategy they share did."""
    removed: tuple[str, ...]
    """Policies the new data no longer has: `PolicyRegistry.get` no longer knows them."""
    unchanged: tuple[str, ...]
    """Policies kept as they were (the same objects)."""
    breakers_reconfigured: tuple[str, ...]
    """Breakers rebuilt with new settings on the state of the old ones (by breaker name)."""

    def __bool__(self) -> bool:
        """Whether the reload changed anything."""
        return bool(self.added or self.changed or self.removed)


class PolicyWatcher(Protocol):
    """What watches the strategies a `PolicyRegistry` builds: a
    `rustok_core.resilience.prometheus.ResilienceMetrics` or a
    `rustok_core.resilience.otel.ResilienceTelemetry`."""

    def watch_breaker(self, breaker: CircuitBreaker) -> None:
        """Watch a breaker just built."""
        ...

    def watch_bulkhead(self, bulkhead: Bulkhead) -> None:
        """Watch a bulkhead just built."""
        ...

    def watch_hedge(self, hedge: Hedge) -> None:
        """Watch a hedge just built."""
        ...

    def limiter_listener(self) -> EventListener:
        """A listener for a rate limiter about to be built."""
        ...

    def retry_hook(self, policy: str) -> Callable[[RetryAttempt], None]:
        """An ``on_retry`` hook for the retry policy named ``policy``, about to be built."""
        ...


# -- the registry -------------------------------------------------------------------------

_FORCE: dict[CircuitState, Callable[[CircuitBreaker], None]] = {
    CircuitState.FORCED_OPEN: CircuitBreaker.force_open,
    CircuitState.DISABLED: CircuitBreaker.disable,
    CircuitState.METRICS_ONLY: CircuitBreaker.metrics_only,
}


@dataclass(frozen=True, slots=True)
class _Built:
    """A strategy as built, with the settings it was built from (to tell a change)."""

    settings: object
    strategy: object


@dataclass(frozen=True, slots=True)
class _Arguments:
    """The keyword arguments a strategy other than a breaker is built with (compared to
    tell a change; a breaker is built from, and compared by, its `CircuitBreakerConfig`)."""

    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A policy's validated data, with the names and settings of its strategies."""

    data: PolicyData
    strategies: dict[str, tuple[str, object]]  # kind -> (strategy name, settings)


class PolicyRegistry:
    """Named `ResiliencePolicy` objects built from plain data, rebuilt by `reload`.

    `get` returns the policy of a name; `reload` takes new data and rebuilds only the
    policies whose data changed. A strategy whose settings did not change is kept as it
    is (the same object, with its state, counters and listeners). A **breaker** whose
    settings changed is rebuilt on the state storage of the old one, so that it goes on
    from where the old one was: an open breaker is still open (until its opening time
    plus the *new* ``timeout``), a half-open one still half-open, and its consecutive
    failure and success counters carry on, now judged against the new thresholds; a
    state an operator forced (forced open, disabled, metrics only) is forced on the new
    one too. Its totals (`CircuitBreaker.stats`) start again from 0, and a rate-based
    breaker's sliding window starts empty, and a listener added to the old breaker by
    hand is not carried over (give listeners to the registry: ``watchers``,
    ``state_listeners``, ``listeners``). A rebuilt bulkhead starts with every slot free,
    and a rebuilt rate limiter with full buckets.

    Take the policy from the registry for each call (``registry.get("payments")``):
    a policy held from before a reload keeps its old strategies, and a breaker it holds
    that was rebuilt shares its state storage with the new one.

    Args:
        data: the policies, by name (see the module's documentation for the keys).
        clock: monotonic seconds for every strategy built; their default if omitted
            (tests pass a ``ManualClock``).
        watchers: watch every strategy built (each once, when it is built): a
            `ResilienceMetrics` or a `ResilienceTelemetry`.
        state_listeners: given to every breaker built (`StateChange`).
        listeners: given to every breaker, bulkhead, rate limiter and retry policy built.

    Raises:
        PolicyConfigError: if ``data`` is not valid, listing every problem.

    Example::

        registry = PolicyRegistry(tomllib.loads(path.read_text())["policies"])
        receipt = await registry.get("payments").execute(charge, order)
        changes = registry.reload(new_data)  # e.g. on SIGHUP
    """

    __slots__ = (
        "_clock",
        "_listeners",
        "_lock",
        "_plans",
        "_policies",
        "_state_listeners",
        "_storages",
        "_strategies",
        "_watchers",
    )

    def __init__(
        self,
        data: Mapping[str, object],
        *,
        clock: Clock | None = None,
        watchers: Iterable[PolicyWatcher] = (),
        state_listeners: Iterable[StateListener] = (),
        listeners: Iterable[EventListener] = (),
    ) -> None:
        self._clock = clock
        self._watchers = tuple(watchers)
        self._state_listeners = tuple(state_listeners)
        self._listeners = tuple(listeners)
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._policies: dict[str, ResiliencePolicy] = {}
        self._strategies: dict[tuple[str, str], _Built] = {}
        self._storages: dict[str, CircuitStorage] = {}
        self.reload(data)

    def get(self, name: str) -> ResiliencePolicy:
        """The policy named ``name``.

        Raises:
            KeyError: if there is no such policy (the message lists those there are).
        """
        try:
            return self._policies[name]
        except KeyError:
            raise KeyError(
                f"no resilience policy named {name!r}; the policies are {sorted(self._policies)}"
            ) from None

    def breakers(self) -> tuple[CircuitBreaker, ...]:
        """Every breaker of the current policies, each once."""
        return tuple(
            built.strategy
            for (kind, _), built in self._strategies.items()
            if kind == "breaker" and isinstance(built.strategy, CircuitBreaker)
        )

    def describe(self) -> str:
        """Each policy on a line, ``name: steps`` (what `ResiliencePolicy.describe` says)."""
        return "\n".join(f"{name}: {self._policies[name].describe()}" for name in sorted(self))

    def __contains__(self, name: object) -> bool:
        return name in self._policies

    def __iter__(self) -> Iterator[str]:
        """The policy names."""
        return iter(tuple(self._policies))

    def __len__(self) -> int:
        return len(self._policies)

    def __repr__(self) -> str:
        return f"<PolicyRegistry {sorted(self._policies)}>"

    def reload(self, data: Mapping[str, object]) -> PolicyChanges:
        """Replace the policies with those of ``data``; rebuild only what changed.

        The whole of ``data`` is validated before anything changes: on an error the
        registry keeps the policies it had. See the class documentation for what a
        rebuilt breaker keeps.

        Args:
            data: the policies, by name, as for the constructor.

        Returns:
            What was added, changed, removed and kept, and which breakers were rebuilt.

        Raises:
            PolicyConfigError: if ``data`` is not valid, listing every problem.
        """
        with self._lock:
            plans = _plan(data)
            return self._apply(plans)

    # -- building ---------------------------------------------------------------------------

    def _apply(self, plans: dict[str, _Plan]) -> PolicyChanges:
        wanted: dict[tuple[str, str], tuple[object, str]] = {}  # -> (settings, first policy)
        problems: list[PolicyProblem] = []
        for policy, plan in plans.items():
            for kind, (name, settings) in plan.strategies.items():
                seen = wanted.get((kind, name))
                if seen is None:
                    wanted[(kind, name)] = (settings, policy)
                elif seen[0] != settings:
                    problems.append(
                        PolicyProblem(
                            policy,
                            kind,
                            f"{kind} {name!r} is also in policy {seen[1]!r} with other "
                            "settings; give it the same settings, or another name",
                        )
                    )
        if problems:
            raise PolicyConfigError(problems)

        strategies: dict[tuple[str, str], _Built] = {}
        made: list[tuple[str, object]] = []
        reconfigured: list[str] = []
        for (kind, name), (settings, _) in wanted.items():
            old = self._strategies.get((kind, name))
            if old is not None and old.settings == settings:
                strategies[(kind, name)] = old
                continue
            strategy = self._build(kind, name, settings)
            if kind == "breaker" and old is not None:
                assert isinstance(strategy, CircuitBreaker)
                assert isinstance(old.strategy, CircuitBreaker)
                force = _FORCE.get(old.strategy.state)
                if force is not None:
                    force(strategy)
                reconfigured.append(name)
            strategies[(kind, name)] = _Built(settings, strategy)
            made.append((kind, strategy))

        policies: dict[str, ResiliencePolicy] = {}
        added: list[str] = []
        changed: list[str] = []
        unchanged: list[str] = []
        for policy, plan in plans.items():
            parts = {
                kind: strategies[(kind, name)].strategy
                for kind, (name, _) in plan.strategies.items()
            }
            old_policy = self._policies.get(policy)
            old_plan = self._plans.get(policy)
            same_parts = old_plan is not None and all(
                self._strategies.get((kind, name)) is strategies[(kind, name)]
                for kind, (name, _) in plan.strategies.items()
            )
            if old_policy is not None and old_plan is not None:
                if old_plan.data == plan.data and same_parts:
                    policies[policy] = old_policy
                    unchanged.append(policy)
                    continue
                changed.append(policy)
            else:
                added.append(policy)
            policies[policy] = _assemble(plan.data, parts)

        removed = sorted(set(self._policies) - set(policies))
        for kind, strategy in made:
            self._watch(kind, strategy)
        self._storages = {
            name: storage
            for name, storage in self._storages.items()
            if ("breaker", name) in strategies
        }
        self._plans, self._policies, self._strategies = plans, policies, strategies
        return PolicyChanges(
            added=tuple(sorted(added)),
            changed=tuple(sorted(changed)),
            removed=tuple(removed),
            unchanged=tuple(sorted(unchanged)),
            breakers_reconfigured=tuple(sorted(reconfigured)),
        )

    def _build(self, kind: str, name: str, settings: object) -> object:
        clock: dict[str, Any] = {} if self._clock is None else {"clock": self._clock}
        if kind == "breaker":
            assert isinstance(settings, CircuitBreakerConfig)
            storage = self._storages.get(name)
            if storage is None:
                storage = self._storages[name] = CircuitStorage.memory()
            return CircuitBreaker(
                name,
                settings,
                storage=storage,
                listeners=self._state_listeners,
                event_listeners=self._listeners,
                **clock,
            )
        assert isinstance(settings, _Arguments)
        given = settings.arguments
        if kind == "retry":
            hooks = [watcher.retry_hook(name) for watcher in self._watchers]
            return RetryPolicy(
                name=name, listeners=self._listeners, on_retry=_all_of(hooks), **clock, **given
            )
        if kind == "bulkhead":
            return Bulkhead(name, listeners=self._listeners, **clock, **given)
        if kind == "limiter":
            listeners = [*self._listeners, *(w.limiter_listener() for w in self._watchers)]
            return RateLimiter(name, listeners=listeners, **clock, **given)
        assert kind == "hedge"
        return Hedge(name, **clock, **given)

    def _watch(self, kind: str, strategy: object) -> None:
        for watcher in self._watchers:
            if kind == "breaker" and isinstance(strategy, CircuitBreaker):
                watcher.watch_breaker(strategy)
            elif kind == "bulkhead" and isinstance(strategy, Bulkhead):
                watcher.watch_bulkhead(strategy)
            elif kind == "hedge" and isinstance(strategy, Hedge):
                watcher.watch_hedge(strategy)


def _all_of(hooks: list[Callable[[RetryAttempt], None]]) -> Callable[[RetryAttempt], None] | None:
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]

    def on_retry(attempt: RetryAttempt) -> None:
        for hook in hooks:
            hook(attempt)

    return on_retry


def _assemble(data: PolicyData, parts: Mapping[str, object]) -> ResiliencePolicy:
    breaker = parts.get("breaker")
    retry = parts.get("retry")
    bulkhead = parts.get("bulkhead")
    limiter = parts.get("limiter")
    hedge = parts.get("hedge")
    assert breaker is None or isinstance(breaker, CircuitBreaker)
    assert retry is None or isinstance(retry, RetryPolicy)
    assert bulkhead is None or isinstance(bulkhead, Bulkhead)
    assert limiter is None or isinstance(limiter, RateLimiter)
    assert hedge is None or isinstance(hedge, Hedge)
    return ResiliencePolicy(
        retry=retry,
        breaker=breaker,
        timeout=data.timeout,
        bulkhead=bulkhead,
        limiter=limiter,
        hedge=hedge,
        order=data.order,
    )


# -- validation ---------------------------------------------------------------------------


def _plan(data: Mapping[str, object]) -> dict[str, _Plan]:
    """Validate ``data`` and work out each policy's strategies, or raise every problem."""
    # pydantic is imported here, on first use: `rustok_core.resilience` imports without it.
    from pydantic import ValidationError

    from rustok_core.resilience._config_data import ALL_DATA

    try:
        validated = ALL_DATA.validate_python(data)
    except ValidationError as error:
        raise PolicyConfigError(_problems(error)) from None
    plans: dict[str, _Plan] = {}
    problems: list[PolicyProblem] = []
    for policy, policy_data in validated.items():
        if not policy:
            problems.append(PolicyProblem("", "", "a policy needs a non-empty name"))
            continue
        strategies: dict[str, tuple[str, object]] = {}
        for kind in ("breaker", "retry", "bulkhead", "limiter", "hedge"):
            section: Data | None = getattr(policy_data, kind)
            if section is None:
                continue
            name_given: object = getattr(section, "name", None)
            name = name_given if isinstance(name_given, str) and name_given else policy
            try:
                settings = _settings(kind, section)
            except (TypeError, ValueError) as error:
                problems.append(PolicyProblem(policy, kind, str(error)))
                continue
            strategies[kind] = (name, settings)
        if policy_data.timeout is not None and not policy_data.timeout > 0:
            problems.append(
                PolicyProblem(
                    policy,
                    "timeout",
                    f"must be a positive number of seconds, got {policy_data.timeout!r}",
                )
            )
        if policy_data.order is not None:
            configured = [step for step in DEFAULT_ORDER if _has(policy_data, step)]
            order = list(policy_data.order)
            if len(set(order)) != len(order) or set(order) != set(configured):
                problems.append(
                    PolicyProblem(
                        policy,
                        "order",
                        f"must name each configured step once: configured {configured}, "
                        f"order {order}",
                    )
                )
        plans[policy] = _Plan(policy_data, strategies)
    if problems:
        raise PolicyConfigError(problems)
    return plans


def _has(data: PolicyData, step: PolicyStep) -> bool:
    value: object = getattr(data, step, None)
    return value is not None


def _settings(kind: str, section: Data) -> object:
    """What a strategy is built from: a `CircuitBreakerConfig` for a breaker (which checks
    it), the given arguments otherwise, checked by building a throwaway strategy."""
    if kind == "breaker":
        return CircuitBreakerConfig(**section.given("name"))
    given = section.given("name")
    if kind == "retry":
        from rustok_core.resilience._config_data import RetryData

        assert isinstance(section, RetryData)
        given.pop("backoff", None)
        if section.backoff is not None:
            given["backoff"] = _backoff(section.backoff)
        RetryPolicy(**given)
    elif kind == "bulkhead":
        Bulkhead("check", **given)
    elif kind == "limiter":
        RateLimiter("check", **given)
    else:
        Hedge("check", **given)
    return _Arguments(given)


def _backoff(data: BackoffData) -> Backoff:
    if data.fixed is not None:
        return Fixed(**data.fixed.given())
    if data.linear is not None:
        return Linear(**data.linear.given())
    assert data.exponential is not None
    return Exponential(**data.exponential.given())


def _problems(error: ValidationError) -> list[PolicyProblem]:
    found: list[PolicyProblem] = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"]]
        policy, key = (loc[0], ".".join(loc[1:])) if loc else ("", "")
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against the arguments of the strategy)"
        elif detail["type"] not in ("missing",):
            message = f"{message}, got {detail['input']!r}"
        found.append(PolicyProblem(policy, key, message))
    return found
