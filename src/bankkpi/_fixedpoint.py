"""Exact fixed-point arrays: int64 numerators over one Python-int denominator.

The array paths (expressions, formulas, :mod:`bankkpi.vector`) compute with
:class:`FixedArray` values, never floats. Every operation checks, in Python
integers and *before* computing, that its result stays within int64, and raises
:class:`~bankkpi.exceptions.OverflowRiskError` otherwise; a value never wraps
around. :func:`round_counts` rounds by the same rule as
:func:`~bankkpi.round_fraction`, so an array result agrees with the exact path.

>>> from bankkpi import RoundingPolicy
>>> score = from_counts("score", np.array([9150, 9500, 8937]), 2)
>>> short = subtract(constant(95, "target"), score, "shortfall")
>>> penalty = add(constant(1000, "base"), scale(short, 200, "rate"), "penalty")
>>> round_counts(penalty, RoundingPolicy("half_up", "yuan"), "penalty").tolist()
[1700, 1000, 2126]
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Final, Literal, TypeAlias

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bankkpi._money import RoundingPolicy
from bankkpi.exceptions import FloatMoneyError, InvalidValueError, OverflowRiskError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_PLACES",
    "CompareOp",
    "FixedArray",
    "What",
    "add",
    "align",
    "aligned",
    "bincount",
    "bump",
    "check_bound",
    "compare",
    "constant",
    "finite_decimal",
    "floor",
    "from_counts",
    "from_place_counts",
    "max_abs",
    "maximum",
    "minimum",
    "multiply",
    "negate",
    "reduce",
    "round_counts",
    "scale",
    "subtract",
    "tighten",
    "to_fen",
    "where",
]

INT64_MAX: Final = int(np.iinfo(np.int64).max)
INT64_MIN: Final = int(np.iinfo(np.int64).min)
MAX_PLACES: Final = 18
"""The most decimal places an input array may be counted in (10**18 fits int64)."""

CompareOp: TypeAlias = Literal["<", "<=", "==", "!=", ">=", ">"]

What: TypeAlias = str | Callable[[], str]
"""What an operation computes, for an overflow message; a callable is called only then."""

COMPARE_UFUNCS: Final[dict[str, np.ufunc]] = {
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
    ">=": np.greater_equal,
    ">": np.greater,
}
"""The numpy comparison for each comparison operator of schemes and expressions."""


@attrs.frozen
class FixedArray:
    """Exact values ``num / den``: int64 numerators over one positive integer denominator.

    ``bound`` is at least the largest ``|num|``. Operations do not take common
    factors out after every step (a pass over the array each time): they carry
    ``den`` and ``bound`` forward in Python integers and check, *before* computing,
    that the result stays within int64. Only when that check fails are the operands
    reduced (:func:`tighten`: common factor out, exact bound) and the check made
    again, so a value is refused exactly when its reduced form would not fit.
    ``tight`` records that ``num``/``den`` are reduced and ``bound`` is exact.
    ``num`` may be 0-d (a constant) and broadcasts.

    >>> value = from_counts("score", np.array([9150, 9725]), 2)
    >>> value.den, value.bound, value.fractions()
    (100, 9725, [Fraction(183, 2), Fraction(389, 4)])
    >>> tight = tighten(value, "score")
    >>> tight.den, tight.bound, tight.tight
    (4, 389, True)
    """

    num: NDArray[np.int64]
    den: int
    bound: int
    tight: bool = attrs.field(default=False, kw_only=True)

    def fractions(self) -> list[Fraction]:
        """The values as exact fractions (for tests and messages; a Python loop)."""
        return [Fraction(int(n), self.den) for n in np.ravel(self.num)]

    def decimal(self, index: int) -> Decimal | Fraction:
        """Element ``index`` as a Decimal when finite in decimal form, else a Fraction."""
        element = self.num if self.num.ndim == 0 else self.num[index]
        value = Fraction(int(element), self.den)
        rest = value.denominator
        for prime in (2, 5):
            while rest % prime == 0:
                rest //= prime
        if rest != 1:
            return value
        digits = 0
        while (value * 10**digits).denominator != 1:
            digits += 1
        return Decimal(int(value * 10**digits)).scaleb(-digits)


def _describe(what: What) -> str:
    return what() if callable(what) else what


def check_bound(bound: int, what: What) -> None:
    """Refuse a magnitude beyond int64 before anything computes it.

    Raises:
        OverflowRiskError: naming ``what`` and the magnitude.
    """
    if bound > INT64_MAX:
        raise OverflowRiskError(
            f"{_describe(what)} could reach {bound} in its integer representation, "
            f"beyond int64 ({INT64_MAX}) on the array path; use the exact path "
            "(evaluate) or inputs with fewer decimal places"
        )


def max_abs(array: NDArray[np.int64]) -> int:
    """The largest magnitude in ``array`` (0 when empty), as a Python int."""
    if array.size == 0:
        return 0
    return max(-int(array.min()), int(array.max()))


COUNT_STEP: Final = 1 << 17
"""Rows per step of :func:`bincount`."""

_YIELD: Final = getattr(os, "sched_yield", None)
"""Gives up the processor, and Python's lock with it (POSIX); ``None`` elsewhere."""


