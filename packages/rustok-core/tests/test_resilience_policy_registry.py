"""PolicyRegistry: named policies built from plain data (a dict, a TOML document), every
problem reported with its policy and key, and reloads that rebuild only what changed while
an open breaker stays open."""

from __future__ import annotations

import tomllib

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from rustok_core.resilience import (
    CircuitBreakerConfig,
    CircuitOpenError,
    CircuitState,
    Exponential,
    Fixed,
    PolicyConfigError,
    PolicyProblem,
    PolicyRegistry,
    StateChange,
)
from rustok_core.resilience.prometheus import ResilienceMetrics
from rustok_core.testing import ManualClock


class Boom(Exception):
    pass


async def fail() -> None:
    raise Boom


async def succeed() -> str:
    return "ok"


PAYMENTS: dict[str, object] = {
    "payments": {
        "breaker": {"failure_threshold": 2, "timeout": 30},
        "retry": {"max_attempts": 3, "backoff": {"exponential": {"base": 0.1, "cap": 2}}},
        "timeout": 2.0,
    }
}


def problems(error: pytest.ExceptionInfo[PolicyConfigError]) -> list[tuple[str, str]]:
    return [(problem.policy, problem.key) for problem in error.value.problems]


def test_builds_a_policy_from_a_dict() -> None:
    registry = PolicyRegistry(PAYMENTS, clock=ManualClock())
    policy = registry.get("payments")
    assert policy.describe() == (
        "retry(max_attempts=3) > breaker('payments') > timeout(2 s) > call"
    )
    assert policy.breaker is not None
    assert policy.breaker.config == CircuitBreakerConfig(failure_threshold=2, timeout=30.0)
    assert policy.retry is not None
    assert policy.retry.backoff == Exponential(base=0.1, cap=2.0)
    assert policy.retry.name == "payments"
    assert list(registry) == ["payments"]
    assert "payments" in registry
    assert len(registry) == 1


def test_builds_policies_from_toml_in_the_order_given() -> None:
    document = tomllib.loads(
        """
        [search]
        order = ["bulkhead", "retry", "breaker"]
        breaker = { name = "search-backend", failure_threshold = 3 }
        retry = { max_attempts = 2, backoff = { fixed = { delay = 0.05 } } }
        bulkhead = { max_concurrent = 4 }

        [webhooks]
        limiter = { rate = 5.0, burst = 10 }
        hedge = { delay = 0.25 }
        timeout = 1.5
        """
    )
    registry = PolicyRegistry(document, clock=ManualClock())
    assert registry.describe() == (
        "search: bulkhead('search', max_concurrent=4) > retry(max_attempts=2) > "
        "breaker('search-backend') > call\n"
        "webhooks: hedge('webhooks', delay=0.25 s, max_hedged=1) > limiter('webhooks') > "
        "timeout(1.5 s) > call"
    )
    search = registry.get("search")
    assert search.retry is not None
    assert search.retry.backoff == Fixed(delay=0.05)
    assert [b.name for b in registry.breakers()] == ["search-backend"]


def test_policies_naming_one_breaker_share_it() -> None:
    shared = {"failure_threshold": 2, "name": "db"}
    registry = PolicyRegistry({"reads": {"breaker": shared}, "writes": {"breaker": shared}})
    assert registry.get("reads").breaker is registry.get("writes").breaker


def test_unknown_policy_names_the_known_ones() -> None:
    registry = PolicyRegistry(PAYMENTS)
    with pytest.raises(KeyError, match=r"no resilience policy named 'refunds'.*\['payments'\]"):
        registry.get("refunds")


def test_invalid_types_and_unknown_keys_name_policy_and_key() -> None:
    data: dict[str, object] = {
        "payments": {
            "breaker": {"failure_threshold": "five", "timout": 30},
            "retry": {"backoff": {"exponential": {"base": 0.1}, "fixed": {"delay": 1}}},
        },
        "search": {"bulkhead": {}},
    }
    with pytest.raises(PolicyConfigError) as error:
        PolicyRegistry(data)
    assert problems(error) == [
        ("payments", "breaker.failure_threshold"),
        ("payments", "breaker.timout"),
        ("payments", "retry.backoff"),
        ("search", "bulkhead.max_concurrent"),
    ]
    message = str(error.value)
    assert "payments.breaker.failure_threshold: Input should be a valid integer" in message
    assert "got 'five'" in message
    assert "payments.breaker.timout: unknown key" in message
    assert "exactly one of fixed, linear or exponential" in message
    assert "search.bulkhead.max_concurrent: Field required" in message
    assert isinstance(error.value, ValueError)


def test_values_the_strategies_refuse_name_policy_and_section() -> None:
    data = {
        "payments": {"breaker": {"failure_threshold": 0}, "timeout": -1},
        "search": {"retry": {"max_attempts": 3}, "order": ["breaker"]},
    }
    with pytest.raises(PolicyConfigError) as error:
        PolicyRegistry(data)
    assert error.value.problems[0] == PolicyProblem(
        "payments", "breaker", "failure_threshold must be an integer >= 1, got 0"
    )
    assert problems(error) == [
        ("payments", "breaker"),
        ("payments", "timeout"),
        ("search", "order"),
    ]


def test_one_breaker_with_two_settings_is_refused() -> None:
    data = {
        "reads": {"breaker": {"name": "db", "failure_threshold": 2}},
        "writes": {"breaker": {"name": "db", "failure_threshold": 3}},
    }
    with pytest.raises(PolicyConfigError, match=r"breaker 'db' is also in policy 'reads'"):
        PolicyRegistry(data)


