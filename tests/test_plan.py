"""Rules compiled for a population (``bankkpi._plan``) give the array path's amounts.

Or they give way to it: a shape the plan does not compile, a bound past int64, a
negative amount. The random agreement runs (``test_agreement.py``, ``planned=True``)
hold compiled rules to the exact path; these tests pin down each way back.
"""

import itertools
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import (
    AllOf,
    AnyOf,
    AtLeast,
    AtMost,
    Band,
    BandAmount,
    BandSet,
    Bottom,
    Choose,
    Clamp,
    Compare,
    Discretionary,
    Escalating,
    Exemption,
    Expression,
    Fixed,
    InBand,
    InRanks,
    Met,
    Multiply,
    Not,
    PerCount,
    PerPeriodEarly,
    RankingRule,
    RankRange,
    RankSource,
    RateTable,
    RollUp,
    RoundingPolicy,
    Rule,
    Shortfall,
    Sum,
    Text,
    Top,
    When,
    Within,
    load_scheme,
)
from bankkpi import vector as vector_module
from bankkpi._formulas import ArrayContext, Counts
from bankkpi._plan import Scratch, _rate_table_meta, compile_rule
from bankkpi.exceptions import InvalidValueError, OverflowRiskError, ValidationErrorGroup
from bankkpi.vector import evaluate_arrays

from .strategies import decimals_at

YUAN = RoundingPolicy("half_up", "yuan")
SCORES = [9150, 9500, 8937, 9999, 9500, 6000, 9499, 10000, 9050, 9050, 7777]
REGIONS = [0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2]


def context(ties="competition"):
    rule = RankingRule("higher", ties, tie_break="subject_asc" if ties == "ordinal" else None)
    codes = np.arange(len(SCORES))
    score, complaints = Counts(SCORES, 2), Counts([i % 3 for i in SCORES], 0)
    offence = Counts([1 + i % 4 for i in range(len(SCORES))], 0)
    # as evaluate_arrays builds them: a ranking reads its variable's own counts
    province = RankSource(rule, score.counts, subject_codes=codes)
    region = RankSource(rule, score.counts, np.array(REGIONS), subject_codes=codes)
    fewest = RankSource(attrs.evolve(rule, better="lower"), complaints.counts, subject_codes=codes)
    return ArrayContext(
        len(SCORES),
        {"score": score, "complaints": complaints, "offence": offence},
        {"province": province, "region": region, "fewest": fewest},
    )


def rule_of(formula, rounding=YUAN):
    return Rule("R", Text("规则", "rule"), "penalty", formula, rounding)


def by_plan(rule, env, rows=4, *, table_rows=0):
    """The plan's fen over blocks of ``rows`` rows, or ``None`` if it gives a block back.

    ``table_rows``: as :func:`compile_rule` takes it (0: no table; the rows computed).
    """
    plan = compile_rule(rule, env, table_rows=table_rows)
    assert plan is not None
    out = np.full(env.size, -1, dtype=np.int64)
    scratch = Scratch(rows)
    for lo in range(0, env.size, rows):
        if not plan.fen(lo, min(env.size, lo + rows), scratch, out):
            return None
    return out


PHASE = Sum(
    [
        Choose(
            [
                (InRanks("province", Top(2)), Fixed(0)),
                (InRanks("province", Bottom(2)), Shortfall(AtLeast(95), rate=200, base=2000)),
            ],
            otherwise=Shortfall(AtLeast(95), rate=200, base=1000),
        ),
        Choose(
            [
                (InRanks("province", Exemption(Top(2))), Fixed(0)),
                (
                    InRanks("region", RankRange("bottom", 1, 1)),
                    Sum([Fixed(500), Shortfall(AtLeast(95), rate=200)]),
                ),
                (
                    InRanks("region", RankRange("bottom", 2, 2)),
                    Sum([Fixed("300.5"), Shortfall(AtLeast("95.5", inclusive=False), rate="0.3")]),
                ),
            ]
        ),
    ]
)

BANDS = BandSet(
    [Band.interval("low", "[0, 90]"), Band.interval("high", "(90, 100]")], scale=(0, 100)
)

HIGH_ONLY = BandSet([Band.interval("high", "[95, 100]")], scale=(95, 100))
"""Scores below 95 lie in no band."""

CATCH = BandSet(
    [Band.interval("top", "[98, +inf)"), Band.interval("mid", "[90, 95)")], catch_all="other"
)

