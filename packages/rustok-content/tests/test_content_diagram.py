"""The content diagrams in docs/STATE_MACHINE_GUIDE.md and the README are the one
to_mermaid generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rustok_content import ContentNode
from rustok_core.state_machine import to_mermaid

PACKAGE = Path(__file__).resolve().parents[1]
GUIDE = PACKAGE.parents[1] / "docs" / "STATE_MACHINE_GUIDE.md"
README = PACKAGE / "README.md"


def committed_diagram(document: Path, entity: str) -> str:
    """The mermaid block that follows the ``<!-- diagram: <entity> ... -->`` marker."""
    text = document.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- diagram: {entity}\b[^>]*-->\s*```mermaid\n(?P<body>.*?)```", text, re.DOTALL
    )
    assert found, f"no mermaid block after the {entity} diagram marker in {document.name}"
    return found["body"]


@pytest.mark.parametrize("document", [GUIDE, README], ids=["guide", "readme"])
def test_committed_content_diagram_is_the_generated_one(document: Path) -> None:
    generated = to_mermaid(ContentNode)
    assert committed_diagram(document, "ContentNode") == generated, (
        "regenerate the diagram: print(to_mermaid(ContentNode))"
    )