def test_data_that_is_not_a_mapping_of_policies_is_refused() -> None:
    with pytest.raises(PolicyConfigError, match=r"payments: Input should be a valid dictionary"):
        PolicyRegistry({"payments": 3})


async def test_reload_keeps_an_open_breaker_open_under_new_thresholds() -> None:
    clock = ManualClock()
    changes: list[StateChange] = []
    registry = PolicyRegistry(PAYMENTS, clock=clock, state_listeners=[changes.append])
    breaker = registry.get("payments").breaker
    assert breaker is not None
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    assert breaker.state is CircuitState.OPEN

    new_data = {"payments": {"breaker": {"failure_threshold": 4, "timeout": 10}, "timeout": 2.0}}
    report = registry.reload(new_data)

    assert report.changed == ("payments",)
    assert report.breakers_reconfigured == ("payments",)
    rebuilt = registry.get("payments").breaker
    assert rebuilt is not None
    assert rebuilt is not breaker
    assert rebuilt.config.failure_threshold == 4
    assert rebuilt.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        await registry.get("payments").execute(succeed)
    clock.advance(10.0)  # the new timeout, from the reload on this clock
    assert await registry.get("payments").execute(succeed) == "ok"  # a trial call
    assert rebuilt.stats().state is CircuitState.HALF_OPEN
    assert changes[-1] == StateChange("payments", CircuitState.OPEN, CircuitState.HALF_OPEN)


async def test_reload_carries_the_failure_count_to_the_new_thresholds() -> None:
    registry = PolicyRegistry({"db": {"breaker": {"failure_threshold": 5}}}, clock=ManualClock())
    breaker = registry.get("db").breaker
    assert breaker is not None
    for _ in range(2):
        with pytest.raises(Boom):
            await breaker.call(fail)
    registry.reload({"db": {"breaker": {"failure_threshold": 3}}})
    rebuilt = registry.get("db").breaker
    assert rebuilt is not None
    assert rebuilt.stats().failure_count == 2
    with pytest.raises(Boom):
        await rebuilt.call(fail)  # the third consecutive failure: the new threshold
    assert rebuilt.state is CircuitState.OPEN


def test_reload_keeps_a_forced_state() -> None:
    registry = PolicyRegistry({"db": {"breaker": {"failure_threshold": 5}}})
    breaker = registry.get("db").breaker
    assert breaker is not None
    breaker.force_open()
    registry.reload({"db": {"breaker": {"failure_threshold": 3}}})
    rebuilt = registry.get("db").breaker
    assert rebuilt is not None
    assert rebuilt.state is CircuitState.FORCED_OPEN


async def test_reload_keeps_unchanged_policies_and_drops_removed_ones() -> None:
    data = {**PAYMENTS, "search": {"bulkhead": {"max_concurrent": 2}}}
    registry = PolicyRegistry(data, clock=ManualClock())
    payments = registry.get("payments")
    report = registry.reload(
        {**PAYMENTS, "reports": {"retry": {"max_attempts": 2}}},
    )
    assert (report.added, report.changed, report.removed, report.unchanged) == (
        ("reports",),
        (),
        ("search",),
        ("payments",),
    )
    assert report.breakers_reconfigured == ()
    assert bool(report)
    assert registry.get("payments") is payments
    assert "search" not in registry
    with pytest.raises(KeyError):
        registry.get("search")
    assert not registry.reload({**PAYMENTS, "reports": {"retry": {"max_attempts": 2}}})


async def test_a_changed_policy_keeps_a_breaker_whose_settings_did_not_change() -> None:
    registry = PolicyRegistry(PAYMENTS, clock=ManualClock())
    breaker = registry.get("payments").breaker
    assert breaker is not None
    with pytest.raises(Boom):
        await breaker.call(fail)
    report = registry.reload(
        {"payments": {"breaker": {"failure_threshold": 2, "timeout": 30}, "timeout": 5.0}}
    )
    assert report.changed == ("payments",)
    assert report.breakers_reconfigured == ()
    assert registry.get("payments").breaker is breaker
    assert breaker.stats().total_failures == 1
    assert registry.get("payments").describe() == "breaker('payments') > timeout(5 s) > call"


def test_an_invalid_reload_changes_nothing() -> None:
    registry = PolicyRegistry(PAYMENTS)
    payments = registry.get("payments")
    with pytest.raises(PolicyConfigError, match=r"payments\.breaker"):
        registry.reload({"payments": {"breaker": {"failure_threshold": -1}}, "new": {}})
    assert registry.get("payments") is payments
    assert list(registry) == ["payments"]


async def test_watchers_see_each_strategy_built_once() -> None:
    metrics = ResilienceMetrics(CollectorRegistry())
    clock = ManualClock()
    registry = PolicyRegistry(PAYMENTS, clock=clock, watchers=[metrics])
    policy = registry.get("payments")
    assert policy.breaker is not None
    policy.breaker.open()
    assert b'rustok_circuit_breaker_state{breaker="payments"} 1.0' in generate_latest(
        metrics.registry
    )
    registry.reload(
        {"payments": {"breaker": {"failure_threshold": 3, "timeout": 30}, "timeout": 2.0}}
    )
    rebuilt = registry.get("payments").breaker
    assert rebuilt is not None
    clock.advance(30.0)
    assert await rebuilt.call(succeed) == "ok"
    assert b'rustok_circuit_breaker_state{breaker="payments"} 2.0' in generate_latest(
        metrics.registry
    )
