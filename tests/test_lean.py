"""The lean path of ``evaluate`` (amounts first, traces on demand) equals the full path.

``evaluate`` computes each amount with ``Rule.lean_amount`` where the formula has a
lean path and builds the trace only when ``ResultLine.trace`` is first read. These
tests run random schemes (every formula kind, rank selections, bad rows) both ways —
the second time with the lean path switched off, so every trace is built eagerly —
and require identical amounts, traces, totals and errors.
"""

import copy
import decimal
import pickle
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from unittest import mock

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    Band,
    BandAmount,
    BandSet,
    BinOp,
    Bottom,
    Call,
    Choose,
    Clamp,
    Compare,
    Context,
    Discretionary,
    Escalating,
    Fixed,
    InBand,
    Input,
    InRanks,
    Multiply,
    Num,
    Percentile,
    PerCount,
    Period,
    PerPeriodEarly,
    RankingRule,
    RankingSpec,
    RankRange,
    RateTable,
    RoundingPolicy,
    Rule,
    Scheme,
    Shortfall,
    SubjectRow,
    Sum,
    Text,
    Top,
    Trace,
    When,
    dump_scheme,
    evaluate,
    rank,
)
from bankkpi._explain import exact_decimal
from bankkpi._formulas import Var, _round, lean_capable
from bankkpi._money import CONTEXT, round_fraction
from bankkpi._schemes import ResultLine
from bankkpi.exceptions import ZeroDenominatorError

from .agreement import INJECTIONS, random_population, random_scheme
from .test_agreement import DrawPicker

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def _snapshot(results):
    return {
        "lines": [
            (line.subject, line.rule, line.kind, str(line.amount), line.trace.to_dict())
            for line in results.lines
        ],
        "amounts_after": [str(line.amount) for line in results.lines],
        "totals": [(t.subject, str(t.penalty), str(t.reward)) for t in results.totals],
        "group_totals": {
            k: {g: (str(a), str(b)) for g, (a, b) in v.items()}
            for k, v in results.group_totals.items()
        },
        "rollups": {k: {g: str(a) for g, a in v.items()} for k, v in results.rollups.items()},
        "errors": list(results.errors),
    }


def _eager(scheme, rows):
    """``evaluate`` with the lean path switched off: every amount from its trace."""
    with mock.patch.object(Rule, "lean_amount_of", return_value=None) as lean:
        result = evaluate(scheme, rows)
    assert lean.called or not result.lines  # the patch reached the path evaluate takes
    return result


def _check_both_ways(scheme, rows):
    lean = evaluate(scheme, rows)
    amounts = [line.amount for line in lean.lines]  # before any trace is built
    eager = _eager(scheme, rows)
    assert _snapshot(lean) == _snapshot(eager)
    assert amounts == [line.trace.amount for line in lean.lines]
    assert lean.lines == eager.lines


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_lean_and_full_paths_agree_on_random_schemes(data):
    pick = DrawPicker(data.draw)
    inject = data.draw(st.sampled_from((None, *INJECTIONS)), label="inject")
    drawn = random_scheme(pick, inject)
    size = data.draw(st.integers(20, 80), label="size")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    population = random_population(drawn, seed, size, inject=inject)
    _check_both_ways(drawn.scheme, list(population.rows))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_lean_amount_is_the_trace_amount(data):
    """Rule by rule: when the lean path gives an amount, evaluate gives it and no error."""
    pick = DrawPicker(data.draw)
    drawn = random_scheme(pick)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    population = random_population(drawn, seed, 30)
    results = evaluate(drawn.scheme, population.rows)
    contexts = {}
    for line in results.lines:
        contexts.setdefault(line.subject, line.trace)  # every trace builds without error
    for rule in drawn.scheme.rules:
        for row in population.rows:
            values = {k: v for k, v in row.values.items() if str(v).strip()}
            context = Context(row.subject, values)
            amount = rule.lean_amount(context)
            if amount is not None:
                assert rule.evaluate(context).amount == amount


def test_the_benchmark_scheme_is_lean_and_agrees():
    sys.path.insert(0, str(BENCHMARKS))
    from bankkpi_workload import scheme  # noqa: PLC0415 - the benchmark's own module
    from workload import make_population  # noqa: PLC0415

    scores, regions = make_population(600, 3)
    rows = [
        SubjectRow(f"o{i}", {"region": str(int(r))}, {"score": Decimal(int(s)).scaleb(-2)})
        for i, (s, r) in enumerate(zip(scores, regions, strict=True))
    ]
    assert all(lean_capable(rule.formula) for rule in scheme().rules)
    _check_both_ways(scheme(), rows)


