from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import AtLeast, AtMost, RelativeTarget, StagedTarget, Within
from bankkpi.exceptions import (
    AmbiguousInputError,
    InvalidValueError,
    UnknownKeyError,
    ZeroDenominatorError,
)

from .strategies import decimals_at, scores

SCHEME_A = StagedTarget({"P1": AtLeast(92), "P2": AtLeast(95), "P3": AtLeast(98)})


class TestSchemeAStagedTargets:
    @pytest.mark.parametrize(
        ("phase", "score", "met", "shortfall"),
        [
            ("P1", "92", True, "0"),
            ("P1", "91.99", False, "0.01"),
            ("P2", "91.5", False, "3.5"),
            ("P2", "95", True, "0"),
            ("P3", "97", False, "1"),
            ("P3", "98.5", True, "0"),
        ],
    )
    def test_92_95_98(self, phase, score, met, shortfall):
        target = SCHEME_A.for_phase(phase)
        assert target.met(Decimal(score)) is met
        assert target.shortfall(Decimal(score)) == Decimal(shortfall)

    def test_unknown_phase(self):
        with pytest.raises(UnknownKeyError, match="known: P1, P2, P3"):
            SCHEME_A.for_phase("P4")

    def test_exclusive_bound_at_threshold_is_unmet_with_zero_shortfall(self):
        """Phase 3 penalises "below 98 (exclusive)": 98 itself is fine, but a target of
        "above 98" would leave 98 unmet with a distance of 0."""
        above = AtLeast(98, inclusive=False)
        assert not above.met(Decimal(98))
        assert above.shortfall(Decimal(98)) == 0


class TestRelativeTargets:
    def test_complaint_rate_down_40_percent(self):
        """Scheme A year goal: the hotline complaint rate down ≥ 40% on last year's 2.50‰."""
        target = RelativeTarget("-0.40", "at_most").resolve(Decimal("2.50"))
        assert target.threshold == Decimal("1.5")
        assert target.met(Decimal("1.50"))
        assert not target.met(Decimal("1.51"))
        assert target.shortfall(Decimal("1.80")) == Decimal("0.30")

    def test_efficiency_up_30_percent(self):
        target = RelativeTarget("0.30", "at_least").resolve(Decimal(200))
        assert target == AtLeast(260)

    def test_bound_must_be_stated(self):
        with pytest.raises(InvalidValueError, match="'bound' must be 'at_least' or 'at_most'"):
            RelativeTarget("-0.15", "down")  # type: ignore[arg-type]

    def test_change_above_minus_100_percent(self):
        with pytest.raises(InvalidValueError, match="'change'"):
            RelativeTarget("-1", "at_most")


class TestAttainment:
    def test_ratio_with_cap_and_floor(self):
        target = AtLeast(100)
        assert target.attainment(Decimal(130), cap=Decimal("1.2")) == Fraction(6, 5)
        assert target.attainment(Decimal(30), floor=Decimal("0.5")) == Fraction(1, 2)
        assert target.attainment(Decimal(85)) == Fraction(17, 20)

    def test_lower_is_better_needs_a_named_convention(self):
        npl = AtMost(2)
        with pytest.raises(AmbiguousInputError, match="convention='inverse'"):
            npl.attainment(Decimal("1.6"))
        assert npl.attainment(Decimal("1.6"), convention="inverse") == Fraction(5, 4)
        assert npl.attainment(Decimal("1.6"), convention="complement") == Fraction(6, 5)
        assert npl.attainment(Decimal("2.5"), convention="complement") == Fraction(3, 4)

    def test_zero_actual_inverse(self):
        with pytest.raises(ZeroDenominatorError):
            AtMost(2).attainment(Decimal(0), convention="inverse")
        capped = AtMost(2).attainment(Decimal(0), convention="inverse", cap=Decimal("1.2"))
        assert capped == Fraction(6, 5)

    def test_zero_target(self):
        with pytest.raises(ZeroDenominatorError):
            AtLeast(0).attainment(Decimal(5))

    def test_floor_above_cap_refused(self):
        with pytest.raises(InvalidValueError, match="'floor'"):
            AtLeast(1).attainment(Decimal(1), cap=Decimal("0.5"), floor=Decimal(1))

    def test_within(self):
        band = Within(90, 100)
        assert band.attainment(Decimal(95)) == 1
        assert band.attainment(Decimal(45)) == Fraction(1, 2)
        assert band.attainment(Decimal(125)) == Fraction(4, 5)
        assert band.shortfall(Decimal(88)) == 2
        assert band.shortfall(Decimal(101)) == 1
        assert not Within(90, 100, high_inclusive=False).met(Decimal(100))


class TestProperties:
    @given(scores(), scores(), st.booleans())
    def test_at_least_shortfall_non_negative_and_non_increasing(self, threshold, value, inclusive):
        target = AtLeast(threshold, inclusive=inclusive)
        better = value + Decimal("0.01")
        assert target.shortfall(value) >= 0
        assert target.shortfall(better) <= target.shortfall(value)

    @given(scores(), scores())
    def test_at_most_shortfall_non_negative_and_non_increasing(self, threshold, value):
        target = AtMost(threshold)
        better = value - Decimal("0.01")
        assert target.shortfall(value) >= 0
        assert target.shortfall(better) <= target.shortfall(value)

    @given(scores(), scores())
    def test_met_iff_no_shortfall_for_inclusive_targets(self, threshold, value):
        assert AtLeast(threshold).met(value) == (AtLeast(threshold).shortfall(value) == 0)
        assert AtMost(threshold).met(value) == (AtMost(threshold).shortfall(value) == 0)

    @given(decimals_at(2, 1, 100), scores(), decimals_at(2, 0, 3), decimals_at(2, 0, 3))
    def test_cap_and_floor_always_hold(self, threshold, value, a, b):
        floor, cap = min(a, b), max(a, b)
        result = AtLeast(threshold).attainment(value, cap=cap, floor=floor)
        assert Fraction(floor) <= result <= Fraction(cap)

    @given(decimals_at(2, 1, 100), decimals_at(2, 0, 100), decimals_at(2, 0, 100))
    def test_attainment_monotone_in_value(self, threshold, a, b):
        low, high = min(a, b), max(a, b)
        target = AtLeast(threshold)
        assert target.attainment(low) <= target.attainment(high)
        npl = AtMost(threshold)
        assert npl.attainment(low, convention="complement") >= npl.attainment(
            high, convention="complement"
        )
