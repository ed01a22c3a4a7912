"""Monitoring indicator series: target breaches, changes, abnormal swings, big movers.

A series is the measurements of one indicator for one subject, in period order
(monthly NPL ratio, queue time, complaint counts). Everything here returns plain
frozen values that a report or a scheme can use:

- :func:`breaches` — values that miss a target (:class:`~bankkpi.AtLeast`,
  :class:`~bankkpi.AtMost`, :class:`~bankkpi.Within`), with the shortfall;
- :func:`period_on_period` and :func:`year_on_year` — exact changes (环比, 同比); a zero
  base gives ``relative=None``, never NaN;
- :func:`movers` — the biggest changes, ranked;
- :func:`detect_swings` — abnormal swings by :class:`RobustZ`, :class:`Ewma` or
  :class:`Cusum`, each alert with its expected range and its reasoning as a
  :class:`~bankkpi.Trace`;
- :func:`zero_throughout` — "no complaint ticket all year", with missing months
  refusing the claim rather than counting as zero.

The swing detectors are heuristics, not money: their statistics are computed in
float64 (IEEE doubles), while the values they report stay Decimal. The array path
(:func:`detect_swings_array`, :func:`breach_array`) runs the same float operations in the
same order, so it raises exactly the alerts of the per-series path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar, Final, Literal, TypeAlias, get_args

import attrs
import numpy as np
from dateutil.relativedelta import relativedelta
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from bankkpi._checks import one_of
from bankkpi._explain import Text, Trace, format_number, num
from bankkpi._measurements import Measurement
from bankkpi._money import CONTEXT, RoundingPolicy, decimal_from_float
from bankkpi._periods import Calendar, Period
from bankkpi._targets import AtLeast, AtMost, Target, Within
from bankkpi.exceptions import (
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    ValidationErrorGroup,
)

__all__ = [
    "Alert",
    "AlertArrays",
    "Breach",
    "Change",
    "ChangeKind",
    "Cusum",
    "Ewma",
    "Mover",
    "RobustZ",
    "SeriesTable",
    "SwingDetector",
    "SwingMethod",
    "SwingSide",
    "ZeroRecord",
    "breach_array",
    "breaches",
    "detect_swings",
    "detect_swings_array",
    "movers",
    "period_on_period",
    "year_on_year",
    "zero_throughout",
]

SwingSide: TypeAlias = Literal["both", "up", "down"]
"""Which swings alert: rises, falls or both ("when the overdue rate suddenly rises"
is ``"up"``)."""

ChangeKind: TypeAlias = Literal["period_on_period", "year_on_year"]
"""环比 (against the period just before) or 同比 (against the same period a year
earlier)."""

SwingMethod: TypeAlias = Literal["robust_z", "ewma", "cusum"]
"""The name of a swing detector, as alerts and trace rules carry it."""

_SIDES: Final[tuple[str, ...]] = get_args(SwingSide)
_NO_UNIT: Final = Text("", "")
_MAD_TO_SIGMA: Final = 1.4826
_MEAN_AD_TO_SIGMA: Final = 1.2533


# --- series -----------------------------------------------------------------------------


def _series(
    measurements: Iterable[Measurement],
) -> tuple[str, dict[str, list[Measurement]]]:
    """Group one indicator's measurements by subject, each in period order."""
    by_subject: dict[str, dict[Period, Measurement]] = {}
    codes: set[str] = set()
    problems: list[BankKPIError] = []
    for m in measurements:
        codes.add(m.indicator)
        periods = by_subject.setdefault(m.subject, {})
        if m.period in periods:
            problems.append(
                DuplicateError(
                    m.indicator,
                    f"is measured twice for period {m.period}",
                    str(m.value),
                    subject=m.subject,
                )
            )
            continue
        periods[m.period] = m
    if len(codes) > 1:
        problems.append(
            InvalidValueError(
                "indicator", "must be the same for every measurement of a series", sorted(codes)
            )
        )
    if problems:
        raise ValidationErrorGroup("invalid series", problems)
    series = {s: [p[k] for k in sorted(p)] for s, p in sorted(by_subject.items())}
    return (codes.pop() if codes else ""), series


def _float(value: Decimal) -> float:
    # ``+ 0.0`` turns −0 into 0, so both paths sort and print zeros alike.
    return float(value) + 0.0


@attrs.frozen(eq=False)
class SeriesTable:
    """One indicator's series as a (subjects × periods) float64 grid, NaN where absent.

    Keeps the exact Decimal values beside the grid, so alerts found on the grid
    report the values as measured.

    >>> ms = [Measurement("A", "npl", Period.month(2024, m), v)
    ...       for m, v in ((1, "1.50"), (3, "1.70"))]
    >>> table = SeriesTable.from_measurements(ms)
    >>> table.subjects, [str(p) for p in table.periods], table.values.tolist()
    (('A',), ['2024-01-01..2024-01-31', '2024-03-01..2024-03-31'], [[1.5, 1.7]])
    """

    indicator: str
    subjects: tuple[str, ...]
    periods: tuple[Period, ...]
    values: NDArray[np.float64]
    exact: Mapping[tuple[int, int], Decimal]

    @classmethod
    def from_measurements(cls, measurements: Iterable[Measurement]) -> SeriesTable:
        """Build the grid; duplicates and mixed indicators raise every problem at once."""
        indicator, series = _series(measurements)
        subjects = tuple(series)
        periods = tuple(sorted({m.period for items in series.values() for m in items}))
        column = {p: i for i, p in enumerate(periods)}
        values = np.full((len(subjects), len(periods)), np.nan, dtype=np.float64)
        exact: dict[tuple[int, int], Decimal] = {}
        for row, subject in enumerate(subjects):
            for m in series[subject]:
                values[row, column[m.period]] = _float(m.value)
                exact[row, column[m.period]] = m.value
        return cls(indicator, subjects, periods, values, exact)


