from decimal import Decimal
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import RoundingPolicy, round_fraction
from bankkpi import _expressions as ex
from bankkpi import _fixedpoint as fx
from bankkpi._explain import exact_decimal
from bankkpi.exceptions import FloatMoneyError, InvalidValueError, OverflowRiskError
from bankkpi.vector import Counts

from .strategies import MODES, rounding_policies

INT64_MAX = fx.INT64_MAX


def fixed(values, den):
    array = np.array(values, dtype=np.int64)
    return fx.FixedArray(array, den, fx.max_abs(array))


numerators = st.lists(st.integers(-(10**8), 10**8), min_size=1, max_size=20)
big_numerators = st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=20)
denominators = st.sampled_from([1, 2, 3, 4, 5, 7, 8, 10, 40, 100, 1000, 3 * 10**6, 10**12])


def test_expressions_use_the_shared_module():
    assert ex.FixedArray is fx.FixedArray
    assert ex.round_counts is fx.round_counts


@given(big_numerators, denominators, rounding_policies)
def test_round_counts_is_round_fraction(nums, den, policy):
    counts = fx.round_counts(fixed(nums, den), policy, "x")
    expected = [round_fraction(Fraction(n, den), policy) for n in nums]
    assert [Decimal(int(c)).scaleb(policy.exponent) for c in counts] == expected


@given(st.lists(st.integers(0, 10**15), min_size=1, max_size=20), denominators, rounding_policies)
def test_round_counts_of_counts_none_negative_is_round_fraction(nums, den, policy):
    """No count below 0 (the one-pass ``(n + lift) // d``), writing into the counts given."""
    value = fixed(nums, den)
    counts = fx.round_counts(value, policy, "x", reuse=value)
    expected = [round_fraction(Fraction(n, den), policy) for n in nums]
    assert [Decimal(int(c)).scaleb(policy.exponent) for c in counts] == expected
    # rounded in place, or whole counts already; scaled to a finer place: a new array
    whole = policy.exponent >= 0 and den * 10**policy.exponent == 1
    in_place = policy.exponent >= 0 and (whole or policy.mode != "half_even")
    assert np.shares_memory(counts, value.num) == in_place


@pytest.mark.parametrize("mode", MODES)
def test_round_counts_of_every_small_count(mode):
    """Every remainder of every small denominator, none negative (one pass each)."""
    policy = RoundingPolicy(mode, "yuan")
    for den in range(1, 13):
        nums = list(range(3 * den + 1))
        got = [Decimal(int(c)) for c in fx.round_counts(fixed(nums, den), policy, "x")]
        assert got == [round_fraction(Fraction(n, den), policy) for n in nums], den


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("place", ["0.001", "yuan"])
def test_round_counts_of_a_constant(mode, place):
    """A 0-d constant (a scalar once scaled to a finer place) rounds as an array does."""
    policy = RoundingPolicy(mode, place)
    for exact in (Fraction(1, 2), Fraction(7, 3000), Fraction(5, 2000)):
        value = fx.constant(exact, "x")
        counts = fx.round_counts(value, policy, "x", reuse=value)
        assert Decimal(int(counts)).scaleb(policy.exponent) == round_fraction(exact, policy)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("place", "factor"), [("yuan", 1), ("fen", 100), ("0.001", 1000)])
def test_round_counts_next_to_the_int64_limit(mode, place, factor):
    """Where ``n + lift`` would leave int64 the general path rounds instead, also
    when the counts are first scaled to a place finer than 1 (fen: × 100)."""
    top = INT64_MAX // factor
    nums = [top, top - 50, 0, 150]
    policy = RoundingPolicy(mode, place)
    got = fx.round_counts(fixed(nums, 1000 * factor), policy, "x")
    expected = [round_fraction(Fraction(n, 1000 * factor), policy) for n in nums]
    assert [Decimal(int(c)).scaleb(policy.exponent) for c in got] == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("place", ["fen", "yuan", "10"])
def test_round_counts_on_every_tie(mode, place):
    policy = RoundingPolicy(mode, place)
    step = Fraction(policy.place)
    values = [k * step / 2 for k in range(-9, 10)]  # every half step: ties and exact values
    den = max(v.denominator for v in values)
    array = fixed([int(v * den) for v in values], den)
    got = [Decimal(int(c)).scaleb(policy.exponent) for c in fx.round_counts(array, policy, "x")]
    assert got == [round_fraction(v, policy) for v in values]


def test_zero_amounts_are_zero_fen_at_any_place():
    """A place of 10^17 yuan is 10^19 fen, past int64: zero counts of it are still 0."""
    zeros = np.zeros(3, dtype=np.int64)
    assert fx.to_fen(zeros, Decimal("1E+17"), "x").tolist() == [0, 0, 0]
    assert fx.to_fen(zeros.copy(), Decimal("1E+17"), "x", in_place=True).tolist() == [0, 0, 0]
    with pytest.raises(OverflowRiskError):
        fx.to_fen(np.array([0, 1], dtype=np.int64), Decimal("1E+17"), "x")