COMPILED = [
    PHASE,
    Fixed("12.345"),
    Shortfall(AtMost("93.25"), rate="7", base="1.5"),
    When(Compare("complaints", ">=", 1), Fixed(100), Shortfall(AtLeast(97), rate=50)),
    When(Met(AtMost(92)), Fixed(3)),
    When(InRanks("region", RankRange("bottom", 2, 3)), Fixed(4), Fixed(1)),
    When(InRanks("province", RankRange("top", 2, 4)), Fixed(6)),
    When(InRanks("fewest", Top(4)), Shortfall(AtLeast(97), rate=50)),  # a bit, not folded
    Clamp(Shortfall(AtLeast(97), rate="133.3", base=5), minimum="150.05", maximum=700),
    Clamp(When(Met(AtLeast(95)), Fixed(-3), Fixed("2.5")), minimum=0),
    Clamp(Fixed(9), maximum="8.5"),
    Clamp(Fixed(-2), minimum="1.5", maximum=4),
    Multiply(Shortfall(AtLeast(95), rate=200, base=1000), "2"),
    Multiply(Shortfall(AtLeast(96), rate="7.5"), "1.5", Compare("complaints", ">=", 1)),
    Multiply(Fixed(3), "0.25", InRanks("region", Bottom(1))),
    When(InBand(BANDS, {"low"}, "score"), Fixed(1), Fixed(2)),
    BandAmount(BANDS, {"low": 100, "high": "0.5"}, "score"),
    When(InBand(CATCH, {"other"}, "score"), Fixed(4)),
    When(InBand(CATCH, {"top", "other"}, "score"), Shortfall(AtLeast(99), rate=3), Fixed(5)),
    When(InBand(CATCH, {"mid"}, "score"), Fixed(6)),
    BandAmount(CATCH, {"top": 7, "mid": 3, "other": "1.5"}, "score"),
    PerCount("12.5", "complaints"),
    Sum(
        [PerCount("0.3", "complaints"), When(InRanks("region", Top(1)), PerCount(7, "complaints"))]
    ),
    PerPeriodEarly(300, "complaints"),
    Discretionary(Text("表扬", "praise"), 0, "2.5", "complaints"),
    Sum([Fixed(1), Discretionary(Text("表扬", "praise"), "0.5", 100, "score")]),
    Escalating((200, "500.5", "0.25"), units="score", offence="offence"),
    When(Met(AtMost(95)), Escalating(("12.5",), units="complaints", offence="offence")),
    RateTable(((0, "0.01"), (90, "0.02")), "score", "graduated"),
    RateTable(((90, "2"), ("95.5", "3.25"), (99, 5)), "score", "tiered", scale="1.5"),
    RateTable(((90, "2"), ("95.5", "3.25"), (99, 5)), "score", "graduated", scale="0.3"),
    RateTable((("-5", "2"), ("99.99", "-1")), "score", "graduated"),  # all rows: one tier
    RateTable(((1, 7), (2, 11)), "complaints", "tiered"),  # below the first: 0
    RateTable((("0.5", 7), ("1.5", 11)), "complaints", "tiered"),  # 1 reaches 0.5 only
    RateTable(((90, 1), ("95.005", 2)), "score", "graduated"),  # 95.00 is below 95.005
    Sum([RateTable(((95, 100),), "score", "tiered"), Shortfall(AtLeast(95), rate=200)]),
    Choose(  # the province's cut-offs compared within a table: the rule reads the score
        [
            (InRanks("province", RankRange("top", 2, 4)), Fixed(6)),
            (InRanks("province", Bottom(3)), Fixed(8)),
        ],
        otherwise=Shortfall(AtLeast(95), rate=1),
    ),
    Choose(
        [
            (AllOf([Met(AtLeast(90)), Not(InRanks("region", Top(1)))]), Fixed(7)),
            (AnyOf([Compare("score", "==", "95"), InRanks("province", Bottom(3))]), Fixed(9)),
        ],
        otherwise=Fixed("0.5"),
    ),
]


@pytest.mark.parametrize("formula", COMPILED)
@pytest.mark.parametrize("place", ["fen", "yuan", "10"])
@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_a_compiled_rule_gives_the_array_paths_amounts(formula, place, table_rows):
    """Computed block by block, or looked up in a table of every combination of
    the rule's inputs (scores 60.00–100.00: 4,001 counts, times 2 per cut-off
    comparison of a grouped ranking or one not on the score)."""
    rule = rule_of(formula, RoundingPolicy("half_up", place))
    env = context()
    expected = rule.evaluate_fen(env).tolist()
    if table_rows:
        assert compile_rule(rule, env, table_rows=table_rows).table is not None
    for rows in (1, 3, 4, len(SCORES)):
        assert by_plan(rule, env, rows, table_rows=table_rows).tolist() == expected


def test_a_table_numbers_every_combination_of_the_rules_inputs():
    """Scores (4,001 counts) times complaints (0–2) times the region's two cut-offs:
    the province's, on the score itself, are compared within the table."""
    formula = Choose(
        [
            (InRanks("province", Top(2)), Fixed(0)),
            (InRanks("region", RankRange("bottom", 2, 2)), Fixed(5)),
            (Compare("complaints", ">=", 1), Fixed(100)),
        ],
        otherwise=Shortfall(AtLeast(95), rate=200, base=1000),
    )
    plan = compile_rule(rule_of(formula), context(), table_rows=1 << 16)
    assert plan.table is not None
    assert plan.layout.variables == (("complaints", 0, 3), ("score", 6000, 4001))
    assert len(plan.layout.bits) == 2
    assert list(plan.layout.folded) == [0]
    assert plan.table.shape == (4001 * 3 * 4,)
    assert by_plan(rule_of(formula), context(), 5, table_rows=1 << 16).tolist() == (
        rule_of(formula).evaluate_fen(context()).tolist()
    )


def test_a_table_computed_in_parts_in_threads_is_the_same():
    rule = rule_of(PHASE)
    whole = compile_rule(rule, context(), table_rows=1 << 16)
    with ThreadPoolExecutor(2) as pool:
        parted = compile_rule(rule, context(), table_rows=1 << 16, pool=pool, parts=3)
    assert parted.table.tolist() == whole.table.tolist()


def test_cut_offs_left_unresolved_are_resolved_before_the_blocks():
    """Compiled while another thread sorts the grouped rankings: the tables of the
    region's cut-offs are read only when the plan is resolved."""
    env = context()
    rule = rule_of(PHASE)
    plan = compile_rule(rule, env, resolve=False, table_rows=1 << 16)
    assert plan.cuts is None
    assert plan.table is not None  # the region's comparisons are bits of the table
    assert not any(key[0] == "cut" for key in env.ranks["region"]._memo if isinstance(key, tuple))
    out = np.zeros(env.size, dtype=np.int64)
    with pytest.raises(AssertionError, match="resolved"):
        plan.fen(0, env.size, Scratch(env.size), out)
    assert plan.resolved().fen(0, env.size, Scratch(env.size), out)
    assert out.tolist() == rule.evaluate_fen(env).tolist()


@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_counts_negative_or_not_whole_give_back_only_the_blocks_that_hold_them(table_rows):
    """A table holds −1 for each count that is not whole (0.01 … 99.99 but whole points): a
    block with a row on one is given back, the others are looked up."""
    rule = rule_of(PerCount("0.5", "score"), RoundingPolicy("half_up", "fen"))
    whole = ArrayContext(4, {"score": Counts([9100, 0, 10000, 9900], 2)})
    assert by_plan(rule, whole, 2, table_rows=table_rows).tolist() == [4550, 0, 5000, 4950]
    if table_rows:
        plan = compile_rule(rule, whole, table_rows=table_rows)
        assert plan.refusing
        assert (plan.table == -1).sum() == 10001 - 101  # all but 0.00, 1.00, … 100.00
    negative = ArrayContext(4, {"score": Counts([9100, -100, 10000, 9900], 2)})
    assert by_plan(rule, negative, 2, table_rows=table_rows) is None
    # refused although its amount is not negative: clamped, or at a rate of 0
    for formula in (Clamp(rule.formula, minimum=0), PerCount(0, "score")):
        assert by_plan(rule_of(formula), negative, 2, table_rows=table_rows) is None
    half = ArrayContext(4, {"score": Counts([9100, 0, 10000, 9950], 2)})
    assert by_plan(rule, half, 2, table_rows=table_rows) is None
    plan = compile_rule(rule, half, table_rows=table_rows).resolved()
    out = np.full(4, -7, dtype=np.int64)
    assert plan.fen(0, 2, Scratch(2), out)  # the first block's counts are whole
    assert not plan.fen(2, 4, Scratch(2), out)  # 99.50 is not
    assert out[:2].tolist() == [4550, 0]