# --- threshold breaches -----------------------------------------------------------------


@attrs.frozen
class Breach:
    """A measured value that misses its target, by ``shortfall`` (in the value's units)."""

    subject: str
    indicator: str
    period: Period
    value: Decimal
    target: Target
    shortfall: Decimal
    trace: Trace


def _shortfall_trace(m: Measurement, target: Target, unit: Text) -> Trace:
    value = num(m.value, Text("实际值", "value"))
    if isinstance(target, AtLeast):
        expr = num(target.threshold, Text("目标", "target")) - value
    elif isinstance(target, AtMost):
        expr = value - num(target.threshold, Text("目标", "target"))
    elif m.value < target.low:
        expr = num(target.low, Text("下限", "low")) - value
    else:
        expr = value - num(target.high, Text("上限", "high"))
    return Trace.of(
        f"monitor.threshold.{m.indicator}",
        Text("差距", "shortfall"),
        expr,
        unit=unit,
        inputs=[(Text("考核对象", "subject"), m.subject), (Text("期间", "period"), m.period)],
        notes=[
            Text(
                f"{format_number(m.value)} 未达目标 {target.describe('zh')}",
                f"{format_number(m.value)} misses the target {target.describe('en')}",
            )
        ],
    )


def breaches(
    measurements: Iterable[Measurement],
    target: Target,
    *,
    unit: Text = _NO_UNIT,
) -> tuple[Breach, ...]:
    """Every measurement that misses ``target``, sorted by subject then period.

    >>> npl = AtMost("2.00")
    >>> ms = [Measurement("A", "npl", Period.month(2024, m), v)
    ...       for m, v in ((1, "1.90"), (2, "2.00"), (3, "2.35"))]
    >>> [b] = breaches(ms, npl, unit=Text("%", "%"))
    >>> str(b.period), b.shortfall
    ('2024-03-01..2024-03-31', Decimal('0.35'))
    >>> print(b.trace.render("en"))
    shortfall = 2.35 − 2.00 = 0.35 % [2.35 misses the target ≤ 2.00]
    """
    if not isinstance(target, AtLeast | AtMost | Within):
        raise InvalidValueError(
            "target", "must be AtLeast, AtMost or Within (resolve a RelativeTarget first)", target
        )
    _, series = _series(measurements)
    out: list[Breach] = []
    for items in series.values():
        for m in items:
            if not target.met(m.value):
                trace = _shortfall_trace(m, target, unit)
                out.append(
                    Breach(m.subject, m.indicator, m.period, m.value, target, trace.amount, trace)
                )
    return tuple(out)


def breach_array(values: NDArray[np.float64], target: Target) -> NDArray[np.bool_]:
    """:func:`breaches` as a boolean grid over a :class:`SeriesTable` ``values`` (NaN: no).

    Values and thresholds are compared as float64, which agrees with the exact
    comparison for decimals of up to 15 significant digits.

    >>> breach_array(np.array([[1.9, 2.0, 2.35, np.nan]]), AtMost(2)).tolist()
    [[False, False, True, False]]
    """
    if not isinstance(target, AtLeast | AtMost | Within):
        raise InvalidValueError("target", "must be AtLeast, AtMost or Within", target)
    grid = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(grid)
    with np.errstate(invalid="ignore"):
        if isinstance(target, AtLeast):
            t = _float(target.threshold)
            met = grid >= t if target.inclusive else grid > t
        elif isinstance(target, AtMost):
            t = _float(target.threshold)
            met = grid <= t if target.inclusive else grid < t
        else:
            low, high = _float(target.low), _float(target.high)
            above = grid >= low if target.low_inclusive else grid > low
            below = grid <= high if target.high_inclusive else grid < high
            met = above & below
    return present & ~met


# --- changes and movers -------------------------------------------------------------------


@attrs.frozen
class Change:
    """The change of one subject's value against a base period.

    ``difference = value − base`` is exact; ``relative = (value − base) ÷ |base|``
    is an exact rational (dividing by ``|base|`` keeps a rise positive when the base
    is negative), ``None`` when the base is zero; ``percent`` is ``relative × 100``
    rounded once by the stated policy (``None`` with a zero base).
    """

    subject: str
    indicator: str
    kind: ChangeKind
    period: Period
    base_period: Period
    value: Decimal
    base: Decimal
    rounding: RoundingPolicy
    difference: Decimal = attrs.field(init=False)
    relative: Fraction | None = attrs.field(init=False)
    percent: Decimal | None = attrs.field(init=False)

    @difference.default
    def _difference(self) -> Decimal:
        return CONTEXT.subtract(self.value, self.base)

    @relative.default
    def _relative(self) -> Fraction | None:
        if self.base == 0:
            return None
        return (Fraction(self.value) - Fraction(self.base)) / abs(Fraction(self.base))

    @percent.default
    def _percent(self) -> Decimal | None:
        return None if self.base == 0 else self.trace().amount

    def trace(self) -> Trace:
        """``(value − base) ÷ |base| × 100``, rounded once; a note for a zero base."""
        label = Text("环比", "period on period")
        if self.kind == "year_on_year":
            label = Text("同比", "year on year")
        inputs = [
            (Text("考核对象", "subject"), self.subject),
            (Text("本期", "period"), self.period),
            (Text("基期", "base period"), self.base_period),
        ]
        if self.base == 0:
            return Trace.fixed(
                f"monitor.{self.kind}.{self.indicator}",
                label,
                self.difference,
                unit=_NO_UNIT,
                inputs=inputs,
                notes=[Text("基期为零，无增长率", "zero base: no relative change")],
            )
        delta = num(self.value) - num(self.base)
        return Trace.of(
            f"monitor.{self.kind}.{self.indicator}",
            label,
            delta / num(abs(self.base)) * num(100),
            rounding=self.rounding,
            unit=Text("%", "%"),
            inputs=inputs,
        )