_COUNT = st.one_of(
    st.integers(-2, 9).map(Decimal),
    st.sampled_from(["0.5", "2.25", "-0", "1E+1", "3.000"]).map(Decimal),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["per_count", "early", "escalating", "clamp", "multiply", "nested"]),
    st.lists(st.tuples(_COUNT, _COUNT, st.sampled_from(["0", "1", "2"])), min_size=1, max_size=6),
    st.sampled_from(["0", "0.5", "12.5", "200", "0.05"]),
    st.sampled_from(["0", "0.25", "-0.25"]),
)
def test_counted_formulas_clamp_and_multiply_are_lean_and_agree(kind, data, rate, shift):
    """The lean paths of PerCount, PerPeriodEarly, Escalating, Clamp and Multiply give
    the trace's amount, and fall back to the trace's error on a bad count."""
    per_count = PerCount(rate, "points")
    low = max(Decimal(0), Decimal(rate) * 3 + Decimal(shift))  # counts 0…9: some rows below,
    high = max(low, Decimal(rate) * 6 - Decimal(shift))  # some on a bound, some above
    formula = {
        "per_count": per_count,
        "early": PerPeriodEarly(rate, "points"),
        "escalating": Escalating([rate, "500"], units="points", offence="offence"),
        "clamp": Clamp(per_count, minimum=low, maximum=high),
        "multiply": Multiply(per_count, "1.5", when=Compare("repeat", "==", 1)),
        "nested": Multiply(Clamp(Sum([per_count, Fixed("0.5")]), maximum="700"), "2"),
    }[kind]
    assert lean_capable(formula)
    rule = Rule("R", Text("规则", "rule"), "penalty", formula, RoundingPolicy("half_up", "fen"))
    scheme = _scheme_for(rule, "points", "offence", "repeat")
    rows = [
        SubjectRow(f"s{i}", {}, {"points": p, "offence": o, "repeat": r})
        for i, (p, o, r) in enumerate(data)
    ]
    _check_both_ways(scheme, rows)


