import datetime as dt
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    AtMost,
    Calendar,
    Measurement,
    Period,
    RelativeTarget,
    RoundingPolicy,
    Within,
)
from bankkpi._explain import Text
from bankkpi._monitoring import (
    Cusum,
    Ewma,
    RobustZ,
    SeriesTable,
    breach_array,
    breaches,
    detect_swings,
    detect_swings_array,
    movers,
    period_on_period,
    year_on_year,
    zero_throughout,
)
from bankkpi.exceptions import DuplicateError, InvalidValueError, ValidationErrorGroup

from .strategies import decimals_at, detectors, indicator_series, months

PCT = Text("%", "%")
ONE_PLACE = RoundingPolicy("half_up", "0.1")
DEFAULTS = (RobustZ(), Ewma(), Cusum())


def series(subject: str, values, indicator: str = "overdue", first_year: int = 2022):
    return [
        Measurement(subject, indicator, period, value)
        for period, value in zip(months(len(values), first_year), values, strict=True)
        if value is not None
    ]


def noisy(seed: int, count: int, level: float = 2.0, sd: float = 0.05) -> list[str]:
    """A flat series of overdue ratios (%), normal noise, written to 3 decimals."""
    rng = np.random.default_rng(seed)
    return [f"{x:.3f}" for x in rng.normal(level, sd, count)]


# --- abnormal swings -----------------------------------------------------------------------


@pytest.mark.parametrize("method", DEFAULTS, ids=lambda m: m.name)
def test_each_method_flags_a_planted_jump_in_the_overdue_ratio(method):
    """36 months around 2.0% (sd 0.05); from month 31 the ratio jumps by 0.5 points."""
    values = noisy(7, 36)
    values[30:] = [f"{Decimal(v) + Decimal('0.5'):.3f}" for v in values[30:]]
    alerts = detect_swings(series("outlet 7", values), method)
    assert alerts, "the jump was missed"
    first = alerts[0]
    assert (first.period, first.direction) == (months(36)[30], "up")
    assert first.high is not None
    assert first.value > first.high
    assert all(a.period >= months(36)[30] for a in alerts)


@pytest.mark.parametrize("method", DEFAULTS, ids=lambda m: m.name)
def test_no_method_flags_a_flat_noisy_series_at_its_default_setting(method):
    """60 months of noise (seed 2024). The defaults alert on about 3-6% of such series
    (see each class's docstring): this seed was not chosen to pass."""
    assert detect_swings(series("outlet 8", noisy(2024, 60)), method) == ()


def test_side_up_watches_rises_only():
    values = noisy(7, 36)
    values[30] = "1.000"
    assert {a.direction for a in detect_swings(series("o", values), RobustZ())} == {"down"}
    assert detect_swings(series("o", values), RobustZ(side="up")) == ()


def test_alert_traces_explain_the_method_in_both_languages():
    values = noisy(7, 36)
    values[30:] = ["2.600"] * 6
    ms = series("outlet 7", values)
    robust, ewma, cusum = (detect_swings(ms, m, unit=PCT)[0] for m in DEFAULTS)
    en = robust.trace.render("en")
    assert en.startswith("abnormal swing = 2.6 % [rise; robust z-score ")
    assert "of the last 24 values" in en
    assert "稳健Z分数" in robust.trace.render("zh")
    assert "above the upper control limit" in ewma.trace.render("en")
    assert "高于控制上限" in ewma.trace.render("zh")
    assert "upper CUSUM" in cusum.trace.render("en")
    assert "上侧累积和" in cusum.trace.render("zh")
    names = [name.en for name, _ in robust.trace.inputs]
    assert names == ["subject", "period", "expected range", "method"]
    assert robust.trace.to_dict()["rule"] == "monitor.robust_z.overdue"


def test_a_constant_history_alerts_on_any_change():
    alerts = detect_swings(series("o", ["0"] * 12 + ["1"]), RobustZ(window=12, min_history=12))
    assert [(a.value, a.low, a.high) for a in alerts] == [(Decimal(1), Decimal(0), Decimal(0))]
    assert "any change is abnormal" in alerts[0].trace.render("en")


def test_gaps_are_skipped_windows_count_values():
    values = ["1.0", "1.1", None, "0.9", "1.0", None, None, "1.1", "1.0", "5.0"]
    [alert] = detect_swings(series("o", values), RobustZ(window=6, min_history=6))
    assert alert.period == months(10)[9]


