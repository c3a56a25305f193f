"""ProblemDetails: RFC 9457 members, 5xx redaction, constructors and headers."""

import json
import math
from urllib.parse import urlsplit

import pytest

from rustok_core.error import (
    PROBLEM_JSON,
    ErrorKind,
    FieldViolation,
    ProblemDetails,
    ProblemError,
    RichError,
)

STANDARD = {"type", "title", "status", "detail", "instance"}
EXTENSIONS = {"code", "trace_id", "errors"}


def assert_rfc9457(document: dict[str, object]) -> None:
    """The checks RFC 9457 section 3 makes of a problem details JSON object."""
    assert set(document) <= STANDARD | EXTENSIONS
    assert None not in document.values()
    problem_type = document["type"]
    assert isinstance(problem_type, str)
    parts = urlsplit(problem_type)
    assert problem_type == "about:blank" or (parts.scheme == "https" and parts.netloc)
    assert isinstance(document["title"], str)
    status = document["status"]
    assert isinstance(status, int)
    assert not isinstance(status, bool)
    assert 400 <= status <= 599
    for member in ("detail", "instance", "code", "trace_id"):
        assert isinstance(document.get(member, ""), str)
    errors = document.get("errors", [])
    assert isinstance(errors, list)
    for entry in errors:
        assert isinstance(entry, dict)
        assert set(entry) == {"pointer", "detail"}
        assert entry["pointer"] == "" or entry["pointer"].startswith("/")


def test_media_type_is_problem_json() -> None:
    assert PROBLEM_JSON == "application/problem+json"


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_from_error_follows_rfc9457_for_every_kind(kind: ErrorKind) -> None:
    error = RichError(kind, "internal text").with_trace("t-1")
    document = ProblemDetails.from_error(error, instance="/api/orders/1").to_dict()
    assert_rfc9457(document)
    assert document["type"] == kind.type_uri
    assert document["title"] == kind.problem_title
    assert document["status"] == kind.status
    assert document["code"] == kind.code
    assert document["instance"] == "/api/orders/1"
    assert document["trace_id"] == "t-1"


def test_client_error_shows_message_code_and_violations() -> None:
    error = (
        RichError(ErrorKind.VALIDATION, "bad signup")
        .with_code("SIGNUP_INVALID")
        .with_violation("email", "taken")
        .with_field("internal_id", "42")
    )
    assert ProblemDetails.from_error(error).to_dict() == {
        "type": "https://rustok.dev/problems/validation",
        "title": "Validation failed",
        "status": 400,
        "detail": "bad signup",
        "code": "SIGNUP_INVALID",
        "errors": [{"pointer": "/email", "detail": "taken"}],
    }


def test_client_error_prefers_the_user_message() -> None:
    error = RichError(ErrorKind.NOT_FOUND, "SELECT found 0 rows", user_message="No such order")
    assert ProblemDetails.from_error(error).detail == "No such order"


@pytest.mark.parametrize(
    "kind", [ErrorKind.DATABASE, ErrorKind.INTERNAL, ErrorKind.EXTERNAL_SERVICE, ErrorKind.TIMEOUT]
)
def test_server_error_never_shows_message_fields_violations_or_cause(kind: ErrorKind) -> None:
    secret = "SELECT * FROM users WHERE password = 'hunter2'"
    try:
        raise RuntimeError(secret)
    except RuntimeError as exc:
        error = RichError(kind, f"query failed: {secret}").with_field("sql", secret)
        error.with_violation("password", secret).with_trace("t-9")
        error.__cause__ = exc
    problem = ProblemDetails.from_error(error)
    text = problem.to_json()
    assert "hunter2" not in text
    assert "SELECT" not in text
    assert problem.errors is None
    assert problem.trace_id == "t-9"
    assert problem.status == kind.status
    assert problem.detail is not None
    assert "try again later" in problem.detail or "trace id" in problem.detail


def test_server_error_with_an_overridden_status_is_redacted_too() -> None:
    error = RichError(ErrorKind.BUSINESS_LOGIC, "ledger row 7 corrupt", status=500)
    problem = ProblemDetails.from_error(error)
    assert problem.status == 500
    assert "ledger" not in problem.to_json()


def test_server_error_may_show_its_explicit_user_message() -> None:
    error = RichError(
        ErrorKind.EXTERNAL_SERVICE, "payments: TLS handshake", user_message="Payments are down"
    )
    assert ProblemDetails.from_error(error).detail == "Payments are down"


def test_json_output_has_no_nulls_and_round_trips() -> None:
    problem = ProblemDetails.not_found("Order")
    text = problem.to_json()
    assert "null" not in text
    document = json.loads(text)
    assert document == problem.to_dict()
    assert ProblemDetails.model_validate(document) == problem


