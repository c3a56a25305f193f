"""TenantIdentifier and parse_tenant_identifier: one canonical value per tenant."""

import dataclasses
import pickle
import uuid

import pytest

from rustok_core.tenancy import (
    IdentifierKind,
    InvalidTenantIdentifierError,
    TenantIdentifier,
    parse_tenant_identifier,
)

TENANT_ID = "123e4567-e89b-12d3-a456-426614174000"


def test_header_with_a_uuid_parses_as_a_canonical_uuid() -> None:
    identifier = parse_tenant_identifier(" " + TENANT_ID.upper())
    assert identifier == TenantIdentifier(IdentifierKind.UUID, TENANT_ID)
    assert identifier.as_uuid() == uuid.UUID(TENANT_ID)
    assert str(identifier) == TENANT_ID


def test_header_with_anything_else_parses_as_a_slug() -> None:
    identifier = parse_tenant_identifier(" Acme-Shop ")
    assert identifier.kind is IdentifierKind.SLUG
    assert identifier.value == "acme-shop"


@pytest.mark.parametrize(
    ("raw", "reason"), [("", "empty"), ("admin", "reserved"), ("a b", "invalid_characters")]
)
def test_header_that_is_neither_is_refused_as_a_slug(raw: str, reason: str) -> None:
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        parse_tenant_identifier(raw)
    assert caught.value.reason == reason
    assert caught.value.identifier_kind is IdentifierKind.SLUG


def test_constructing_normalises_and_validates() -> None:
    assert TenantIdentifier(IdentifierKind.HOST, "Shop.Example.com:443").value == (
        "shop.example.com"
    )
    with pytest.raises(InvalidTenantIdentifierError):
        TenantIdentifier(IdentifierKind.SLUG, "admin")


def test_named_constructors_pick_the_kind() -> None:
    assert TenantIdentifier.from_uuid(uuid.UUID(TENANT_ID)).kind is IdentifierKind.UUID
    assert TenantIdentifier.from_slug("ACME") == TenantIdentifier(IdentifierKind.SLUG, "acme")
    assert TenantIdentifier.from_host("acme.example").kind is IdentifierKind.HOST


def test_identifiers_are_frozen_hashable_and_picklable() -> None:
    identifier = TenantIdentifier.from_slug("acme")
    with pytest.raises(dataclasses.FrozenInstanceError):
        identifier.value = "other"  # type: ignore[misc]  # assigning is what is tested
    assert {identifier, TenantIdentifier.from_slug(" ACME ")} == {identifier}
    assert pickle.loads(pickle.dumps(identifier)) == identifier


def test_as_uuid_of_a_slug_is_refused() -> None:
    with pytest.raises(ValueError, match="is a slug, not a uuid"):
        TenantIdentifier.from_slug("acme").as_uuid()


def test_refusal_pickles_with_its_reason() -> None:
    with pytest.raises(InvalidTenantIdentifierError) as caught:
        parse_tenant_identifier("admin")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.reason == "reserved"
    assert copy.status == 400