def test_method_settings_are_checked():
    with pytest.raises(InvalidValueError, match="'threshold' must be a positive finite number"):
        RobustZ(threshold=0)
    with pytest.raises(InvalidValueError, match="must not exceed window 4"):
        RobustZ(window=4, min_history=5)
    with pytest.raises(InvalidValueError, match=r"'side' must be one of 'both', 'up', 'down'"):
        Cusum(side="rise")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match=r"in \(0, 1\]"):
        Ewma(smoothing=1.5)
    with pytest.raises(InvalidValueError, match="whole number >= 3"):
        Ewma(baseline=2)
    with pytest.raises(InvalidValueError, match="must be a number"):
        Cusum(limit="5")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="RobustZ"):
        detect_swings([], "robust")  # type: ignore[arg-type]


def test_series_problems_are_all_reported():
    ms = [
        *series("A", ["1", "2"]),
        Measurement("A", "overdue", months(1)[0], "3"),
        Measurement("B", "npl", months(1)[0], "3"),
    ]
    with pytest.raises(ValidationErrorGroup) as info:
        detect_swings(ms, RobustZ())
    assert [type(e) for e in info.value.exceptions] == [DuplicateError, InvalidValueError]


def test_array_path_refuses_bad_grids():
    with pytest.raises(InvalidValueError, match="2-D"):
        detect_swings_array(np.zeros(3), RobustZ())
    with pytest.raises(InvalidValueError, match="finite"):
        detect_swings_array(np.array([[1.0, np.inf]]), RobustZ())


# --- thresholds, changes, movers ---------------------------------------------------------


def test_breaches_against_at_most_at_least_and_within():
    npl = series("A", ["1.90", "2.00", "2.35"], indicator="npl")
    [late] = breaches(npl, AtMost("2.00"), unit=PCT)
    assert (late.period, late.shortfall) == (months(3)[2], Decimal("0.35"))
    assert late.trace.render("zh") == "差距 = 2.35 − 2.00 = 0.35 %【2.35 未达目标 2.00(含)以下】"
    strict = breaches(npl, AtMost("2.00", inclusive=False))
    assert [(b.value, b.shortfall) for b in strict] == [
        (Decimal("2.00"), Decimal("0.00")),
        (Decimal("2.35"), Decimal("0.35")),
    ]
    satisfaction = series("A", ["84.5", "85", "90"], indicator="satisfaction")
    assert [b.shortfall for b in breaches(satisfaction, AtLeast(85))] == [Decimal("0.5")]
    band = breaches(satisfaction, Within(85, 89))
    assert [(b.value, b.shortfall) for b in band] == [
        (Decimal("84.5"), Decimal("0.5")),
        (Decimal(90), Decimal(1)),
    ]


def test_period_on_period_and_year_on_year():
    npl = series("A", ["2.00", "2.50", "0", "1.2", None, "1.5"], indicator="npl")
    pop = period_on_period(npl, rounding=ONE_PLACE)
    assert [(c.period, c.base_period) for c in pop] == [
        (months(6)[1], months(6)[0]),
        (months(6)[2], months(6)[1]),
        (months(6)[3], months(6)[2]),
    ]
    zero_base = pop[2]
    assert (zero_base.difference, zero_base.relative, zero_base.percent) == (
        Decimal("1.2"),
        None,
        None,
    )
    assert (
        zero_base.trace().render("en") == "period on period = 1.2 [zero base: no relative change]"
    )
    assert pop[0].trace().render("zh") == "环比 = (2.50 − 2.00) ÷ 2.00 × 100 = 25.0 %"

    complaints = [
        Measurement("A", "complaints", Period.month(2023, 2), 10),
        Measurement("A", "complaints", Period.month(2024, 2), 6),  # February 2024 has 29 days
        Measurement("A", "complaints", Period.month(2024, 3), 4),
    ]
    [yoy] = year_on_year(complaints, rounding=ONE_PLACE)
    assert (yoy.base_period, yoy.percent, yoy.relative) == (
        Period.month(2023, 2),
        Decimal("-40.0"),
        Fraction(-2, 5),
    )
    assert AtMost(-40).met(yoy.percent)  # scheme A: complaints down at least 40%


def test_relative_change_from_a_negative_base_divides_by_its_size():
    profit = series("A", ["-200", "-100"], indicator="profit")
    [change] = period_on_period(profit, rounding=ONE_PLACE)
    assert change.percent == Decimal("50.0")


