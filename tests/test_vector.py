import copy
import csv
import itertools
import pickle
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from unittest import mock

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    Band,
    BandAmount,
    BandSet,
    Bottom,
    Choose,
    Compare,
    Context,
    Discretionary,
    Escalating,
    Expression,
    Fixed,
    Input,
    InRanks,
    Multiply,
    Percentile,
    Period,
    PerPeriodEarly,
    RankingRule,
    RankingSpec,
    RateTable,
    RoundingPolicy,
    Rule,
    Scheme,
    Shortfall,
    Sum,
    Text,
    When,
    evaluate,
    load_scheme,
    rank_arrays,
)
from bankkpi import _ranking as ranking_module
from bankkpi import vector as vector_module
from bankkpi._formulas import ArrayContext, Counts, formula_array, predicate_array
from bankkpi._schemes import SubjectRow, _rankings, _row_values
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    ExpressionError,
    FloatMoneyError,
    InvalidValueError,
    MissingDataError,
    OutOfRangeError,
    OverflowRiskError,
    ValidationErrorGroup,
)
from bankkpi.vector import ArrayResults, GroupTotals, array_context, evaluate_arrays

from .agreement import _Builder, random_population, random_scheme
from .strategies import rounding_policies
from .test_agreement import DrawPicker

EXAMPLES = Path(__file__).parent.parent / "examples"
YUAN = RoundingPolicy("half_up", "yuan")


def scheme_a():
    return load_scheme((EXAMPLES / "scheme_a.toml").read_text(encoding="utf-8"), format="toml")


def env_of(**columns):
    """An ArrayContext from name=(values, places) pairs."""
    size = len(next(iter(columns.values()))[0])
    return ArrayContext(size, {n: Counts(v, p) for n, (v, p) in columns.items()})


def problems_of(info):
    return info.value.problems if isinstance(info.value, ValidationErrorGroup) else (info.value,)


# ------------------------------------------------------------------ formulas


class TestFormulasOnArrays:
    def test_brief_phase_2_penalty(self):
        rule = Rule(
            "A.P2",
            Text("二阶段考核", "phase 2 penalty"),
            "penalty",
            Shortfall(AtLeast(95), "score", rate=200, base=1000),
            YUAN,
        )
        env = env_of(score=([9150, 9500, 9499, 10000], 2))
        assert rule.evaluate_array(env).tolist() == [1700, 0, 1002, 0]
        assert rule.evaluate_fen(env).tolist() == [170000, 0, 100200, 0]

    def test_escalating_rates_and_offence_beyond_the_list(self):
        f = Escalating((200, 500), units="points", offence="offence")
        env = env_of(points=([20, 20, 15], 1), offence=([1, 2, 7], 0))
        assert f.evaluate_array(env).fractions() == [400, 1000, 750]

    def test_escalating_names_every_bad_row(self):
        f = Escalating((200, 500), units="points", offence="offence")
        env = ArrayContext(
            4,
            {"points": Counts([1, 1, 1, 1], 0), "offence": Counts([0, 10, 15, 0], 1)},
            subjects=["甲", "乙", "丙", "丁"],
        )
        with pytest.raises(InvalidValueError) as info:
            f.evaluate_array(env)
        message = str(info.value)
        assert info.value.subject == "甲"
        assert "3 rows: row 0 (甲), row 2 (丙), row 3 (丁)" in message
        assert "'offence' must be a whole offence number >= 1" in message

    def test_a_bad_row_in_a_branch_it_does_not_take_is_not_refused(self):
        checked = Escalating((200, 500), units="points", offence="offence")
        env = env_of(complaints=([0, 1, 0], 0), offence=([1, 0, 2], 0), points=([10, 10, 10], 1))
        guarded = When(Compare("complaints", "==", 0), checked)
        assert guarded.evaluate_array(env).fractions() == [200, 0, 500]
        chosen = Choose([(Compare("complaints", "==", 1), Fixed(7))], otherwise=checked)
        assert chosen.evaluate_array(env).fractions() == [200, 7, 500]
        with pytest.raises(InvalidValueError, match="1 row: row 1"):
            checked.evaluate_array(env)

    def test_a_branch_few_rows_take_names_the_population_rows(self):
        """A branch taken by at most a third of the rows runs on a subset; errors still
        name the rows and subjects of the whole population, and values land in place."""
        checked = Escalating((200, 500), units="points", offence="offence")
        complaints = [0, 0, 1, 0, 0, 0, 0, 1, 0]
        env = ArrayContext(
            9,
            {
                "complaints": Counts(complaints, 0),
                "offence": Counts([0, 0, 2, 0, 0, 0, 0, 1, 0], 0),
                "points": Counts([10] * 9, 1),
            },
            subjects=[f"s{i}" for i in range(9)],
        )
        for formula in (
            Choose([(Compare("complaints", "==", 1), checked)], otherwise=Fixed(3)),
            When(Compare("complaints", "==", 1), checked, Fixed(3)),
        ):
            assert formula.evaluate_array(env).fractions() == [3, 3, 500, 3, 3, 3, 3, 200, 3]
        bad = attrs.evolve(env, variables={**env.variables, "offence": Counts([0] * 9, 0)})
        with pytest.raises(InvalidValueError) as info:
            When(Compare("complaints", "==", 1), checked).evaluate_array(bad)
        assert info.value.subject == "s2"
        assert "2 rows: row 2 (s2), row 7 (s7)" in str(info.value)

    def test_discretionary_range(self):
        f = Discretionary(Text("媒体表扬", "media praise"), 200, 1000)
        env = ArrayContext(
            3, {"chosen": Counts([200, 1000, 1500], 0)}, subjects=np.array(["a", "b", "c"])
        )
        with pytest.raises(OutOfRangeError) as info:
            f.evaluate_array(env)
        assert info.value.subject == "c"
        assert info.value.value == Decimal(1500)
        assert "[200, 1000] (媒体表扬) (1 row: row 2 (c))" in str(info.value)
        fine = ArrayContext(2, {"chosen": Counts([200, 1000], 0)})
        assert f.evaluate_array(fine).fractions() == [200, 1000]

    def test_per_period_early_refuses_negative_and_fractional_periods(self):
        f = PerPeriodEarly(300)
        assert f.evaluate_array(env_of(quarters_early=([0, 3], 0))).fractions() == [0, 900]
        with pytest.raises(InvalidValueError, match="2 rows: row 0, row 1"):
            f.evaluate_array(env_of(quarters_early=([-10, 5], 1)))

    def test_band_amount_outside_every_band(self):
        bands = BandSet(
            [Band.interval("低", "[0, 80)"), Band.interval("中", "[80, 85]")], scale=(0, 85)
        )
        f = BandAmount(bands, {"低": 500, "中": 300})
        with pytest.raises(MissingDataError, match=r"band containing value \(1 row: row 2\)"):
            f.evaluate_array(env_of(score=([7999, 8500, 8501], 2)))
        assert f.evaluate_array(env_of(score=([7999, 8000], 2))).fractions() == [500, 300]
        catch = BandSet([Band.interval("低", "[0, 80)")], catch_all="其他")
        g = BandAmount(catch, {"低": 500, "其他": 1})
        assert g.evaluate_array(env_of(score=([7999, 8000], 2))).fractions() == [500, 1]

    def test_rule_refuses_negative_amounts_naming_rows(self):
        rule = Rule("X", Text("x", "x"), "penalty", Expression("score - 90", ["score"]), YUAN)
        with pytest.raises(InvalidValueError) as info:
            rule.evaluate_array(env_of(score=([9100, 8950, 9000], 2)))
        assert "'X' must give a non-negative penalty (1 row: row 1)" in str(info.value)

    def test_formula_errors_carry_the_rule(self):
        rule = Rule("R", Text("r", "r"), "reward", PerPeriodEarly(300), YUAN)
        with pytest.raises(InvalidValueError) as info:
            rule.evaluate_array(env_of(quarters_early=([-1], 0)))
        assert info.value.__notes__ == ["while evaluating rule R on the array path"]

    def test_sum_keeps_parts_without_a_finite_decimal_form_exact(self):
        third = Shortfall(AtLeast(98), "score", rate=1, per=3)
        env = env_of(score=([9700, 9500], 2))
        assert Sum([third, Fixed(1)]).evaluate_array(env).fractions() == [Fraction(4, 3), 2]
        rounded = Sum([third, Fixed(1)], rounding=RoundingPolicy("half_up", "fen"))
        assert rounded.evaluate_array(env).fractions() == [Fraction(133, 100), 2]
        assert Sum([third]).evaluate_array(env_of(score=([9500], 2))).fractions() == [1]

    def test_rate_tables(self):
        table = RateTable(((0, "0.01"), (1_000_000, "0.02")), "fees", "graduated")
        tiered = RateTable(((0, "0.01"), (1_000_000, "0.02")), "fees", "tiered", scale=2)
        env = env_of(fees=([150_000_000, 99_999_999, 0], 2))
        assert table.evaluate_array(env).fractions() == [20000, Fraction(999_999_99, 10000), 0]
        assert tiered.evaluate_array(env).fractions() == [60000, Fraction(1_999_999_98, 10000), 0]

    def test_multiply_only_where_the_condition_holds(self):
        f = Multiply(Fixed(500), 2, Compare("repeat", "==", 1))
        assert f.evaluate_array(env_of(repeat=([0, 1], 0))).fractions() == [500, 1000]

    def test_in_ranks_uses_the_selections_mask(self):
        scores = np.array([9000, 8000, 8000, 7000])
        ranks = rank_arrays(
            scores, RankingRule("higher", "competition"), groups=np.zeros(4, dtype=np.int64)
        )
        env = ArrayContext(4, {"score": Counts(scores, 2)}, {"province": ranks})
        assert InRanks("province", Bottom(2)).test_array(env).tolist() == [False, True, True, True]

    def test_inactive_rows_are_zero_in_rule_results(self):
        rule = Rule("R", Text("r", "r"), "reward", Fixed(5), YUAN)
        env = ArrayContext(3, active=np.array([True, False, True]))
        assert rule.evaluate_array(env).tolist() == [5, 0, 5]

    def test_formulas_and_predicates_without_an_array_path_are_refused(self):
        class Custom:
            def evaluate(self, context):
                return Fixed(1).evaluate(context)

            def test(self, _context):
                return True, Text("", "")

        env = ArrayContext(1)
        with pytest.raises(InvalidValueError, match="has no array path"):
            formula_array(Custom(), env)
        with pytest.raises(InvalidValueError, match="has no array path"):
            predicate_array(Custom(), env)
        with pytest.raises(InvalidValueError, match="has no array form"):
            InRanks("p", Custom()).test_array(ArrayContext(1, ranks={"p": _ranks(1)}))

    def test_expressions_run_on_their_own_array_path(self):
        env = env_of(a=([150, 300], 2), b=([2, 0], 0))
        assert formula_array(Expression("a * 2 - b", ["a", "b"]), env).fractions() == [1, 6]
        with pytest.raises(ExpressionError, match="not a constant"):
            formula_array(Expression("a / b", ["a", "b"]), env)

    def test_context_is_checked(self):
        with pytest.raises(InvalidValueError, match="one entry per row"):
            ArrayContext(3, {"score": Counts([1, 2], 2)})
        with pytest.raises(FloatMoneyError):
            Counts(np.array([91.5]), 2)
        with pytest.raises(InvalidValueError, match="places"):
            Counts([1], 19)
        with pytest.raises(MissingDataError, match="no array of variable for 'score'"):
            ArrayContext(1).value("score")
        counts = Counts(np.array([1, 2]), 0)
        with pytest.raises(ValueError, match="read-only"):
            counts.counts[0] = 5


