"""The data of `PolicyRegistry`, as pydantic validates it (imported on first use, so that
``rustok_core.resilience`` imports without pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

from rustok_core.resilience._policy import PolicyStep

__all__ = ["ALL_DATA", "BackoffData", "Data", "PolicyData", "RetryData"]


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def given(self, *leave_out: str) -> dict[str, Any]:
        """The fields the data set (defaults are the strategies' own), but ``leave_out``:
        keyword arguments for the strategy (whose constructor checks them)."""
        return self.model_dump(exclude_unset=True, exclude=set(leave_out))


class BreakerData(Data):
    name: str | None = None
    failure_threshold: int | None = None
    success_threshold: int | None = None
    timeout: float | None = None
    half_open_max_requests: int | None = None
    failure_rate_threshold: float | None = None
    slow_call_rate_threshold: float | None = None
    slow_call_duration: float | None = None
    sliding_window_type: Literal["count", "time"] | None = None
    sliding_window_size: int | None = None
    minimum_calls: int | None = None
    max_timeout: float | None = None
    timeout_multiplier: float | None = None


class FixedData(Data):
    delay: float | None = None
    jitter: bool | None = None


class LinearData(Data):
    initial: float | None = None
    step: float | None = None
    cap: float | None = None
    jitter: bool | None = None


class ExponentialData(Data):
    base: float | None = None
    multiplier: float | None = None
    cap: float | None = None
    jitter: bool | None = None


class BackoffData(Data):
    fixed: FixedData | None = None
    linear: LinearData | None = None
    exponential: ExponentialData | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BackoffData:
        kinds = [
            kind for kind in ("fixed", "linear", "exponential") if kind in self.model_fields_set
        ]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of fixed, linear or exponential, e.g. "
                f"{{exponential = {{base = 0.1, cap = 2.0}}}}; got {kinds or 'none'}"
            )
        return self


class RetryData(Data):
    name: str | None = None
    max_attempts: int | None = None
    budget: float | None = None
    backoff: BackoffData | None = None


class BulkheadData(Data):
    name: str | None = None
    max_concurrent: int
    max_wait: float | None = None


class LimiterData(Data):
    name: str | None = None
    rate: float
    burst: int


class HedgeData(Data):
    name: str | None = None
    delay: float
    max_hedged: int | None = None
    hedge_on_failure: bool | None = None


class PolicyData(Data):
    breaker: BreakerData | None = None
    retry: RetryData | None = None
    timeout: float | None = None
    bulkhead: BulkheadData | None = None
    limiter: LimiterData | None = None
    hedge: HedgeData | None = None
    order: tuple[PolicyStep, ...] | None = None


ALL_DATA = TypeAdapter(dict[str, PolicyData])