def test_no_table_numbered_past_int32_whatever_the_limit_given():
    """A block numbers its rows' table rows in int32: 3 · 2^30 combinations are too many."""
    env = ArrayContext(3, {"a": Counts([0, 2, 1], 0), "b": Counts([0, 2**30, 5], 0)})
    formula = Sum([Shortfall(AtLeast(3), "a", rate=1), Shortfall(AtLeast(2**30 + 1), "b", rate=1)])
    plan = compile_rule(rule_of(formula), env, table_rows=2**40)
    assert plan is not None
    assert plan.table is None


def test_no_table_past_its_limit_or_with_an_amount_no_row_may_have():
    rule = rule_of(Shortfall(AtLeast(95), rate=200, base=1000))
    assert compile_rule(rule, context(), table_rows=4000).table is None  # 4,001 counts
    assert compile_rule(rule, context(), table_rows=4001).table is not None
    # negative between 60.50 and 61.00, where no row's score is: −1 there, rows looked up
    between = AllOf([Compare("score", ">", "60.5"), Compare("score", "<", 61)])
    negative = rule_of(When(between, Fixed(-5), Fixed(1)))
    env = ArrayContext(2, {"score": Counts([6000, 6100], 2)})
    plan = compile_rule(negative, env, table_rows=1000)
    assert plan.refusing
    assert (plan.table == -1).sum() == 49  # 60.51 … 60.99
    assert by_plan(negative, env, table_rows=1000).tolist() == [100, 100]
    # a row's amount is negative: given back to the array path, table or not
    negative = rule_of(When(Compare("score", "<", 61), Fixed(-5), Fixed(1)))
    assert by_plan(negative, context(), table_rows=1 << 16) is None  # row 5 scores 60.00


@pytest.mark.parametrize(
    ("formula", "ties"),
    [
        (Sum([Fixed(1), Fixed(2)], rounding=YUAN), "competition"),
        (Shortfall(AtLeast(95), rate=200, per=2), "competition"),
        (Shortfall(AtLeast(95), rate=200, counting="started"), "competition"),
        (Shortfall(AtLeast(95), "fees", rate=200), "competition"),  # no such column
        (When(Met(Within(90, 95)), Fixed(1)), "competition"),
        (When(InRanks("province", Top(2)), Fixed(1)), "average"),  # ranks, not cut-offs
        (When(InRanks("province", Top(2)), Fixed(1)), "ordinal"),
        (When(InRanks("nowhere", Top(2)), Fixed(1)), "competition"),
        (Shortfall(AtLeast(95), rate=10**17), "competition"),  # bound past int64
    ],
)
def test_other_shapes_are_not_compiled(formula, ties):
    """No nodes: the array path, or a table it computes (a rule of the library's own
    shapes, reading variables alone, :func:`test_other_shapes_reading_variables_are_tabulated`)."""
    plan = compile_rule(rule_of(formula), context(ties))
    assert plan is None or plan.node is None
    if plan is not None:
        assert plan.table is not None
        assert plan.layout is not None
        assert not plan.layout.bits


@pytest.mark.parametrize(
    "formula",
    [
        Sum([Fixed(1), Fixed(2)], rounding=YUAN),
        Sum([Shortfall(AtLeast(95), rate=7), Fixed("0.333")], rounding=YUAN),
        Sum([BandAmount(BANDS, {"low": "0.5", "high": 3}), Fixed("0.25")], rounding=YUAN),
        Sum([Expression("score / 7", ["score"]), Fixed(1)], rounding=YUAN),
        Shortfall(AtLeast(95), rate=200, per=2),
        Shortfall(AtLeast(95), rate=200, counting="started"),
        When(Met(Within(90, 95)), Fixed(1)),
    ],
)
@pytest.mark.parametrize("rounding", [YUAN, RoundingPolicy("half_even", "0.1")])
def test_other_shapes_reading_variables_are_tabulated(formula, rounding):
    """A rule of the library's own shapes that compiles to no nodes but reads variables
    alone is looked up in a table the array path computes, over every combination of
    the counts from the least to the greatest; each block then gives the array path's
    amounts."""
    rule = rule_of(formula, rounding)
    env = context()
    plan = compile_rule(rule, env, table_rows=1 << 16)
    assert plan is not None
    assert plan.node is None
    assert plan.layout is not None
    assert plan.table is not None
    assert plan.table.shape == (plan.layout.size,)
    assert by_plan(rule, env, table_rows=1 << 16).tolist() == rule.evaluate_fen(env).tolist()


EXPRESSIONS = [
    Expression("score * 2", ["score"]),
    Expression("if score < 95 then 1000 + (95 - score) * 200 / 3 else 0", ["score"]),
    Expression("min(complaints * 300, 500) + offence", ["complaints", "offence"]),
    Expression("500", []),
    Expression("abs(score - 93.5) - 0.25", ["score"]),  # negative near 93.5: at the rule's top
    When(InRanks("region", Bottom(1)), Expression("2000 + (95 - score) * 200", ["score"])),
    Choose(
        [(InRanks("province", Top(2)), Fixed(0))],
        Expression("if score < 95 then (95 - score) * 7 / 3 else 1", ["score"]),
    ),
    Sum([Expression("complaints * 2.5", ["complaints"]), Shortfall(AtLeast(95), rate=200)]),
    Multiply(Expression("score / 100", ["score"]), factor=2, when=Compare("offence", ">=", 3)),
]