def _ranks(n):
    return rank_arrays(
        np.arange(n), RankingRule("higher", "dense"), groups=np.zeros(n, dtype=np.int64)
    )


def _exact_contexts(scheme, population):
    valid = {row.subject: (row, _row_values(scheme, row)[0]) for row in population.rows}
    rankings = _rankings(scheme, valid)
    return [
        Context(s, valid[s][1], {name: r[s] for name, r in rankings.items()})
        for s in population.subjects
    ]


@settings(max_examples=60)
@given(st.data(), rounding_policies)
def test_every_value_equals_the_exact_value(data, policy):
    """Unrounded values equal the exact path's fractions; rules agree at every place."""
    pick = DrawPicker(data.draw)
    drawn = random_scheme(pick)
    scheme = drawn.scheme
    population = random_population(drawn, data.draw(st.integers(0, 2**32 - 1)), 40)
    env = array_context(
        scheme,
        population.columns,
        population.attributes,
        subjects=population.subjects,
        places=population.places,
    )
    contexts = _exact_contexts(scheme, population)
    predicate = _Builder(pick, drawn.precision).predicate(2)
    assert predicate_array(predicate, env).tolist() == [predicate.test(c)[0] for c in contexts]
    for rule in scheme.rules:
        exact, refused = [], []
        for i, context in enumerate(contexts):
            try:
                exact.append(rule.formula.evaluate(context).value)
            except BankKPIError:
                refused.append(i)
        if refused:
            with pytest.raises(BankKPIError):
                formula_array(rule.formula, env)
            continue
        values = formula_array(rule.formula, env)
        assert np.broadcast_to(values.num, (env.size,)).tolist() == [
            int(v * values.den) for v in exact
        ]
        assert all(Fraction(int(v * values.den), values.den) == v for v in exact)
        rounded = Rule(rule.id, rule.name, "reward", rule.formula, policy)
        if all(v >= 0 for v in exact):
            counts = rounded.evaluate_array(env)
            amounts = [rounded.evaluate(c).amount for c in contexts]
            assert [Decimal(int(c)).scaleb(policy.exponent) for c in counts] == amounts


# ------------------------------------------------------------------ bankkpi.vector


def _csv_rows():
    with (EXAMPLES / "data" / "scheme_a_2024.csv").open(encoding="utf-8") as file:
        return list(csv.DictReader(file))


INPUTS = ("score", "quarters_early", "complaints", "repeat")


