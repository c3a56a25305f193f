"""ValidationErrorBuilder and pydantic conversion: every message, with its JSON pointer."""

import pydantic
import pytest

from rustok_core.error import (
    ErrorKind,
    FieldViolation,
    ProblemDetails,
    RichError,
    ValidationErrorBuilder,
    json_pointer,
    validation_error_from_pydantic,
)


class Address(pydantic.BaseModel):
    city: str
    zip_code: str = pydantic.Field(alias="zip", min_length=5)


class Line(pydantic.BaseModel):
    sku: str
    qty: int = pydantic.Field(gt=0)


class Signup(pydantic.BaseModel):
    email: str
    age: int
    address: Address
    lines: list[Line]


@pytest.mark.parametrize(
    ("path", "pointer"),
    [
        ("email", "/email"),
        (("items", 0, "sku"), "/items/0/sku"),
        ("a/b", "/a~1b"),
        ("m~n", "/m~0n"),
        ("~1", "/~01"),
        ("/~", "/~1~0"),
        ("", "/"),
        (3, "/3"),
        ((), ""),
    ],
)
def test_json_pointer_escapes_per_rfc6901(
    path: str | int | tuple[str | int, ...], pointer: str
) -> None:
    assert json_pointer(path) == pointer


def _unescape(segment: str) -> str:
    return segment.replace("~1", "/").replace("~0", "~")


@pytest.mark.parametrize("name", ["a~1b", "~/~", "x~0", "/", "~"])
def test_json_pointer_segment_decodes_back_to_the_name(name: str) -> None:
    pointer = json_pointer(("root", name))
    assert [_unescape(s) for s in pointer.split("/")[1:]] == ["root", name]


def test_builder_keeps_several_messages_per_field_in_order() -> None:
    error = (
        ValidationErrorBuilder()
        .field("email", "invalid")
        .field("email", "taken")
        .field("age", "must be at least 18")
        .build()
    )
    assert isinstance(error, RichError)
    assert error.kind is ErrorKind.VALIDATION
    assert error.status == 400
    assert error.violations == (
        FieldViolation("/email", "invalid"),
        FieldViolation("/email", "taken"),
        FieldViolation("/age", "must be at least 18"),
    )
    assert error.message == "validation failed for /email, /age"


def test_builder_error_problem_lists_every_message() -> None:
    error = ValidationErrorBuilder().field("email", "invalid").field("email", "taken").build()
    document = ProblemDetails.from_error(error, instance="/signup").to_dict()
    assert document["status"] == 400
    assert document["code"] == "VALIDATION"
    assert document["errors"] == [
        {"pointer": "/email", "detail": "invalid"},
        {"pointer": "/email", "detail": "taken"},
    ]


def test_builder_carries_trace_id_and_custom_message() -> None:
    error = ValidationErrorBuilder().trace_id("t-1").field("x", "bad").build("form rejected")
    assert error.trace_id == "t-1"
    assert error.message == "form rejected"


def test_empty_builder_has_no_errors_and_refuses_to_build() -> None:
    builder = ValidationErrorBuilder()
    assert not builder.has_errors()
    assert builder.violations == ()
    builder.raise_if_errors()
    with pytest.raises(ValueError, match="at least one field error"):
        builder.build()


def test_raise_if_errors_raises_the_built_error() -> None:
    builder = ValidationErrorBuilder().field("name", "required")
    assert builder.has_errors()
    with pytest.raises(RichError) as caught:
        builder.raise_if_errors()
    assert caught.value.violations == (FieldViolation("/name", "required"),)


def _signup_error(data: object) -> pydantic.ValidationError:
    with pytest.raises(pydantic.ValidationError) as caught:
        Signup.model_validate(data)
    return caught.value


def test_pydantic_errors_become_pointers_for_nested_and_list_fields() -> None:
    exc = _signup_error(
        {
            "email": "a@b.c",
            "age": "old",
            "address": {"city": "Oslo", "zip": "12"},
            "lines": [{"sku": "A", "qty": 1}, {"qty": 0}],
        }
    )
    error = validation_error_from_pydantic(exc)
    assert error.kind is ErrorKind.VALIDATION
    assert error.__cause__ is exc
    assert [v.pointer for v in error.violations] == [
        "/age",
        "/address/zip",
        "/lines/1/sku",
        "/lines/1/qty",
    ]
    assert error.violations[0].detail.startswith("Input should be a valid integer")
    assert error.violations[2].detail == "Field required"


def test_pydantic_conversion_gives_the_builders_problem_shape() -> None:
    exc = _signup_error({"email": "a@b.c", "age": 3, "address": {"city": "X", "zip": "1"}})
    document = ProblemDetails.from_error(validation_error_from_pydantic(exc)).to_dict()
    assert document["status"] == 400
    assert document["errors"] == [
        {"pointer": "/address/zip", "detail": "String should have at least 5 characters"},
        {"pointer": "/lines", "detail": "Field required"},
    ]


def test_pydantic_conversion_strips_a_request_prefix_and_accepts_error_lists() -> None:
    errors: list[dict[str, object]] = [
        {"loc": ("body", "lines", 0, "qty"), "msg": "must be positive", "type": "x"},
        {"loc": ("query", "page"), "msg": "not a number", "type": "x"},
    ]
    error = validation_error_from_pydantic(errors, strip_prefix=("body",), trace_id="t-2")
    assert error.violations == (
        FieldViolation("/lines/0/qty", "must be positive"),
        FieldViolation("/query/page", "not a number"),
    )
    assert error.trace_id == "t-2"
    assert error.__cause__ is None


def test_pydantic_model_level_error_points_at_the_whole_document() -> None:
    errors = [{"loc": (), "msg": "passwords differ", "type": "value_error"}]
    assert validation_error_from_pydantic(errors).violations == (
        FieldViolation("", "passwords differ"),
    )


def test_pydantic_conversion_of_nothing_is_refused() -> None:
    nothing: list[dict[str, object]] = []
    with pytest.raises(ValueError, match="no errors"):
        validation_error_from_pydantic(nothing)


def test_builder_mixes_manual_and_pydantic_errors() -> None:
    exc = _signup_error({"email": "a@b.c", "age": 20, "address": {"city": "X", "zip": "12345"}})
    error = ValidationErrorBuilder().field("email", "taken").pydantic(exc).build()
    assert [v.pointer for v in error.violations] == ["/email", "/lines"]