_BANDS = BandSet(
    [
        Band.interval("low", "[0, 60)"),
        Band.interval("mid", "[60, 85]"),
        Band.interval("high", "(85, 100]"),
    ],
    scale=(0, 100),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["tiered", "graduated", "scaled", "bands", "in_band", "chosen", "catch_all"]),
    st.lists(
        st.sampled_from(
            ["-1", "0", "0.333", "59.99", "60", "85", "85.01", "100", "100.5", "250.5"]
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_tables_bands_and_chosen_amounts_are_lean_and_agree(kind, data):
    """The lean paths of RateTable, BandAmount, InBand and Discretionary give the
    trace's amount on every tier and band bound, and fall back to its error."""
    tiers = [("0", "2"), ("60", "3.5"), ("85.01", "0.125")]
    with_catch_all = BandSet(list(_BANDS.bands)[:2], catch_all="other")
    formula = {
        "tiered": RateTable(tiers, "score", "tiered"),
        "graduated": RateTable(tiers, "score", "graduated"),
        "scaled": RateTable(tiers, "score", "graduated", scale="0.3"),
        "bands": BandAmount(_BANDS, {"low": "500", "mid": "200.5", "high": "0"}, "score"),
        "in_band": When(InBand(_BANDS, {"low", "high"}, "score"), Fixed("300")),
        "chosen": Discretionary(Text("媒体表扬", "media praise"), "60", "100", "score"),
        "catch_all": BandAmount(with_catch_all, {"low": "1", "mid": "2", "other": "3"}, "score"),
    }[kind]
    assert lean_capable(formula)
    rule = Rule("R", Text("规则", "rule"), "reward", formula, RoundingPolicy("half_even", "fen"))
    scheme = _one_rule_scheme(rule)
    rows = [SubjectRow(f"s{i}", {}, {"score": value}) for i, value in enumerate(data)]
    _check_both_ways(attrs.evolve(scheme, rankings=[]), rows)


RULE = Rule(
    "P",
    Text("阶段", "phase"),
    "penalty",
    Sum(
        [
            Choose(
                [(InRanks("all", Top(1)), Fixed(0))],
                Shortfall(AtLeast(95), "score", rate=200, base=1000, per="3"),
            )
        ]
    ),
    RoundingPolicy("half_up", "fen"),
)


def test_an_inexact_lean_value_falls_back_to_the_trace():
    """5 points short ÷ 3 has no finite decimal: the lean path declines it."""
    ranking = rank({"a": "99", "b": "90"}, RankingRule("higher", "competition"), groups="p")
    context = Context("b", {"score": Decimal(90)}, {"all": ranking["b"]})
    assert RULE.lean_amount(context) is None
    assert RULE.evaluate(context).amount == Decimal("1333.33")
    first = Context("a", {"score": Decimal(99)}, {"all": ranking["a"]})
    assert RULE.lean_amount(first) == Decimal("0.00")
    assert RULE.lean_amount(Context("c", {"score": Decimal(90)})) is None  # no rank: an error


def test_a_deferred_line_is_a_value():
    shortfall = Shortfall(AtLeast(95), "score", rate=200, base=1000)
    rule = Rule(
        "A",
        Text("考核", "phase"),
        "penalty",
        Sum([Choose([(InRanks("all", Top(1)), Fixed(0))], shortfall)]),
        RoundingPolicy("half_up", "yuan"),
    )
    ranking = rank({"a": "99", "o": "91.5"}, RankingRule("higher", "competition"), groups="p")
    rows = [
        SubjectRow("a", {}, {"score": "99"}),
        SubjectRow("o", {}, {"score": "91.5"}),
    ]
    context = Context("o", {"score": Decimal("91.5")}, {"all": ranking["o"]})
    amount = rule.lean_amount(context)
    assert amount == Decimal(1700)
    eager = ResultLine("o", "A", "penalty", rule.evaluate(context))
    scheme = _one_rule_scheme(rule)
    deferred = evaluate(scheme, rows).lines[1]
    assert deferred.amount == Decimal(1700)
    assert deferred == eager
    assert hash(deferred) == hash(eager)
    assert repr(deferred) == repr(eager)
    assert repr(eager).startswith("ResultLine(subject='o', rule='A', kind='penalty', trace=Trace(")
    assert pickle.loads(pickle.dumps(evaluate(scheme, rows).lines[1])) == eager  # noqa: S301
    assert ResultLine("o", "A", "penalty", trace=eager.trace).trace is eager.trace
    later = evaluate(scheme, rows).lines[1]
    assert [f.name for f in attrs.fields(ResultLine)] == ["subject", "rule", "kind", "trace"]
    assert attrs.asdict(later) == attrs.asdict(eager)
    assert attrs.evolve(later, rule="B") == ResultLine("o", "B", "penalty", eager.trace)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        later.trace = eager.trace  # type: ignore[misc]


def _scheme_for(rule, *names, rankings=()):
    """A one-rule scheme whose inputs are ``names`` (no indicator)."""
    return Scheme(
        "s",
        "1",
        Text("方案", "scheme"),
        Period("2024-01-01", "2024-12-31"),
        RoundingPolicy("half_up", "yuan"),
        [rule],
        [Input(name, Text(name, name)) for name in names],
        rankings=rankings,
    )


def _one_rule_scheme(rule):
    """:func:`_scheme_for` a score, ranked as ``all``."""
    ranking = RankingSpec("all", "score", RankingRule("higher", "competition"))
    return _scheme_for(rule, "score", rankings=[ranking])


def test_lean_paths_take_rank_rows_and_entries_alike():
    """A rank as a RankRow (evaluate's) or as its RankedSubject gives the same amount."""
    ranking = rank(
        {"a": "99", "b": "90", "c": "90", "d": "80"},
        RankingRule("higher", "competition"),
        groups="p",
    )
    selections = [
        Top(1),
        Bottom(2),
        RankRange("top", 2, 3),
        RankRange("bottom", 1, 1),
        Percentile("top", 50, "ceiling"),
    ]
    for selection in selections:
        rule = Rule(
            "R",
            Text("r", "r"),
            "penalty",
            Choose([(InRanks("p", selection), Fixed(100))], Fixed(7)),
            RoundingPolicy("half_up", "yuan"),
        )
        for entry in ranking:
            row = (
                entry.subject,
                entry.group,
                entry.value,
                entry.rank_from_top,
                entry.rank_from_bottom,
                entry.group_size,
            )
            values = {"score": entry.value}
            by_row = rule.lean_amount_of(values, {"p": row})
            by_entry = rule.lean_amount_of(values, {"p": entry})
            expected = rule.evaluate(Context(entry.subject, values, {"p": entry})).amount
            assert by_row == by_entry == expected


@settings(max_examples=500)
@given(
    st.decimals(min_value=0, max_value=10**12, allow_nan=False, places=None).filter(
        lambda d: d.is_finite() and len(d.as_tuple().digits) <= 30
    ),
    st.sampled_from(("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor")),
    st.sampled_from(("0.0001", "fen", "jiao", "yuan", "10", "1000")),
)
def test_the_lean_rounding_is_round_fraction(value, mode, place):
    policy = RoundingPolicy(mode, place)
    expected = round_fraction(Fraction(value), policy)
    got = _round(value, policy)
    assert (str(got), got.is_signed()) == (str(expected), expected.is_signed())


def _numbers():
    return st.decimals(
        min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=4
    ).map(Num)


_EXPRS = st.recursive(
    _numbers(),
    lambda inner: st.one_of(
        st.builds(BinOp, st.sampled_from(("+", "-", "*", "/")), inner, inner),
        st.builds(Call, st.sampled_from(("min", "max")), st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: Call("abs", (x,)), inner),
    ),
    max_leaves=12,
)


@settings(max_examples=500)
@given(_EXPRS)
def test_an_expression_s_decimal_value_is_its_exact_value(expr):
    """Trace.of computes in Decimal where that is exact: the same rational, or the same error."""
    try:
        exact = expr.exact()
    except ZeroDenominatorError:
        assert expr.decimal_value() is None
        with pytest.raises(ZeroDenominatorError):
            Trace.of("", Text("x", "x"), expr)
        return
    decimal = expr.decimal_value()
    if decimal is not None:
        assert Fraction(*decimal.as_integer_ratio()) == exact
    assert Trace.of("", Text("x", "x"), expr).value == exact


def _exact_decimal_before(value):
    """exact_decimal as it was written before (the reference)."""
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return None
    places = max(twos, fives)
    scaled = value * 10**places
    return Decimal(scaled.numerator).scaleb(-places, context=CONTEXT)


@settings(max_examples=500)
@given(
    st.integers(-(10**40), 10**40),
    st.sampled_from((1, 2, 3, 4, 5, 8, 10, 20, 25, 3 * 5, 2**7 * 5**3, 10**20, 7 * 10**3)),
)
def test_exact_decimal_is_unchanged(numerator, denominator):
    value = Fraction(numerator, denominator)
    got, expected = exact_decimal(value), _exact_decimal_before(value)
    assert (str(got), got is None) == (str(expected), expected is None)


def test_memos_change_nothing_a_value_shows():
    """What the exact path caches on its values (private fields, ``init=False``) is
    ignored by equality, hashing, ``repr`` and scheme files."""
    shortfall = Shortfall(AtLeast(95), "score", rate=200, base=1000)
    rule = Rule("A", Text("考核", "phase"), "penalty", shortfall, RoundingPolicy("half_up", "yuan"))
    scheme = _one_rule_scheme(rule)
    before = (repr(rule), hash(rule), dump_scheme(scheme))
    rows = [SubjectRow("a", {}, {"score": "99"}), SubjectRow("o", {}, {"score": "91.5"})]
    result = evaluate(scheme, rows)
    assert [line.trace.amount for line in result.lines] == [0, 1700]  # every memo filled
    fresh = Shortfall(AtLeast(95), "score", rate=200, base=1000)
    assert rule == Rule("A", Text("考核", "phase"), "penalty", fresh, rule.rounding)
    assert (repr(rule), hash(rule), dump_scheme(scheme)) == before
    private = [f.name for f in attrs.fields(Rule) if f.name.startswith("_")]
    assert private == ["_lean_memo"]
    assert not any(f.init or f.eq or f.repr for f in attrs.fields(Rule) if f.name in private)


def test_a_long_chosen_amount_rounded_to_tens_agrees():
    """A chosen amount with more than 34 digits, rounded to tens: one rounding both ways."""
    chosen = Discretionary(Text("表扬", "praise"), "0", "1000", "chosen")
    rule = Rule("R", Text("规则", "rule"), "reward", chosen, RoundingPolicy("half_down", "10"))
    scheme = _scheme_for(rule, "chosen")
    rows = [SubjectRow("a", {}, {"chosen": "15.000000000000000000000000000000000001"})]
    _check_both_ways(scheme, rows)
    assert evaluate(scheme, rows).lines[0].amount == 20


_ATOMS = st.sampled_from(
    [
        "a",
        "b",
        "0",
        "3",
        "0.5",
        "7.25",
        "100",
        "123456789012.345678",
        "123456789012345678901234567891",
        "99999999999999999999999999.9999",
    ]
)
_SOURCES = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        st.builds("({} {} {})".format, inner, st.sampled_from("+-*/"), inner),
        st.builds("{}({}, {})".format, st.sampled_from(["min", "max"]), inner, inner),
        st.builds("abs({})".format, inner),
        st.builds("-{}".format, inner),
        st.builds(
            "(if {} {} {} then {} else {})".format,
            inner,
            st.sampled_from(["<", ">=", "=="]),
            inner,
            inner,
            inner,
        ),
    ),
    max_leaves=8,
)
_VALUES = st.sampled_from(["0", "-0", "1", "2.5", "-3", "0.333", "123456789.123456789", "1E+20"])