class TestEvaluateArrays:
    def test_scheme_a_data_agrees_with_the_exact_path(self):
        scheme = scheme_a()
        rows = _csv_rows()
        exact = evaluate(
            scheme,
            [SubjectRow(r["subject"], {"region": r["region"], "head": r["head"]}, r) for r in rows],
        )
        attributes = {k: np.array([r[k] for r in rows]) for k in ("region", "head")}
        subjects = [r["subject"] for r in rows]
        as_text = {k: [r[k] for r in rows] for k in INPUTS}
        as_counts = {
            "score": np.array([int(Decimal(r["score"]) * 100) for r in rows]),
            **{k: np.array([int(r[k]) for r in rows]) for k in INPUTS[1:]},
        }
        for columns in (as_text, as_counts):
            out = evaluate_arrays(scheme, columns, attributes, subjects=subjects)
            assert isinstance(out, ArrayResults)
            index = {s: i for i, s in enumerate(subjects)}
            for line in exact.lines:
                assert out.amounts[line.rule][index[line.subject]] == int(line.amount * 100)
            assert out.group_totals["region"].as_dict() == exact.group_totals["region"]
            heads = out.rollups["penalty→head"]
            assert {str(k): v for k, v in zip(heads.keys, heads.penalty, strict=True)} == {
                k: int(v * 100) for k, v in exact.rollups["penalty→head"].items()
            }
            assert out.total("penalty") == int(sum(t.penalty for t in exact.totals) * 100)
            assert out.rules == tuple(r.id for r in scheme.rules)
            assert (out.net == out.reward - out.penalty).all()
            frozen = [out.penalty, out.reward, *out.amounts.values(), heads.penalty]
            assert not any(array.flags.writeable for array in frozen)  # a result is a value

    def test_threads_give_the_same_results_and_errors(self, monkeypatch):
        """Blocks of rows in several threads equal one thread: amounts, totals, ranks, and
        (by evaluating again in one thread) the same errors naming every row."""
        monkeypatch.setattr("bankkpi.vector._BLOCK_ROWS", 200)
        scheme = scheme_a()
        rows = _csv_rows()
        attributes = {k: np.array([r[k] for r in rows]) for k in ("region", "head")}
        subjects = [r["subject"] for r in rows]
        columns = {k: [r[k] for r in rows] for k in INPUTS}
        one = evaluate_arrays(scheme, columns, attributes, subjects=subjects, workers=1)
        for workers in (2, 3, 7):
            many = evaluate_arrays(scheme, columns, attributes, subjects=subjects, workers=workers)
            assert many.rules == one.rules
            for rule in one.rules:
                assert many.amounts[rule].tolist() == one.amounts[rule].tolist()
            assert many.group_totals["region"].as_dict() == one.group_totals["region"].as_dict()
            assert many.rollups["penalty→head"].as_dict() == one.rollups["penalty→head"].as_dict()
            assert many.penalty.tolist() == one.penalty.tolist()
            assert many.reward.tolist() == one.reward.tolist()
            assert many.ranks["province"].rank_from_top.tolist() == (
                one.ranks["province"].rank_from_top.tolist()
            )
        negative = Rule("N", Text("n", "n"), "penalty", Expression("score - 99", ["score"]), YUAN)
        broken = attrs.evolve(scheme, rules=(*scheme.rules, negative))
        messages = []
        for workers in (1, 3):
            with pytest.raises(ValidationErrorGroup) as info:
                evaluate_arrays(broken, columns, attributes, subjects=subjects, workers=workers)
            messages.append([str(p) for p in info.value.problems])
        assert messages[0] == messages[1]
        assert "'N' must give a non-negative penalty (" in messages[0][0]
        with pytest.raises(InvalidValueError, match="'workers' must be a positive int"):
            evaluate_arrays(scheme, columns, attributes, subjects=subjects, workers=0)

    def test_refused_inputs_are_the_same_while_attributes_are_factorized(self, monkeypatch):
        """With threads the regions are factorized while the columns are read; a column
        refused (one value at once, or a row at a time) gives the same errors."""
        monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 4)  # "large": factorized beside
        scheme = scheme_a()
        rows = _csv_rows()
        attributes = {k: np.array([r[k] for r in rows]) for k in ("region", "head")}
        columns = {k: [r[k] for r in rows] for k in INPUTS}
        columns["score"] = [*columns["score"][:-1], "101"]  # out of the indicator's scale
        messages = []
        for workers in (1, 2):
            with pytest.raises(ValidationErrorGroup) as info:
                evaluate_arrays(scheme, columns, attributes, workers=workers)
            messages.append([str(p) for p in info.value.problems])
        assert messages[0] == messages[1]
        assert "101" in " ".join(messages[0])

    def test_overflow_refusals_do_not_depend_on_threads(self, monkeypatch):
        """A sum whose bound over all rows passes int64, though no row's sum does, is
        computed block by block in any number of threads; one that a block's rows
        themselves push past int64 is refused in any number."""
        monkeypatch.setattr("bankkpi.vector._BLOCK_ROWS", 4)
        scheme = load_scheme(
            """
            format = 1
            id = "wide"
            version = "1"
            name = { zh = "宽", en = "wide" }
            effective = { start = "2024-01-01", end = "2024-12-31" }
            rounding = { mode = "half_up", place = "yuan" }
            [[inputs]]
            name = "a"
            label = { zh = "甲", en = "a" }
            [[inputs]]
            name = "b"
            label = { zh = "乙", en = "b" }
            [[rules]]
            id = "product"
            name = { zh = "积", en = "product" }
            kind = "reward"
            [rules.formula]
            type = "multiply"
            factor = "0.001"
            [rules.formula.formula]
            type = "sum"
            parts = [
                { type = "expression", source = "a", variables = ["a"] },
                { type = "expression", source = "b", variables = ["b"] },
            ]
            """,
            format="toml",
        )
        big = 2**62 - 2**62 % 1000  # the sum's largest parts lie in different blocks
        a = np.array([big, 1000, 3000, big, 0, 2000, 0, 0], dtype=np.int64)  # blocks 0-3, 4-7
        b = np.array([0, 2000, 0, 0, big, big + 2000, 1000, 7000], dtype=np.int64)
        exact = evaluate(
            scheme,
            [
                SubjectRow(f"s{i}", {}, {"a": Decimal(int(a[i])), "b": Decimal(int(b[i]))})
                for i in range(8)
            ],
        )
        expected = [int(line.amount * 100) for line in exact.lines]
        for workers in (1, 2, 3):
            out = evaluate_arrays(scheme, {"a": a, "b": b}, workers=workers)
            assert out.reward.tolist() == expected
        b[0] = big + 2000  # row 0's own sum now passes int64
        for workers in (1, 2, 3):
            with pytest.raises(ValidationErrorGroup) as info:
                evaluate_arrays(scheme, {"a": a, "b": b}, workers=workers)
            assert isinstance(info.value.problems[0], OverflowRiskError)

    def test_group_totals_bounded_past_int64_are_refused_in_any_threads(self, monkeypatch):
        """The bound on a group's total (largest amount × group size) takes every block: a
        large amount in the last block alone is refused as in one thread."""
        monkeypatch.setattr("bankkpi.vector._BLOCK_ROWS", 4)
        scheme = load_scheme(
            """
            format = 1
            id = "tall"
            version = "1"
            name = { zh = "高", en = "tall" }
            effective = { start = "2024-01-01", end = "2024-12-31" }
            rounding = { mode = "half_up", place = "yuan" }
            attributes = ["region"]
            group_by = ["region"]
            [[inputs]]
            name = "a"
            label = { zh = "甲", en = "a" }
            [[rules]]
            id = "plain"
            name = { zh = "额", en = "plain" }
            kind = "penalty"
            formula = { type = "expression", source = "a", variables = ["a"] }
            """,
            format="toml",
        )
        a = np.array([1, 2, 3, 4, 5, 6, 7, 4 * 10**16], dtype=np.int64)  # fen: 4e18
        regions = np.array(["r"] * 8)
        for workers in (1, 2, 3):
            out = evaluate_arrays(scheme, {"a": a[:7]}, {"region": regions[:7]}, workers=workers)
            assert out.group_totals["region"].as_dict()["r"] == (Decimal(28), Decimal(0))
            with pytest.raises(OverflowRiskError, match="totals by region"):
                evaluate_arrays(scheme, {"a": a}, {"region": regions}, workers=workers)

    @pytest.mark.parametrize("guard", [None, "c < 0"])
    def test_a_selection_that_cannot_be_answered_fails_where_it_is_needed(self, monkeypatch, guard):
        """A percentile whose count leaves int64 is the rule's error, in one thread or
        several — and no error at all in a branch no row takes."""
        monkeypatch.setattr("bankkpi.vector._BLOCK_ROWS", 4)
        percentile = Percentile("top", Decimal("33.3333333333333333333"), "floor")
        formula = When(InRanks("rk", percentile), Fixed(5))
        if guard is not None:
            formula = When(Compare("c", "<", 0), formula)
        scheme = Scheme(
            "w",
            "1",
            Text("w", "w"),
            Period("2024-01-01", "2024-12-31"),
            YUAN,
            [Rule("r", Text("r", "r"), "reward", formula, YUAN)],
            [Input("c", Text("c", "c"))],
            rankings=[RankingSpec("rk", "c", RankingRule("higher", "competition"))],
        )
        outcomes = []
        for workers in (1, 2, 3):
            try:
                outcomes.append(evaluate_arrays(scheme, {"c": np.arange(10)}, workers=workers))
            except ValidationErrorGroup as exc:
                outcomes.append([str(p) for p in exc.problems])
        if guard is None:
            assert outcomes[0] == outcomes[1] == outcomes[2]
            assert "'percent' 33.3333333333333333333" in outcomes[0][0]
        else:
            assert [o.reward.tolist() for o in outcomes] == [[0] * 10] * 3

    def test_selections_need_no_full_ranks(self, monkeypatch):
        """Scheme A's selections (an exemption among them) come from cut-offs alone,
        in one thread and in several; its full ranks are computed only when read."""
        scheme = scheme_a()
        rows = _csv_rows()
        attributes = {k: np.array([r[k] for r in rows]) for k in ("region", "head")}
        columns = {k: [r[k] for r in rows] for k in INPUTS}
        expected = evaluate_arrays(scheme, columns, attributes)
        expected_ranks = expected.ranks["province"].rank_from_top.tolist()
        monkeypatch.setattr("bankkpi.vector._BLOCK_ROWS", 200)
        calls = []
        full = ranking_module.rank_arrays
        monkeypatch.setattr(
            ranking_module, "rank_arrays", lambda *a, **k: calls.append(a) or full(*a, **k)
        )
        for workers in (1, 3):
            out = evaluate_arrays(scheme, columns, attributes, workers=workers)
            assert calls == []
            assert out.penalty.tolist() == expected.penalty.tolist()
            assert out.ranks["province"].rank_from_top.tolist() == expected_ranks
            assert len(calls) == 1
            calls.clear()

    def test_results_do_not_change_with_the_callers_arrays(self):
        """Ranks are computed when first read: from the inputs as they were, not as the
        caller's arrays are by then."""
        scheme = scheme_a()
        rows = _csv_rows()
        codes = {key: k for k, key in enumerate(sorted({r["region"] for r in rows}))}
        region = np.array([codes[r["region"]] for r in rows], dtype=np.int64)
        head = np.array([r["head"] for r in rows])
        score = np.array([int(Decimal(r["score"]) * 100) for r in rows], dtype=np.int64)
        columns = {"score": score, **{k: np.array([int(r[k]) for r in rows]) for k in INPUTS[1:]}}
        before = evaluate_arrays(scheme, columns, {"region": region, "head": head})
        expected = before.ranks["region"].rank_from_top.tolist()
        out = evaluate_arrays(scheme, columns, {"region": region, "head": head})
        region[:] = 0
        score[:] = 6000
        assert out.ranks["region"].rank_from_top.tolist() == expected
        assert out.ranks["region"].group_size.tolist() == before.ranks["region"].group_size.tolist()

    def test_python_ints_are_values_numpy_ints_are_counts(self):
        scheme = scheme_a()
        attributes = {"region": ["R", "R"], "head": ["H", "H"]}
        by_value = evaluate_arrays(scheme, {"score": [95, 99], "complaints": [0, 0]}, attributes)
        by_count = evaluate_arrays(
            scheme, {"score": np.array([9500, 9900]), "complaints": [0, 0]}, attributes
        )
        for rule, amounts in by_value.amounts.items():
            assert amounts.tolist() == by_count.amounts[rule].tolist()
        assert by_value.amounts["A.region_top2"].tolist() == [0, 50000]

    def test_floats_are_refused_unless_asked_for(self):
        scheme = scheme_a()
        attributes = {"region": ["R", "R"], "head": ["H", "H"]}
        columns = {"score": np.array([97.5, 99.0]), "complaints": [0, 0]}
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, columns, attributes)
        assert isinstance(info.value.problems[0], FloatMoneyError)
        assert "floats='repr'" in str(info.value.problems[0])
        out = evaluate_arrays(scheme, columns, attributes, floats="repr")
        assert out.amounts["A.region_top2"].tolist() == [0, 50000]
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, {"score": [Decimal(95), 0.5], "complaints": [0, 0]}, attributes)
        assert "floats='repr' to convert each through its shortest repr (1 row: row 1)" in str(
            info.value
        )

    def test_nan_is_a_blank_with_floats_repr(self):
        scheme = scheme_a()
        attributes = {"region": ["R", "R"], "head": ["H", "H"]}
        columns = {"score": ["97", "98"], "complaints": [0, 0], "repeat": np.array([np.nan, 1.0])}
        out = evaluate_arrays(scheme, columns, attributes, floats="repr")
        assert out.size == 2
        columns["complaints"] = np.array([np.nan, 0.0])
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, columns, attributes, floats="repr")
        assert "no value of input 'complaints' (1 row: row 0)" in str(info.value)

    def test_every_input_problem_at_once_naming_rows(self):
        scheme = scheme_a()
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme,
                {"score": ["104", "90", "abc", "-1", None], "repeat": [0, 0, 0, 0, 0]},
                {"region": ["R", " ", "R", "R", "R"]},
                subjects=["o1", "o2", "o3", "o2", "o5"],
            )
        text = str(info.value)
        kinds = [type(p) for p in info.value.problems]
        assert DuplicateError in kinds
        assert OutOfRangeError in kinds
        assert "'subject' must be unique; repeated (1 row: row 3 (o2))" in text
        assert "no attribute 'region' (1 row: row 1 (o2))" in text
        assert "no array of attribute for 'head'" in text
        assert (
            "'score' must be an exact number (Decimal, int or decimal str) (1 row: row 2 (o3))"
            in text
        )
        assert "no value of input 'score' (1 row: row 4 (o5))" in text
        assert "'mystery_shopper' must be within [0, 100] (2 rows: row 0 (o1), row 3 (o2))" in text
        assert "no column of input for 'complaints'" in text

    def test_values_beyond_exact_arithmetic_are_refused(self):
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme_a(),
                {"score": ["9e99"], "complaints": ["1e40"], "repeat": ["1e-40"]},
                {"region": ["R"], "head": ["H"]},
            )
        text = str(info.value)
        assert "'score' has more digits than exact arithmetic holds" in text
        assert "'complaints' holds values beyond int64" in text
        assert "'repeat' needs at most 18 decimal places" in text

    def test_out_of_scale_counts_are_refused(self):
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme_a(),
                {"score": np.array([10001]), "complaints": np.array([0])},
                {"region": ["R"], "head": ["H"]},
            )
        assert "'mystery_shopper' must be within [0, 100] (1 row: row 0)" in str(info.value)

    def test_rule_problems_are_grouped_by_rule(self):
        scheme = scheme_a()
        bad = Rule("Z", Text("z", "z"), "reward", PerPeriodEarly(300), YUAN)
        negative = Rule("N", Text("n", "n"), "penalty", Expression("score - 99", ["score"]), YUAN)
        scheme = attrs.evolve(scheme, rules=(*scheme.rules, bad, negative))
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme,
                {"score": ["98", "99.5"], "complaints": [0, 0], "quarters_early": ["-1", "2"]},
                {"region": ["R", "R"], "head": ["H", "H"]},
                subjects=["a", "b"],
            )
        early, z, n = info.value.problems  # A.early reads quarters_early too (row a meets 98)
        assert "'quarters_early' must be a whole number >= 0 (1 row: row 0 (a))" in str(z)
        assert early.__notes__ == ["while evaluating rule A.early on the array path"]
        assert z.__notes__ == ["while evaluating rule Z on the array path"]
        assert "'N' must give a non-negative penalty (1 row: row 0 (a))" in str(n)

    def test_ordinal_ties_need_subject_ids(self):
        data = {
            "format": 1,
            "id": "o",
            "version": "1",
            "name": "o",
            "effective": {"start": "2024-01-01", "end": "2024-12-31"},
            "rounding": {"mode": "half_up", "place": "yuan"},
            "inputs": [{"name": "score", "label": "得分"}],
            "rankings": [
                {
                    "name": "all",
                    "variable": "score",
                    "better": "higher",
                    "ties": "ordinal",
                    "tie_break": "subject_desc",
                }
            ],
            "rules": [
                {
                    "id": "T",
                    "name": "top",
                    "kind": "reward",
                    "formula": {
                        "type": "when",
                        "when": {
                            "type": "in_ranks",
                            "ranking": "all",
                            "selection": {"type": "top", "n": 1},
                        },
                        "then": {"type": "fixed", "amount": 100},
                    },
                }
            ],
        }
        from bankkpi import parse_scheme  # noqa: PLC0415 - only here

        scheme = parse_scheme(data)
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, {"score": np.array([9, 9])})
        assert isinstance(info.value.problems[0], AmbiguousInputError)
        out = evaluate_arrays(scheme, {"score": np.array([9, 9])}, subjects=["a", "b"])
        assert out.amounts["T"].tolist() == [0, 10000]  # ties by id descending: b first

    def test_places_for_integer_columns_without_an_indicator(self):
        scheme = scheme_a()
        base = {"score": ["97", "98"], "complaints": np.array([0, 5])}
        attributes = {"region": ["R", "R"], "head": ["H", "H"]}
        out = evaluate_arrays(scheme, base, attributes, places={"complaints": 1})
        assert out.amounts["A.no_complaint"].tolist() == [50000, 0]

    def test_lengths_must_agree(self):
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme_a(),
                {"score": ["97", "98"], "complaints": [0]},
                {"region": ["R", "R"], "head": ["H", "H"]},
            )
        assert "'columns[complaints]' must have one entry per row (2): 1" in str(info.value)

    def test_no_columns_at_all(self):
        with pytest.raises(InvalidValueError, match="at least one column"):
            evaluate_arrays(scheme_a(), {})

    def test_bad_floats_argument(self):
        with pytest.raises(InvalidValueError, match="'refuse' or 'repr'"):
            evaluate_arrays(scheme_a(), {"score": ["1"]}, floats="round")  # type: ignore[arg-type]

    def test_group_totals_as_dict(self):
        totals = GroupTotals(np.array([2, 10]), np.array([1, 2]), np.array([5, 0]))
        assert list(totals.as_dict()) == ["10", "2"]
        assert totals.amount("reward").tolist() == [5, 0]

    def test_huge_counts_are_refused_not_wrapped(self):
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(
                scheme_a(),
                {"score": np.array([2**63], dtype=np.uint64), "complaints": [0]},
                {"region": ["R"], "head": ["H"]},
            )
        assert isinstance(info.value.problems[0], OverflowRiskError)


