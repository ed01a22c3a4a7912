from decimal import Decimal

import pytest

from bankkpi import (
    AtLeast,
    Indicator,
    Measurement,
    MeasurementSet,
    Period,
    RoundingPolicy,
    average,
    rate,
    total,
)
from bankkpi.exceptions import (
    DuplicateError,
    FloatMoneyError,
    MissingDataError,
    OutOfRangeError,
    UnknownKeyError,
    ValidationErrorGroup,
    ZeroDenominatorError,
)

SCORE = Indicator(
    "score",
    "神秘人检查得分",
    "points",
    "higher_is_better",
    scale_min=0,
    scale_max=100,
    precision="0.1",
)
COVERAGE = Indicator(
    "coverage", "网点检查覆盖率", "percent", "higher_is_better", scale_min=0, scale_max=100
)
INDICATORS = {"score": SCORE, "coverage": COVERAGE}
QUARTERS = [Period.quarter(2024, q) for q in (1, 2, 3, 4)]
HALF_UP_2 = RoundingPolicy("half_up", "0.01")


def test_float_value_refused_naming_subject_and_indicator():
    with pytest.raises(FloatMoneyError, match="outlet 1: 'score'"):
        Measurement("outlet 1", "score", QUARTERS[0], 91.5)  # type: ignore[arg-type]


def test_build_reports_every_bad_row_at_once():
    rows = [
        Measurement("A", "score", QUARTERS[0], "91.5"),
        Measurement("B", "score", QUARTERS[0], "104"),
        Measurement("C", "speed", QUARTERS[0], "3"),
        Measurement("A", "score", QUARTERS[0], "92"),
    ]
    with pytest.raises(ValidationErrorGroup) as info:
        MeasurementSet.build(rows, INDICATORS)
    kinds = [type(e) for e in info.value.exceptions]
    assert kinds == [OutOfRangeError, UnknownKeyError, DuplicateError]
    assert "B" in str(info.value.exceptions[0])
    assert "C" in str(info.value.exceptions[1])
    assert "A" in str(info.value.exceptions[2])


def test_collect_keeps_good_rows_and_accounts_for_every_row():
    rows = [
        Measurement("A", "score", QUARTERS[0], "91.46"),
        Measurement("B", "score", QUARTERS[0], "-1"),
        Measurement("C", "score", QUARTERS[0], "88"),
    ]
    good, errors = MeasurementSet.collect(rows, INDICATORS)
    assert len(good) + len(errors) == len(rows)
    assert good.subjects() == ("A", "C")
    assert good.value("A", "score", QUARTERS[0]) == Decimal("91.5")
    assert good.for_indicator("score", QUARTERS[0]) == {"A": Decimal("91.5"), "C": Decimal("88.0")}


def test_missing_measurement_is_named():
    ms = MeasurementSet.build([], INDICATORS)
    with pytest.raises(MissingDataError, match="score") as info:
        ms.value("Z", "score", QUARTERS[1])
    assert "Z" in str(info.value)
    assert ms.get("Z", "score", QUARTERS[1]) is None


def test_annual_average_of_quarterly_scores_rounded_once():
    """Scheme B "excellent outlet": annual average ≥ 90 (91 + 92 + 92 + 86) / 4 = 90.25."""
    rows = [
        Measurement("X", "score", q, v)
        for q, v in zip(QUARTERS, ["91", "92", "92", "86"], strict=True)
    ]
    ms = MeasurementSet.build(rows, INDICATORS)
    assert ms.average("X", "score", QUARTERS, RoundingPolicy("half_up", "0.1")) == Decimal("90.3")
    assert ms.average("X", "score", QUARTERS, RoundingPolicy("half_even", "0.1")) == Decimal("90.2")
    assert AtLeast(90).met(ms.average("X", "score", QUARTERS, HALF_UP_2))


def test_average_is_exact_before_its_one_rounding():
    values = [Decimal(91), Decimal(92), Decimal(92)]
    assert average(values, HALF_UP_2) == Decimal("91.67")
    with pytest.raises(MissingDataError):
        average([], HALF_UP_2)


def test_total():
    assert total([Decimal("0.1"), Decimal("0.2")]) == Decimal("0.3")


def test_quarterly_coverage_at_least_60_percent():
    """Scheme B: each quarter's checks cover ≥ 60% of outlets: 36 of 60 meets, 35 does not."""
    target = AtLeast(60)
    policy = RoundingPolicy("half_up", "0.01")
    assert target.met(rate(36, 60, policy, percent=True))
    assert not target.met(rate(35, 60, policy, percent=True))
    assert rate(35, 60, policy, percent=True) == Decimal("58.33")


def test_zero_denominator_is_typed_not_nan():
    with pytest.raises(ZeroDenominatorError, match="outlet 5: 'complaint_rate'"):
        rate(3, 0, HALF_UP_2, field="complaint_rate", subject="outlet 5")
