"""The input models accept what the node's rules accept, and name the field otherwise."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from rustok_content import (
    TEXT_PATTERN,
    ArchiveNodeInput,
    CreateNodeInput,
    NodeKind,
    UpdateNodeInput,
)


def test_create_input_accepts_a_valid_node() -> None:
    author = uuid4()
    data = CreateNodeInput.model_validate(
        {"kind": "article", "title": "  Hello  ", "slug": "hello-2", "author_id": str(author)}
    )
    assert (data.kind, data.title, data.slug, data.author_id) == (
        NodeKind.ARTICLE,
        "Hello",
        "hello-2",
        author,
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", ""),
        ("title", "   "),
        ("title", "x" * 256),
        ("slug", "Hello"),
        ("slug", "a_b"),
        ("slug", "a-"),
        ("slug", "a" * 256),
        ("kind", "poem"),
        ("title", "a\x00b"),
        ("title", "a\x1bb"),
        ("title", "a\x7fb"),
        ("title", "a\x9bb"),
        ("title", "a\ud800b"),
    ],
)
def test_create_input_names_the_invalid_field(field: str, value: str) -> None:
    values = {"kind": "post", "title": "T", "slug": "t", field: value}
    with pytest.raises(ValidationError) as caught:
        CreateNodeInput.model_validate(values)
    assert [e["loc"] for e in caught.value.errors()] == [(field,)]


def test_create_input_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="status"):
        CreateNodeInput.model_validate({"kind": "post", "title": "T", "slug": "t", "status": "x"})


def test_update_input_leaves_out_what_is_not_sent() -> None:
    data = UpdateNodeInput.model_validate({"title": "New"})
    assert (data.title, data.slug, data.parent_id, data.category_id) == ("New", None, None, None)
    with pytest.raises(ValidationError):
        UpdateNodeInput.model_validate({"slug": "Bad Slug"})


def test_archive_input_leaves_a_blank_reason_to_the_archive_rule() -> None:
    assert ArchiveNodeInput(reason=" outdated ").reason == "outdated"
    assert ArchiveNodeInput(reason="  ").reason == ""  # the "reason given" guard refuses it
    with pytest.raises(ValidationError):
        ArchiveNodeInput(reason="x" * 1001)


def test_text_refusal_names_the_control_character() -> None:
    with pytest.raises(ValidationError) as caught:
        UpdateNodeInput.model_validate({"title": "Hello\x00"})
    (error,) = caught.value.errors()
    assert error["loc"] == ("title",)
    assert "U+0000" in error["msg"]


def test_archive_reason_keeps_line_breaks_and_refuses_nul() -> None:
    assert ArchiveNodeInput(reason="old\r\nnews\tfor sure").reason == "old\r\nnews\tfor sure"
    with pytest.raises(ValidationError):
        ArchiveNodeInput(reason="old\x00news")


def test_text_pattern_is_in_the_schema() -> None:
    properties = CreateNodeInput.model_json_schema()["properties"]
    assert properties["title"]["pattern"] == TEXT_PATTERN
