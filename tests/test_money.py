from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import (
    FEN,
    RoundingPolicy,
    decimal_from_float,
    fen_to_yuan,
    round_fraction,
    to_decimal,
    yuan_to_fen,
)
from bankkpi.exceptions import BankKPIError, FloatMoneyError, InvalidValueError, OverflowRiskError

from .strategies import MODES, decimals_at, rounding_policies


class TestToDecimal:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(Decimal("1.50"), Decimal("1.50")), (7, Decimal(7)), (" 91.5 ", Decimal("91.5"))],
    )
    def test_accepts_exact_numbers(self, value, expected):
        assert to_decimal(value) == expected

    def test_refuses_float_with_typed_error_naming_field_and_subject(self):
        with pytest.raises(FloatMoneyError) as info:
            to_decimal(0.1, field="rate", subject="outlet 7")
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, BankKPIError)
        assert "outlet 7" in str(info.value)
        assert "'rate'" in str(info.value)
        assert "0.1" in str(info.value)

    @pytest.mark.parametrize("value", [True, "abc", "NaN", "Infinity", Decimal("NaN"), None, [1]])
    def test_refuses_non_numbers(self, value):
        with pytest.raises(InvalidValueError):
            to_decimal(value)

    def test_decimal_from_float_uses_shortest_repr(self):
        assert decimal_from_float(0.1) == Decimal("0.1")
        assert decimal_from_float(91.99999999) == Decimal("91.99999999")

    def test_decimal_from_float_refuses_nan(self):
        with pytest.raises(InvalidValueError):
            decimal_from_float(float("nan"))


class TestRoundingPolicy:
    # Ties where the modes disagree: each mode's documented answer.
    @pytest.mark.parametrize(
        ("mode", "results"),
        [
            ("half_up", ["3", "4", "-3", "-4"]),
            ("half_even", ["2", "4", "-2", "-4"]),
            ("half_down", ["2", "3", "-2", "-3"]),
            ("up", ["3", "4", "-3", "-4"]),
            ("down", ["2", "3", "-2", "-3"]),
            ("ceiling", ["3", "4", "-2", "-3"]),
            ("floor", ["2", "3", "-3", "-4"]),
        ],
    )
    def test_ties(self, mode, results):
        policy = RoundingPolicy(mode, "yuan")
        values = ["2.5", "3.5", "-2.5", "-3.5"]
        assert [str(policy.apply(Decimal(v))) for v in values] == results

    def test_half_up_is_sishewuru_at_fen(self):
        assert RoundingPolicy("half_up", "fen").apply(Decimal("0.125")) == Decimal("0.13")
        assert RoundingPolicy("half_even", "fen").apply(Decimal("0.125")) == Decimal("0.12")

    def test_place_above_one(self):
        assert RoundingPolicy("half_up", "100").apply(Decimal(1250)) == Decimal(1300)
        assert RoundingPolicy("half_even", "100").apply(Decimal(1250)) == Decimal(1200)

    @pytest.mark.parametrize("place", ["0.05", "0", "-1", "3", "cent"])
    def test_place_must_be_power_of_ten(self, place):
        with pytest.raises(InvalidValueError, match="place"):
            RoundingPolicy("half_up", place)

    def test_unknown_mode_lists_choices(self):
        with pytest.raises(InvalidValueError, match="must be one of 'half_up'"):
            RoundingPolicy("round", "fen")  # type: ignore[arg-type]

    def test_describe(self):
        assert RoundingPolicy("half_up", "yuan").describe("zh") == "四舍五入至1"
        assert RoundingPolicy("half_even", "fen").describe() == "half_even to 0.01"

    @given(rounding_policies, decimals_at(4))
    def test_idempotent(self, policy, value):
        once = policy.apply(value)
        assert policy.apply(once) == once

    @given(rounding_policies, decimals_at(4))
    def test_decimal_and_fraction_paths_agree(self, policy, value):
        assert policy.apply(value) == round_fraction(Fraction(value), policy)

    @given(
        rounding_policies,
        st.integers(-(10**40), 10**40),
        st.integers(-40, 3),
    )
    def test_values_past_34_digits_are_rounded_once(self, policy, coefficient, exponent):
        """A value with more digits than the context holds (15.000…0001 at 10) is rounded
        once, from its exact value, or refused; never rounded to 34 digits first."""
        value = Decimal(coefficient).scaleb(exponent)
        try:
            rounded = policy.apply(value)
        except OverflowRiskError:
            return  # the rounded amount itself needs more than 34 digits
        assert rounded == round_fraction(Fraction(value), policy)

    def test_a_long_value_just_past_a_tie_at_ten(self):
        value = Decimal("15.000000000000000000000000000000000001")
        assert RoundingPolicy("half_down", "10").apply(value) == 20
        assert RoundingPolicy("up", "10").apply(Decimal("60." + "0" * 36 + "1")) == 70

    @given(rounding_policies, decimals_at(4))
    def test_result_within_one_place(self, policy, value):
        assert abs(policy.apply(value) - value) < policy.place

    @given(st.sampled_from(MODES), st.integers(-(10**6), 10**6))
    def test_exact_ties_at_fen(self, mode, fen):
        value = Decimal(fen).scaleb(-2) + Decimal("0.005")
        rounded = RoundingPolicy(mode, "fen").apply(value)
        down, up = Decimal(fen).scaleb(-2), Decimal(fen + 1).scaleb(-2)
        expected = {
            "half_up": up if value > 0 else down,
            "up": up if value > 0 else down,
            "half_down": down if value > 0 else up,
            "down": down if value > 0 else up,
            "ceiling": up,
            "floor": down,
            "half_even": down if fen % 2 == 0 else up,
        }[mode]
        assert rounded == expected

    def test_round_fraction_is_exact_for_non_decimal_rationals(self):
        assert round_fraction(Fraction(2, 3), RoundingPolicy("half_up", "fen")) == Decimal("0.67")
        # 1/3 ≈ 0.333… never a tie: every mode but the directed ones rounds down.
        assert round_fraction(Fraction(1, 3), RoundingPolicy("up", "fen")) == Decimal("0.34")


class TestFen:
    @given(st.integers(-(10**15), 10**15))
    def test_round_trip(self, fen):
        assert yuan_to_fen(fen_to_yuan(fen)) == fen

    def test_fen_to_yuan_has_two_places(self):
        assert str(fen_to_yuan(170000)) == "1700.00"
        assert fen_to_yuan(1) == FEN

    def test_refuses_fraction_of_fen(self):
        with pytest.raises(InvalidValueError, match="whole number of fen"):
            yuan_to_fen(Decimal("0.005"))
