"""Exact money and numbers: Decimal yuan, one coercion helper, rounding as a value.

bankkpi never lets a binary float into an amount: :func:`to_decimal` refuses one with
:class:`~bankkpi.exceptions.FloatMoneyError`, and :func:`decimal_from_float` is the
explicit, documented way across (through the float's shortest ``repr``).
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal, TypeAlias, get_args

import attrs

from bankkpi.exceptions import FloatMoneyError, InvalidValueError, OverflowRiskError

__all__ = [
    "FEN",
    "JIAO",
    "YUAN",
    "DecimalLike",
    "RoundingMode",
    "RoundingPolicy",
    "decimal_from_float",
    "exact_sum",
    "fen_to_yuan",
    "round_fraction",
    "to_decimal",
    "yuan_to_fen",
]

DecimalLike: TypeAlias = Decimal | int | str
"""What bankkpi accepts as an exact number: a Decimal, an int, or a decimal string."""

FEN: Final = Decimal("0.01")
"""The smallest unit of the yuan (分)."""
JIAO: Final = Decimal("0.1")
"""A tenth of a yuan (角)."""
YUAN: Final = Decimal(1)
"""One yuan (元)."""

RoundingMode: TypeAlias = Literal[
    "half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"
]
"""How to round: ``half_up`` is 四舍五入 (ties away from zero); ``up``/``down`` are
away from / toward zero; ``ceiling``/``floor`` toward +∞ / −∞."""

_MODES: Final[tuple[str, ...]] = get_args(RoundingMode)
_DECIMAL_MODE: Final[dict[str, str]] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}
_PLACE_NAMES: Final[dict[str, Decimal]] = {"fen": FEN, "jiao": JIAO, "yuan": YUAN}

# The context of every exact computation: wide enough for any bank amount
# (34 significant digits, IEEE decimal128), trapping every inexact surprise.
CONTEXT: Final = decimal.Context(
    prec=34,
    rounding=decimal.ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[
        decimal.InvalidOperation,
        decimal.DivisionByZero,
        decimal.Overflow,
        decimal.FloatOperation,
    ],
)


def _exact_context() -> decimal.Context:
    """:data:`CONTEXT`, also trapping any rounding: sums must be exact, never rounded."""
    context = CONTEXT.copy()
    context.traps[decimal.Inexact] = True
    context.traps[decimal.Rounded] = True
    return context


_EXACT: Final = _exact_context()

EXACT_CONTEXT: Final = _EXACT
""":data:`CONTEXT` trapping ``Inexact`` and ``Rounded`` too: an operation in it is exact
or raises (the lean path of :func:`~bankkpi.evaluate` then builds the full trace)."""


def exact_sum(values: Iterable[Decimal], *, field: str = "total") -> Decimal:
    """Add Decimals exactly, whatever the caller's decimal context.

    More than 34 significant digits would need rounding: that is an
    :class:`~bankkpi.exceptions.OverflowRiskError`, never a silently rounded total.

    >>> exact_sum([Decimal("0.1"), Decimal("0.2")])
    Decimal('0.3')
    """
    result = Decimal(0)
    try:
        for value in values:
            result = _EXACT.add(result, value)
    except (decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.InvalidOperation):
        raise OverflowRiskError(
            f"'{field}' cannot be added up exactly in 34 significant digits"
        ) from None
    return result


def exact_add(total: Decimal, value: Decimal, *, field: str = "total") -> Decimal:
    """``exact_sum((total, value), field=field)``, for running totals in a loop.

    >>> exact_add(Decimal("0.1"), Decimal("0.2"))
    Decimal('0.3')
    """
    try:
        return _EXACT.add(_EXACT.add(_ZERO, total), value)
    except (decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.InvalidOperation):
        raise OverflowRiskError(
            f"'{field}' cannot be added up exactly in 34 significant digits"
        ) from None


_ZERO: Final = Decimal(0)


def to_decimal(
    value: object,
    *,
    field: str = "value",
    subject: str | None = None,
) -> Decimal:
    """Coerce an exact number to a finite :class:`~decimal.Decimal`.

    Accepts a ``Decimal``, an ``int`` or a decimal string; blanks around a string are
    ignored (spreadsheet cells carry them), ``_`` and ``,`` separators are refused:
    write ``"1700.5"``. A negative zero becomes zero.

    Raises:
        FloatMoneyError: for a ``float``; use :func:`decimal_from_float` on purpose.
        InvalidValueError: for anything else, a bool, a NaN or an infinity.

    >>> to_decimal("91.5")
    Decimal('91.5')
    >>> to_decimal(0.1, field="rate")
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.FloatMoneyError: 'rate' must be an exact number (Decimal, int or str),
    not a float; use decimal_from_float() to convert on purpose: 0.1
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise InvalidValueError(field, "must be a number, not a bool", value, subject=subject)
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        raise FloatMoneyError(
            field,
            "must be an exact number (Decimal, int or str), not a float; "
            "use decimal_from_float() to convert on purpose",
            value,
            subject=subject,
        )
    elif isinstance(value, str):
        if "_" in value:
            raise InvalidValueError(
                field, "must be a decimal number such as '1700.5' (no '_')", value, subject=subject
            )
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidValueError(
                field, "must be a decimal number such as '91.5'", value, subject=subject
            ) from None
    else:
        raise InvalidValueError(
            field,
            f"must be a Decimal, int or str, not {type(value).__name__}",
            value,
            subject=subject,
        )
    if not result.is_finite():
        raise InvalidValueError(field, "must be finite", value, subject=subject)
    if result.is_zero() and result.is_signed():
        result = result.copy_abs()  # −0 is 0
    return result