junk = st.one_of(
    st.none(),
    st.just(""),
    st.booleans(),
    st.integers(-5, 200),
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.decimals(allow_nan=True, allow_infinity=True, places=3),
)


@settings(max_examples=60)
@given(st.lists(st.tuples(junk, junk, junk), min_size=1, max_size=6), st.booleans())
def test_only_documented_errors_escape(rows, repr_floats):
    columns = {
        "score": [r[0] for r in rows],
        "complaints": [r[1] for r in rows],
        "quarters_early": [r[2] for r in rows],
    }
    attributes = {"region": ["R"] * len(rows), "head": ["H"] * len(rows)}
    try:
        out = evaluate_arrays(
            scheme_a(), columns, attributes, floats="repr" if repr_floats else "refuse"
        )
    except ValidationErrorGroup:  # every row problem collected in the group, none loose
        return
    assert out.size == len(rows)


def test_derived_inputs_agree_with_the_exact_path():
    """Scheme B's annual average is derived from four quarters and rounded once."""
    from bankkpi import SubjectRow, evaluate, load_scheme  # noqa: PLC0415
    from bankkpi.vector import evaluate_arrays  # noqa: PLC0415

    scheme = load_scheme(
        (Path(__file__).parent.parent / "examples" / "scheme_b.toml").read_text(encoding="utf-8"),
        format="toml",
    )
    rng = np.random.default_rng(11)
    n = 300
    columns = {q: rng.integers(8600, 9401, n) for q in ("q1", "q2", "q3", "q4")}  # many .5 ties
    regions = [f"R{i % 7}" for i in range(n)]
    out = evaluate_arrays(scheme, columns, {"region": np.array(regions)})
    rows = [
        SubjectRow(
            f"o{i:03d}",
            {"region": regions[i]},
            {q: Decimal(int(columns[q][i])).scaleb(-2) for q in columns},
        )
        for i in range(n)
    ]
    exact = {t.subject: t for t in evaluate(scheme, rows).totals}
    for i in range(n):
        total = exact[f"o{i:03d}"]
        assert (int(total.penalty * 100), int(total.reward * 100)) == (
            int(out.penalty[i]),
            int(out.reward[i]),
        )