def test_round_counts_refuses_a_place_that_would_overflow():
    with pytest.raises(OverflowRiskError, match=r"'big' at 0\.01 needs"):
        fx.round_counts(fixed([INT64_MAX // 10], 1), RoundingPolicy("half_up", "fen"), "'big'")


def test_operations_refuse_before_they_could_wrap():
    big = fixed([INT64_MAX // 2 + 1], 1)
    with pytest.raises(OverflowRiskError, match="beyond int64"):
        fx.add(big, big, "sum")
    with pytest.raises(OverflowRiskError, match="product could reach"):
        fx.multiply(big, fixed([2], 1), "product")
    with pytest.raises(OverflowRiskError):
        fx.constant(Fraction(1, 2**64), "tiny")
    assert fx.add(big, fixed([-1], 1), "ok").fractions() == [Fraction(INT64_MAX // 2)]


def test_operations_reduce_only_when_a_bound_would_not_fit():
    """Common factors stay in until a check would fail; then the operands are reduced and
    checked again, so a value is refused exactly when its reduced form would not fit."""
    four = fixed([4 * 10**9, -8 * 10**9], 10**9)  # 4 and −8 over a needless 10**9
    assert not four.tight
    product = fx.multiply(four, four, "product")  # 16·10**36 unreduced: reduced first
    assert product.fractions() == [16, 64]
    total = fx.add(fixed([INT64_MAX // 4 * 2], 2), fixed([INT64_MAX // 4 * 2], 2), "sum")
    assert total.fractions() == [Fraction(INT64_MAX // 4 * 2)]
    tight = fx.tighten(four, "four")
    assert (tight.num.tolist(), tight.den, tight.bound, tight.tight) == ([4, -8], 1, 8, True)
    assert fx.tighten(tight, "four") is tight
    assert fx.multiply(fixed([9150], 100), fx.constant(200, "rate"), "x").den == 1
    with pytest.raises(OverflowRiskError, match="product could reach"):
        fx.multiply(fixed([INT64_MAX // 2 + 1], 1), fixed([2], 1), "product")


def test_overflow_message_is_built_only_when_raised():
    calls = []

    def what():
        calls.append(1)
        return "w"

    fx.add(fixed([1], 1), fixed([2], 3), what)
    assert calls == []
    with pytest.raises(OverflowRiskError, match=r"^w could reach"):
        fx.check_bound(INT64_MAX + 1, what)


@given(big_numerators, denominators)
def test_finite_decimal(nums, den):
    mask = fx.finite_decimal(fixed(nums, den))
    assert mask.tolist() == [exact_decimal(Fraction(n, den)) is not None for n in nums]


@given(numerators, st.sampled_from([1, 2, 3, 4, 5, 7, 8, 10, 40, 100, 1000]))
def test_arithmetic_is_exact(nums, den):
    a = fixed(nums, den)
    b = fixed(list(reversed(nums)), 7)
    pairs = list(zip(a.fractions(), b.fractions(), strict=True))
    assert fx.add(a, b, "").fractions() == [x + y for x, y in pairs]
    assert fx.subtract(a, b, "").fractions() == [x - y for x, y in pairs]
    assert fx.multiply(a, b, "").fractions() == [x * y for x, y in pairs]
    assert fx.minimum([a, b], "").fractions() == [min(x, y) for x, y in pairs]
    assert fx.maximum([a, b], "").fractions() == [max(x, y) for x, y in pairs]
    assert fx.floor(a).fractions() == [Fraction(x.__floor__()) for x, _ in pairs]
    assert fx.compare(a, "<=", b, "").tolist() == [x <= y for x, y in pairs]
    condition = np.array([x > 0 for x, _ in pairs])
    assert fx.where(condition, a, b, "").fractions() == [x if x > 0 else y for x, y in pairs]


@given(numerators, st.sampled_from([1, 2, 3, 10, 100]), st.integers(-50, 50))
def test_reusing_a_temporary_gives_the_same_values(nums, den, constant):
    """``reuse=`` lets an operation write into the named temporary; values never change,
    and an operand that is not named (or is a constant, or read-only) is left alone."""
    c = fx.constant(Fraction(constant, 4), "c")
    other = fixed(list(reversed(nums)), 7)
    kept = other.num.copy()
    condition = np.array([n % 2 == 0 for n in nums], dtype=np.bool_)
    cases = [
        (lambda x: fx.add(x, c, "", reuse=x), lambda x: fx.add(x, c, "")),
        (lambda x: fx.add(c, x, "", reuse=x), lambda x: fx.add(c, x, "")),
        (lambda x: fx.subtract(c, x, "", reuse=x), lambda x: fx.subtract(c, x, "")),
        (lambda x: fx.subtract(x, other, "", reuse=x), lambda x: fx.subtract(x, other, "")),
        (lambda x: fx.subtract(other, x, "", reuse=x), lambda x: fx.subtract(other, x, "")),
        (lambda x: fx.scale(x, 200, "", reuse=x), lambda x: fx.scale(x, 200, "")),
        (lambda x: fx.multiply(c, x, "", reuse=x), lambda x: fx.multiply(c, x, "")),
        (
            lambda x: fx.where(condition, fx.constant(0, ""), x, "", reuse=x),
            lambda x: fx.where(condition, fx.constant(0, ""), x, ""),
        ),
        (
            lambda x: fx.where(condition, x, fx.constant(0, ""), "", reuse=x),
            lambda x: fx.where(condition, x, fx.constant(0, ""), ""),
        ),
    ]
    for reusing, plain in cases:
        expected = plain(fixed(nums, den)).fractions()
        assert reusing(fixed(nums, den)).fractions() == expected
        frozen = fixed(nums, den)
        frozen.num.flags.writeable = False
        assert reusing(frozen).fractions() == expected
    assert other.num.tolist() == kept.tolist()


def test_to_fen():
    counts = np.array([1700, -3])
    assert fx.to_fen(counts, Decimal(1), "a").tolist() == [170000, -300]
    assert fx.to_fen(counts, Decimal("0.1"), "a").tolist() == [17000, -30]
    assert fx.to_fen(counts, Decimal(10), "a").tolist() == [1700000, -3000]
    assert fx.to_fen(np.array([1230]), Decimal("0.001"), "a").tolist() == [123]
    with pytest.raises(InvalidValueError, match="whole number of fen"):
        fx.to_fen(np.array([1230, 1234]), Decimal("0.001"), "a")
    with pytest.raises(OverflowRiskError):
        fx.to_fen(np.array([INT64_MAX // 10]), Decimal(1), "a")


def test_from_counts_refuses_floats_and_other_types():
    with pytest.raises(FloatMoneyError):
        fx.from_counts("score", np.array([91.5]), 2)
    with pytest.raises(InvalidValueError):
        fx.from_counts("score", np.array(["91.5"]), 2)
    with pytest.raises(OverflowRiskError):
        fx.from_counts("score", np.array([2**63], dtype=np.uint64), 2)


def test_decimal_of_an_element():
    value = fixed([9150, 1], 300)
    assert value.decimal(0) == Decimal("30.5")
    assert value.decimal(1) == Fraction(1, 300)
    assert fx.constant(Decimal("2.50"), "c").decimal(5) == Decimal("2.5")


@given(st.lists(st.integers(0, 300), max_size=50), st.integers(0, 400))
def test_bincount_reads_counts_without_copying_and_without_writing(values, minlength):
    counts = Counts(np.array(values, dtype=np.int64), 0).counts
    before = counts.copy()
    expected = np.bincount(np.array(values, dtype=np.int64), minlength=minlength)
    with mock.patch.object(np, "bincount", wraps=np.bincount) as spy:
        assert np.array_equal(fx.bincount(counts, minlength), expected)
    if values:  # numpy was given the writeable owner, which it reads without a copy
        assert spy.call_args.args[0] is counts.base
        assert spy.call_args.args[0].flags.writeable
    assert not counts.flags.writeable  # still read-only, and unchanged
    assert np.array_equal(counts, before)
    frozen = np.array(values, dtype=np.int64)
    frozen.flags.writeable = False  # no writeable owner: numpy's own (copying) path
    assert np.array_equal(fx.bincount(frozen, minlength), expected)
    part = counts[1:]  # a view of part of the owner is not its owner
    assert np.array_equal(fx.bincount(part, minlength), np.bincount(part, minlength=minlength))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(-2, 2),
    st.integers(1, 3),
    st.integers(0, 40_000),
    st.integers(0, 3 * fx.COUNT_STEP),
    st.sampled_from([np.int64, np.int32, np.uint16]),
)
def test_bincount_in_steps_counts_as_numpy_does(seed, extra, steps, top, where, dtype):
    """Over more than one step: the same counts, a larger value in any step included."""
    n = steps * fx.COUNT_STEP + extra
    rng = np.random.default_rng(seed)
    values = rng.integers(0, min(top, 30) + 1, n).astype(dtype)
    values[min(where, n - 1)] = min(top, np.iinfo(dtype).max)  # the greatest, in some step
    for minlength in (0, top // 2, top + 5, fx.COUNT_STEP // 4 + 1):
        expected = np.bincount(values, minlength=minlength)
        got = fx.bincount(values, minlength)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)


def test_bincount_in_steps_refuses_a_negative_value_in_a_later_step():
    values = np.zeros(2 * fx.COUNT_STEP + 3, dtype=np.int64)
    values[-1] = -1
    with pytest.raises(ValueError, match="negative"):
        fx.bincount(values, 5)


def test_bincount_refuses_what_numpy_refuses():
    """Not one-dimensional: numpy's own error, whatever the size."""
    with pytest.raises(ValueError, match="too small depth"):
        fx.bincount(np.array(5, dtype=np.int64), 3)
    with pytest.raises(ValueError, match="too deep"):
        fx.bincount(np.zeros((fx.COUNT_STEP + 1, 2), dtype=np.int64), 3)
