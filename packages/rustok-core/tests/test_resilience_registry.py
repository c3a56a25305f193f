"""BreakerRegistry: a breaker per key, bounded, never forgetting an open one."""

from __future__ import annotations

import logging

import pytest

from rustok_core.resilience import BreakerRegistry, CircuitBreaker, CircuitState


def registry(cap: int) -> BreakerRegistry:
    return BreakerRegistry(lambda key: CircuitBreaker(f"http:{key}"), max_breakers=cap)


def test_get_makes_one_breaker_per_key_and_returns_it_again() -> None:
    breakers = registry(10)
    first = breakers.get("a.example")
    assert breakers.get("a.example") is first
    assert breakers.get("b.example") is not first
    assert first.name == "http:a.example"


def test_past_the_cap_the_least_recently_used_closed_breaker_is_retired() -> None:
    breakers = registry(2)
    breakers.get("a")
    breakers.get("b")
    breakers.get("a")  # "b" is now the least recently used
    breakers.get("c")
    assert list(breakers) == ["a", "c"]


def test_an_open_breaker_is_never_retired() -> None:
    breakers = registry(2)
    breakers.get("a").open()
    breakers.get("b")
    breakers.get("c")
    assert "a" in breakers
    assert breakers.get("a").state is CircuitState.OPEN
    assert len(breakers) == 2


def test_when_all_are_open_it_grows_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    breakers = registry(1)
    with caplog.at_level(logging.WARNING, logger="rustok.resilience"):
        breakers.get("a").open()
        breakers.get("b").open()
        breakers.get("c").open()
    assert len(breakers) == 3
    assert len([r for r in caplog.records if "over its cap" in r.message]) == 1


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_breakers"):
        registry(0)