def test_a_derived_input_is_not_read_from_a_column():
    from bankkpi import load_scheme  # noqa: PLC0415
    from bankkpi.exceptions import ValidationErrorGroup  # noqa: PLC0415
    from bankkpi.vector import evaluate_arrays  # noqa: PLC0415

    scheme = load_scheme(
        (Path(__file__).parent.parent / "examples" / "scheme_b.toml").read_text(encoding="utf-8"),
        format="toml",
    )
    columns = {q: np.array([9000]) for q in ("q1", "q2", "q3", "q4", "annual_avg")}
    with pytest.raises(ValidationErrorGroup) as info:
        evaluate_arrays(scheme, columns, {"region": np.array(["R"])})
    assert "derived" in str(info.value)


_KEYS = st.text(alphabet=st.sampled_from("aZ0 _-华东区🙂\u00e9\x01"), min_size=1, max_size=12)
"""Text keys: ASCII, CJK, an emoji (past 16 bits), a control character."""


@settings(max_examples=200)
@given(st.lists(_KEYS, min_size=1, max_size=40), st.booleans())
def test_text_keys_factorize_as_numpy_unique(words, collide):
    """Text group keys, packed or hashed (every hash colliding, too), give numpy.unique's
    sorted keys and each row's position among them."""
    from bankkpi.vector import _Groups, _text_codes  # noqa: PLC0415

    values = np.array(words)
    expected_keys, expected_index = np.unique(values, return_inverse=True)
    digest = (lambda points: np.zeros(points.shape[0], dtype=np.int64)) if collide else None
    keys, index, sizes = _text_codes(values, digest)
    assert keys.tolist() == expected_keys.tolist()
    assert index.tolist() == expected_index.reshape(-1).tolist()
    assert sizes.tolist() == np.bincount(expected_index.reshape(-1)).tolist()
    groups = _Groups.of(values)
    assert groups.keys.tolist() == expected_keys.tolist()
    assert groups.sizes.tolist() == np.bincount(expected_index.reshape(-1)).tolist()


@settings(max_examples=200)
@given(
    st.lists(st.integers(-3, 60), min_size=1, max_size=40),
    st.sampled_from([np.int64, np.int32, np.uint16]),
    st.sampled_from([0, 2**40]),
)
def test_integer_keys_factorize_as_numpy_unique(values, dtype, shift):
    """Integer group keys — counted when small and none negative, else through
    numpy.unique (a negative key, or keys far past the rows' count) — give
    numpy.unique's sorted keys, each row's position and each key's count."""
    from bankkpi.vector import _Groups  # noqa: PLC0415

    if dtype is np.uint16:
        values = [abs(v) for v in values]
        shift = 0
    array = np.array(values, dtype=np.int64) + shift
    array = array.astype(dtype)
    expected_keys, expected_index = np.unique(array, return_inverse=True)
    groups = _Groups.of(array)
    assert groups.keys.tolist() == expected_keys.tolist()
    assert groups.index.tolist() == expected_index.reshape(-1).tolist()
    assert groups.sizes.tolist() == np.bincount(expected_index.reshape(-1)).tolist()


def test_packed_text_keys_never_overlap():
    """Code points sit in fields of the width the largest needs: no two strings share
    a key ("\\x00@" and "\\x01" would, with fields one bit narrower)."""
    from bankkpi.vector import _text_codes  # noqa: PLC0415

    keys, index, sizes = _text_codes(np.array(["\x00@", "\x01", "A", "\x00@"]))
    assert keys.tolist() == ["\x00@", "\x01", "A"]
    assert index.tolist() == [0, 1, 2, 0]
    assert sizes.tolist() == [2, 1, 1]


_WORDS = st.lists(
    st.text(alphabet=st.sampled_from("0123456789R华东区\x00 \U0001f642"), min_size=1, max_size=9),
    min_size=1,
    max_size=60,
)


def _keys_for(path: str, words: list[str]) -> list[str]:
    """Text keys from ``words`` that take one ``path`` through :func:`_text_codes`."""
    if path == "counted":  # two short varying columns after a shared prefix: a small range
        return ["分行" + "".join(c for c in w if c in "R0123")[:2] for w in words]
    if path == "spread":  # seven bits a column, nine columns: exact, far too wide to count
        return ["".join(c if c in "0123456789R" else "A" for c in w) for w in words] + ["~" * 9]
    return [w + "华" * 6 for w in words]  # past 63 bits: hashed


@settings(max_examples=300)
@given(
    _WORDS,
    st.sampled_from(["<", ">"]),
    st.sampled_from(["counted", "spread", "hashed", "colliding"]),
)
def test_text_keys_factorize_as_numpy_unique_by_every_path(words, order, path):
    """Every way text keys are factorized gives numpy.unique's keys, positions and
    counts: exact keys counted in a small range or, spread over a wide one, sorted
    and found through the hash table; hashed keys; hashes that all collide; and
    strings of either byte order (whose packed keys do not sort as their text)."""
    from bankkpi.vector import _text_codes  # noqa: PLC0415

    values = np.array(_keys_for(path, words))
    values = values.astype(values.dtype.newbyteorder(order))
    digest = None
    if path == "colliding":
        digest = lambda points: np.zeros(points.shape[0], dtype=np.int64)  # noqa: E731
    expected_keys, expected_index, expected_sizes = np.unique(
        values, return_inverse=True, return_counts=True
    )
    keys, index, sizes = _text_codes(values, digest)
    assert keys.tolist() == expected_keys.tolist()
    assert index.tolist() == expected_index.reshape(-1).tolist()
    assert sizes.tolist() == expected_sizes.tolist()


@settings(max_examples=300)
@given(
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=50, unique=True),
    st.lists(st.integers(0, 10**6), min_size=1, max_size=80),
    st.one_of(st.none(), st.integers(1, 12)),
)
def test_positions_find_each_value_among_the_keys(keys, picks, bits):
    """The hash table's positions equal numpy.searchsorted's, however many keys share
    a slot (one slot for all of them, at one bit)."""
    from bankkpi.vector import _positions  # noqa: PLC0415

    ordered = np.array(sorted(keys), dtype=np.int64)
    values = ordered[np.array(picks) % ordered.shape[0]]
    found = _positions(ordered, values, bits)
    assert found.tolist() == np.searchsorted(ordered, values).tolist()