@settings(max_examples=300, deadline=None)
@given(_SOURCES, st.lists(st.tuples(_VALUES, _VALUES), min_size=1, max_size=5))
def test_expressions_are_lean_and_agree(source, data):
    """An expression's lean value is its trace's (or it falls back): division by zero,
    non-terminating quotients, values past 34 digits, conditionals, negative results."""
    from bankkpi import Expression  # noqa: PLC0415

    formula = Expression(source, ["a", "b"])
    assert lean_capable(formula)
    rule = Rule("R", Text("规则", "rule"), "penalty", formula, RoundingPolicy("half_up", "fen"))
    scheme = _scheme_for(rule, "a", "b")
    rows = [SubjectRow(f"s{i}", {}, {"a": a, "b": b}) for i, (a, b) in enumerate(data)]
    _check_both_ways(scheme, rows)


@pytest.mark.parametrize(
    ("source", "a", "amount"),
    [
        ("a - -123456789012345678901234567891", "0", "123456789012345678901234567891"),
        ("-99999999999999999999999999.9999 + a", "99999999999999999999999999.9999", "0"),
        ("(if a < 3 then a * 100 else 1 / 0)", "2.5", "250"),
        ("max(a, -7.125) * 2", "-10", None),  # negative: refused, so no lean amount
        ("a / 3", "1", None),  # no finite decimal form: the trace rounds the rational
    ],
)
def test_an_expression_s_lean_amount_is_its_trace_s(source, a, amount):
    """The lean path gives these amounts itself (not by falling back), equal to the
    trace's and shown in it, whatever the caller's decimal precision; or gives none."""
    from bankkpi import Expression  # noqa: PLC0415

    policy = RoundingPolicy("half_up", "yuan")
    rule = Rule("R", Text("规则", "rule"), "penalty", Expression(source, ["a"]), policy)
    context = Context("s", {"a": Decimal(a)})
    with decimal.localcontext(prec=3):
        lean = rule.lean_amount(context)
        assert lean == (None if amount is None else Decimal(amount))
        if amount is not None:
            trace = rule.evaluate(context)
            assert trace.amount == lean
            assert format(Decimal(amount), ",f") in trace.render("en")