def test_movers_rank_ties_together_and_keep_a_tie_at_the_cut():
    ms = [
        m
        for subject, before, after in (
            ("A", "1.0", "1.6"),
            ("B", "2.0", "1.1"),
            ("C", "1.0", "1.6"),
            ("D", "0", "0.3"),
            ("E", "1.0", "1.0"),
        )
        for m in series(subject, [before, after], indicator="npl")
    ]
    changes = period_on_period(ms, rounding=ONE_PLACE)
    assert [(m.rank, m.change.subject) for m in movers(changes, top=2)] == [
        (1, "B"),
        (2, "A"),
        (2, "C"),
    ]
    assert [(m.rank, m.change.subject) for m in movers(changes, direction="down")] == [(1, "B")]
    relative = movers(changes, by="relative", direction="up")
    assert [m.change.subject for m in relative] == ["A", "C"]  # D has a zero base
    with pytest.raises(InvalidValueError, match="'by' must be 'difference' or 'relative'"):
        movers(changes, by="percent")  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="positive whole number"):
        movers(changes, top=0)


# --- "no complaint ticket all year" -------------------------------------------------------


def test_no_complaint_all_year_feeds_the_500_yuan_reward():
    year = Calendar.months(2024)
    counts = [
        Measurement(subject, "complaints", phase.period, 0)
        for subject in ("A", "B", "C")
        for phase in year
        if not (subject == "C" and phase.name == "M07")
    ]
    counts[14] = Measurement("B", "complaints", Period.month(2024, 3), 1)
    records = zero_throughout(counts, year, subjects=["D"])
    assert [(r.subject, r.qualifies) for r in records] == [
        ("A", True),
        ("B", False),
        ("C", False),
        ("D", False),
    ]
    a, b, c, d = records
    assert a.trace().render("en") == "total over the span = 0 [zero in every period]"
    assert b.nonzero == ((Period.month(2024, 3), Decimal(1)),)
    assert "非零：2024-03-01..2024-03-31: 1" in b.trace().render("zh")
    assert c.missing == (Period.month(2024, 7),)
    assert "no data for 2024-07-01..2024-07-31" in c.trace().render("en")
    assert len(d.missing) == 12
    with pytest.raises(InvalidValueError, match="must not be empty"):
        zero_throughout(counts, [])


# --- properties ------------------------------------------------------------------------------


@given(indicator_series(), detectors())
def test_exact_and_array_paths_raise_the_same_alerts(ms, method):
    table = SeriesTable.from_measurements(ms)
    assert detect_swings_array(table.values, method).alerts(table) == detect_swings(ms, method)


@given(indicator_series(), detectors(), st.randoms(use_true_random=False))
def test_alerts_do_not_depend_on_input_order(ms, method, rnd):
    shuffled = list(ms)
    rnd.shuffle(shuffled)
    assert detect_swings(shuffled, method) == detect_swings(ms, method)


@given(
    indicator_series(max_subjects=2),
    st.sampled_from(["at_least", "at_most", "within"]),
    decimals_at(2, 0, 10),
    st.booleans(),
)
def test_breach_grid_agrees_with_exact_breaches(ms, kind, threshold, inclusive):
    target = {
        "at_least": AtLeast(threshold, inclusive=inclusive),
        "at_most": AtMost(threshold, inclusive=inclusive),
        "within": Within(threshold, threshold + 2, low_inclusive=inclusive),
    }[kind]
    table = SeriesTable.from_measurements(ms)
    grid = breach_array(table.values, target)
    flagged = {(table.subjects[r], table.periods[c]) for r, c in np.argwhere(grid).tolist()}
    assert flagged == {(b.subject, b.period) for b in breaches(ms, target)}


@given(indicator_series())
def test_changes_are_exact(ms):
    for change in period_on_period(ms, rounding=RoundingPolicy("half_even", "0.0001")):
        assert change.base + change.difference == change.value
        assert change.base_period.end + dt.timedelta(days=1) == change.period.start
        if change.relative is not None:
            assert change.relative * abs(Fraction(change.base)) == Fraction(change.difference)


@given(
    indicator_series(),
    st.sampled_from(["difference", "relative"]),
    st.sampled_from(["both", "up", "down"]),
    st.integers(1, 5),
)
def test_movers_are_ordered_and_ranked(ms, by, direction, top):
    ranked = movers(period_on_period(ms, rounding=ONE_PLACE), by=by, direction=direction, top=top)
    ranks = [m.rank for m in ranked]
    assert ranks == sorted(ranks)
    assert all(1 <= r <= top for r in ranks)
    if ranked:
        assert ranked[0].rank == 1


def test_breaches_need_an_absolute_target():
    with pytest.raises(InvalidValueError, match="resolve a RelativeTarget first"):
        breaches([], RelativeTarget("-0.40", "at_most"))  # type: ignore[arg-type]
