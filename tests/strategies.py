"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import strategies as st

from bankkpi import Band, BandSet, Period, RoundingPolicy
from bankkpi import _expressions as ex

MODES = ("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor")


def decimals_at(places: int, low: int = -(10**6), high: int = 10**6) -> st.SearchStrategy[Decimal]:
    """Decimals with exactly ``places`` fractional digits in [low, high]."""
    scale = 10**places
    return st.integers(low * scale, high * scale).map(lambda n: Decimal(n).scaleb(-places))


def scores(places: int = 2) -> st.SearchStrategy[Decimal]:
    """Inspection scores on a 0–100 scale at ``places`` decimals."""
    return decimals_at(places, 0, 100).filter(lambda d: d <= 100)


rounding_policies = st.builds(
    RoundingPolicy,
    st.sampled_from(MODES),
    st.sampled_from(["0.001", "fen", "jiao", "yuan", "10", "100"]),
)

dates = st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31))


@st.composite
def periods(draw: st.DrawFn, max_days: int = 800) -> Period:
    start = draw(dates)
    return Period(start, start + dt.timedelta(days=draw(st.integers(0, max_days))))


@st.composite
def contiguous_band_sets(draw: st.DrawFn) -> BandSet:
    """Bands that tile [0, 100] with random cut points and random inclusivity."""
    cuts = sorted(draw(st.sets(decimals_at(1, 1, 99), max_size=6)))
    edges = [Decimal(0), *cuts, Decimal(100)]
    # At each inner cut, one side includes it: True means the upper band does.
    upper_takes = [draw(st.booleans()) for _ in cuts]
    bands = []
    for i in range(len(edges) - 1):
        low_inc = True if i == 0 else upper_takes[i - 1]
        high_inc = True if i == len(edges) - 2 else not upper_takes[i]
        bands.append(
            Band(f"b{i}", edges[i], edges[i + 1], low_inclusive=low_inc, high_inclusive=high_inc)
        )
    order = draw(st.permutations(bands))
    return BandSet(order, scale=(0, 100))


# --- rankings -----------------------------------------------------------------------------

# Imported here, not in the header, so that branches adding strategies only append.
from typing import TypeVar  # noqa: E402

from bankkpi._ranking import Bottom, Percentile, RankingRule, RankRange, Top  # noqa: E402

T = TypeVar("T")

TIE_POLICIES = ("competition", "dense", "ordinal", "average")
TIE_BREAKS = ("subject_asc", "subject_desc", "secondary_higher", "secondary_lower")
COUNT_ROUNDINGS = ("ceiling", "floor", "half_up", "half_even", "half_down")


@st.composite
def ranking_rules(draw: st.DrawFn, ties: str | None = None) -> RankingRule:
    """Any rule; ``ordinal`` gets a random tie-break."""
    ties = ties or draw(st.sampled_from(TIE_POLICIES))
    tie_break = draw(st.sampled_from(TIE_BREAKS)) if ties == "ordinal" else None
    return RankingRule(draw(st.sampled_from(("higher", "lower"))), ties, tie_break=tie_break)


@st.composite
def ranking_inputs(
    draw: st.DrawFn, max_size: int = 20
) -> tuple[dict[str, Decimal], dict[str, str], dict[str, Decimal]]:
    """(values, groups, secondary) with many ties: values come from a pool of a few.

    Values and secondary keys have one decimal place, so ``int(v.scaleb(1))`` is
    their integer code on the array path.
    """
    numbers = draw(st.lists(st.integers(0, 200), unique=True, max_size=max_size))
    ids = [f"{'OX'[k % 2]}{k}" for k in numbers]  # "O10" < "O8": string order, not numbers
    pool = draw(st.lists(decimals_at(1, -5, 5), min_size=1, max_size=5))
    second_pool = draw(st.lists(decimals_at(1, 0, 3), min_size=1, max_size=3))
    names = draw(
        st.lists(st.sampled_from(("north", "south", "east", "west")), min_size=1, unique=True)
    )
    n = len(ids)

    def column(choices: list[T]) -> list[T]:
        return draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n))

    values = dict(zip(ids, column(pool), strict=True))
    groups = dict(zip(ids, column(names), strict=True))
    secondary = dict(zip(ids, column(second_pool), strict=True))
    return values, groups, secondary


percents = st.one_of(
    st.sampled_from([Decimal(20), Decimal("12.5"), Decimal("33.3"), Decimal(50), Decimal(100)]),
    decimals_at(1, 0, 100).filter(lambda d: 0 < d <= 100),
)