@pytest.mark.parametrize("formula", EXPRESSIONS)
@pytest.mark.parametrize("rounding", [YUAN, RoundingPolicy("half_even", "0.1")])
@pytest.mark.parametrize(("rows", "table_rows"), [(4, 0), (3, 1 << 16), (11, 0)])
def test_expressions_compile_to_nodes(formula, rounding, rows, table_rows):
    """An expression is a node whose values its own array path gives, looked up per
    combination of its variables: the plan gives the array path's amounts, block by
    block and tabled, beside rank selections and other nodes — or gives the block
    back where the rule's amount is negative, as the array path refuses it."""
    rule = rule_of(formula, rounding)
    env = context()
    plan = compile_rule(rule, env, table_rows=table_rows)
    assert plan is not None
    assert plan.node is not None
    try:
        expected = rule.evaluate_fen(env).tolist()
    except ValidationErrorGroup:
        expected = None
    except InvalidValueError:
        expected = None
    assert (
        None if (got := by_plan(rule, env, rows, table_rows=table_rows)) is None else got.tolist()
    ) == expected


def test_an_expression_over_too_many_combinations_is_not_a_node():
    env = ArrayContext(2, {"a": Counts([0, 1 << 17], 0)})
    assert compile_rule(rule_of(Expression("a * 2", ["a"])), env) is None


@pytest.mark.parametrize(
    ("formula", "why"),
    [
        (Sum([Shortfall(AtLeast(95), rate=7), Fixed(-600)], rounding=YUAN), "negative above 95"),
        (When(InRanks("province", Top(2)), Sum([Fixed(1)], rounding=YUAN)), "reads a ranking"),
        (Sum([Expression("fees * 2", ["fees"])], rounding=YUAN), "no such column"),
        (Shortfall(AtLeast(95), rate=10**17), "past int64, as over the population"),
    ],
)
def test_a_rule_the_array_path_refuses_is_not_tabulated(formula, why):
    assert compile_rule(rule_of(formula), context(), table_rows=1 << 16) is None, why


def test_a_table_refused_at_a_combination_no_row_has_is_not_made():
    """Negative only between 93.21 and 93.79, where no row scores: the population's
    amounts are all the array path's to give, but the table's combinations include
    those scores, so there is no table and the rows decide."""
    rule = rule_of(
        Sum(
            [Expression("abs(score - 93.5) - 0.3", ["score"])],
            rounding=RoundingPolicy("half_up", "0.01"),
        ),
        RoundingPolicy("half_up", "0.01"),
    )
    env = context()
    assert not any(9321 <= s <= 9379 for s in SCORES)
    assert rule.evaluate_fen(env).min() >= 0  # the population is not refused
    assert compile_rule(rule, env, table_rows=1 << 16) is None


class _Mean:
    """A formula of the caller's own: the amount depends on the whole population."""

    def evaluate(self, context):  # pragma: no cover - the array path alone is used
        raise NotImplementedError

    def evaluate_array(self, env):
        from bankkpi._fixedpoint import FixedArray  # noqa: PLC0415

        counts = env.variables["score"].counts
        mean = int(counts.sum()) // counts.shape[0]
        return FixedArray(np.abs(counts - mean), 100, 10**6)


def test_a_formula_of_the_callers_own_is_never_tabulated():
    """The library cannot know what another formula reads (here the population's mean
    score): it keeps the array path over the population."""
    assert compile_rule(rule_of(_Mean()), context(), table_rows=1 << 16) is None
    subclass = type("MyExpression", (Expression,), {})
    formula = subclass("score * 2", ["score"])
    assert compile_rule(rule_of(formula), context(), table_rows=1 << 16) is None


@pytest.mark.parametrize(
    "formula",
    [
        Fixed(Decimal("1e-19")),  # a denominator past int64
        Shortfall(AtLeast(95), rate=Decimal("1e-19")),
        Shortfall(AtLeast(Decimal("95.0000000000000000001")), rate=1),
        When(Compare("score", "<", Decimal("1e-25")), Fixed(1)),
        When(Met(AtMost(Decimal("1e-25"))), Fixed(1)),
        Shortfall(AtMost(56, inclusive=False), rate=0, base="2.5"),  # the gap passes int64
    ],
)
@pytest.mark.parametrize(
    "column", [[9150, 9500, 0], [0, 0, 0], [2**62, -(2**62), 5], [2**63 - 1, 1 - 2**63, 5]]
)
def test_what_the_array_path_refuses_is_refused_the_same_way(formula, column, monkeypatch):
    """Constants, gaps and bounds past int64 are left to the array path, whose
    refusals (or amounts) are then the same with and without plans."""
    scheme = one_rule_scheme(rule_of(formula), indicator=False)
    columns = {"score": np.array(column, dtype=np.int64)}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)  # compiled: more than one block
    outcomes = outcomes_with_and_without_plans(scheme, columns, monkeypatch)
    assert outcomes[1:] == outcomes[:1] * 3


def test_a_rounding_that_would_take_out_common_factors_is_not_compiled():
    """Rounding to fen scales the values by 100 first; where that could pass int64
    the array path reduces them by the common factor of the rows it has, which a
    block of rows could do differently: such a rule is not compiled."""
    rule = rule_of(Shortfall(AtMost(0), rate="0.5"), RoundingPolicy("half_up", "fen"))
    big = ArrayContext(3, {"score": Counts([150_000_000_000_000_000, 1, 2], 0)})
    assert compile_rule(rule, big) is None
    small = ArrayContext(3, {"score": Counts([150_000, 1, 2], 0)})
    assert compile_rule(rule, small) is not None


def test_a_subclass_is_not_compiled():
    class Doubled(Fixed):
        def evaluate_array(self, env):
            value = super().evaluate_array(env)
            return type(value)(value.num * 2, value.den, value.bound * 2)

    assert compile_rule(rule_of(Doubled(5)), context()) is None


SCORE_INDICATOR = """
[[indicators]]
code = "score"
name = "得分"
unit = "points"
direction = "higher_is_better"
scale_min = 0
scale_max = 100
precision = "0.01"
rounding = "half_up"
"""


def one_rule_scheme(rule, *, indicator=True):
    """A scheme of ``rule`` alone over the input ``score`` (a 0.01-point indicator,
    or, with ``indicator=False``, plain integers of any size)."""
    text = f"""
format = 1
id = "one"
version = "1"
name = {{ zh = "一", en = "one" }}
effective = {{ start = "2024-01-01", end = "2024-12-31" }}
rounding = {{ mode = "half_up", place = "yuan" }}
{SCORE_INDICATOR if indicator else ""}
[[inputs]]
name = "score"
label = {{ zh = "得分", en = "score" }}
{'indicator = "score"' if indicator else ""}
[[rules]]
id = "placeholder"
name = {{ zh = "占位", en = "placeholder" }}
kind = "penalty"
formula = {{ type = "fixed", amount = 0 }}
"""
    return attrs.evolve(load_scheme(text, format="toml"), rules=(rule,))


