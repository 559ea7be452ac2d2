"""Meta-tests: what a newcomer reads stays true."""

from __future__ import annotations

import re
from pathlib import Path

from ingest.schema import CallIn
from ingest.validate import Reason

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_canonical_field_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_0-9]+)`", README))
    assert set(CallIn.model_fields) - documented == set()


def test_every_dead_letter_reason_is_documented() -> None:
    assert {r.value for r in Reason} - set(re.findall(r"`([a-z_]+)`", README)) == set()


def test_readme_first_screen_gives_the_two_commands() -> None:
    first_screen = "\n".join(README.splitlines()[:25])
    assert "make demo" in first_screen and "make test" in first_screen


def test_every_warehouse_setting_and_url_option_is_documented() -> None:
    from llmledger.settings import WarehouseSettings
    from warehouse.target import _OPTIONS

    documented = set(re.findall(r"`?([a-z_0-9]+)`?", README))
    assert set(WarehouseSettings.model_fields) - documented == set()
    assert set(_OPTIONS) - documented == set()
def test_every_signal_is_documented_in_the_readme_table() -> None:
    from alerts.rules import SIGNALS

    table = README.split("## Signals and alerts", 1)[1].split("**Lifecycle.**", 1)[0]
    assert {s for s in SIGNALS if f"| `{s}` |" not in table} == set()


def test_every_signal_rule_states_its_definition() -> None:
    from alerts.rules import FAMILIES

    for family in FAMILIES:
        for rule in family.rules:
            assert rule.__doc__ and len(rule.__doc__.split()) > 20, rule.name
            assert rule.next_step, rule.name