_REGIONS = st.sampled_from(["R1", "R2", "华东", " ", "", "\u3000", "\t"])


@settings(max_examples=60, deadline=None)
@given(st.lists(_REGIONS, min_size=1, max_size=12))
def test_blank_group_keys_are_named_row_by_row_however_found(keys):
    """Blank keys of a grouping attribute, looked for among its distinct keys once
    factorized, are refused naming every blank row, as the row-by-row check names them
    when another input is refused too."""
    n = len(keys)
    columns = {"score": ["97"] * n, "complaints": [0] * n}
    attributes = {"region": keys, "head": ["H"] * n}
    ids = [f"o{i}" for i in range(n)]
    blank = [i for i, key in enumerate(keys) if not key.strip()]
    if not blank:
        assert evaluate_arrays(scheme_a(), columns, attributes, subjects=ids).size == n
        return
    with pytest.raises(ValidationErrorGroup) as alone:
        evaluate_arrays(scheme_a(), columns, attributes, subjects=ids)
    (problem,) = alone.value.problems
    assert isinstance(problem, MissingDataError)
    assert f"no attribute 'region' ({len(blank)} row" in str(problem)
    assert f"row {blank[0]} (o{blank[0]})" in str(problem)
    refused = {**columns, "score": ["104", *columns["score"][1:]]}  # row 0 out of scale too
    with pytest.raises(ValidationErrorGroup) as both:
        evaluate_arrays(scheme_a(), refused, attributes, subjects=ids)
    found = [p for p in both.value.problems if isinstance(p, MissingDataError)]
    assert [str(p) for p in found] == [str(problem)]
    assert len(both.value.problems) == 2


class _NA:
    """Like pandas' ``NA``: a comparison gives ``NA``, whose truth is ambiguous."""

    def __ne__(self, other):
        return self

    def __eq__(self, other):
        return self

    def __bool__(self):
        raise TypeError("boolean value of NA is ambiguous")

    __hash__ = object.__hash__

    def __str__(self):
        return "<NA>"


@pytest.mark.parametrize(
    "missing", [None, np.nan, float("nan"), np.datetime64("NaT"), _NA()], ids=repr
)
def test_a_missing_group_key_in_an_object_column_is_refused_not_grouped(missing):
    """A pandas column's missing key (None, NaN, NaT, NA) is a blank key, refused by
    row — not the text 'nan' or '<NA>', a group like any other, as it once was."""
    keys = np.array(["R1", missing, "R2", 7], dtype=object)
    with pytest.raises(ValidationErrorGroup) as info:
        evaluate_arrays(
            scheme_a(),
            {"score": ["97", "96", "95", "94"], "complaints": [0, 0, 0, 0]},
            {"region": keys, "head": ["H"] * 4},
            subjects=["o1", "o2", "o3", "o4"],
        )
    (problem,) = info.value.problems
    assert "no attribute 'region' (1 row: row 1 (o2))" in str(problem)
    ok = evaluate_arrays(
        scheme_a(),
        {"score": ["97", "96", "95", "94"], "complaints": [0, 0, 0, 0]},
        {"region": np.array(["R1", "R1", "R2", 7], dtype=object), "head": ["H"] * 4},
    )
    assert ok.group_totals["region"].keys.tolist() == ["7", "R1", "R2"]  # others: as text


@pytest.mark.parametrize("missing", [None, np.nan, _NA()], ids=repr)
def test_a_missing_subject_id_is_blank(missing):
    from bankkpi.vector import _subject_array  # noqa: PLC0415

    ids, problems = _subject_array(np.array(["o1", missing, "o3"], dtype=object), 3)
    assert ids is not None
    assert ids.tolist() == ["o1", "", "o3"]
    assert [str(p) for p in problems] == ["row 1: 'subject' must not be blank (1 row: row 1): ''"]


def test_int_group_keys_beside_a_refused_input_are_not_checked_for_blanks():
    """Int group keys cannot be blank: a refused input beside them is reported as
    itself (a reviewer found the blank check failing on ints)."""
    with pytest.raises(ValidationErrorGroup) as info:
        evaluate_arrays(
            scheme_a(),
            {"score": ["97", "101"], "complaints": [0, 0]},
            {"region": np.array([1, 2]), "head": ["H", ""]},
        )
    assert [type(p) for p in info.value.problems] == [MissingDataError, OutOfRangeError]
    assert "no attribute 'head' (1 row: row 1)" in str(info.value.problems[0])


def test_text_keys_of_no_rows_factorize_as_numpy_unique():
    from bankkpi.vector import _text_codes  # noqa: PLC0415

    keys, index, sizes = _text_codes(np.array([], dtype="<U3"))
    assert (keys.dtype, keys.shape, index.tolist(), sizes.tolist()) == (
        np.dtype("<U3"),
        (0,),
        [],
        [],
    )