def _changes(
    measurements: Iterable[Measurement],
    rounding: RoundingPolicy,
    kind: ChangeKind,
) -> tuple[Change, ...]:
    _, series = _series(measurements)
    out: list[Change] = []
    for items in series.values():
        by_period = {m.period: m for m in items}
        by_end = {m.period.end: m for m in items}
        for m in items:
            if kind == "year_on_year":
                year_ago = Period(
                    m.period.start - relativedelta(years=1), m.period.end - relativedelta(years=1)
                )
                base = by_period.get(year_ago)
            else:
                base = by_end.get(m.period.start - relativedelta(days=1))
            if base is not None:
                out.append(
                    Change(
                        m.subject,
                        m.indicator,
                        kind,
                        m.period,
                        base.period,
                        m.value,
                        base.value,
                        rounding,
                    )
                )
    return tuple(out)


def period_on_period(
    measurements: Iterable[Measurement],
    *,
    rounding: RoundingPolicy,
) -> tuple[Change, ...]:
    """环比: each value against the subject's period that ends the day before it starts.

    A period with no such predecessor (the first one, or after a gap) has no change.

    >>> ms = [Measurement("A", "npl", Period.month(2024, m), v)
    ...       for m, v in ((1, "2.00"), (2, "2.50"), (3, "0"), (4, "1.2"))]
    >>> changes = period_on_period(ms, rounding=RoundingPolicy("half_up", "0.1"))
    >>> [(c.difference, c.percent) for c in changes]
    [(Decimal('0.50'), Decimal('25.0')), (Decimal('-2.50'), Decimal('-100.0')),
     (Decimal('1.2'), None)]
    """
    return _changes(measurements, rounding, "period_on_period")


def year_on_year(
    measurements: Iterable[Measurement],
    *,
    rounding: RoundingPolicy,
) -> tuple[Change, ...]:
    """同比: each value against the same period one year earlier (month ends kept right).

    >>> ms = [Measurement("A", "complaints", Period.month(y, 2), v)
    ...       for y, v in ((2023, 10), (2024, 6))]
    >>> [c.percent for c in year_on_year(ms, rounding=RoundingPolicy("half_up", "0.1"))]
    [Decimal('-40.0')]
    """
    return _changes(measurements, rounding, "year_on_year")


@attrs.frozen
class Mover:
    """One place in a ranking of changes; tied changes share a rank (1, 2, 2, 4)."""

    rank: int
    change: Change


def movers(
    changes: Iterable[Change],
    *,
    by: Literal["difference", "relative"] = "difference",
    direction: SwingSide = "both",
    top: int = 10,
) -> tuple[Mover, ...]:
    """The biggest movers: changes ranked by size, largest first, ranks ≤ ``top``.

    ``direction="up"`` ranks rises only, ``"down"`` falls only (largest fall first),
    ``"both"`` ranks by absolute size. With ``by="relative"``, changes with a zero
    base have no relative size and are left out of the ranking. Ties share a rank
    and are listed by subject then period, so a tie at the cut-off is kept whole.

    >>> ms = [Measurement(s, "npl", Period.month(2024, m), v)
    ...       for s, a, b in (("A", "1.0", "1.6"), ("B", "2.0", "1.1"), ("C", "1.0", "1.2"))
    ...       for m, v in ((1, a), (2, b))]
    >>> changes = period_on_period(ms, rounding=RoundingPolicy("half_up", "0.1"))
    >>> [(m.rank, m.change.subject) for m in movers(changes, top=2)]
    [(1, 'B'), (2, 'A')]
    >>> [(m.rank, m.change.subject) for m in movers(changes, direction="up")]
    [(1, 'A'), (2, 'C')]
    """
    one_of("direction", _SIDES)(None, None, direction)
    one_of("by", ("difference", "relative"))(None, None, by)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidValueError("top", "must be a positive whole number", top)

    def size(change: Change) -> Fraction | None:
        amount = Fraction(change.difference) if by == "difference" else change.relative
        if amount is None:
            return None
        if direction == "up":
            return amount if amount > 0 else None
        if direction == "down":
            return -amount if amount < 0 else None
        return abs(amount)

    sized = [(s, c) for c in changes if (s := size(c)) is not None]
    sized.sort(key=lambda sc: (-sc[0], sc[1].subject, sc[1].period))
    out: list[Mover] = []
    rank = 0
    previous: Fraction | None = None
    for position, (amount, change) in enumerate(sized, start=1):
        if amount != previous:
            rank, previous = position, amount
        if rank > top:
            break
        out.append(Mover(rank, change))
    return tuple(out)


# --- "none all year" -------------------------------------------------------------------------


