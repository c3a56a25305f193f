"""Every server setting is in the settings table of the tenant cache guide."""

from __future__ import annotations

from pathlib import Path

from rustok_server import Settings

TABLE = (Path(__file__).parent / "TENANT_CACHE_GUIDE.md").read_text()


def test_every_setting_has_a_row_in_the_settings_table() -> None:
    missing = [
        f"RUSTOK_{name.upper()}"
        for name in Settings.model_fields
        if f"| `RUSTOK_{name.upper()}` |" not in TABLE
    ]
    assert missing == []
