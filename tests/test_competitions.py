import json
from decimal import Decimal
from pathlib import Path

import pytest

from bankkpi._competitions import EntryRow, run_competition
from bankkpi._schemefile import (
    SchemeFileError,
    canonical_json,
    dump_scheme,
    load_any,
    parse_any,
    scheme_hash,
)
from bankkpi.cli import main
from bankkpi.io import read_entries

EXAMPLES = Path(__file__).parent.parent / "examples"
COLLECTIVE = EXAMPLES / "scheme_c_collective.toml"
COLLECTIVE_DATA = EXAMPLES / "data" / "scheme_c_collective.csv"


def collective():
    return load_any(COLLECTIVE.read_text(encoding="utf-8"), format="toml")


def test_file_round_trips_with_the_same_hash():
    competition = collective()
    again = parse_any(json.loads(canonical_json(competition), parse_float=Decimal))
    assert again == competition
    assert scheme_hash(again) == scheme_hash(competition)


def test_collective_worked_example_from_the_file():
    """The same units as tests/test_scorecards.py, worked by hand there: 119 / 120 vetoed / 110."""
    results = run_competition(collective(), read_entries(COLLECTIVE_DATA))
    totals = {c.subject: (c.total, c.vetoed) for c in results.cards}
    assert totals == {
        "城东支行": (Decimal("119.00"), False),
        "城西支行": (Decimal("120.00"), True),
        "城南支行": (Decimal("110.00"), False),
    }
    assert results.winners is not None
    assert results.winners.winners == ("城东支行",)
    assert "获胜" in results.explain("城东支行")


def test_bad_entries_reported_and_their_subject_not_scored():
    rows = [
        EntryRow("甲", "team", place="1", source="line 2"),
        EntryRow("甲", "exam", value="99", source="line 3"),
        EntryRow("乙", "team", place="2", source="line 4"),
        EntryRow("乙", "deed", points="7", source="line 5"),  # outside 1–3
        EntryRow("乙", "exam", value="98.5", source="line 6"),
        EntryRow("丙", "teem", place="1", source="line 7"),  # unknown item
        EntryRow("丁", "team", place="3", source="line 8"),  # no exam value
        EntryRow("戊", "finding", count="1.5", source="line 9"),  # not whole
        EntryRow("", "team", source="line 10"),
    ]
    results = run_competition(collective(), rows)
    assert [c.subject for c in results.cards] == ["甲"]
    failed = {e.subject: e for e in results.errors}
    assert set(failed) == {"乙", "丙", "丁", "戊", ""}
    assert "[1, 3]" in failed["乙"].message
    assert "teem" in failed["丙"].message
    assert "exam" in failed["丁"].message
    assert failed["戊"].source == "line 9"


def test_mistakes_in_a_competition_file_reported_with_paths():
    data = dump_scheme(collective())
    data["items"][0]["points_by_place"]["first"] = 10
    data["items"][9]["low"] = 5  # above high
    data["winners"] = 0
    with pytest.raises(SchemeFileError) as info:
        parse_any(json.loads(json.dumps(data)))
    text = "\n".join(str(p) for p in info.value.problems)
    assert "items[0].points_by_place.first: must be keyed by whole numbers" in text
    assert "items[9]: 'deed.high' must not be below low 5" in text


def test_cli_end_to_end_and_byte_identical_rerun(tmp_path):
    args = ["evaluate", str(COLLECTIVE), str(COLLECTIVE_DATA)]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    for name in ("results.csv", "errors.csv", "traces.jsonl", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    results = (tmp_path / "a" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert results[0] == "subject,total,vetoed,winner"
    assert "城东支行,119.00,no,yes" in results
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["winners"] == ["城东支行"]
    assert summary["vetoed"] == ["城西支行"]


def test_individual_example_has_four_winners(tmp_path):
    scheme = EXAMPLES / "scheme_c_individual.toml"
    data = EXAMPLES / "data" / "scheme_c_individual.csv"
    assert main(["evaluate", str(scheme), str(data), "-o", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["scored"] == 60
    assert len(summary["winners"]) >= 4
    assert not set(summary["winners"]) & set(summary["vetoed"])


def test_a_rank_item_measured_twice_is_reported_not_overwritten():
    rows = [*read_entries(COLLECTIVE_DATA), EntryRow("城东支行", "exam", value="50", source="x")]
    results = run_competition(collective(), rows)
    assert "城东支行" not in {c.subject for c in results.cards}
    assert any("measured twice" in e.message for e in results.errors)