@attrs.frozen
class ZeroRecord:
    """Whether a subject's count stayed at zero over every expected period.

    ``qualifies`` needs a measurement for every expected period (``missing`` lists
    those without: absent data is not zero) and no non-zero value in the span
    (``nonzero``).
    """

    subject: str
    indicator: str
    span: Period
    missing: tuple[Period, ...]
    nonzero: tuple[tuple[Period, Decimal], ...]

    @property
    def qualifies(self) -> bool:
        """No missing period and no non-zero value."""
        return not self.missing and not self.nonzero

    def trace(self) -> Trace:
        """The count over the span, with why it qualifies or not."""
        total = sum((v for _, v in self.nonzero), Decimal(0))
        notes: list[Text] = []
        if self.qualifies:
            notes.append(Text("期间内均为零", "zero in every period"))
        if self.nonzero:
            listed = ", ".join(f"{p}: {format_number(v)}" for p, v in self.nonzero)
            notes.append(Text(f"非零：{listed}", f"non-zero: {listed}"))
        if self.missing:
            listed = ", ".join(str(p) for p in self.missing)
            notes.append(Text(f"缺少数据：{listed}", f"no data for {listed}"))
        return Trace.fixed(
            f"monitor.zero.{self.indicator}",
            Text("期间合计", "total over the span"),
            total,
            unit=_NO_UNIT,
            inputs=[(Text("考核对象", "subject"), self.subject), (Text("期间", "span"), self.span)],
            notes=notes,
        )


def zero_throughout(
    measurements: Iterable[Measurement],
    periods: Calendar | Iterable[Period],
    *,
    subjects: Iterable[str] = (),
) -> tuple[ZeroRecord, ...]:
    """Per subject, whether the indicator was zero in every one of ``periods``.

    Feeds scheme A's "no complaint ticket all year: 500". Every subject measured, and
    every one named in ``subjects`` (even with no data at all), gets a record,
    sorted by subject. A period without a measurement makes the claim fail (it is
    listed in ``missing``): an absent month is not a quiet month.

    >>> ms = [Measurement(s, "complaints", Period.month(2024, m), 0)
    ...       for s in ("A", "B") for m in range(1, 13)]
    >>> ms[14] = Measurement("B", "complaints", Period.month(2024, 3), 1)
    >>> records = zero_throughout(ms, Calendar.months(2024), subjects=["C"])
    >>> [(r.subject, r.qualifies) for r in records]
    [('A', True), ('B', False), ('C', False)]
    """
    expected = tuple(p.period for p in periods) if isinstance(periods, Calendar) else tuple(periods)
    if not expected:
        raise InvalidValueError("periods", "must not be empty", ())
    span = Period(min(p.start for p in expected), max(p.end for p in expected))
    indicator, series = _series(measurements)
    out: list[ZeroRecord] = []
    for subject in sorted(set(series) | set(subjects)):
        items = series.get(subject, [])
        seen = {m.period for m in items}
        nonzero = tuple(
            (m.period, m.value) for m in items if m.value != 0 and m.period.overlap(span)
        )
        missing = tuple(p for p in sorted(expected) if p not in seen)
        out.append(ZeroRecord(subject, indicator, span, missing, nonzero))
    return tuple(out)


# --- abnormal swings --------------------------------------------------------------------