def outcomes_with_and_without_plans(scheme, columns, monkeypatch):
    """Penalties or refusal messages on 1 and 2 threads, compiled, then not.

    A refusal of the rows is a list of its problems; one of a sum before anything
    is computed (``OverflowRiskError``), its message.
    """
    outcomes = []
    for compiled in (True, False):
        if not compiled:
            monkeypatch.setattr("bankkpi.vector.compile_rule", lambda _rule, _env, **_options: None)
        for workers in (1, 2):
            try:
                outcomes.append(evaluate_arrays(scheme, columns, workers=workers).penalty.tolist())
            except ValidationErrorGroup as exc:
                outcomes.append([f"{type(p).__name__}: {p}" for p in exc.problems])
            except OverflowRiskError as exc:
                outcomes.append(str(exc))
    return outcomes


def test_a_compiled_rule_gives_a_negative_amount_back_to_the_array_path(monkeypatch):
    """The plan refuses nothing itself: the array path names the rows, as always."""
    rule = rule_of(When(Compare("score", "<", 90), Fixed(-5), Fixed(1)))
    assert by_plan(rule, context()) is None
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 4)  # compiled: more than one block
    columns = {"score": np.array(SCORES)}
    outcomes = outcomes_with_and_without_plans(one_rule_scheme(rule), columns, monkeypatch)
    assert outcomes[1:] == outcomes[:1] * 3
    assert outcomes[0][0].startswith("InvalidValueError: ")
    assert "must give a non-negative penalty (3 rows: row 2, row 5, row 10)" in outcomes[0][0]


def check_computed_or_given_back(rule, computed, table_rows):
    """The plan's amounts are ``evaluate_fen``'s (``computed``), or it gives a block back."""
    planned = by_plan(rule, context(), 11, table_rows=table_rows)
    if computed:
        assert planned.tolist() == rule.evaluate_fen(context()).tolist()
    else:
        assert planned is None


@pytest.mark.parametrize(
    ("formula", "computed"),
    [
        (BandAmount(HIGH_ONLY, {"high": 5}, "score"), False),
        (When(InBand(HIGH_ONLY, {"high"}, "score"), Fixed(5), Fixed(1)), False),
        (PerCount(3, "score"), False),  # 91.50 is not a whole count
        (When(Met(AtLeast(95)), BandAmount(HIGH_ONLY, {"high": 5}, "score")), True),
        (When(Compare("score", "==", 100), PerCount(3, "score"), Fixed(1)), True),  # 100.00
        (When(Compare("score", "<", 95), Fixed(2), PerCount(3, "score")), False),  # 95.5 taken
        (Choose([(Met(AtMost(94)), Fixed(1))], BandAmount(HIGH_ONLY, {"high": 5})), False),
        # the band test is for the rows the first case did not take: all in a band
        (Choose([(Met(AtMost("94.99")), Fixed(1)), (InBand(HIGH_ONLY, {"high"}), Fixed(2))]), True),
        (Choose([(Met(AtMost(94)), Fixed(1)), (InBand(HIGH_ONLY, {"high"}), Fixed(2))]), False),
        (Sum([Fixed(1), When(Met(AtLeast(96)), PerCount(3, "score"))]), False),  # 99.99
        # rows below 95 reach the second case's test, and are not taken by it
        (
            Choose(
                [
                    (Met(AtMost(50)), Fixed(1)),
                    (Met(AtLeast(95)), BandAmount(HIGH_ONLY, {"high": 5})),
                ],
                Fixed(2),
            ),
            True,
        ),
        (Sum([Fixed(1), When(Met(AtLeast("99.995")), PerCount(3, "score"))]), True),
        (Discretionary(Text("表扬", "praise"), 90, 100, "score"), False),  # 60.00 …
        (When(Met(AtLeast(90)), Discretionary(Text("表扬", "praise"), 90, 100, "score")), True),
        (When(Met(AtLeast(89)), Discretionary(Text("表扬", "praise"), 90, 100, "score")), False),
    ],
)
@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_a_row_the_array_path_refuses_gives_its_block_back_only_where_it_needs_it(
    formula, computed, table_rows, monkeypatch
):
    """The array path names the rows in no band, or with a count that is not whole,
    where a row needs its band or count: a plan gives such a block back, and
    computes the blocks whose rows do not need them. The amounts or refusals are
    the array path's either way."""
    rule = rule_of(formula)
    check_computed_or_given_back(rule, computed, table_rows)
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 4)  # compiled: more than one block
    columns = {"score": np.array(SCORES)}
    outcomes = outcomes_with_and_without_plans(one_rule_scheme(rule), columns, monkeypatch)
    assert outcomes[1:] == outcomes[:1] * 3


@pytest.mark.parametrize(("lowest", "tabled"), [(8_500, False), (9_900, True)])
def test_the_same_amounts_with_and_without_plans_over_a_population(lowest, tabled, monkeypatch):
    """Scheme A over 5,000 outlets, compiled in blocks of 700 rows on two threads.

    Scores of 85.00–100.00 (1,501 values): the phase rules are computed block by
    block. Of 99.00–100.00 (101 values): they look their amounts up in tables of a
    few hundred rows.
    """
    scheme = load_scheme(
        (Path(__file__).parent.parent / "examples" / "scheme_a.toml").read_text(encoding="utf-8"),
        format="toml",
    )
    rng = np.random.default_rng(7)
    k = 5_000
    columns = {"score": rng.integers(lowest, 10_001, k), "complaints": rng.integers(0, 3, k)}
    region = np.array([f"R{j:02d}" for j in rng.integers(0, 40, k)])
    attributes = {"region": region, "head": np.char.add(region, "支行长")}
    plans = []
    real = vector_module.compile_rule

    def noted(rule, env, **options):
        plan = real(rule, env, **options)
        plans.append(plan)
        return plan

    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 700)
    monkeypatch.setattr("bankkpi.vector.compile_rule", noted)
    planned = evaluate_arrays(scheme, columns, attributes, workers=2)
    compiled = [plan for plan in plans if plan is not None]
    assert len(compiled) >= 2
    assert sum((plan.table is not None) == tabled for plan in compiled) >= 2
    monkeypatch.setattr("bankkpi.vector.compile_rule", lambda _rule, _env, **_options: None)
    plain = evaluate_arrays(scheme, columns, attributes, workers=2)
    for rule in scheme.rules:
        assert planned.amounts[rule.id].tolist() == plain.amounts[rule.id].tolist()
    assert planned.group_totals["region"].as_dict() == plain.group_totals["region"].as_dict()