def bincount(values: NDArray[np.integer], minlength: int = 0) -> NDArray[np.intp]:
    """``numpy.bincount(values, minlength=minlength)``, in steps that let other threads run.

    ``numpy.bincount`` holds Python's lock for its whole pass (1.4–2.2 ms at 10^6
    rows here), so the vector engine's other threads cannot start their next numpy
    call meanwhile: a ranking's sort waited 1.9 ms for the province's count. Over
    more than :data:`COUNT_STEP` rows, with a ``minlength`` of at most a quarter of
    that, it counts a step at a time, adds the steps' counts, and yields the lock
    between steps (``os.sched_yield`` releases it). The counts are the same. Each
    step's counts are as long as its greatest value: the library's callers pass a
    ``minlength`` past every value, so no step makes a longer array than one
    ``numpy.bincount`` would.

    It also spares numpy a copy: ``numpy.bincount`` copies an array it may not
    write to (a full pass and fresh memory) although it only reads it, so a
    read-only view of a writeable int64 array — what
    :class:`~bankkpi.vector.Counts` holds — is counted through its owner.

    Raises:
        ValueError: a negative value, as ``numpy.bincount`` does.
    """
    owner = values.base
    if (
        not values.flags.writeable
        and isinstance(owner, np.ndarray)
        and owner.flags.writeable
        and owner.dtype == values.dtype == np.int64
        and owner.shape == values.shape
        and owner.flags.c_contiguous
        and values.flags.c_contiguous
        and owner.ctypes.data == values.ctypes.data
    ):
        values = owner
    n = int(values.shape[0]) if values.ndim == 1 else 0  # numpy refuses the others
    if n <= COUNT_STEP or _YIELD is None or minlength > COUNT_STEP // 4:
        return np.bincount(values, minlength=minlength)
    counts = np.bincount(values[:COUNT_STEP], minlength=minlength)
    for lo in range(COUNT_STEP, n, COUNT_STEP):
        _YIELD()
        step = np.bincount(values[lo : lo + COUNT_STEP], minlength=counts.shape[0])
        if step.shape[0] > counts.shape[0]:  # a larger value than any before
            step[: counts.shape[0]] += counts
            counts = step
        else:
            counts += step
    return counts


def reduce(num: NDArray[np.int64], den: int, what: What) -> FixedArray:
    """``num / den`` with the common factor of all numerators and ``den`` taken out."""
    if den == 1:  # whole numbers: nothing to take out
        return FixedArray(num, 1, max_abs(num), tight=True)
    common = int(np.gcd.reduce(num.ravel())) if num.size else 0
    if common == 0:  # every value is zero
        return FixedArray(np.zeros_like(num), 1, 0, tight=True)
    factor = math.gcd(common, den)
    if factor > 1:
        num, den = num // np.int64(factor), den // factor
    check_bound(den, what)
    return FixedArray(num, den, max_abs(num), tight=True)


def tighten(value: FixedArray, what: What) -> FixedArray:
    """``value`` reduced: common factor out, exact bound (a pass over the array)."""
    return value if value.tight else reduce(value.num, value.den, what)


def _fits(*magnitudes: int) -> bool:
    return all(m <= INT64_MAX for m in magnitudes)


