"""The vector path equals the exact path, to the fen, on random schemes and populations.

Builders and the comparison live in ``tests/agreement.py`` (also the long-run script:
``python -m tests.agreement --cases 1000000``).
"""

from collections.abc import Sequence
from typing import TypeVar

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import vector as vector_module
from bankkpi.vector import Workspace

from .agreement import (
    INJECTIONS,
    check_agreement,
    compare,
    main,
    random_population,
    random_scheme,
)

T = TypeVar("T")


@attrs.define
class DrawPicker:
    """The builders' choices drawn by hypothesis, so a failure shrinks."""

    draw: st.DrawFn

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))


def test_ten_thousand_subjects_agree():
    """At least 10**4 subjects (and ~3 × as many rule amounts) compared, deterministically."""
    assert check_agreement(10_000, seed=2024, size=125) == []


def test_compiled_rules_agree_over_many_blocks(monkeypatch):
    """Rules of the shapes the vector path compiles (``bankkpi._plan``), in blocks of
    37 rows so that every population spans several: at least 10**4 subjects, and
    most rules really compiled."""
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 37)
    compiled = []
    real = vector_module.compile_rule

    def counted(rule, env, **options):
        plan = real(rule, env, **options)
        compiled.append(plan is not None)
        return plan

    monkeypatch.setattr("bankkpi.vector.compile_rule", counted)
    assert check_agreement(10_000, seed=2025, size=125, planned=True) == []
    assert sum(compiled) > 0.6 * len(compiled)


def test_compiled_rules_agree_when_looked_up_in_tables(monkeypatch):
    """The same, each compiled rule given a table of every combination of what it
    reads of a row (up to 65,536 rows, however small the population): at least
    10**4 subjects, and most rules really looked up."""
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 37)
    tabled = []
    real = vector_module.compile_rule

    def forced(rule, env, **options):
        plan = real(rule, env, **options, table_rows=1 << 16)
        tabled.append(plan is not None and plan.table is not None)
        return plan

    monkeypatch.setattr("bankkpi.vector.compile_rule", forced)
    assert check_agreement(10_000, seed=2026, size=125, planned=True) == []
    assert sum(tabled) > 0.6 * len(tabled)


@settings(max_examples=50)
@given(st.data())
def test_random_compiled_scheme_agrees(data):
    """Compiled rules in blocks of 23 rows (set for each example, not the module)."""
    pick = DrawPicker(data.draw)
    drawn = random_scheme(pick, planned=True)
    size = data.draw(st.integers(100, 130), label="size")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bankkpi.vector.PLAN_ROWS", 23)
        outcome = compare(drawn, random_population(drawn, seed, size))
    assert outcome.disagreements == ()


@settings(max_examples=100)
@given(st.data())
def test_random_scheme_agrees(data):
    pick = DrawPicker(data.draw)
    drawn = random_scheme(pick)
    size = data.draw(st.integers(100, 130), label="size")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    outcome = compare(drawn, random_population(drawn, seed, size))
    assert outcome.disagreements == ()


@settings(max_examples=50)
@given(st.data())
def test_bad_rows_are_refused_by_both_paths(data):
    pick = DrawPicker(data.draw)
    inject = data.draw(st.sampled_from(INJECTIONS), label="inject")
    drawn = random_scheme(pick, inject)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    outcome = compare(drawn, random_population(drawn, seed, 40, inject=inject))
    assert outcome.disagreements == ()


def test_evaluations_sharing_a_workspace_agree_and_kept_results_do_not_change(monkeypatch):
    """One Workspace lends every vector evaluation its arrays (most of them lent
    again); each result agrees, and the last three kept are compared again after
    every new evaluation."""
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 37)
    lent = {"new": 0, "again": 0}
    real = Workspace.empty

    def counted(self, length, dtype):
        before = self.nbytes
        array = real(self, length, dtype)
        lent["new" if self.nbytes > before else "again"] += 1
        return array

    monkeypatch.setattr(Workspace, "empty", counted)
    assert check_agreement(5_000, seed=2027, size=125, planned=True, workspace=True) == []
    assert lent["again"] > 0.3 * (lent["new"] + lent["again"])


def test_the_script_prints_the_count():
    printed: list[str] = []
    assert main(["--cases", "50", "--seed", "3", "--size", "50"], out=printed.append) == 0
    assert "disagreements: 0" in printed[-1]
