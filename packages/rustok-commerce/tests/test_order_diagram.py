"""The order diagrams committed in the docs are the ones the machine generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rustok_commerce import ORDER_MACHINE, Order
from rustok_core.state_machine import to_mermaid

PACKAGE = Path(__file__).resolve().parents[1]
README = PACKAGE / "README.md"
GUIDE = PACKAGE.parents[1] / "docs" / "STATE_MACHINE_GUIDE.md"
_FENCE = re.compile(r"```mermaid\n(?P<body>.*?)```", re.DOTALL)


def _order_diagrams(text: str) -> list[str]:
    """The Mermaid blocks of `text` that draw the order machine."""
    return [m["body"] for m in _FENCE.finditer(text) if "[*] --> Pending" in m["body"]]


def test_generated_diagram_draws_every_transition_of_the_machine() -> None:
    diagram = to_mermaid(Order)
    assert diagram.startswith("stateDiagram-v2\n    [*] --> Pending\n")
    assert "Pending --> Confirmed: confirm [inventory reserved]" in diagram
    assert "Paid --> Cancelled: cancel_with_refund" in diagram
    assert "Delivered --> [*]" in diagram
    assert "Cancelled --> [*]" in diagram
    edges = [line for line in diagram.splitlines() if ": " in line]
    assert len(edges) == 7  # cancel has two sources
    assert to_mermaid(ORDER_MACHINE) == diagram


def test_guide_has_the_order_diagram_under_its_marker() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(
        r"<!-- diagram: Order\b[^>]*-->\s*```mermaid\n(?P<body>.*?)```", text, re.DOTALL
    )
    assert found, f"no mermaid block after the Order diagram marker in {GUIDE.name}"
    assert found["body"] == to_mermaid(Order), "regenerate it: print(to_mermaid(Order))"


@pytest.mark.parametrize("document", [README, GUIDE], ids=lambda p: p.name)
def test_committed_diagram_matches_the_machine(document: Path) -> None:
    diagrams = _order_diagrams(document.read_text(encoding="utf-8"))
    assert diagrams, f"{document.name} has no order diagram"
    for committed in diagrams:
        assert committed == to_mermaid(Order), (
            f"the order diagram in {document.name} is out of date; replace it with the "
            "output of to_mermaid(Order)"
        )