def _alone(scheme, rows):
    """``evaluate`` with no trace shared between subjects: each built for its own."""
    trusted = Context._trusted

    def unshared(subject, values, ranks, traces=None):  # noqa: ARG001 - dropped on purpose
        return trusted(subject, values, ranks)

    with mock.patch.object(Context, "_trusted", staticmethod(unshared)):
        return _snapshot(evaluate(scheme, rows))  # every trace built inside


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_traces_shared_within_a_run_are_those_built_alone(data):
    """A run builds a shortfall's trace once per value and shares it among its
    subjects; every line's trace equals the one built for its subject alone."""
    pick = DrawPicker(data.draw)
    drawn = random_scheme(pick)
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rows = list(random_population(drawn, seed, 60).rows)
    assert _snapshot(evaluate(drawn.scheme, rows)) == _alone(drawn.scheme, rows)


def test_a_run_shares_a_shortfall_s_trace_among_equal_values_as_written():
    """91.5 and 91.50 are equal but show differently: each has its own trace."""
    shortfall = Shortfall(AtLeast(95), "score", rate=200, base=1000)
    rule = Rule("A", Text("考核", "phase"), "penalty", shortfall, RoundingPolicy("half_up", "yuan"))
    rows = [
        SubjectRow(s, {}, {"score": v}) for s, v in (("a", "91.5"), ("b", "91.5"), ("c", "91.50"))
    ]
    a, b, c = (line.trace for line in evaluate(_scheme_for(rule, "score"), rows).lines)
    assert a.expr is b.expr  # the shortfall's trace, built once: its expression shared
    assert c.expr is not a.expr
    assert "(95 − 91.5) × 200" in a.render("en")
    assert "(95 − 91.50) × 200" in c.render("en")
    assert a.amount == c.amount == 1700