@pytest.mark.parametrize(("top", "refused"), [(2**62 - 1, False), (2**62 + 100, True)])
def test_the_penalty_column_is_bounded_by_the_plans_largest_amounts(top, refused, monkeypatch):
    """Two rules' amounts summed into the penalty column: a plan gives its largest
    amount as found in its blocks, and the sum is refused past int64 exactly as when
    every rule takes the array path (which finds the largest itself)."""
    near = When(Compare("score", ">=", 99), Fixed(Decimal(top) / 100), Fixed(1))
    scheme = one_rule_scheme(rule_of(near), indicator=False)
    second = attrs.evolve(rule_of(near), id="R2")
    scheme = attrs.evolve(scheme, rules=(*scheme.rules, second))
    columns = {"score": np.array([100, 50, 99, 7, 120, 98], dtype=np.int64)}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)  # compiled: more than one block
    outcomes = outcomes_with_and_without_plans(scheme, columns, monkeypatch)
    assert outcomes[1:] == outcomes[:1] * 3
    if refused:
        assert "sum of rule amounts could reach" in outcomes[0]
    else:
        assert outcomes[0][0] == 2 * (top // 100 * 100)


def grouped_scheme(rules):
    """``rules`` over the input ``score``, totalled by region and rolled up to heads."""
    return attrs.evolve(
        one_rule_scheme(rules[0]),
        rules=tuple(rules),
        attributes=("region", "head"),
        group_by=("region",),
        rollups=(RollUp("head", "penalty"), RollUp("head", "reward")),
    )


def everything(results):
    """Every amount of array results: rules, columns, group totals, roll-ups, totals.

    Each total is checked against its column's sum on the way.
    """
    totals = [results.total(kind) for kind in ("penalty", "reward")]
    assert totals == [int(results.penalty.sum()), int(results.reward.sum())]
    return (
        {rule: column.tolist() for rule, column in results.amounts.items()},
        results.penalty.tolist(),
        results.reward.tolist(),
        {name: totals.as_dict() for name, totals in results.group_totals.items()},
        {name: totals.as_dict() for name, totals in results.rollups.items()},
        totals,
    )


def block_sums_found(monkeypatch):
    """What every evaluation's :class:`_BlockSums` found, noted as it is returned."""
    found = []
    real = vector_module._BlockSums.found

    def noted(self, given_back, tops):
        result = real(self, given_back, tops)
        found.append(result)
        return result

    monkeypatch.setattr(vector_module._BlockSums, "found", noted)
    return found


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["penalty", "reward"]),
            st.integers(0, 10_000),
            st.integers(0, 2_000),
            st.integers(0, 2_000),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 4)), min_size=3, max_size=60),
    st.integers(2, 9),
    st.sampled_from([1, 2]),
)
def test_sums_added_up_block_by_block_are_those_added_up_after(drawn, rows, plan_rows, workers):
    """Rules of both kinds, amounts summed per row and per group while the blocks
    are computed (every group few enough), are the sums of the columns added up
    afterwards (no group few enough) and those of the array path (nothing compiled)."""
    rules = [
        Rule(
            f"R{k}",
            Text("规则", "rule"),
            kind,
            When(Met(AtLeast(Decimal(at) / 100)), Fixed(hi), Fixed(lo)),
            YUAN,
        )
        for k, (kind, at, hi, lo) in enumerate(drawn)
    ]
    scheme = grouped_scheme(rules)
    columns = {"score": np.array([score for score, _ in rows])}
    region = np.array([f"R{code}" for _, code in rows])
    attributes = {"region": region, "head": np.char.add(region, "行长")}
    outcomes = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bankkpi.vector.PLAN_ROWS", plan_rows)
        for share in (1, 10**9):  # every group few enough; none
            patch.setattr("bankkpi.vector._FEW_GROUPS_SHARE", share)
            outcomes.append(
                everything(evaluate_arrays(scheme, columns, attributes, workers=workers))
            )
        patch.setattr("bankkpi.vector.compile_rule", lambda _rule, _env, **_options: None)
        outcomes.append(everything(evaluate_arrays(scheme, columns, attributes, workers=workers)))
        ungrouped = attrs.evolve(scheme, group_by=())  # totals from the columns themselves
        alone = evaluate_arrays(ungrouped, columns, attributes, workers=workers)
        assert everything(alone)[-1] == outcomes[0][-1]
    assert outcomes[1:] == outcomes[:1] * 2


def test_sums_are_added_up_block_by_block_for_kinds_of_one_rule_and_of_several(monkeypatch):
    """Scheme A's penalties (two rules) and rewards (three) over 5,000 outlets in
    blocks of 700 rows: each kind's row sums and its totals by region and by head
    are found block by block, and are those added up afterwards."""
    scheme = load_scheme(
        (Path(__file__).parent.parent / "examples" / "scheme_a.toml").read_text(encoding="utf-8"),
        format="toml",
    )
    rng = np.random.default_rng(11)
    k = 5_000
    columns = {"score": rng.integers(8_500, 10_001, k), "complaints": rng.integers(0, 3, k)}
    region = np.array([f"R{j:02d}" for j in rng.integers(0, 40, k)])
    attributes = {"region": region, "head": np.char.add(region, "支行长")}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 700)
    found = block_sums_found(monkeypatch)
    by_block = evaluate_arrays(scheme, columns, attributes, workers=2)
    assert sorted(found[0]) == ["penalty", "reward"]
    for kind in found[0].values():
        assert kind.column is not None  # several rules of each kind
        assert sorted(kind.groups) == ["head", "region"]
    monkeypatch.setattr("bankkpi.vector._FEW_GROUPS_SHARE", 10**9)
    afterwards = evaluate_arrays(scheme, columns, attributes, workers=2)
    assert all(not kind.groups for kind in found[1].values())
    assert everything(by_block) == everything(afterwards)
    assert by_block.group_totals["region"].penalty.sum() == by_block.penalty.sum() > 0