def _common(parts: Sequence[FixedArray]) -> tuple[int, list[int], int]:
    """The least common denominator, each part's factor to it, and the aligned bound."""
    den = math.lcm(*(p.den for p in parts))
    factors = [den // p.den for p in parts]
    return den, factors, max(p.bound * f for p, f in zip(parts, factors, strict=True))


def _aligned_parts(
    parts: Sequence[FixedArray], what: What, extra: Callable[[list[FixedArray], int], int]
) -> tuple[list[FixedArray], int, list[int]]:
    """``parts`` (reduced first if needed) whose common denominator and ``extra`` fit int64.

    ``extra(parts, den)`` is the largest magnitude the caller's result can reach.
    """
    den, factors, bound = _common(parts)
    if not _fits(den, bound, extra(list(parts), den)):
        parts = [tighten(p, what) for p in parts]
        den, factors, bound = _common(parts)
        check_bound(den, what)
        check_bound(bound, what)
        check_bound(extra(list(parts), den), what)
    return list(parts), den, factors


def _no_extra(_parts: list[FixedArray], _den: int) -> int:
    return 0


def align(parts: Sequence[FixedArray], what: What) -> tuple[list[NDArray[np.int64]], int]:
    """The numerators of ``parts`` over their least common denominator, and that denominator."""
    nums, den, _bound = aligned(parts, what)
    return nums, den


def aligned(parts: Sequence[FixedArray], what: What) -> tuple[list[NDArray[np.int64]], int, int]:
    """:func:`align`, and a bound on every aligned numerator."""
    fitted, den, factors = _aligned_parts(parts, what, _no_extra)
    nums = [_times(p.num, f) for p, f in zip(fitted, factors, strict=True)]
    return nums, den, max(p.bound * f for p, f in zip(fitted, factors, strict=True))


def _times(num: NDArray[np.int64], factor: int) -> NDArray[np.int64]:
    return num * np.int64(factor) if factor != 1 else num


def constant(value: Fraction | Decimal | int, what: What) -> FixedArray:
    """A 0-d exact constant.

    Raises:
        OverflowRiskError: when its numerator or denominator leaves int64.
    """
    exact = Fraction(value)
    check_bound(max(abs(exact.numerator), exact.denominator), what)
    return FixedArray(
        np.array(exact.numerator, dtype=np.int64), exact.denominator, abs(exact.numerator)
    )


def from_counts(name: str, values: ArrayLike, places: int) -> FixedArray:
    """Integer counts of ``10**-places`` (``9150`` at 2 places is 91.5) as exact values.

    Raises:
        FloatMoneyError: for a float array; InvalidValueError for other non-integers.
        OverflowRiskError: for values beyond the int64 range of the array path.
    """
    array = np.asarray(values)
    kind = array.dtype.kind
    unit = f"1e-{places}" if places else "1"
    if kind in "fc":
        raise FloatMoneyError(
            name,
            f"must hold integer counts of {unit} (int64), not floats; "
            "convert exact amounts first, e.g. with yuan_to_fen()",
            str(array.dtype),
        )
    if kind not in "iu":
        raise InvalidValueError(
            name, f"must hold integer counts of {unit} (int64)", str(array.dtype)
        )
    if array.size and (int(array.max()) > INT64_MAX or int(array.min()) <= INT64_MIN):
        raise OverflowRiskError(f"'{name}' holds values beyond the int64 range of the array path")
    array = array.astype(np.int64)
    return FixedArray(array, 10**places, max_abs(array))


def from_place_counts(counts: NDArray[np.int64], policy: RoundingPolicy, what: What) -> FixedArray:
    """Counts of ``policy.place`` (what :func:`round_counts` gives) as exact values."""
    exponent = policy.exponent
    if exponent <= 0:
        return FixedArray(counts, 10**-exponent, max_abs(counts))
    factor = 10**exponent
    bound = max_abs(counts)
    check_bound(bound * factor, what)
    return FixedArray(counts * np.int64(factor), 1, bound * factor)


def negate(value: FixedArray) -> FixedArray:
    """``−value``."""
    return FixedArray(-value.num, value.den, value.bound, tight=value.tight)


def _sum_bound(parts: list[FixedArray], den: int) -> int:
    return sum(p.bound * (den // p.den) for p in parts)


def _target(
    fitted: Sequence[FixedArray], given: Sequence[FixedArray], reuse: FixedArray | None
) -> int | None:
    """Which operand's array may take the result, if any.

    ``reuse``, when it is a full-size writeable array owning its data, that the other
    operands broadcast to.
    """
    if reuse is None:
        return None
    for i, (part, original) in enumerate(zip(fitted, given, strict=True)):
        num = part.num
        if (
            part is original is reuse
            and num.ndim > 0
            and num.flags.writeable
            and num.flags.owndata
            and all(o.num.shape in ((), num.shape) for o in fitted)
        ):
            return i
    return None


def add(
    left: FixedArray, right: FixedArray, what: What, *, reuse: FixedArray | None = None
) -> FixedArray:
    """``left + right``, exactly.

    ``reuse`` may name ``left`` or ``right`` when it is the caller's temporary that
    nothing else holds: its array then takes the result, one full-size array fewer
    to allocate. The same holds in :func:`subtract`, :func:`multiply`,
    :func:`scale` and :func:`where`.
    """
    return _add(left, right, what, reuse, np.add)


def _add(
    left: FixedArray,
    right: FixedArray,
    what: What,
    reuse: FixedArray | None,
    op: Callable[..., NDArray[np.int64]],
) -> FixedArray:
    fitted, den, factors = _aligned_parts([left, right], what, _sum_bound)
    bound = fitted[0].bound * factors[0] + fitted[1].bound * factors[1]
    target = _target(fitted, [left, right], reuse)
    if target is None:
        num = op(_times(fitted[0].num, factors[0]), _times(fitted[1].num, factors[1]))
        return FixedArray(num, den, bound)
    out = fitted[target].num
    if factors[target] != 1:
        np.multiply(out, np.int64(factors[target]), out=out)
    other = _times(fitted[1 - target].num, factors[1 - target])
    if target == 0 or op is np.add:
        op(out, other, out=out)
    else:  # out = other − out
        np.negative(out, out=out)
        np.add(out, other, out=out)
    return FixedArray(out, den, bound)


def subtract(
    left: FixedArray, right: FixedArray, what: What, *, reuse: FixedArray | None = None
) -> FixedArray:
    """``left − right``, exactly (``reuse`` as in :func:`add`)."""
    return _add(left, right, what, reuse, np.subtract)


def multiply(
    left: FixedArray, right: FixedArray, what: What, *, reuse: FixedArray | None = None
) -> FixedArray:
    """``left × right``, exactly (``reuse`` as in :func:`add`).

    A constant factor first cancels with the other side's denominator (``× 200``
    of a value over 100 is ``× 2`` of a whole number), which costs no pass.
    """
    if left.num.ndim == 0 and right.num.ndim > 0:
        left, right = right, left
    reusable = _target([left], [left], reuse) == 0
    if right.num.ndim == 0 and left.den > 1:
        factor = int(right.num)
        common = math.gcd(factor, left.den)
        if common > 1:
            left = FixedArray(left.num, left.den // common, left.bound, tight=left.tight)
            right = FixedArray(
                np.array(factor // common, dtype=np.int64), right.den, abs(factor // common)
            )
    if not _fits(left.bound * right.bound, left.den * right.den):
        reusable = False
        left, right = tighten(left, what), tighten(right, what)
        check_bound(left.bound * right.bound, what)
        check_bound(left.den * right.den, what)
    den, bound = left.den * right.den, left.bound * right.bound
    if reusable and right.num.shape in ((), left.num.shape):
        return FixedArray(np.multiply(left.num, right.num, out=left.num), den, bound)
    return FixedArray(left.num * right.num, den, bound)


def scale(
    value: FixedArray,
    factor: Fraction | Decimal | int,
    what: What,
    *,
    reuse: FixedArray | None = None,
) -> FixedArray:
    """``value × factor`` for a constant ``factor`` (``reuse`` as in :func:`add`)."""
    return multiply(value, constant(factor, what), what, reuse=reuse)


def where(
    condition: NDArray[np.bool_],
    then: FixedArray,
    otherwise: FixedArray,
    what: What,
    *,
    reuse: FixedArray | None = None,
) -> FixedArray:
    """``then`` where ``condition`` holds, else ``otherwise`` (``numpy.where``).

    Computed as ``otherwise + (then − otherwise) × condition`` when that difference
    fits int64 (several times faster than ``numpy.where`` on unpredictable masks);
    a side that is all zeros is a single product (``reuse`` as in :func:`add`).
    """
    given = [then, otherwise]
    fitted, den, (ft, fo) = _aligned_parts(given, what, _no_extra)
    target = _target(fitted, given, reuse)
    then, otherwise = fitted
    a, b = _times(then.num, ft), _times(otherwise.num, fo)
    bound = max(then.bound * ft, otherwise.bound * fo)
    if then.bound == 0 and target == 1 and fo == 1:  # then is all zeros: b × ¬condition
        num = np.multiply(b, ~condition, out=b)
    elif then.bound == 0:
        num = b * ~condition
    elif otherwise.bound == 0 and target == 0 and ft == 1:
        num = np.multiply(a, condition, out=a)
    elif otherwise.bound == 0:  # otherwise is all zeros
        num = a * condition
    elif _fits(then.bound * ft + otherwise.bound * fo):
        num = b + (a - b) * condition
    else:
        num = np.where(condition, a, b)
    return FixedArray(np.asarray(num, dtype=np.int64), den, bound)


def _pick(
    parts: Sequence[FixedArray], pick: Callable[..., NDArray[np.int64]], what: What
) -> FixedArray:
    fitted, den, factors = _aligned_parts(parts, what, _no_extra)
    nums = [_times(p.num, f) for p, f in zip(fitted, factors, strict=True)]
    bound = max(p.bound * f for p, f in zip(fitted, factors, strict=True))
    return FixedArray(np.asarray(functools.reduce(pick, nums), dtype=np.int64), den, bound)


def minimum(parts: Sequence[FixedArray], what: What) -> FixedArray:
    """The element-wise least of ``parts``."""
    return _pick(parts, np.minimum, what)


def maximum(parts: Sequence[FixedArray], what: What) -> FixedArray:
    """The element-wise greatest of ``parts``."""
    return _pick(parts, np.maximum, what)


def compare(left: FixedArray, op: CompareOp, right: FixedArray, what: What) -> NDArray[np.bool_]:
    """``left op right`` element-wise, exactly."""
    (a, b), _den = align([left, right], what)
    return np.asarray(COMPARE_UFUNCS[op](a, b), dtype=np.bool_)


def floor(value: FixedArray) -> FixedArray:
    """The largest integer ≤ each value (``math.floor``)."""
    whole = np.floor_divide(value.num, np.int64(value.den))
    return FixedArray(whole, 1, -(-value.bound // value.den))


def finite_decimal(value: FixedArray) -> NDArray[np.bool_]:
    """Whether each value has a finite decimal form.

    ``num / den`` is a finite decimal exactly when the part of ``den`` prime to 10
    divides ``num``.
    """
    rest = value.den
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    if rest == 1:
        return np.ones(np.shape(value.num), dtype=np.bool_)
    return np.asarray(value.num % np.int64(rest) == 0, dtype=np.bool_)


def round_counts(
    value: FixedArray,
    policy: RoundingPolicy,
    what: What = "value",
    *,
    reuse: FixedArray | None = None,
) -> NDArray[np.int64]:
    """``value`` rounded to ``policy.place`` as integer counts of that place.

    The result is a new array, or ``value``'s own when ``reuse`` names it (the
    caller's temporary, as in :func:`add`) and it already holds whole counts or is
    rounded in place (no count below 0, a mode other than half-even).

    The same rule as :func:`~bankkpi.round_fraction`, on integers: with
    ``q = value / place = n / d``, ``whole, rest = divmod(|n|, d)`` and the mode
    decides whether ``|result| = whole + 1``; ties compare ``rest`` with ``d − rest``.

    Raises:
        OverflowRiskError: when scaling to a place finer than 1 would leave int64.
    """
    exponent = policy.exponent
    num, den, bound = value.num, value.den, value.bound
    if exponent < 0:
        factor = 10**-exponent
        if value.bound * factor > INT64_MAX:
            value = tighten(value, what)
            num, den = value.num, value.den
        if value.bound * factor > INT64_MAX:
            raise OverflowRiskError(
                f"{_describe(what)} at {policy.place} needs {value.bound * factor} "
                f"in its integer representation, beyond int64 ({INT64_MAX})"
            )
        num, bound = num * np.int64(factor), value.bound * factor
    else:
        den *= 10**exponent
    mine = num is not value.num or _target([value], [value], reuse) == 0
    if den == 1:  # whole counts of the place already
        return num.astype(np.int64, copy=not mine)
    signed = bool(num.size) and int(num.min()) < 0
    lift = _LIFTS.get(policy.mode) if not signed and den <= INT64_MAX else None
    if lift is not None and bound + lift(den) <= INT64_MAX:  # bound: of num, as scaled
        # n >= 0: the rounded count is (n + lift) // d, in one pass and in place when ours
        shift, divisor = np.int64(lift(den)), np.int64(den)
        if mine and isinstance(num, np.ndarray) and num.ndim and num.flags.writeable:
            return np.floor_divide(np.add(num, shift, out=num), divisor, out=num)
        return np.asarray((num + shift) // divisor, dtype=np.int64)
    magnitude = np.abs(num) if signed else num
    negative = num < 0 if signed else np.zeros(magnitude.shape, dtype=np.bool_)
    if den > INT64_MAX:  # then every |num| < den: the whole part is 0
        whole, rest = np.zeros_like(magnitude), magnitude
    else:
        whole = magnitude // np.int64(den)
        rest = magnitude - whole * np.int64(den)
    half, odd = divmod(den, 2)
    if half > INT64_MAX:
        above = tie = np.zeros(magnitude.shape, dtype=np.bool_)
    else:
        above = rest > np.int64(half)
        tie = (rest == np.int64(half)) if not odd else np.zeros(magnitude.shape, dtype=np.bool_)
    up = bump(policy.mode, whole=whole, inexact=rest != 0, negative=negative, above=above, tie=tie)
    result = whole + up
    if signed:
        result = result - 2 * result * negative
    return np.asarray(result, dtype=np.int64)


_LIFTS: Final[dict[str, Callable[[int], int]]] = {
    "half_up": lambda den: den // 2,
    "half_down": lambda den: (den - 1) // 2,
    "up": lambda den: den - 1,
    "ceiling": lambda den: den - 1,
    "down": lambda _den: 0,
    "floor": lambda _den: 0,
}
"""For a count ``n >= 0`` of ``1/d`` of the place, the rounding mode's result is
``(n + lift(d)) // d``: with ``whole, rest = divmod(n, d)`` that adds 1 exactly when
``rest + lift(d) >= d``. Half-up: ``rest >= d − d // 2``, i.e. ``rest >= d / 2`` for an
even ``d`` (the tie goes up) and ``rest > d // 2`` for an odd one (no tie); half-down:
``rest > d / 2``; up and ceiling: ``rest > 0``; down and floor: never. Half-even
needs the whole part's parity and takes the general path."""


def bump(
    mode: str,
    *,
    whole: NDArray[np.int64],
    inexact: NDArray[np.bool_],
    negative: NDArray[np.bool_],
    above: NDArray[np.bool_],
    tie: NDArray[np.bool_],
) -> NDArray[np.bool_]:
    """Whether each magnitude rounds up to ``whole + 1`` under ``mode``."""
    if mode == "down":
        return np.zeros(whole.shape, dtype=np.bool_)
    if mode == "up":
        return inexact
    if mode == "ceiling":
        return inexact & ~negative
    if mode == "floor":
        return inexact & negative
    if mode == "half_up":
        return above | tie
    if mode == "half_down":
        return above
    return np.asarray(above | (tie & (whole % 2 == 1)), dtype=np.bool_)  # half_even


def to_fen(
    counts: NDArray[np.int64], place: Decimal, what: What = "amount", *, in_place: bool = False
) -> NDArray[np.int64]:
    """Counts of ``place`` (a power of ten) as counts of fen (0.01 yuan).

    ``in_place``: ``counts`` is the caller's temporary and may take the result.

    >>> to_fen(np.array([1700, 3]), Decimal(1)).tolist()
    [170000, 300]

    Raises:
        InvalidValueError: when ``place`` is finer than a fen and a count is not a
            whole number of fen.
        OverflowRiskError: when the fen would leave int64.
    """
    exponent = RoundingPolicy("down", place).exponent + 2
    if exponent >= 0:
        factor = 10**exponent
        largest = max_abs(counts)
        check_bound(largest * factor, what)
        if largest == 0:  # no fen at any place: the factor itself may leave int64
            return np.zeros(np.shape(counts), dtype=np.int64)
        if in_place and counts.ndim and counts.flags.writeable and counts.dtype == np.int64:
            return np.multiply(counts, np.int64(factor), out=counts)
        return np.asarray(counts * np.int64(factor), dtype=np.int64)
    divisor = 10**-exponent
    whole, rest = np.divmod(counts, np.int64(divisor))
    if np.any(rest != 0):
        first = int(np.flatnonzero(rest != 0)[0])
        raise InvalidValueError(
            _describe(what),
            f"must be a whole number of fen to be shown in fen (row {first})",
            Decimal(int(counts[first])).scaleb(exponent - 2),
        )
    return np.asarray(whole, dtype=np.int64)
