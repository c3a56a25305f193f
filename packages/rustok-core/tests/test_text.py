"""Free text every database and log can hold: `check_holdable` and `TEXT_PATTERN` agree."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rustok_core.text import TEXT_PATTERN, check_holdable

REFUSED = [chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]]


@pytest.mark.parametrize("char", REFUSED, ids=lambda c: f"U+{ord(c):04X}")
def test_every_control_character_but_tab_lf_and_cr_is_refused_with_its_position(
    char: str,
) -> None:
    with pytest.raises(ValueError, match=rf"U\+{ord(char):04X} \(at position 3\)"):
        check_holdable(f"abc{char}def")
    assert re.fullmatch(TEXT_PATTERN, f"abc{char}def") is None


def test_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match=r"U\+D800"):
        check_holdable("a\ud800")


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_the_pattern_and_the_check_agree_on_any_text(text: str) -> None:
    try:
        check_holdable(text)
        held = True
    except ValueError:
        held = False
    assert held == (re.fullmatch(TEXT_PATTERN, text) is not None)


def test_tab_line_feeds_and_any_script_are_held_unchanged() -> None:
    scripts = (
        "\u043d\u043e\u0432\u0430\u044f, \u65b0\u3057\u3044, \U0001f600"  # Cyrillic, kana, emoji
    )
    text = f"Tab\there\r\n{scripts}{chr(sys.maxunicode)}"
    assert check_holdable(text) is text
