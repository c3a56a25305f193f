"""RetryBudget: one budget of retries shared by every call of a policy (gRPC's retry throttling).

A bucket of ``max_tokens`` tokens, full at first. Every failed attempt takes one
token, every success gives back ``token_ratio`` of one; retries are allowed only
while more than half the tokens are left. When a dependency fails outright,
the bucket sinks below half after a few failures and the policy stops
retrying, so the load it sends stays close to one attempt per call instead of
``max_attempts`` per call; as successes come back, so do retries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

__all__ = ["RetryBudget"]


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Retries allowed while more than half of ``max_tokens`` are left (gRPC's throttling).

    Share one budget between the policies that call the same dependency, or give
    each policy its own.

    Args:
        max_tokens: the bucket's size (> 0); about half of it is how many retries
            a sudden outage can cause before retrying stops.
        token_ratio: the part of a token a success gives back (> 0, at most 1):
            0.1 allows about one retry per ten successes, in the long run.

    Raises:
        ValueError: if ``max_tokens`` or ``token_ratio`` is out of range.

    Example::

        budget = RetryBudget(max_tokens=10, token_ratio=0.1)
        policy = RetryPolicy(max_attempts=3, retry_budget=budget)
    """

    max_tokens: float = 10.0
    token_ratio: float = 0.1
    _state: _Tokens = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens: object = self.max_tokens
        if isinstance(tokens, bool) or not isinstance(tokens, int | float) or not tokens > 0:
            raise ValueError(f"max_tokens must be a number > 0, got {tokens!r}")
        ratio: object = self.token_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ValueError(f"token_ratio must be a number above 0 and at most 1, got {ratio!r}")
        object.__setattr__(self, "_state", _Tokens(float(self.max_tokens)))

    @property
    def tokens(self) -> float:
        """Tokens left now."""
        return self._state.tokens

    def allows_retry(self) -> bool:
        """Whether a retry may be made now (more than half the tokens are left)."""
        return self._state.tokens > self.max_tokens / 2

    def record_failure(self) -> None:
        """A failed attempt: take one token."""
        state = self._state
        with state.lock:
            state.tokens = max(0.0, state.tokens - 1.0)

    def record_success(self) -> None:
        """A successful attempt: give back ``token_ratio`` of a token."""
        state = self._state
        if state.tokens < self.max_tokens:
            with state.lock:
                state.tokens = min(float(self.max_tokens), state.tokens + self.token_ratio)


class _Tokens:
    __slots__ = ("lock", "tokens")

    def __init__(self, tokens: float) -> None:
        self.tokens = tokens
        self.lock = threading.Lock()