def test_a_kind_with_a_rule_given_back_is_added_up_after(monkeypatch):
    """A plan that gives a block back leaves its rule to the array path: its kind's
    sums found block by block are not used, the other kind's are."""
    rules = [
        Rule("P1", Text("罚", "p"), "penalty", When(Met(AtLeast(90)), Fixed(0), Fixed(300)), YUAN),
        Rule("P2", Text("罚", "p"), "penalty", When(Met(AtLeast(80)), Fixed(0), Fixed(100)), YUAN),
        Rule("W1", Text("奖", "r"), "reward", When(Met(AtLeast(99)), Fixed(50), Fixed(0)), YUAN),
    ]
    scheme = grouped_scheme(rules)
    columns = {"score": np.array([7_000, 9_500, 9_950, 8_500, 6_000, 10_000, 8_900, 9_990])}
    region = np.array(["东", "西", "东", "西", "东", "东", "西", "东"])
    attributes = {"region": region, "head": region}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)
    plain = []
    for workers in (1, 2):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("bankkpi.vector.compile_rule", lambda _rule, _env, **_options: None)
            plain.append(everything(evaluate_arrays(scheme, columns, attributes, workers=workers)))
    real_fen = vector_module.compile_rule.__globals__["RulePlan"].fen

    def gives_back(plan, lo, hi, scratch, out):
        return real_fen(plan, lo, hi, scratch, out) and not (plan.rule.id == "P2" and lo >= 4)

    monkeypatch.setattr(vector_module.compile_rule.__globals__["RulePlan"], "fen", gives_back)
    monkeypatch.setattr("bankkpi.vector._FEW_GROUPS_SHARE", 1)
    found = block_sums_found(monkeypatch)
    for workers, expected in zip((1, 2), plain, strict=True):
        assert everything(evaluate_arrays(scheme, columns, attributes, workers=workers)) == expected
    assert [sorted(kinds) for kinds in found] == [["reward"], ["reward"]]
    assert plain[0][3]["region"]["东"] == (Decimal(300 + 100 + 300 + 100), Decimal(50 + 50 + 50))


@pytest.mark.parametrize(("top", "refused"), [(2**59, False), (2**61 + 100, True)])
def test_totals_added_up_block_by_block_are_bounded_as_those_added_up_after(
    top, refused, monkeypatch
):
    """Two rules whose row sums fit in int64 but whose region's total may not:
    refused exactly as when the totals are added up afterwards."""
    near = When(Compare("score", ">=", 99), Fixed(Decimal(top) / 100), Fixed(1))
    rules = [attrs.evolve(rule_of(near), id=name) for name in ("R1", "R2")]
    scheme = attrs.evolve(
        grouped_scheme(rules),
        inputs=one_rule_scheme(rules[0], indicator=False).inputs,
        indicators=(),
    )
    columns = {"score": np.array([100, 50, 99, 7, 120, 98], dtype=np.int64)}
    attributes = {"region": np.array(["东"] * 6), "head": np.array(["甲"] * 6)}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)  # compiled: more than one block
    outcomes = []
    for share in (1, 10**9):
        monkeypatch.setattr("bankkpi.vector._FEW_GROUPS_SHARE", share)
        for workers in (1, 2):
            try:
                results = evaluate_arrays(scheme, columns, attributes, workers=workers)
                outcomes.append(everything(results))
            except OverflowRiskError as exc:
                outcomes.append(str(exc))
    assert outcomes[1:] == outcomes[:1] * 3
    if refused:
        assert "totals by region could reach" in outcomes[0]
    else:
        penalty_fen = sum(outcomes[0][1])
        assert outcomes[0][3]["region"]["东"][0] == Decimal(penalty_fen).scaleb(-2) > 2**61 // 100


def test_scratch_lends_and_takes_back_its_buffers():
    scratch = Scratch(8)
    first = scratch.take(np.int64, 5)
    assert first.shape == (5,)
    scratch.give(first, 3)
    again = scratch.take(np.int64, 8)
    assert np.shares_memory(again, first)
    made = []
    kept = scratch.kept("k", lambda: made.append(1) or (scratch.take(np.bool_, 8),))
    assert scratch.kept("k", lambda: made.append(1) or ()) is kept
    assert made == [1]
    scratch.clear()
    assert np.shares_memory(scratch.take(np.bool_, 2), kept[0])


@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_offences_and_units_outside_the_rules_domain_give_back_the_rows_that_need_them(
    table_rows,
):
    """An offence number below 1 or negative units: the array path refuses the rows
    that need them. Behind a guard (``offence >= 1``) the others are computed."""
    rule = rule_of(Escalating((200, 500), units="points", offence="offence"))
    guarded = rule_of(When(Compare("offence", ">=", 1), rule.formula, Fixed(3)))
    good = ArrayContext(2, {"points": Counts([5, 7], 0), "offence": Counts([1, 3], 0)})
    assert by_plan(rule, good, 1, table_rows=table_rows).tolist() == [100_000, 350_000]
    zero = ArrayContext(2, {"points": Counts([5, 7], 0), "offence": Counts([0, 1], 0)})
    negative = ArrayContext(2, {"points": Counts([-5, 7], 0), "offence": Counts([1, 1], 0)})
    assert by_plan(rule, zero, 2, table_rows=table_rows) is None
    assert by_plan(rule, negative, 2, table_rows=table_rows) is None
    assert by_plan(guarded, zero, 2, table_rows=table_rows).tolist() == [300, 140_000]
    assert by_plan(guarded, negative, 2, table_rows=table_rows) is None  # offence 1 takes it
    floored = rule_of(Clamp(rule.formula, minimum=0))  # refused although not negative
    assert by_plan(floored, negative, 2, table_rows=table_rows) is None
    assert by_plan(rule, zero, 1, table_rows=table_rows) is None  # block 1 gives back …
    plan = compile_rule(rule, zero, table_rows=table_rows).resolved()
    out = np.zeros(2, dtype=np.int64)
    assert plan.fen(1, 2, Scratch(1), out)  # … block 2 does not
    assert out[1] == 140_000


@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_an_offence_number_not_whole_gives_the_block_back(table_rows):
    rule = rule_of(Escalating((200, 500), units="points", offence="offence"))
    tenths = {"points": Counts([5, 7, 2], 0)}
    whole = ArrayContext(3, tenths | {"offence": Counts([10, 30, 20], 1)})
    expected = [100_000, 350_000, 100_000]
    assert by_plan(rule, whole, 2, table_rows=table_rows).tolist() == expected
    half = ArrayContext(3, tenths | {"offence": Counts([10, 30, 25], 1)})
    assert by_plan(rule, half, 2, table_rows=table_rows) is None
    if table_rows:  # 1.1 … 2.9 but 2.0 are not whole: −1 in the table
        plan = compile_rule(rule, whole, table_rows=table_rows)
        assert plan.refusing
        assert plan.table.tolist().count(-1) == 6 * 18


