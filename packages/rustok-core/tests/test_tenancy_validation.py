"""Tenant UUIDs, slugs and host names: accepted, normalised, or refused with a reason."""

import uuid

import pytest

from rustok_core.error import ErrorKind, ProblemDetails, RichError
from rustok_core.tenancy import (
    RESERVED_SLUGS,
    IdentifierKind,
    InvalidTenantIdentifierError,
    RejectionReason,
    validate_host,
    validate_slug,
    validate_uuid,
)

ORIGINAL_RESERVED = {
    "api", "admin", "www", "app", "cdn", "assets", "static", "health", "metrics", "docs",
    "swagger", "mail", "smtp", "pop", "imap", "ftp", "sftp", "ssh", "vpn", "auth", "login",
    "logout", "register", "signup", "signin", "dev", "test", "staging", "prod", "production",
    "localhost", "db", "database", "cache", "redis", "postgres", "root", "system", "internal",
    "private", "public",
}  # fmt: skip


def reason_of(validator: object, raw: str) -> str:
    assert callable(validator)
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        validator(raw)
    return caught.value.reason


# slugs


@pytest.mark.parametrize(
    ("raw", "slug"),
    [
        ("my-tenant", "my-tenant"),
        ("tenant123", "tenant123"),
        ("a", "a"),
        ("0", "0"),
        ("  my-tenant  ", "my-tenant"),
        ("MyTenant123", "mytenant123"),
        ("a-", "a-"),
        ("x" * 63, "x" * 63),
    ],
)
def test_valid_slugs_are_trimmed_and_lower_cased(raw: str, slug: str) -> None:
    assert validate_slug(raw) == slug


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 64, "too_long"),
        ("tenant@123", "invalid_characters"),
        ("tenant 123", "invalid_characters"),
        ("tenant_123", "invalid_characters"),
        ("tenant.123", "invalid_characters"),
        ("-tenant", "invalid_characters"),
        ("'; DROP TABLE--", "invalid_characters"),
        ("1' OR '1'='1", "invalid_characters"),
        ("<script>alert(1)</script>", "invalid_characters"),
        ("javascript:alert(1)", "invalid_characters"),
        ("../../../etc/passwd", "invalid_characters"),
        ("..\\windows\\system32", "invalid_characters"),
        ("\u212aey", "invalid_characters"),  # KELVIN SIGN lower-cases to an ASCII "k"
        ("caf\u00e9", "invalid_characters"),
        ("admin", "reserved"),
        ("API", "reserved"),
        (" www ", "reserved"),
    ],
)
def test_invalid_slugs_are_refused_with_a_reason(raw: str, reason: str) -> None:
    assert reason_of(validate_slug, raw) == reason


def test_reserved_words_are_those_of_the_original() -> None:
    assert RESERVED_SLUGS == ORIGINAL_RESERVED


@pytest.mark.parametrize("word", sorted(ORIGINAL_RESERVED))
def test_every_reserved_word_is_refused(word: str) -> None:
    assert reason_of(validate_slug, word.upper()) == "reserved"


def test_a_reserved_word_inside_a_slug_is_fine() -> None:
    assert validate_slug("admin-team") == "admin-team"


# UUIDs


def test_uuid_is_parsed_in_any_case_and_canonical() -> None:
    value = uuid.UUID("123e4567-e89b-12d3-a456-426614174000")
    assert validate_uuid(str(value)) == value
    assert validate_uuid(" " + str(value).upper() + "\n") == value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("invalid", "invalid_uuid"),
        ("12345", "invalid_uuid"),
        ("not-a-uuid", "invalid_uuid"),
        ("123e4567e89b12d3a456426614174000", "invalid_uuid"),
        ("{123e4567-e89b-12d3-a456-426614174000}", "invalid_uuid"),
        ("urn:uuid:123e4567-e89b-12d3-a456-426614174000", "invalid_uuid"),
        ("123e4567-e89b-12d3-a456-42661417400g", "invalid_uuid"),
        ("123e4567-e89b-12d3-a456-426614174000\n0", "invalid_uuid"),
    ],
)
def test_invalid_uuids_are_refused(raw: str, reason: str) -> None:
    assert reason_of(validate_uuid, raw) == reason


# hosts


@pytest.mark.parametrize(
    ("raw", "host"),
    [
        ("example.com", "example.com"),
        ("sub.example.com", "sub.example.com"),
        ("my-tenant.app.com", "my-tenant.app.com"),
        ("  Example.COM  ", "example.com"),
        ("example.com:8080", "example.com"),
        ("example.com:", "example.com"),
        ("example.com.", "example.com"),
        ("localhost", "localhost"),
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("B\u00dcCHER.example:443", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_valid_hosts_are_normalised(raw: str, host: str) -> None:
    assert validate_host(raw) == host


def test_a_host_of_exactly_253_characters_is_accepted() -> None:
    host = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(host) == 253
    assert validate_host(host) == host


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        (".", "empty"),
        (":80", "empty"),
        ("invalid host", "invalid_characters"),
        ("under_score.com", "invalid_characters"),
        ("example..com", "empty_label"),
        (".example.com", "empty_label"),
        ("-example.com", "hyphen_at_label_edge"),
        ("example-.com", "hyphen_at_label_edge"),
        ("a" * 64 + ".com", "label_too_long"),
        (".".join(["a" * 63] * 4), "too_long"),
        ("x" * 2000, "too_long"),
        ("example.com:http", "invalid_port"),
        ("example.com:65536", "invalid_port"),
        ("example.com:123456", "invalid_port"),
        ("[::1]:8080", "invalid_characters"),
        ("a:b:c", "invalid_characters"),
        ("\u2603.net", "invalid_idna"),
    ],
)
def test_invalid_hosts_are_refused_with_a_reason(raw: str, reason: str) -> None:
    assert reason_of(validate_host, raw) == reason


# the error


def test_refusal_is_a_validation_rich_error_with_a_reason_code() -> None:
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        validate_slug("Admin")
    error = caught.value
    assert isinstance(error, RichError)
    assert error.kind is ErrorKind.VALIDATION
    assert error.status == 400
    assert error.code == "INVALID_TENANT_IDENTIFIER"
    assert error.reason == "reserved"
    assert error.reason is RejectionReason.RESERVED
    assert error.identifier_kind is IdentifierKind.SLUG
    assert error.value == "Admin"
    assert error.fields == {"reason": "reserved", "identifier_kind": "slug"}
    assert "'Admin'" in error.message
    assert "reserved word" in error.message


def test_refusal_converts_to_a_400_problem_that_does_not_echo_the_input() -> None:
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        validate_slug("<script>alert(1)</script>")
    document = ProblemDetails.from_error(caught.value, instance="/api/nodes").to_dict()
    assert document["status"] == 400
    assert document["type"] == ErrorKind.VALIDATION.type_uri
    assert document["code"] == "INVALID_TENANT_IDENTIFIER"
    detail = document["detail"]
    assert isinstance(detail, str)
    assert "invalid_characters" in detail
    assert "<script>" not in detail


def test_a_huge_input_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        validate_slug("x" * 10_000)
    assert len(caught.value.message) < 400
    assert caught.value.value == "x" * 10_000