FloatPolicy: TypeAlias = Literal["refuse", "repr"]
"""What to do with floats in a column: ``refuse`` them (the default:
:class:`~bankkpi.exceptions.FloatMoneyError`), or convert each through its shortest
``repr`` as :func:`~bankkpi.decimal_from_float` does (``91.15`` is 91.15, the digits a
spreadsheet shows); a NaN is then a blank (in a column of text it is one under
either policy: pandas' mark of a missing cell). Exported as
``bankkpi.vector.FloatPolicy``."""

_FLOAT_POLICIES: Final = get_args(FloatPolicy)


def check_float_policy(floats: object) -> FloatPolicy:
    """``floats`` if it is a :data:`FloatPolicy`, else a typed error naming it."""
    if floats not in _FLOAT_POLICIES:
        raise InvalidValueError("floats", "must be 'refuse' or 'repr'", floats)
    return floats  # type: ignore[return-value] # one of the policies


def decimal_from_float(value: float, *, field: str = "value") -> Decimal:
    """Convert a float through its shortest round-tripping ``repr``.

    ``0.1`` becomes ``Decimal('0.1')``, not ``Decimal(0.1000000000000000055511...)``:
    the digits a person typed, which is what a spreadsheet export meant.

    >>> decimal_from_float(0.1)
    Decimal('0.1')
    >>> decimal_from_float(91.99999999)
    Decimal('91.99999999')
    """
    if not math.isfinite(value):
        raise InvalidValueError(field, "must be finite", value)
    return Decimal(repr(value))


def _place(value: object) -> Decimal:
    if isinstance(value, str) and value in _PLACE_NAMES:
        return _PLACE_NAMES[value]
    place = to_decimal(value, field="place")
    if place <= 0 or place.normalize(CONTEXT).as_tuple().digits != (1,):
        raise InvalidValueError(
            "place", "must be a positive power of ten such as 0.01, 1 or 'fen'", value
        )
    return place.normalize(CONTEXT)


def _mode(value: object) -> RoundingMode:
    if value not in _MODES:
        choices = ", ".join(repr(m) for m in _MODES)
        raise InvalidValueError("mode", f"must be one of {choices}", value)
    return value  # type: ignore[return-value]


