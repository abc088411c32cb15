"""Docs are tested: every trigger, field kind and step type of custom actions is documented."""

from __future__ import annotations

from pathlib import Path

from frontdesk.agent.actions.spec import FIELD_KINDS, STEP_TYPES, TRIGGER_EVENTS

TEXT = (Path(__file__).resolve().parents[2] / "docs" / "ACTIONS.md").read_text()


def test_every_step_type_is_documented() -> None:
    assert [s for s in STEP_TYPES if f"### Step `{s}`" not in TEXT] == []


def test_every_field_kind_is_documented() -> None:
    assert [k for k in FIELD_KINDS if f"### Field `{k}`" not in TEXT] == []


def test_every_trigger_is_documented() -> None:
    assert [t for t in TRIGGER_EVENTS if f"### Trigger `{t}`" not in TEXT] == []