@st.composite
def selections(draw: st.DrawFn) -> Top | Bottom | RankRange | Percentile:
    """Any selection on ranks, with cut-offs around typical group sizes."""
    kind = draw(st.sampled_from(("top", "bottom", "range", "percentile")))
    side = draw(st.sampled_from(("top", "bottom")))
    if kind == "top":
        return Top(draw(st.integers(1, 12)))
    if kind == "bottom":
        return Bottom(draw(st.integers(1, 12)))
    if kind == "range":
        first = draw(st.integers(1, 12))
        return RankRange(side, first, first + draw(st.integers(0, 6)))
    return Percentile(side, draw(percents), draw(st.sampled_from(COUNT_ROUNDINGS)))


# ------------------------------------------------------------------ expressions

EXPRESSION_NAMES = ("a", "b", "得分")


def expression_literals(max_places: int = 3) -> st.SearchStrategy[Decimal]:
    """Non-negative number literals of an expression, up to ``max_places`` decimals."""
    return st.builds(
        lambda n, p: Decimal(n).scaleb(-p), st.integers(0, 10**4), st.integers(0, max_places)
    )


@st.composite
def number_trees(draw, depth: int = 4, *, constant_divisors: bool = False):
    """Well-typed number trees of the expression language (``_expressions`` nodes).

    With ``constant_divisors`` every divisor is a non-zero literal (or its negation),
    which is what the array path supports.
    """
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if draw(st.booleans()):
            return ex.Variable(draw(st.sampled_from(EXPRESSION_NAMES)))
        return ex.Number(draw(expression_literals()))
    sub = number_trees(depth - 1, constant_divisors=constant_divisors)
    shape = draw(st.sampled_from(["minus", "arith", "arith", "function", "if"]))
    if shape == "minus":
        return ex.Minus(draw(sub))
    if shape == "function":
        fn = draw(st.sampled_from(["min", "max", "abs"]))
        count = 1 if fn == "abs" else draw(st.integers(1, 3))
        return ex.Function(fn, [draw(sub) for _ in range(count)])
    if shape == "if":
        condition = draw(condition_trees(depth - 1, constant_divisors=constant_divisors))
        return ex.Conditional(condition, draw(sub), draw(sub))
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    if op == "/" and constant_divisors:
        divisor = ex.Number(draw(expression_literals().filter(lambda d: d != 0)))
        right = ex.Minus(divisor) if draw(st.booleans()) else divisor
        return ex.Arithmetic("/", draw(sub), right)
    return ex.Arithmetic(op, draw(sub), draw(sub))


@st.composite
def condition_trees(draw, depth: int = 3, *, constant_divisors: bool = False):
    """Well-typed condition trees: comparisons joined by and / or / not."""
    sub = number_trees(max(depth - 1, 0), constant_divisors=constant_divisors)
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        op = draw(st.sampled_from(["<", "<=", "==", "!=", ">=", ">"]))
        return ex.Comparison(op, draw(sub), draw(sub))
    inner = condition_trees(depth - 1, constant_divisors=constant_divisors)
    if draw(st.booleans()):
        return ex.Negation(draw(inner))
    return ex.Logical(draw(st.sampled_from(["and", "or"])), draw(inner), draw(inner))


# --- time limits (SLA) ------------------------------------------------------------------
# Each appended section keeps its imports with it, so parallel branches merge cleanly.

from bankkpi._sla import Case, OfficialCalendar, TimeLimit, WorkingTime  # noqa: E402

SPRING_FESTIVAL_2024 = {
    # The 2024 official schedule (State Council notice), as test data: Spring Festival
    # holiday 2024-02-10..17; Sunday 2024-02-04 and Sunday 2024-02-18 are working days.
    "holidays": [Period("2024-02-10", "2024-02-17")],
    "working_days": ["2024-02-04", "2024-02-18"],
}

ZONE_NAMES = (
    "UTC",
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # half-hour daylight-saving shift
    "America/St_Johns",  # a −3:30 / −2:30 offset
)
zone_names = st.sampled_from(ZONE_NAMES)

_UTC = dt.UTC
_FIRST = dt.datetime(2023, 10, 1, tzinfo=_UTC)
_LAST = dt.datetime(2024, 12, 31, tzinfo=_UTC)