def test_unknown_members_of_a_parsed_problem_are_kept() -> None:
    document = {"type": "https://example.com/probs/out-of-credit", "status": 403, "balance": 30}
    assert ProblemDetails.model_validate(document).to_dict() == document


def test_a_bare_problem_is_about_blank() -> None:
    assert ProblemDetails().to_dict() == {"type": "about:blank"}


def test_for_status_is_about_blank_titled_with_the_reason_phrase() -> None:
    document = ProblemDetails.for_status(405, instance="/x").to_dict()
    assert document == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "instance": "/x",
    }


def test_for_status_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match=r"known HTTP status.*499"):
        ProblemDetails.for_status(499)


@pytest.mark.parametrize(
    ("problem", "kind", "detail"),
    [
        (ProblemDetails.not_found("Order"), ErrorKind.NOT_FOUND, "Order not found"),
        (ProblemDetails.conflict("Slug taken"), ErrorKind.CONFLICT, "Slug taken"),
        (ProblemDetails.forbidden("No"), ErrorKind.FORBIDDEN, "No"),
        (ProblemDetails.external_service("Stripe"), ErrorKind.EXTERNAL_SERVICE, "Stripe"),
    ],
)
def test_constructors_set_kind_and_detail(
    problem: ProblemDetails, kind: ErrorKind, detail: str
) -> None:
    assert problem.type == kind.type_uri
    assert problem.status == kind.status
    assert problem.code == kind.code
    assert problem.detail is not None
    assert detail in problem.detail
    assert_rfc9457(problem.to_dict())


@pytest.mark.parametrize(
    ("problem", "kind"),
    [
        (ProblemDetails.forbidden(), ErrorKind.FORBIDDEN),
        (ProblemDetails.unauthenticated(), ErrorKind.UNAUTHENTICATED),
        (ProblemDetails.internal(trace_id="t-1"), ErrorKind.INTERNAL),
        (ProblemDetails.timeout(), ErrorKind.TIMEOUT),
        (ProblemDetails.validation(), ErrorKind.VALIDATION),
    ],
)
def test_argumentless_constructors_have_a_generic_detail(
    problem: ProblemDetails, kind: ErrorKind
) -> None:
    assert problem.status == kind.status
    assert problem.detail
    assert_rfc9457(problem.to_dict())


def test_validation_constructor_lists_errors() -> None:
    problem = ProblemDetails.validation(
        [FieldViolation.at("email", "invalid"), FieldViolation.at(("tags", 2), "too long")]
    )
    assert problem.errors == (
        ProblemError(pointer="/email", detail="invalid"),
        ProblemError(pointer="/tags/2", detail="too long"),
    )


def test_plain_problem_needs_only_the_content_type_header() -> None:
    assert ProblemDetails.not_found("Order").headers() == {"Content-Type": PROBLEM_JSON}


def test_rate_limited_carries_retry_after_rounded_up() -> None:
    problem = ProblemDetails.rate_limited(2.1)
    assert problem.status == 429
    assert problem.retry_after == 2.1
    assert problem.headers() == {"Content-Type": PROBLEM_JSON, "Retry-After": "3"}
    assert "retry_after" not in problem.to_dict()


@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_rate_limited_refuses_a_meaningless_retry_after(seconds: float) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        ProblemDetails.rate_limited(seconds)


def test_external_service_may_carry_retry_after() -> None:
    assert ProblemDetails.external_service("db", retry_after=30).headers()["Retry-After"] == "30"
    assert "Retry-After" not in ProblemDetails.external_service("db").headers()


class BreakerOpen(RichError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(ErrorKind.EXTERNAL_SERVICE, "breaker tenant-db is open")
        self.retry_after = retry_after


def test_from_error_turns_a_retry_after_attribute_into_a_header() -> None:
    problem = ProblemDetails.from_error(BreakerOpen(12.5), instance="/api/x")
    assert problem.headers() == {"Content-Type": PROBLEM_JSON, "Retry-After": "13"}
    assert problem.status == 503
    assert "tenant-db" not in problem.to_json()


def test_from_error_never_sends_a_negative_retry_after() -> None:
    assert ProblemDetails.from_error(BreakerOpen(-0.5)).headers()["Retry-After"] == "0"


def test_from_error_without_retry_after_sends_no_retry_after_header() -> None:
    error = RichError(ErrorKind.RATE_LIMITED, "slow down")
    assert "Retry-After" not in ProblemDetails.from_error(error).headers()


def test_problem_is_immutable() -> None:
    problem = ProblemDetails.not_found("Order")
    with pytest.raises(ValueError, match="frozen"):
        problem.status = 500