@attrs.frozen
class RoundingPolicy:
    """How and where to round: a mode and a place (a power of ten).

    ``RoundingPolicy("half_up", "yuan")`` is 四舍五入 to whole yuan;
    ``RoundingPolicy("half_even", "fen")`` is banker's rounding to the fen.

    >>> RoundingPolicy("half_up", "yuan").apply(Decimal("1699.5"))
    Decimal('1700')
    >>> RoundingPolicy("half_even", "fen").apply(Decimal("0.125"))
    Decimal('0.12')
    """

    mode: RoundingMode = attrs.field(converter=_mode)
    place: Decimal = attrs.field(converter=_place)
    _exponent: int = attrs.field(init=False, eq=False, repr=False)
    _quantum: Decimal = attrs.field(init=False, eq=False, repr=False)

    @_exponent.default
    def _place_exponent(self) -> int:
        exponent = self.place.as_tuple().exponent
        assert isinstance(exponent, int)  # noqa: S101 - a finite place always has one
        return exponent

    @_quantum.default
    def _place_quantum(self) -> Decimal:
        return Decimal(1).scaleb(min(self._exponent, 0))

    @property
    def exponent(self) -> int:
        """The place as a power-of-ten exponent: −2 for fen, 0 for yuan."""
        return self._exponent

    def apply(self, value: Decimal) -> Decimal:
        """Round ``value`` to the place by the mode, exactly once."""
        exponent = self._exponent
        quantum = self._quantum
        try:
            if exponent <= 0:
                return value.quantize(quantum, rounding=_DECIMAL_MODE[self.mode], context=CONTEXT)
            if value.is_finite():  # shifted exactly: scaleb would round to 34 digits first
                sign, digits, shift = value.as_tuple()
                assert isinstance(shift, int)  # noqa: S101 - a finite value has one
                shifted = Decimal((sign, digits, shift - exponent))
            else:
                shifted = value.scaleb(-exponent, context=CONTEXT)
            scaled = shifted.quantize(
                Decimal(1), rounding=_DECIMAL_MODE[self.mode], context=CONTEXT
            )
            return scaled.scaleb(exponent, context=CONTEXT).quantize(Decimal(1), context=CONTEXT)
        except decimal.InvalidOperation:
            raise OverflowRiskError(
                f"{value} at {self.place} needs more than the 34 significant digits of an "
                "exact amount"
            ) from None

    def apply_fraction(self, value: Fraction) -> Decimal:
        """Round an exact rational (an average, a ratio) once, with no double rounding."""
        return round_fraction(value, self)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """Name the policy in words: ``half_up to 1`` / ``四舍五入至1`` (the place, no unit)."""
        if lang == "zh":
            names = {
                "half_up": "四舍五入",
                "half_even": "四舍六入五成双",
                "half_down": "五舍六入",
                "up": "向远离零方向进位",
                "down": "截尾",
                "ceiling": "向上取整",
                "floor": "向下取整",
            }
            return f"{names[self.mode]}至{self.place}"
        return f"{self.mode} to {self.place}"


def _bump(mode: str, *, whole: int, rest: int, denominator: int, sign: int) -> bool:
    """Whether a magnitude ``whole + rest / denominator`` rounds up to ``whole + 1``."""
    if rest == 0 or mode == "down":
        return False
    if mode == "up":
        return True
    if mode == "ceiling":
        return sign > 0
    if mode == "floor":
        return sign < 0
    twice = 2 * rest
    if twice != denominator:
        return twice > denominator
    if mode == "half_up":
        return True
    if mode == "half_down":
        return False
    return whole % 2 == 1  # half_even


def round_fraction(value: Fraction, policy: RoundingPolicy) -> Decimal:
    """Round an exact rational number to ``policy.place`` by ``policy.mode``.

    The rational is never approximated first, so ``Fraction(1, 8)`` rounds half-even
    to ``0.12`` and half-up to ``0.13``: exactly one rounding.

    >>> round_fraction(Fraction(2, 3), RoundingPolicy("half_up", "fen"))
    Decimal('0.67')
    """
    return round_ratio(value.numerator, value.denominator, policy)


def round_ratio(numerator: int, denominator: int, policy: RoundingPolicy) -> Decimal:
    """:func:`round_fraction` of ``numerator / denominator`` (``denominator > 0``).

    ``round_ratio(*d.as_integer_ratio(), policy)`` rounds a Decimal ``d`` exactly as
    ``round_fraction(Fraction(d), policy)`` does, without building the Fraction.
    """
    exponent = policy.exponent
    # value / 10**exponent as numerator / denominator, in integers only
    if exponent < 0:
        numerator *= 10**-exponent
    elif exponent > 0:
        denominator *= 10**exponent
    sign = -1 if numerator < 0 else 1
    whole, rest = divmod(abs(numerator), denominator)
    bump = _bump(policy.mode, whole=whole, rest=rest, denominator=denominator, sign=sign)
    digits = sign * (whole + int(bump))
    try:
        result = Decimal(digits).scaleb(exponent, context=CONTEXT)
        if exponent > 0:
            return result.quantize(Decimal(1), context=CONTEXT)
        return result.quantize(Decimal(1).scaleb(exponent), context=CONTEXT)
    except decimal.InvalidOperation:
        raise OverflowRiskError(
            f"an amount of {len(str(abs(digits)))} digits at {policy.place} is beyond "
            "the 34 significant digits of an exact amount"
        ) from None


def yuan_to_fen(amount: Decimal, *, field: str = "amount") -> int:
    """Convert an amount in yuan to an integer count of fen, refusing fractions of a fen.

    >>> yuan_to_fen(Decimal("1700.25"))
    170025
    """
    fen = amount.scaleb(2, context=CONTEXT)
    if fen != fen.to_integral_value(context=CONTEXT):
        raise InvalidValueError(field, "must be a whole number of fen (0.01 yuan)", amount)
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    """Convert an integer count of fen back to Decimal yuan, always with two places.

    >>> fen_to_yuan(170025)
    Decimal('1700.25')
    """
    return Decimal(int(fen)).scaleb(-2, context=CONTEXT)