@pytest.mark.parametrize(
    "formula",
    [
        RateTable(((0, 1), (10, 3)), "score", "graduated"),
        RateTable(((0, "0.5"),), "score", "tiered", scale=2),
        RateTable(((Decimal("-1e18"), 1), (0, 2)), "score", "graduated"),
        RateTable(((0, 10**9), (100, 10**10)), "score", "tiered"),
        RateTable(((0, "0.001"), (5, "0.003")), "score", "graduated", scale="1e-5"),
        # a coefficient past int64 with every count 0 (helper-21)
        RateTable([(0, "1e10")], "score", "tiered", scale="1e10"),
        RateTable([(Decimal("0.000000000001"), "12345679")], "score", "graduated"),
    ],
)
@pytest.mark.parametrize(
    "column", [[9150, 9500, 0], [0, 0, 0], [2**62, -(2**62), 5], [2**63 - 1, 1 - 2**63, 5]]
)
def test_a_rate_table_is_refused_or_computed_as_the_array_path_does(formula, column, monkeypatch):
    """Compiled only where the array path's own denominators and bounds fit int64
    (it reduces its operands, and may refuse them, only where they do not)."""
    scheme = one_rule_scheme(rule_of(formula), indicator=False)
    columns = {"score": np.array(column, dtype=np.int64)}
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)  # compiled: more than one block
    outcomes = outcomes_with_and_without_plans(scheme, columns, monkeypatch)
    assert outcomes[1:] == outcomes[:1] * 3


@st.composite
def rate_tables(draw):
    """A random rate table on ``v``, and counts of ``v`` at 0–2 places."""
    places = draw(st.integers(0, 2))
    starts = sorted(set(draw(st.lists(decimals_at(2, -1000, 1000), min_size=1, max_size=4))))
    rates = [draw(decimals_at(draw(st.integers(0, 4)), -500, 500)) for _ in starts]
    scale = draw(st.sampled_from(["1", "0.5", "2", "0.125", "3", "-1.5"]))
    mode = draw(st.sampled_from(["tiered", "graduated"]))
    table = RateTable(list(zip(starts, rates, strict=True)), "v", mode, scale=scale)
    counts = draw(st.lists(st.integers(-(10**6), 10**6), min_size=1, max_size=6))
    return table, Counts(counts, places)


@given(rate_tables(), st.sampled_from(["0.001", "fen", "yuan"]))
def test_a_rate_table_plan_has_the_array_paths_denominator_bound_and_amounts(drawn, place):
    table, counts = drawn
    env = ArrayContext(counts.counts.shape[0], {"v": counts})
    value = table.evaluate_array(env)
    starts = [Fraction(start) for start, _ in table.tiers]
    rates = [Fraction(rate) for _, rate in table.tiers]
    unit = 10**counts.places
    meta = _rate_table_meta(
        (unit, counts.bound), starts, rates, Fraction(table.scale), tiered=table.mode == "tiered"
    )
    assert meta == (value.den, value.bound)
    rule = rule_of(table, RoundingPolicy("half_up", place))
    try:
        expected = rule.evaluate_fen(env).tolist()
    except InvalidValueError:  # a negative amount: the plan gives its block back
        assert by_plan(rule, env, 2) is None
        return
    assert by_plan(rule, env, 2).tolist() == expected
    assert by_plan(rule, env, 3, table_rows=1 << 22).tolist() == expected


PRAISE = Text("表扬", "praise")


@pytest.mark.parametrize(
    ("formula", "computed"),
    [
        (Discretionary(PRAISE, 0, 1, "complaints"), False),  # 2 is above
        (Discretionary(PRAISE, "0.5", 2, "complaints"), False),  # 0 is below 0.5
        (Discretionary(PRAISE, 0, "1.5", "complaints"), False),  # 2 is above 1.5
        (
            When(Compare("complaints", "==", 1), Discretionary(PRAISE, "0.5", "1.5", "complaints")),
            True,
        ),
        (When(Compare("complaints", "<=", 1), Discretionary(PRAISE, 0, 1, "complaints")), True),
    ],
)
@pytest.mark.parametrize("table_rows", [0, 1 << 16])
def test_an_amount_chosen_outside_its_range_gives_back_the_blocks_that_need_it(
    formula, computed, table_rows
):
    rule = rule_of(formula)
    check_computed_or_given_back(rule, computed, table_rows)


def test_totals_by_and_rolled_up_to_one_attribute_are_arrays_of_their_own(monkeypatch):
    """Sums found block by block for an attribute serve its totals and its roll-ups:
    each gets an array of its own, as when they are added up afterwards."""
    rules = [
        Rule("P1", Text("罚", "p"), "penalty", When(Met(AtLeast(90)), Fixed(0), Fixed(300)), YUAN),
        Rule("W1", Text("奖", "r"), "reward", When(Met(AtLeast(99)), Fixed(50), Fixed(0)), YUAN),
    ]
    scheme = attrs.evolve(
        grouped_scheme(rules), rollups=(RollUp("region", "penalty"), RollUp("region", "reward"))
    )
    columns = {"score": np.array([7_000, 9_500, 9_950, 8_500, 6_000, 10_000, 8_900, 9_990])}
    region = np.array(["东", "西", "东", "西", "东", "东", "西", "东"])
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 2)
    monkeypatch.setattr("bankkpi.vector._FEW_GROUPS_SHARE", 1)
    found = block_sums_found(monkeypatch)
    results = evaluate_arrays(scheme, columns, {"region": region, "head": region}, workers=2)
    assert all(kind.groups for kind in found[0].values())
    arrays = [results.group_totals["region"], *results.rollups.values()]
    columns_of = [column for totals in arrays for column in (totals.penalty, totals.reward)]
    assert len({id(column) for column in columns_of}) == len(columns_of) == 6
    assert not any(np.shares_memory(a, b) for a, b in itertools.combinations(columns_of, 2))
    assert results.group_totals["region"].as_dict()["东"] == (Decimal(600), Decimal(150))
