from decimal import Decimal

import pytest
from hypothesis import given

from bankkpi import AtLeast, Indicator
from bankkpi.exceptions import InvalidValueError, OutOfRangeError

from .strategies import decimals_at

SCORE = Indicator(
    "mystery_shopper",
    "神秘人检查得分",
    "points",
    "higher_is_better",
    scale_min=0,
    scale_max=100,
    precision="0.01",
)


def test_quantized_before_comparison_so_near_target_meets_it():
    value = SCORE.quantize("91.99999999")
    assert value == Decimal("92.00")
    assert AtLeast(92).met(value)


def test_quantize_uses_stated_rounding():
    down = Indicator("s", "s", "points", "higher_is_better", precision="0.1", rounding="down")
    assert down.quantize("91.99") == Decimal("91.9")


def test_out_of_scale_names_subject_indicator_and_value():
    with pytest.raises(OutOfRangeError) as info:
        SCORE.check("104", subject="outlet 3201")
    message = str(info.value)
    assert "outlet 3201" in message
    assert "mystery_shopper" in message
    assert "104" in message


def test_value_that_rounds_onto_scale_is_accepted():
    assert SCORE.check("100.004") == Decimal("100.00")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"unit": "pts"}, "unit"),
        ({"direction": "up"}, "direction"),
        ({"scale_min": 100, "scale_max": 0}, "scale_max"),
        ({"precision": "0.05"}, "place"),
        ({"rounding": "nearest"}, "rounding"),
        ({"code": " "}, "code"),
    ],
)
def test_invalid_definitions_are_refused(kwargs, field):
    args = {"code": "c", "name": "n", "unit": "points", "direction": "higher_is_better"}
    args.update(kwargs)
    with pytest.raises(InvalidValueError, match=f"'{field}'"):
        Indicator(**args)


def test_direction_message_says_what_to_write():
    with pytest.raises(InvalidValueError) as info:
        Indicator("c", "n", "points", "up")  # type: ignore[arg-type]
    assert str(info.value) == "'direction' must be 'higher_is_better' or 'lower_is_better': 'up'"


@given(decimals_at(6, 0, 100))
def test_quantize_idempotent(value):
    once = SCORE.quantize(value)
    assert SCORE.quantize(once) == once
    assert abs(once - value) <= Decimal("0.005")
