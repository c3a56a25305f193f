"""Properties of identifier validation, over arbitrary input (hypothesis)."""

import re
import uuid
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rustok_core.tenancy import (
    RESERVED_SLUGS,
    InvalidTenantIdentifierError,
    RejectionReason,
    parse_tenant_identifier,
    validate_host,
    validate_slug,
    validate_uuid,
)

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
REASONS = set(RejectionReason)

# Text biased toward the interesting: slug-like, host-like, and anything at all.
slug_like = st.text(st.sampled_from("abcXYZ019-_. \t\u00e9\u212a"), max_size=80)
host_like = st.text(st.sampled_from("abZ09-.:[]\u00fc\u00df\u3002 "), max_size=300)
anything = st.text(max_size=300)
inputs = st.one_of(slug_like, host_like, anything)
whitespace = st.text(st.sampled_from(" \t\n\r"), max_size=3)


def outcome(validator: Callable[[str], object], raw: str) -> object:
    """Call the validator; any exception other than the typed refusal fails the test."""
    refusal: InvalidTenantIdentifierError | None = None
    try:
        return validator(raw)
    except InvalidTenantIdentifierError as error:
        refusal = error
    assert refusal.reason in REASONS
    assert refusal.status == 400
    return None


@given(inputs)
@example("\u212aey")
@example("x" * 64)
def test_slug_validation_raises_only_the_typed_error(raw: str) -> None:
    outcome(validate_slug, raw)


@given(inputs)
@example("[::1]:80")
@example("a.b:99999")
@example("\u3002")
def test_host_validation_raises_only_the_typed_error(raw: str) -> None:
    outcome(validate_host, raw)


@given(st.one_of(inputs, st.uuids().map(str)))
def test_uuid_and_header_parsing_raise_only_the_typed_error(raw: str) -> None:
    outcome(validate_uuid, raw)
    outcome(parse_tenant_identifier, raw)


@given(inputs)
def test_every_accepted_slug_matches_the_pattern_and_is_stable(raw: str) -> None:
    slug = outcome(validate_slug, raw)
    if slug is not None:
        assert isinstance(slug, str)
        assert SLUG.match(slug)
        assert slug not in RESERVED_SLUGS
        assert validate_slug(slug) == slug


@given(st.from_regex(SLUG, fullmatch=True), whitespace, whitespace)
def test_every_slug_of_the_pattern_is_accepted_unless_reserved(
    slug: str, before: str, after: str
) -> None:
    raw = before + slug.upper() + after
    if slug in RESERVED_SLUGS:
        assert outcome(validate_slug, raw) is None
    else:
        assert validate_slug(raw) == slug


@given(st.sampled_from(sorted(RESERVED_SLUGS)), st.data(), whitespace, whitespace)
def test_no_reserved_word_is_accepted_in_any_case_or_with_spaces(
    word: str, data: st.DataObject, before: str, after: str
) -> None:
    cased = "".join(
        data.draw(st.sampled_from([ch.lower(), ch.upper()]), label="char") for ch in word
    )
    for validator in (validate_slug, parse_tenant_identifier):
        with pytest.raises(InvalidTenantIdentifierError) as caught:
            validator(before + cased + after)
        assert caught.value.reason == "reserved"


@given(inputs)
def test_every_accepted_host_keeps_the_length_and_label_rules(raw: str) -> None:
    host = outcome(validate_host, raw)
    if host is not None:
        assert isinstance(host, str)
        assert host.isascii()
        assert host == host.lower()
        assert 1 <= len(host) <= 253
        assert all(LABEL.match(label) and len(label) <= 63 for label in host.split("."))
        assert validate_host(host) == host


@given(st.uuids(), st.booleans(), whitespace)
def test_every_uuid_is_accepted_in_any_case_as_itself(
    value: uuid.UUID, upper: bool, padding: str
) -> None:
    text = str(value).upper() if upper else str(value)
    assert validate_uuid(padding + text + padding) == value
    assert parse_tenant_identifier(text).value == str(value)