def test_blank_group_keys_are_found_when_factorized_in_threads():
    """Past one block the keys are factorized in a thread beside the columns; blank
    keys are still refused by row."""
    n = (1 << 17) + 5
    keys = np.array(["R1", "R2"] * (n // 2) + ["R1"])
    keys[[5, n - 1]] = ["", " "]
    columns = {"score": np.full(n, 9700), "complaints": np.zeros(n, dtype=np.int64)}
    with pytest.raises(ValidationErrorGroup) as info:
        evaluate_arrays(scheme_a(), columns, {"region": keys, "head": np.full(n, "H")}, workers=2)
    (problem,) = info.value.problems
    assert f"no attribute 'region' (2 rows: row 5, row {n - 1})" in str(problem)


@settings(max_examples=200)
@given(st.lists(_KEYS, min_size=1, max_size=30), st.integers(1, 4))
def test_text_hash_is_its_polynomial_in_any_batches(words, rows):
    """The hash of each row is ``Σ word × P**k`` modulo 2**64 over its code points, two
    to a word when they pair up, whatever the batches the rows are cast in."""
    from bankkpi.vector import _text_hash  # noqa: PLC0415

    values = np.array(words)
    points = values.view(np.uint32).reshape(len(words), -1)
    pairs = points.shape[1] % 2 == 0
    expected = []
    for row in points.tolist():
        words_ = [row[i] | row[i + 1] << 32 for i in range(0, len(row), 2)] if pairs else row
        total = sum(w * pow(1099511628211, len(words_) - k, 2**64) for k, w in enumerate(words_))
        expected.append(total % 2**64)
    assert _text_hash(points, rows).view(np.uint64).tolist() == expected


@settings(max_examples=200)
@given(st.lists(_KEYS, min_size=2, max_size=30, unique=True), st.data())
def test_same_text_finds_any_row_unlike_its_key(words, data):
    """The check that every row equals its key's string (a hash collision, else) finds
    one changed row in any batch, and passes when none is changed."""
    from bankkpi.vector import _same_text  # noqa: PLC0415

    distinct = np.array(words)
    index = np.array(data.draw(st.lists(st.integers(0, len(words) - 1), min_size=1, max_size=40)))
    values = distinct[index]
    rows = data.draw(st.integers(1, 5))
    assert _same_text(distinct, index, values, rows)
    changed = data.draw(st.integers(0, index.shape[0] - 1))
    values[changed] = distinct[(index[changed] + 1) % len(words)]
    assert not _same_text(distinct, index, values, rows)


@settings(max_examples=100)
@given(st.integers(1, 1500), st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_columns_reduce_as_numpy_does(rows, width, seed):
    """The least and greatest code point of each column, found in long rows, are
    numpy's own, whether the rows fill whole batches or not."""
    from bankkpi.vector import _by_column  # noqa: PLC0415

    points = np.random.default_rng(seed).integers(0, 2**32, (rows, width), dtype=np.uint32)
    for reduce in (np.minimum, np.maximum):
        assert _by_column(reduce, points).tolist() == reduce.reduce(points, axis=0).tolist()


@settings(max_examples=200)
@given(st.lists(_KEYS.filter(str.strip), min_size=1, max_size=30))
def test_repeated_subjects_are_found_by_keys_then_named(words):
    """Repeated subject ids (found from packed or hashed keys, then by the text) are
    reported exactly when some id repeats an earlier row's."""
    from bankkpi.vector import _subject_array  # noqa: PLC0415

    _text, problems = _subject_array(np.array(words), len(words))
    repeats = [k for k, word in enumerate(words) if word in words[:k]]
    duplicates = [p for p in problems if isinstance(p, DuplicateError)]
    assert bool(duplicates) == bool(repeats)
    if repeats:
        assert f"row {repeats[0]} (" in str(duplicates[0])  # rows are numbered from 0


def test_subject_ids_are_the_results_own():
    """Results keep their own read-only copy of the subject ids."""
    scheme = scheme_a()
    rows = _csv_rows()[:50]
    ids = np.array([r["subject"] for r in rows])
    out = evaluate_arrays(
        scheme,
        {k: [r[k] for r in rows] for k in INPUTS},
        {k: np.array([r[k] for r in rows]) for k in ("region", "head")},
        subjects=ids,
    )
    expected = ids.tolist()
    ids[:] = "changed"
    assert out.subjects.tolist() == expected
    assert not out.subjects.flags.writeable


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10000).map(lambda n: n / 100),  # at most two places
            st.floats(0, 100, allow_nan=False),  # more places, mostly
            st.sampled_from([-0.0, 100.0, 0.005, 99.995, 1e-320, 100.01, -1.0]),
            st.sampled_from([float("nan"), float("inf"), 1e300]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_float_columns_convert_as_their_reprs_row_by_row(scores):
    """A float column converted at once gives what converting each float through its
    shortest repr gives (the same counts, or the same errors)."""

    def run(column):
        return _read_score(column, "repr")

    at_once = run(np.array(scores, dtype=np.float64))
    with mock.patch("bankkpi.vector._fast_counts", return_value=None):  # each float's repr
        row_by_row = run(np.array(scores, dtype=np.float64))
    assert at_once == row_by_row


_GOOD_TEXT = st.one_of(
    st.integers(0, 10000).map(lambda n: f"{n // 100}.{n % 100:02d}"),
    st.integers(0, 100).map(str),
    st.sampled_from(["-0", "-0.00", ".5", "5.", "07.50", "100.00", "0"]),
)
_ODD = (  # past the precision or the scale, not plain decimals, or beyond int64
    *("100.001", "0.005", "99.999", "100.01", "-1", "", " 9", "9 ", "+9", "1e1", "1_0"),
    *("9..1", "1.2.3", "-", ".", "--1", "1-", "1\x002", "NaN", "١٢", "12345678901234567890"),
)
_ODD_TEXT = st.sampled_from(_ODD)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_GOOD_TEXT, min_size=1, max_size=20),
    st.one_of(st.none(), _ODD_TEXT),
    st.integers(0, 20),
)
def test_text_columns_convert_as_decimals_row_by_row(good, odd, where):
    """A text column converted at once gives what Decimal(text) row by row gives (the
    same counts, or the same errors), with one odd text among plain ones or none."""
    scores = list(good)
    if odd is not None:
        scores.insert(where % (len(scores) + 1), odd)
    _same_both_ways(scores)


@pytest.mark.parametrize("odd", _ODD)
def test_each_odd_text_converts_as_row_by_row(odd):
    _same_both_ways(["5", odd, "95.50"])


def _same_both_ways(scores):
    def run(column):
        return _read_score(column, "refuse")

    with mock.patch("bankkpi.vector._fast_counts", return_value=None):  # Decimal(text) each
        row_by_row = run(np.array(scores, dtype=object))
    assert run(np.array(scores)) == row_by_row
    assert run(list(scores)) == row_by_row  # a list of str is read at once too
    assert run(np.array(scores, dtype=object)) == row_by_row  # so is a pandas-like column


def test_text_counts_stop_where_int64_would():
    """Texts whose scaled counts need more than 18 digits are left to the exact path."""
    from bankkpi.vector import _text_counts  # noqa: PLC0415

    assert _text_counts(np.array(["999999999999999999"]), 0).tolist() == [999999999999999999]
    assert _text_counts(np.array(["999999999999999999"]), 1) is None  # 19 digits scaled
    assert _text_counts(np.array(["12345678901234567890"]), 0) is None
    assert _text_counts(np.array(["-0.5", ".25", "7."]), 2).tolist() == [-50, 25, 700]


def test_a_ragged_column_is_a_typed_error():
    """Nested lists of uneven length are refused with the library's error, naming the
    column and rows, not with numpy's ValueError."""
    for columns in (
        {"score": [[1, 2], [3]], "complaints": [0, 0]},
        {"complaints": [0, 0], "score": [[1, 2], [3]]},
    ):
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme_a(), columns, {"region": ["R", "R"], "head": ["H", "H"]})
        assert "'score' must be an exact number" in str(info.value.problems[0])


def _read_score(column, floats):
    """Scheme A's score column as read (places and counts), or the problems raised."""
    from bankkpi.vector import _prepare  # noqa: PLC0415

    n = len(column)
    try:
        env, _groups = _prepare(
            scheme_a(),
            {"score": column, "complaints": np.zeros(n, dtype=np.int64)},
            {"region": np.array(["R"] * n), "head": np.array(["H"] * n)},
            subjects=None,
            places=None,
            floats=floats,
        )
    except ValidationErrorGroup as exc:
        return [str(p) for p in exc.problems]
    score = env.variables["score"]
    return [score.places, score.counts.tolist()]


@pytest.mark.parametrize(
    "duplicate",
    [copy.deepcopy, lambda c: pickle.loads(pickle.dumps(c))],  # noqa: S301 - our own bytes
)
def test_a_copied_variable_is_read_only_and_never_taken_for_a_temporary(duplicate):
    """A deep-copied or unpickled context reads its variables as the original does.

    numpy gives such arrays back writeable and owning their data — what the array
    path's temporaries look like — so a formula reusing a temporary must not take
    one for its own.
    """
    rule = Rule(
        "P",
        Text("罚", "penalty"),
        "penalty",
        Sum((Shortfall(AtLeast(95), "score", rate=200, base=1000), Fixed(Decimal(1)))),
        RoundingPolicy("half_up", "yuan"),
    )
    env = duplicate(ArrayContext(3, {"score": Counts([9150, 9500, 8937], 2)}))
    assert not env.variables["score"].counts.flags.writeable
    assert rule.evaluate_fen(env).tolist() == [170100, 100, 212700]
    assert rule.evaluate_fen(env).tolist() == [170100, 100, 212700]  # the scores unchanged
    assert env.variables["score"].counts.tolist() == [9150, 9500, 8937]
    assert env.variables["score"].span == (8937, 9500)


@pytest.mark.parametrize(
    "duplicate",
    [copy.copy, copy.deepcopy, lambda r: pickle.loads(pickle.dumps(r))],  # noqa: S301
)
def test_copied_results_are_values_too(duplicate):
    """A copied or unpickled result's arrays are read-only, as the original's are
    (numpy gives unpickled and deep-copied arrays back writeable), and hold the
    same numbers: amounts, columns, group totals, roll-ups and ranks."""
    rng = np.random.default_rng(3)
    n = 400
    columns = {"score": rng.integers(9_000, 10_001, n), "complaints": rng.integers(0, 3, n)}
    region = np.array([f"R{j}" for j in rng.integers(0, 5, n)])
    results = evaluate_arrays(
        scheme_a(),
        columns,
        {"region": region, "head": region},
        subjects=[f"o{i}" for i in range(n)],
    )
    copied = duplicate(results)

    def arrays(r):
        totals = [*r.group_totals.values(), *r.rollups.values()]
        ranks = [r.ranks[name] for name in r.ranks]
        return [
            r.subjects,
            r.penalty,
            r.reward,
            *r.amounts.values(),
            *(a for t in totals for a in (t.keys, t.penalty, t.reward)),
            *(a for k in ranks for a in (k.rank_from_top, k.rank_from_bottom, k.group_size)),
        ]

    assert [a.tolist() for a in arrays(copied)] == [a.tolist() for a in arrays(results)]
    assert not any(a.flags.writeable for a in arrays(copied))
    assert copied.total("penalty") == results.total("penalty") > 0