def utc_instants(
    first: dt.datetime = _FIRST, last: dt.datetime = _LAST
) -> st.SearchStrategy[dt.datetime]:
    """Aware UTC instants, some on whole minutes, some to the microsecond."""
    span = (last - first) // dt.timedelta(microseconds=1)
    whole = st.integers(0, span // 60_000_000).map(lambda m: m * 60_000_000)
    fine = st.integers(0, span)
    return st.one_of(whole, fine).map(lambda us: first + dt.timedelta(microseconds=us))


durations = st.one_of(
    st.integers(0, 10 * 86_400).map(lambda s: dt.timedelta(seconds=s)),
    st.integers(0, 10 * 86_400 * 10**6).map(lambda us: dt.timedelta(microseconds=us)),
    st.sampled_from([dt.timedelta(hours=h) for h in (2, 24, 48, 72)]),
)


_maybe_durations = st.none() | durations


@st.composite
def sla_cases(draw: st.DrawFn, subjects: tuple[str, ...] = ("A", "B", "C"), max_size: int = 12):
    """Cases with unique ids, an ``opened`` instant and maybe a ``resolved`` one."""
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(subjects), utc_instants(), _maybe_durations),
            max_size=max_size,
        )
    )
    return [
        Case(subject, f"T{i}", {"opened": opened, "resolved": None if d is None else opened + d})
        for i, (subject, opened, d) in enumerate(rows)
    ]


@st.composite
def working_times(draw: st.DrawFn):
    """Working hours in a random zone on the 2024 official calendar (no coverage limit)."""
    hours = draw(
        st.sampled_from(
            [
                [("08:30", "12:00"), ("13:30", "17:30")],
                [("09:00", "17:00")],
                [("00:00", "23:59:59")],
                [("07:15", "07:45"), ("12:00", "12:00:00.000001"), ("20:00", "23:00")],
            ]
        )
    )
    return WorkingTime(hours, draw(zone_names), OfficialCalendar(**SPRING_FESTIVAL_2024))


@st.composite
def time_limits(draw: st.DrawFn):
    """Calendar- or working-time limits, inclusive or not."""
    limit = draw(
        st.sampled_from([dt.timedelta(hours=h) for h in (1, 2, 8, 24, 48, 72)])
        | st.integers(1, 5 * 86_400 * 10**6).map(lambda us: dt.timedelta(microseconds=us))
    )
    working = draw(st.none() | working_times())
    return TimeLimit(
        "sla", "opened", "resolved", limit, inclusive=draw(st.booleans()), working=working
    )


# --- monitoring ---------------------------------------------------------------------------

from bankkpi import Measurement  # noqa: E402
from bankkpi._monitoring import Cusum, Ewma, RobustZ  # noqa: E402


def months(count: int, first_year: int = 2022) -> list[Period]:
    """``count`` consecutive calendar months from January of ``first_year``."""
    return [Period.month(first_year + i // 12, i % 12 + 1) for i in range(count)]


_steps = st.tuples(
    st.sampled_from(["same", "noise", "noise", "gap", "jump"]),
    decimals_at(2, -1, 1),
    decimals_at(1, -5, 5),
)


@st.composite
def indicator_series(
    draw: st.DrawFn, indicator: str = "npl", max_subjects: int = 3, max_periods: int = 24
) -> list[Measurement]:
    """Monthly series per subject: a level, small steps, repeats, gaps and jumps."""
    subjects = draw(
        st.lists(st.sampled_from("ABCDEFG"), min_size=1, max_size=max_subjects, unique=True)
    )
    periods = months(draw(st.integers(0, max_periods)))
    out = []
    for subject in subjects:
        level = draw(decimals_at(2, 0, 10))
        steps = draw(st.lists(_steps, min_size=len(periods), max_size=len(periods)))
        for period, (kind, noise, jump) in zip(periods, steps, strict=True):
            if kind == "gap":
                continue
            if kind == "noise":
                level += noise / 10
            elif kind == "jump":
                level += jump
            out.append(Measurement(subject, indicator, period, level))
    return out


sides = st.sampled_from(["both", "up", "down"])


@st.composite
def detectors(draw: st.DrawFn):
    """Swing detectors with small windows and baselines, so short series alert."""
    kind = draw(st.sampled_from(["robust_z", "ewma", "cusum"]))
    if kind == "robust_z":
        window = draw(st.integers(3, 8))
        return RobustZ(
            window=window,
            min_history=draw(st.integers(3, window)),
            threshold=draw(st.sampled_from([1, 2, 3.5, 5])),
            side=draw(sides),
        )
    if kind == "ewma":
        return Ewma(
            smoothing=draw(st.sampled_from([0.1, 0.2, 0.5, 1])),
            width=draw(st.sampled_from([1, 2, 3])),
            baseline=draw(st.integers(3, 8)),
            side=draw(sides),
        )
    return Cusum(
        slack=draw(st.sampled_from([0.25, 0.5, 1])),
        limit=draw(st.sampled_from([1, 2, 5])),
        baseline=draw(st.integers(3, 8)),
        side=draw(sides),
    )