@attrs.frozen
class _WorseOfTwo:
    """A user's formula that builds its shortfalls as it goes (freed after use)."""

    def evaluate(self, context):
        lower = Shortfall(AtLeast(_T95), _SCORE, rate=_RATE).evaluate(context)
        upper = Shortfall(AtLeast(_T99), _SCORE, rate=_RATE).evaluate(context)
        return max(lower, upper, key=lambda trace: trace.value)


# built once, so that each shortfall above allocates the same objects (and the
# second can take the address the first was freed from)
_SCORE, _RATE, _T95, _T99 = Var("score"), Decimal(100), Decimal(95), Decimal(99)


def test_a_shared_trace_is_never_another_formula_s_whose_id_was_reused():
    """The second shortfall may be built where the first one was freed; the run's
    memo holds the formulas it knows, so the second gets its own trace (helper-23)."""
    rule = Rule(
        "A", Text("考核", "phase"), "penalty", _WorseOfTwo(), RoundingPolicy("half_up", "yuan")
    )
    scheme = _scheme_for(rule, "score")
    rows = [SubjectRow(f"s{i}", {}, {"score": "90"}) for i in range(20)]
    assert {line.trace.amount for line in evaluate(scheme, rows).lines} == {900}


def test_a_run_s_context_copies_and_pickles_without_its_memo():
    """A user's formula may keep the context it is given: the run's memo in it is a
    cache, so a copy or a pickle of the context is the context without it."""
    seen = []

    @attrs.frozen
    class Kept:
        def evaluate(self, context):
            seen.append(context)
            return Shortfall(AtLeast(95), "score", rate=100).evaluate(context)

    rule = Rule("A", Text("考核", "phase"), "penalty", Kept(), RoundingPolicy("half_up", "yuan"))
    rows = [SubjectRow(f"s{i}", {}, {"score": str(90 + i)}) for i in range(4)]
    assert [line.trace.amount for line in evaluate(_scheme_for(rule, "score"), rows).lines] == [
        500,
        400,
        300,
        200,
    ]
    context = seen[-1]
    assert len(context._traces.entries) == 4  # the run's, shared by its contexts
    for copied in (pickle.loads(pickle.dumps(context)), copy.deepcopy(context)):  # noqa: S301
        assert copied == context
        assert not copied._traces.entries
    assert attrs.asdict(context)["values"] == {"score": Decimal(93)}


def test_a_scheme_pickles_after_a_run():
    """A rule keeps its lean path (a closure) once built; a pickle leaves it out and
    the unpickled rule builds it again (found by helper-23)."""
    clamp = Clamp(Shortfall(AtLeast(95), "score", rate=200, base=1000), maximum=1500)
    rule = Rule("A", Text("考核", "phase"), "penalty", clamp, RoundingPolicy("half_up", "yuan"))
    scheme = _one_rule_scheme(rule)
    rows = [SubjectRow("a", {}, {"score": "99"}), SubjectRow("o", {}, {"score": "91.5"})]
    before = [line.amount for line in evaluate(scheme, rows).lines]
    assert rule._lean_memo is not None  # built by the run
    again = pickle.loads(pickle.dumps(scheme))  # noqa: S301 - our own object
    assert again == scheme
    assert again.rules[0]._lean_memo is None
    assert [line.amount for line in evaluate(again, rows).lines] == before == [0, 1500]
