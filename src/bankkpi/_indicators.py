"""Indicators (指标): what is measured, in which unit, and which way is better."""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Literal, TypeAlias, get_args

import attrs

from bankkpi import _checks as checks
from bankkpi._checks import non_empty, one_of
from bankkpi._money import CONTEXT, RoundingMode, RoundingPolicy, to_decimal
from bankkpi.exceptions import InvalidValueError, OutOfRangeError

__all__ = ["Direction", "Indicator", "Unit"]

Direction: TypeAlias = Literal["higher_is_better", "lower_is_better"]
"""Score and satisfaction are ``higher_is_better``; error rate, NPL ratio and waiting
time are ``lower_is_better``."""

Unit: TypeAlias = Literal[
    "points", "percent", "ratio", "count", "yuan", "days", "hours", "minutes", "seconds"
]
"""The closed set of units. ``percent`` values are written as percentages (``95`` for
95%); ``ratio`` values as fractions (``0.95``)."""

_DIRECTIONS: Final = get_args(Direction)
_UNITS: Final = get_args(Unit)

UNIT_NAMES: Final[dict[str, tuple[str, str]]] = {
    "points": ("分", "points"),
    "percent": ("%", "%"),
    "ratio": ("", ""),
    "count": ("次", "times"),
    "yuan": ("元", "yuan"),
    "days": ("天", "days"),
    "hours": ("小时", "hours"),
    "minutes": ("分钟", "minutes"),
    "seconds": ("秒", "seconds"),
}


def _precision(value: object) -> Decimal:
    return RoundingPolicy("half_up", to_decimal(value, field="precision")).place


@attrs.frozen
class Indicator:
    """An indicator with its unit, direction, scale and precision.

    Measured values are quantized to ``precision`` by ``rounding`` (default
    ``half_up``, 四舍五入) **before** any comparison, so an input of
    ``91.99999999`` on a 0.01-point indicator is 92.00 and meets a target of 92.

    >>> score = Indicator("mystery_shopper", "神秘人检查得分", "points",
    ...                   "higher_is_better", scale_min=0, scale_max=100, precision="0.01")
    >>> score.quantize("91.99999999")
    Decimal('92.00')
    >>> score.check("104", subject="outlet 3201")
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.OutOfRangeError: outlet 3201: 'mystery_shopper' must be within [0, 100]:
    Decimal('104.00')
    """

    code: str = attrs.field(validator=non_empty("code"))
    name: str = attrs.field(validator=non_empty("name"))
    unit: Unit = attrs.field(validator=one_of("unit", _UNITS))
    direction: Direction = attrs.field(validator=one_of("direction", _DIRECTIONS))
    scale_min: Decimal | None = attrs.field(
        default=None,
        converter=checks.scale_min,
        kw_only=True,
    )
    scale_max: Decimal | None = attrs.field(
        default=None,
        converter=checks.scale_max,
        kw_only=True,
    )
    precision: Decimal = attrs.field(default=Decimal("0.01"), converter=_precision, kw_only=True)
    rounding: RoundingMode = attrs.field(
        default="half_up",
        kw_only=True,
        validator=one_of("rounding", get_args(RoundingMode)),
    )

    @scale_max.validator
    def _check_scale(self, _attribute: object, scale_max: Decimal | None) -> None:
        if scale_max is not None and self.scale_min is not None and scale_max <= self.scale_min:
            raise InvalidValueError(
                "scale_max",
                f"must be greater than scale_min {self.scale_min}",
                scale_max,
            )

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger value is the better one."""
        return self.direction == "higher_is_better"

    @property
    def policy(self) -> RoundingPolicy:
        """The rounding applied to every measured value of this indicator."""
        return RoundingPolicy(self.rounding, self.precision)

    def quantize(self, value: object, *, subject: str | None = None) -> Decimal:
        """Coerce ``value`` and round it to the indicator's precision."""
        return self.policy.apply(to_decimal(value, field=self.code, subject=subject))

    def check(self, value: object, *, subject: str | None = None) -> Decimal:
        """Quantize ``value`` and refuse it outside the scale (bounds included)."""
        quantized = self.quantize(value, subject=subject)
        low, high = self.scale_min, self.scale_max
        if (low is not None and quantized < low) or (high is not None and quantized > high):
            shown = f"[{'-∞' if low is None else low}, {'+∞' if high is None else high}]"
            raise OutOfRangeError(self.code, f"must be within {shown}", quantized, subject=subject)
        return quantized

    def steps(self, amount: Decimal) -> Decimal:
        """``amount`` expressed in precision steps (0.5 points = 50 steps of 0.01)."""
        return (amount / self.precision).normalize(CONTEXT)
