"""The content diagram in docs/STATE_MACHINE_GUIDE.md is the one to_mermaid generates."""

from __future__ import annotations

import re
from pathlib import Path

from rustok_content import ContentNode
from rustok_core.state_machine import to_mermaid

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "STATE_MACHINE_GUIDE.md"


def committed_diagram(entity: str) -> str:
    """The mermaid block that follows the ``<!-- diagram: <entity> ... -->`` marker."""
    text = GUIDE.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- diagram: {entity}\b[^>]*-->\s*```mermaid\n(?P<body>.*?)```", text, re.DOTALL
    )
    assert found, f"no mermaid block after the {entity} diagram marker in {GUIDE.name}"
    return found["body"]


def test_committed_content_diagram_is_the_generated_one() -> None:
    generated = to_mermaid(ContentNode)
    assert committed_diagram("ContentNode") == generated, (
        "regenerate the diagram: print(to_mermaid(ContentNode))"
    )