def test_blocks_are_set_by_the_population_size_alone():
    """Equal blocks: at most 2^19 rows up to 2^22 rows, then 8 or 9, then at most 2^20."""
    for size, count, largest in [
        (0, 1, 0),
        (2**19, 1, 2**19),
        (2**19 + 1, 2, 2**18 + 1),
        (10**6, 2, 500_000),
        (2**22, 8, 2**19),
        (5 * 10**6 + 1, 9, 555_556),
        (10**7, 10, 10**6),
        (10**8, 96, 1_041_667),
    ]:
        blocks = vector_module._blocks(size)
        rows = [stop - start for start, stop in blocks]
        assert (len(blocks), max(rows)) == (count, largest), size
        assert blocks[0][0] == 0
        assert blocks[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
        assert max(rows) - min(rows) <= 1


@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from([" ", "\t", "\n", "\u3000", "\xa0", "\u2003", "a", "区", "0"]),
            max_size=4,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_a_blank_key_is_one_that_strips_to_nothing(strings):
    """Blank subject ids and group keys (refused) are found without stripping them."""
    from bankkpi.vector import _blank  # noqa: PLC0415

    assert _blank(np.array(strings)).tolist() == [not s.strip() for s in strings]


@pytest.mark.parametrize("workers", [1, 2])
def test_the_benchmark_scheme_over_many_regions_agrees_with_the_exact_path(workers):
    """The benchmark scheme over 30,000 outlets in 600 regions, on both paths.

    Each region's two lowest come from the sorted (region, score) keys (too many
    cells to count), with or without threads; the amounts are the exact path's
    to the fen.
    """
    benchmarks = str(Path(__file__).parent.parent / "benchmarks")
    with mock.patch("sys.path", [benchmarks, *__import__("sys").path]):
        from bankkpi_workload import scheme  # noqa: PLC0415 - the benchmark's own module
        from workload import make_population  # noqa: PLC0415

    scores, regions = make_population(30_000, 17)
    out = evaluate_arrays(scheme(), {"score": scores}, {"region": regions}, workers=workers)
    rows = [
        SubjectRow(f"o{i}", {"region": str(int(r))}, {"score": Decimal(int(s)).scaleb(-2)})
        for i, (s, r) in enumerate(zip(scores, regions, strict=True))
    ]
    fen = {line.subject: int(line.amount * 100) for line in evaluate(scheme(), rows).lines}
    assert [fen[row.subject] for row in rows] == out.penalty.tolist()
    assert out.penalty.any()
    assert out.penalty.sum() == sum(fen.values())


class _NAType:
    """A stand-in for pandas' ``NA`` (``pandas._libs.missing.NAType``), pandas not needed."""

    __module__ = "pandas._libs.missing"

    def __repr__(self):
        return "<NA>"


_NAType.__name__ = "NAType"


@pytest.mark.parametrize("floats", ["refuse", "repr"])
def test_missing_cells_of_a_text_column_take_the_default_as_blanks_do(floats):
    """A NaN or pandas' NA among text is a missing cell, under either float policy.

    pandas' ``str`` columns hold NaN for a missing cell, its ``string`` columns
    ``NA``: the input's default, as for a blank; without a default, a missing
    value named by its row. Any other float among text follows ``floats``, and
    so does a NaN among floats (a blank only when floats are read).
    """
    scheme = scheme_a()
    attributes = {"region": ["R1", "R1", "R2"], "head": ["H", "H", "H"]}
    base = {"score": ["97.5", "99", "95"], "complaints": [0, 1, 0]}
    blank = evaluate_arrays(scheme, {**base, "quarters_early": ["1", "", "2"]}, attributes)
    for missing in (float("nan"), _NAType(), None):
        column = np.array(["1", missing, "2"], dtype=object)
        out = evaluate_arrays(scheme, {**base, "quarters_early": column}, attributes, floats=floats)
        assert out.net.tolist() == blank.net.tolist()
        scores = np.array(["97.5", missing, "95"], dtype=object)
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, {**base, "score": scores}, attributes, floats=floats)
        assert "no value of input 'score'" in str(info.value.exceptions[0])
    decimals = np.array([Decimal(1), float("nan"), Decimal(2)], dtype=object)
    out = evaluate_arrays(scheme, {**base, "quarters_early": decimals}, attributes, floats=floats)
    assert out.net.tolist() == blank.net.tolist()  # among Decimals, a NaN is a blank too
    numbers = [1.0, float("nan"), 2.0]  # floats, not text: the NaN is one of them
    if floats == "refuse":
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, {**base, "quarters_early": numbers}, attributes)
        assert "(3 rows: row 0, row 1, row 2)" in str(info.value.exceptions[0])
    else:
        out = evaluate_arrays(
            scheme, {**base, "quarters_early": numbers}, attributes, floats="repr"
        )
        same = evaluate_arrays(scheme, {**base, "quarters_early": ["1", "", "2"]}, attributes)
        assert out.net.tolist() == same.net.tolist()
    mixed = np.array(["97.5", 99.1, "95"], dtype=object)
    if floats == "refuse":
        with pytest.raises(ValidationErrorGroup) as info:
            evaluate_arrays(scheme, {**base, "score": mixed}, attributes)
        assert isinstance(info.value.exceptions[0], FloatMoneyError)
    else:
        out = evaluate_arrays(scheme, {**base, "score": mixed}, attributes, floats="repr")
        same = evaluate_arrays(scheme, {**base, "score": ["97.5", "99.1", "95"]}, attributes)
        assert out.net.tolist() == same.net.tolist()


def test_pandas_columns_with_missing_cells():
    """With pandas installed (a benchmark extra, not a dev dependency): its own columns.

    A float column's NaN stays a float (refused unless ``floats="repr"``); a
    ``str`` column's NaN and a ``string`` column's ``NA`` are blanks.
    """
    pd = pytest.importorskip("pandas")
    scheme = scheme_a()
    attributes = {"region": ["R1", "R1", "R2"], "head": ["H", "H", "H"]}
    base = {"score": ["97.5", "99", "95"], "complaints": [0, 1, 0]}
    blank = evaluate_arrays(scheme, {**base, "quarters_early": ["1", "", "2"]}, attributes)
    for column in (
        pd.Series(["1", None, "2"], dtype="str"),
        pd.Series(["1", None, "2"], dtype="string"),
    ):
        out = evaluate_arrays(scheme, {**base, "quarters_early": column}, attributes)
        assert out.net.tolist() == blank.net.tolist()
    floats = pd.Series([1.0, None, 2.0], dtype="float64")
    with pytest.raises(ValidationErrorGroup) as info:
        evaluate_arrays(scheme, {**base, "quarters_early": floats}, attributes)
    assert isinstance(info.value.exceptions[0], FloatMoneyError)
    out = evaluate_arrays(scheme, {**base, "quarters_early": floats}, attributes, floats="repr")
    assert out.net.tolist() == blank.net.tolist()
    frame = pd.DataFrame({**base, "quarters_early": ["1", None, "2"], **attributes})
    assert evaluate_arrays(scheme, frame, frame).net.tolist() == blank.net.tolist()


class _Frame:
    """A stand-in for a pandas or polars DataFrame: ``columns`` and a column per name."""

    def __init__(self, data):
        self._data = dict(data)
        self.columns = [*self._data, 7]  # a column name that is not text is left out

    def __getitem__(self, name):
        return self._data[name]

    def __bool__(self):
        raise ValueError("The truth value of a DataFrame is ambiguous.")


def test_a_data_frame_gives_its_columns_and_anything_else_is_refused():
    """columns= and attributes= may be one data frame, as read from a file."""
    scheme = scheme_a()
    data = {
        "score": ["97.5", "99", "95"],
        "complaints": [0, 1, 0],
        "region": ["R1", "R1", "R2"],
        "head": ["H", "H", "H"],
        "remark": ["a", "b", "c"],  # not an input: left alone
    }
    frame = _Frame(data)
    expected = evaluate_arrays(
        scheme,
        {k: data[k] for k in ("score", "complaints")},
        {k: data[k] for k in ("region", "head")},
    )
    assert evaluate_arrays(scheme, frame, frame).net.tolist() == expected.net.tolist()
    scenarios = vector_module.grid({"rules[A.P3].**.rate": [150, 200]})
    assert vector_module.what_if(scheme, frame, frame, scenarios).records() == (
        vector_module.what_if(scheme, data, data, scenarios).records()
    )
    table = vector_module.monte_carlo(
        scheme, frame, frame, draw=lambda _rng, _base: {}, runs=1, seed=1
    )
    assert table.results[0].penalty_fen == expected.total("penalty")
    for bad, what in (([1, 2], "columns"), ("score", "columns")):
        with pytest.raises(InvalidValueError, match=f"'{what}' must map names to columns"):
            evaluate_arrays(scheme, bad, frame)
    with pytest.raises(InvalidValueError, match="'attributes' must map names to columns"):
        evaluate_arrays(scheme, frame, ["R1", "R1", "R2"])

    class Lazy(_Frame):  # polars' LazyFrame: names, but no column by name
        def __getitem__(self, name):
            raise TypeError("'LazyFrame' object is not subscriptable")

    with pytest.raises(InvalidValueError, match="a lazy frame collected first"):
        evaluate_arrays(scheme, Lazy(data), frame)
