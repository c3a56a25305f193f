"""ErrorKind: each of the eleven categories has its status, code and problem type."""

import pytest

from rustok_core.error import PROBLEM_TYPE_BASE, ErrorKind

EXPECTED = {
    "VALIDATION": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "DATABASE": 500,
    "EXTERNAL_SERVICE": 503,
    "INTERNAL": 500,
    "TIMEOUT": 504,
    "BUSINESS_LOGIC": 422,
}


def test_there_are_exactly_eleven_kinds() -> None:
    assert {kind.name for kind in ErrorKind} == set(EXPECTED)


@pytest.mark.parametrize(("name", "status"), EXPECTED.items())
def test_each_kind_maps_to_its_status_and_code(name: str, status: int) -> None:
    kind = ErrorKind[name]
    assert kind.status == status
    assert kind.code == name
    assert ErrorKind(name) is kind


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_each_kind_has_its_own_problem_type_under_the_base(kind: ErrorKind) -> None:
    assert kind.type_uri.startswith(PROBLEM_TYPE_BASE)
    assert kind.type_uri == PROBLEM_TYPE_BASE + kind.code.lower().replace("_", "-")
    assert kind.problem_title


def test_problem_types_are_distinct() -> None:
    assert len({kind.type_uri for kind in ErrorKind}) == len(ErrorKind)


def test_not_found_type_uri_is_stable() -> None:
    assert ErrorKind.NOT_FOUND.type_uri == "https://rustok.dev/problems/not-found"


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_server_error_flag_follows_the_status(kind: ErrorKind) -> None:
    assert kind.is_server_error == (kind.status >= 500)
