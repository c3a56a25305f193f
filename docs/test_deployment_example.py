"""The compose example of DEPLOYMENT.md parses, and every server setting it sets exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from rustok_server import Settings

PAGE = (Path(__file__).parent / "DEPLOYMENT.md").read_text()


def test_the_compose_example_sets_only_real_settings() -> None:
    (block,) = re.findall(r"```yaml\n(.*?)```", PAGE, re.S)
    services = yaml.safe_load(block)["services"]
    assert {"db", "redis", "server-a", "server-b"} <= set(services)
    names = {
        name
        for service in services.values()
        for name in service.get("environment", {})
        if name.startswith("RUSTOK_") and name != "RUSTOK_INDEX_URL"  # pip's, not a setting
    }
    assert names
    assert {name.removeprefix("RUSTOK_").lower() for name in names} <= set(Settings.model_fields)