def _positive(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidValueError(field, "must be a number", value)
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise InvalidValueError(field, "must be a positive finite number", value)
    return number


# Named converters, one per field, so mypy's attrs plugin types each argument.


def _threshold(value: float | Decimal) -> float:
    return _positive(value, "threshold")


def _smoothing(value: float | Decimal) -> float:
    return _positive(value, "smoothing")


def _width(value: float | Decimal) -> float:
    return _positive(value, "width")


def _slack(value: float | Decimal) -> float:
    return _positive(value, "slack")


def _limit(value: float | Decimal) -> float:
    return _positive(value, "limit")


def _count(field: str, least: int) -> Any:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise InvalidValueError(field, f"must be a whole number >= {least}", value)

    return check


@attrs.frozen
class RobustZ:
    """Robust z-score on a trailing window: median and MAD of the previous values.

    For each value, the ``window`` values before it (at least ``min_history``) give
    the median ``m`` and ``scale = 1.4826 × MAD`` (MAD: the median absolute
    deviation; when it is 0, ``1.2533 × mean absolute deviation``). The value alerts
    when it lies outside ``m ± threshold × scale``; a window of identical values
    alerts on any change. Float64 statistics (a heuristic, not money).

    False alarms (the defaults, simulated on normal noise): a series of 48 checked
    values raises any alert with probability about 6% (0.14% of values). The
    textbook 3.5 (Iglewicz–Hoaglin) assumes a long history: on a 12-value window it
    alerts on most flat series.

    >>> RobustZ().describe("en")
    'robust z-score (median/MAD) over the last 24 values, threshold 5, both sides'
    """

    name: ClassVar[SwingMethod] = "robust_z"
    window: int = attrs.field(default=24, validator=_count("window", 3))
    threshold: float = attrs.field(default=5.0, converter=_threshold)
    min_history: int = attrs.field(default=12, validator=_count("min_history", 3))
    side: SwingSide = attrs.field(default="both", validator=one_of("side", _SIDES))

    @min_history.validator
    def _check_history(self, _attribute: object, value: int) -> None:
        if value > self.window:
            raise InvalidValueError("min_history", f"must not exceed window {self.window}", value)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """The method and its settings in words."""
        if lang == "zh":
            return (
                f"稳健Z分数（中位数/MAD），前{self.window}期，阈值 {self.threshold:g}，"
                f"{_SIDE_ZH[self.side]}"
            )
        return (
            f"robust z-score (median/MAD) over the last {self.window} values, "
            f"threshold {self.threshold:g}, {_SIDE_EN[self.side]}"
        )


@attrs.frozen
class Ewma:
    """EWMA control chart: ``z = λx + (1 − λ)z_prev`` against time-varying limits.

    The first ``baseline`` values give the in-control mean ``μ`` and standard
    deviation ``σ`` (n − 1); the chart starts at ``z = μ`` and alerts when
    ``z`` leaves ``μ ± L σ √(λ/(2 − λ) (1 − (1 − λ)^{2t}))``. The chart is not
    reset after an alert: a lasting shift keeps alerting. The expected range of a
    value is the range that would keep ``z`` inside the limits. Float64 statistics.

    False alarms (the defaults λ 0.2, L 4, 24-value baseline, simulated on normal
    noise): a series of 48 checked values raises any alert with probability about
    4.5%. The textbook L 3 assumes μ and σ known; estimated from 12–24 values it
    alerts on a quarter to a third of flat series.

    >>> Ewma().describe("en")
    'EWMA λ 0.2, L 4 (baseline: first 24 values), both sides'
    """

    name: ClassVar[SwingMethod] = "ewma"
    smoothing: float = attrs.field(default=0.2, converter=_smoothing)
    width: float = attrs.field(default=4.0, converter=_width)
    baseline: int = attrs.field(default=24, validator=_count("baseline", 3))
    side: SwingSide = attrs.field(default="both", validator=one_of("side", _SIDES))

    @smoothing.validator
    def _check_smoothing(self, _attribute: object, value: float) -> None:
        if value > 1:
            raise InvalidValueError("smoothing", "must be in (0, 1]", value)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """The method and its settings in words."""
        if lang == "zh":
            return (
                f"EWMA λ {self.smoothing:g}，L {self.width:g}（基准：前{self.baseline}期），"
                f"{_SIDE_ZH[self.side]}"
            )
        return (
            f"EWMA λ {self.smoothing:g}, L {self.width:g} (baseline: first {self.baseline} "
            f"values), {_SIDE_EN[self.side]}"
        )


@attrs.frozen
class Cusum:
    """Tabular CUSUM: cumulative sums of deviations beyond a slack, against a limit.

    The first ``baseline`` values give ``μ`` and ``σ``. With ``K = slack × σ`` and
    ``H = limit × σ``: ``S⁺ = max(0, S⁺ + (x − μ) − K)`` and
    ``S⁻ = max(0, S⁻ + (μ − x) − K)``; a side alerts when its sum exceeds ``H``.
    Sums are not reset after an alert. Float64 statistics.

    False alarms (the defaults k 1, h 5, 24-value baseline, tuned for shifts of
    about 2σ; simulated on normal noise): a series of 48 checked values raises any
    alert with probability about 3%. The textbook k 0.5, h 5 assumes μ and σ known;
    estimated from 12–24 values it alerts on a quarter or more of flat series.

    >>> Cusum(side="up").describe("en")
    'CUSUM k 1, h 5 (baseline: first 24 values), rises only'
    """

    name: ClassVar[SwingMethod] = "cusum"
    slack: float = attrs.field(default=1.0, converter=_slack)
    limit: float = attrs.field(default=5.0, converter=_limit)
    baseline: int = attrs.field(default=24, validator=_count("baseline", 3))
    side: SwingSide = attrs.field(default="both", validator=one_of("side", _SIDES))

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """The method and its settings in words."""
        if lang == "zh":
            return (
                f"CUSUM k {self.slack:g}，h {self.limit:g}（基准：前{self.baseline}期），"
                f"{_SIDE_ZH[self.side]}"
            )
        return (
            f"CUSUM k {self.slack:g}, h {self.limit:g} (baseline: first {self.baseline} "
            f"values), {_SIDE_EN[self.side]}"
        )


SwingDetector: TypeAlias = RobustZ | Ewma | Cusum
"""A swing-detection method with its settings."""

_SIDE_EN: Final = {"both": "both sides", "up": "rises only", "down": "falls only"}
_SIDE_ZH: Final = {"both": "双侧", "up": "仅上升", "down": "仅下降"}


@attrs.frozen
class Alert:
    """An abnormal swing: ``value`` of ``subject`` in ``period`` left its expected range.

    ``low``/``high`` bound the expected range (``None``: that side is not watched);
    ``trace`` carries the method's reasoning in both languages.
    """

    subject: str
    indicator: str
    period: Period
    value: Decimal
    method: SwingMethod
    direction: Literal["up", "down"]
    low: Decimal | None
    high: Decimal | None
    trace: Trace


def _g(value: float) -> str:
    return f"{value:.6g}"


def _reason(method: SwingDetector, direction: str, d: Mapping[str, float]) -> Text:
    up = direction == "up"
    if isinstance(method, RobustZ):
        n = int(d["n"])
        if d["scale"] == 0:
            return Text(
                f"前{n}期均为 {_g(d['median'])}，任何变动均属异常",
                f"the last {n} values were all {_g(d['median'])}: any change is abnormal",
            )
        return Text(
            f"稳健Z分数 {_g(d['z'])}，超出 ±{method.threshold:g}"
            f"（前{n}期中位数 {_g(d['median'])}，MAD {_g(d['mad'])}）",
            f"robust z-score {_g(d['z'])} beyond ±{method.threshold:g} "
            f"(median {_g(d['median'])}, MAD {_g(d['mad'])} of the last {n} values)",
        )
    base_zh = f"前{method.baseline}期基准均值 {_g(d['mean'])}，标准差 {_g(d['sigma'])}"
    base_en = (
        f"baseline mean {_g(d['mean'])}, σ {_g(d['sigma'])} from the first {method.baseline} values"
    )
    if isinstance(method, Ewma):
        limit = d["ucl"] if up else d["lcl"]
        return Text(
            f"EWMA {_g(d['ewma'])} {'高于控制上限' if up else '低于控制下限'} "
            f"{_g(limit)}（{base_zh}）",
            f"EWMA {_g(d['ewma'])} {'above the upper' if up else 'below the lower'} "
            f"control limit {_g(limit)} ({base_en})",
        )
    total = d["upper"] if up else d["lower"]
    return Text(
        f"{'上' if up else '下'}侧累积和 {_g(total)} 超过 h·σ = {_g(d['h'])}（{base_zh}）",
        f"{'upper' if up else 'lower'} CUSUM {_g(total)} exceeds h·σ = {_g(d['h'])} ({base_en})",
    )


def _alert(
    method: SwingDetector,
    direction: Literal["up", "down"],
    details: Mapping[str, float],
    *,
    subject: str,
    indicator: str,
    period: Period,
    value: Decimal,
    unit: Text,
) -> Alert:
    low = None if method.side == "up" else decimal_from_float(details["low"])
    high = None if method.side == "down" else decimal_from_float(details["high"])
    shown = (
        f"[{'−∞' if low is None else _g(details['low'])}, "
        f"{'+∞' if high is None else _g(details['high'])}]"
    )
    trace = Trace.fixed(
        f"monitor.{method.name}.{indicator}",
        Text("异常波动", "abnormal swing"),
        value,
        unit=unit,
        inputs=[
            (Text("考核对象", "subject"), subject),
            (Text("期间", "period"), period),
            (Text("预期范围", "expected range"), shown),
            (Text("方法", "method"), method.describe("en")),
        ],
        notes=[
            Text("上升" if direction == "up" else "下降", "rise" if direction == "up" else "fall"),
            _reason(method, direction, details),
        ],
    )
    return Alert(subject, indicator, period, value, method.name, direction, low, high, trace)


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    return (ordered[(n - 1) // 2] + ordered[n // 2]) / 2


def _robust_series(xs: Sequence[float], method: RobustZ) -> list[dict[str, float] | None]:
    out: list[dict[str, float] | None] = []
    for j, x in enumerate(xs):
        history = xs[max(0, j - method.window) : j]
        n = len(history)
        if n < method.min_history:
            out.append(None)
            continue
        m = _median(sorted(history))
        deviations = [abs(v - m) for v in history]
        mad = _median(sorted(deviations))
        scale = _MAD_TO_SIGMA * mad
        if scale == 0.0:
            total = 0.0
            for d in deviations:
                total += d
            scale = _MEAN_AD_TO_SIGMA * (total / n)
        half = method.threshold * scale
        out.append(
            {
                "x": x,
                "median": m,
                "mad": mad,
                "scale": scale,
                "z": (x - m) / scale if scale > 0 else math.nan,
                "n": float(n),
                "low": m - half,
                "high": m + half,
            }
        )
    return out


def _baseline(xs: Sequence[float], size: int) -> tuple[float, float]:
    total = 0.0
    for v in xs[:size]:
        total += v
    mean = total / size
    squares = 0.0
    for v in xs[:size]:
        d = v - mean
        squares += d * d
    return mean, math.sqrt(squares / (size - 1))


def _ewma_series(xs: Sequence[float], method: Ewma) -> list[dict[str, float] | None]:
    b = method.baseline
    out: list[dict[str, float] | None] = [None] * min(b, len(xs))
    if len(xs) <= b:
        return out
    mean, sigma = _baseline(xs, b)
    lam = method.smoothing
    keep = 1.0 - lam
    keep2 = keep * keep
    ratio = lam / (2.0 - lam)
    z, f = mean, 1.0
    for x in xs[b:]:
        previous = z
        z = lam * x + keep * previous
        f = f * keep2
        half = method.width * sigma * math.sqrt(ratio * (1.0 - f))
        ucl, lcl = mean + half, mean - half
        out.append(
            {
                "x": x,
                "mean": mean,
                "sigma": sigma,
                "ewma": z,
                "ucl": ucl,
                "lcl": lcl,
                "up": float(z > ucl),
                "down": float(z < lcl),
                "low": (lcl - keep * previous) / lam,
                "high": (ucl - keep * previous) / lam,
            }
        )
    return out


def _cusum_series(xs: Sequence[float], method: Cusum) -> list[dict[str, float] | None]:
    b = method.baseline
    out: list[dict[str, float] | None] = [None] * min(b, len(xs))
    if len(xs) <= b:
        return out
    mean, sigma = _baseline(xs, b)
    k = method.slack * sigma
    h = method.limit * sigma
    upper = lower = 0.0
    for x in xs[b:]:
        high = mean + (k + (h - upper))
        low = mean - (k + (h - lower))
        upper = max(0.0, upper + ((x - mean) - k))
        lower = max(0.0, lower + ((mean - x) - k))
        out.append(
            {
                "x": x,
                "mean": mean,
                "sigma": sigma,
                "upper": upper,
                "lower": lower,
                "h": h,
                "up": float(upper > h),
                "down": float(lower > h),
                "low": low,
                "high": high,
            }
        )
    return out


def _directions(method: SwingDetector, d: Mapping[str, float]) -> list[Literal["up", "down"]]:
    if isinstance(method, RobustZ):
        up, down = d["x"] > d["high"], d["x"] < d["low"]
    else:
        up, down = d["up"] > 0, d["down"] > 0
    out: list[Literal["up", "down"]] = []
    if up and method.side != "down":
        out.append("up")
    if down and method.side != "up":
        out.append("down")
    return out


def _check_method(method: object) -> SwingDetector:
    if not isinstance(method, RobustZ | Ewma | Cusum):
        raise InvalidValueError("method", "must be RobustZ(), Ewma() or Cusum()", method)
    return method


def detect_swings(
    measurements: Iterable[Measurement],
    method: SwingDetector,
    *,
    unit: Text = _NO_UNIT,
) -> tuple[Alert, ...]:
    """Abnormal swings in each subject's series, sorted by subject, period, direction.

    A series is the subject's values in period order; a missing period is skipped
    (windows and baselines count values, not months).

    >>> values = ["1.20", "1.22", "1.19", "1.21", "1.20", "1.18", "1.21", "1.30"]
    >>> ms = [Measurement("outlet 7", "overdue", Period.month(2024, m + 1), v)
    ...       for m, v in enumerate(values)]
    >>> [alert] = detect_swings(ms, RobustZ(window=6, min_history=6, side="up"))
    >>> str(alert.period), alert.value, alert.low, alert.high.quantize(Decimal("0.0001"))
    ('2024-08-01..2024-08-31', Decimal('1.30'), None, Decimal('1.2791'))
    >>> print(alert.trace.render("en"))
    abnormal swing = 1.3 [rise; robust z-score 6.40766 beyond ±5
    (median 1.205, MAD 0.01 of the last 6 values)]
    """
    method = _check_method(method)
    indicator, series = _series(measurements)
    out: list[Alert] = []
    for subject, items in series.items():
        xs = [_float(m.value) for m in items]
        if isinstance(method, RobustZ):
            checked = _robust_series(xs, method)
        elif isinstance(method, Ewma):
            checked = _ewma_series(xs, method)
        else:
            checked = _cusum_series(xs, method)
        for m, details in zip(items, checked, strict=True):
            if details is None:
                continue
            out.extend(
                _alert(
                    method,
                    direction,
                    details,
                    subject=subject,
                    indicator=indicator,
                    period=m.period,
                    value=m.value,
                    unit=unit,
                )
                for direction in _directions(method, details)
            )
    return tuple(out)


# --- the array path ----------------------------------------------------------------------


@attrs.frozen(eq=False)
class AlertArrays:
    """:func:`detect_swings_array` results on a (subjects × periods) grid.

    ``up``/``down`` flag the alerts; ``low``/``high`` are the expected range and
    ``details`` the method's statistics (NaN where a cell was not checked).
    """

    method: SwingDetector
    up: NDArray[np.bool_]
    down: NDArray[np.bool_]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    details: Mapping[str, NDArray[np.float64]]

    def alerts(self, table: SeriesTable, *, unit: Text = _NO_UNIT) -> tuple[Alert, ...]:
        """The flagged cells as :class:`Alert` values, as :func:`detect_swings` gives them."""
        out: list[Alert] = []
        flagged = np.argwhere(self.up | self.down)
        for row, col in flagged.tolist():
            details = {key: float(grid[row, col]) for key, grid in self.details.items()}
            details["low"], details["high"] = float(self.low[row, col]), float(self.high[row, col])
            for direction, grid in (("up", self.up), ("down", self.down)):
                if grid[row, col]:
                    out.append(
                        _alert(
                            self.method,
                            direction,  # type: ignore[arg-type]
                            details,
                            subject=table.subjects[row],
                            indicator=table.indicator,
                            period=table.periods[col],
                            value=table.exact[row, col],
                            unit=unit,
                        )
                    )
        return tuple(out)


Grid: TypeAlias = NDArray[np.float64]


def _take(sorted_windows: Grid, index: NDArray[np.intp]) -> Grid:
    return np.take_along_axis(sorted_windows, index[..., None], axis=-1)[..., 0]


def _grid_median(sorted_windows: Grid, count: NDArray[np.intp]) -> Grid:
    last = sorted_windows.shape[-1] - 1
    low = _take(sorted_windows, np.clip((count - 1) // 2, 0, last))
    high = _take(sorted_windows, np.clip(count // 2, 0, last))
    return (low + high) / 2


def _robust_grid(
    compact: Grid, n_obs: NDArray[np.intp], method: RobustZ
) -> tuple[NDArray[np.bool_], dict[str, Grid]]:
    rows, cols = compact.shape
    w = method.window
    padded = np.concatenate([np.full((rows, w), np.nan), compact], axis=1)
    windows = sliding_window_view(padded, w, axis=1)[:, :cols, :]
    count = (~np.isnan(windows)).sum(axis=-1)
    median = _grid_median(np.sort(windows, axis=-1), count)
    deviations = np.abs(windows - median[..., None])
    mad = _grid_median(np.sort(deviations, axis=-1), count)
    scale = _MAD_TO_SIGMA * mad
    total = np.cumsum(np.where(np.isnan(deviations), 0.0, deviations), axis=-1)[..., -1]
    mean_ad = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    scale = np.where(scale == 0.0, _MEAN_AD_TO_SIGMA * mean_ad, scale)
    half = method.threshold * scale
    z = np.divide(compact - median, scale, out=np.full_like(scale, np.nan), where=scale > 0)
    checked = (count >= method.min_history) & (np.arange(cols) < n_obs[:, None])
    details = {
        "median": median,
        "mad": mad,
        "scale": scale,
        "z": z,
        "n": count.astype(np.float64),
        "low": median - half,
        "high": median + half,
    }
    return checked, details


def _grid_baseline(compact: Grid, size: int) -> tuple[Grid, Grid]:
    base = compact[:, :size]
    mean = np.cumsum(base, axis=1)[:, -1] / size
    d = base - mean[:, None]
    sigma = np.sqrt(np.cumsum(d * d, axis=1)[:, -1] / (size - 1))
    return mean, sigma


def _chart_grid(
    compact: Grid, n_obs: NDArray[np.intp], method: Ewma | Cusum
) -> tuple[NDArray[np.bool_], dict[str, Grid]]:
    rows, cols = compact.shape
    b = method.baseline
    keys = (
        ("mean", "sigma", "ewma", "ucl", "lcl", "up", "down", "low", "high")
        if isinstance(method, Ewma)
        else ("mean", "sigma", "upper", "lower", "h", "up", "down", "low", "high")
    )
    details = {key: np.full((rows, cols), np.nan) for key in keys}
    checked = (np.arange(cols) >= b) & (np.arange(cols) < n_obs[:, None])
    if cols <= b:
        return checked, details
    mean, sigma = _grid_baseline(compact, b)
    if isinstance(method, Ewma):
        lam = method.smoothing
        keep = 1.0 - lam
        keep2 = keep * keep
        ratio = lam / (2.0 - lam)
        z, f = mean.copy(), np.ones(rows)
        for j in range(b, cols):
            previous = z
            z = lam * compact[:, j] + keep * previous
            f = f * keep2
            half = method.width * sigma * np.sqrt(ratio * (1.0 - f))
            ucl, lcl = mean + half, mean - half
            column = {
                "ewma": z,
                "ucl": ucl,
                "lcl": lcl,
                "up": (z > ucl).astype(np.float64),
                "down": (z < lcl).astype(np.float64),
                "low": (lcl - keep * previous) / lam,
                "high": (ucl - keep * previous) / lam,
            }
            for key, value in column.items():
                details[key][:, j] = value
    else:
        k = method.slack * sigma
        h = method.limit * sigma
        upper, lower = np.zeros(rows), np.zeros(rows)
        for j in range(b, cols):
            x = compact[:, j]
            details["high"][:, j] = mean + (k + (h - upper))
            details["low"][:, j] = mean - (k + (h - lower))
            upper = np.maximum(0.0, upper + ((x - mean) - k))
            lower = np.maximum(0.0, lower + ((mean - x) - k))
            details["upper"][:, j] = upper
            details["lower"][:, j] = lower
            details["up"][:, j] = upper > h
            details["down"][:, j] = lower > h
        details["h"][:] = h[:, None]
    details["mean"][:] = mean[:, None]
    details["sigma"][:] = sigma[:, None]
    return checked, details


def detect_swings_array(values: NDArray[np.float64], method: SwingDetector) -> AlertArrays:
    """:func:`detect_swings` on a (subjects × periods) float64 grid, NaN where no value.

    Each row is compacted to its observed values (a stable sort moves NaN to the
    end), so windows and baselines count values as :func:`detect_swings` does. The robust
    z-score runs on all windows at once; the control charts step through periods,
    vectorised over subjects.

    >>> grid = np.array([[1.20, 1.22, 1.19, 1.21, 1.20, 1.18, 1.21, 1.30]])
    >>> detect_swings_array(grid, RobustZ(window=6, min_history=6, side="up")).up.tolist()
    [[False, False, False, False, False, False, False, True]]
    """
    method = _check_method(method)
    grid = np.asarray(values, dtype=np.float64)
    if grid.ndim != 2:
        raise InvalidValueError("values", "must be a 2-D grid (subjects × periods)", grid.shape)
    if np.isinf(grid).any():
        raise InvalidValueError("values", "must be finite (NaN marks a missing value)", "inf")
    grid = grid + 0.0
    missing = np.isnan(grid)
    order = np.argsort(missing, axis=1, kind="stable")
    compact = np.take_along_axis(grid, order, axis=1)
    n_obs = (~missing).sum(axis=1)
    with np.errstate(invalid="ignore"):
        if isinstance(method, RobustZ):
            checked, details = _robust_grid(compact, n_obs, method)
            up = checked & (compact > details["high"])
            down = checked & (compact < details["low"])
        else:
            checked, details = _chart_grid(compact, n_obs, method)
            up = checked & (details["up"] > 0)
            down = checked & (details["down"] > 0)
    if method.side == "down":
        up = np.zeros_like(up)
    if method.side == "up":
        down = np.zeros_like(down)

    def scatter(compacted: NDArray[Any], fill: object) -> NDArray[Any]:
        out = np.full(compacted.shape, fill, dtype=compacted.dtype)
        np.put_along_axis(out, order, compacted, axis=1)
        return out

    return AlertArrays(
        method,
        scatter(up, fill=False),
        scatter(down, fill=False),
        scatter(details.pop("low"), fill=np.nan),
        scatter(details.pop("high"), fill=np.nan),
        {key: scatter(value, fill=np.nan) for key, value in details.items()},
    )
