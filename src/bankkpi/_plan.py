"""Rules compiled once for a population: the array path without a tree walk per block.

The array path (each formula's ``evaluate_array``) walks a rule's formula tree over
the whole population, or once per block of rows, keeping every value as an exact
fixed-point array whose denominator and bound are worked out at every step, and
evaluating a branch taken by few rows on just those rows. For the commonest
shapes of rule that is mostly bookkeeping. :func:`compile_rule` does the
bookkeeping once, for one population: it walks the tree once, fixes each node's
denominator and a bound on its numerators (from the least and greatest count of
every variable, :attr:`Counts.span`), resolves each ranking selection to its
cut-off table, and returns a :class:`RulePlan` whose nodes are closures over
numpy calls. :meth:`RulePlan.fen` then evaluates any block of rows with no
bookkeeping left, every branch as masked arithmetic; blocks can be small enough to
stay in the processor's cache and to reuse the allocator's memory
(:data:`PLAN_ROWS`).

Compiled shapes: :class:`Fixed`; :class:`~bankkpi.Expression`, as a node whose values
its own array path gives once per combination of its variables' counts
(:func:`_expression`); :class:`Shortfall` with exact units and ``per`` 1;
:class:`Sum` without rounding; :class:`Choose` and :class:`When`; :class:`Clamp`,
:class:`Multiply`, :class:`BandAmount`, :class:`PerCount`, :class:`PerPeriodEarly`,
:class:`Escalating`, :class:`RateTable` and :class:`Discretionary`; the predicates
:class:`InRanks` (selections answered from cut-offs, as :meth:`RankSource.mask`
answers them), :class:`Compare`, :class:`Met` (at least or at most), :class:`InBand`
and :class:`AllOf`, :class:`AnyOf`, :class:`Not` of them. A node computes every row
of a block, even one whose value the array path would refuse (a value in no band
without a catch-all, a count that is negative or not whole, an offence number below
1, an amount chosen outside its range): it notes such rows (:attr:`Block.refused`),
a branch keeps only those among the rows it takes (its test, those it is tested on),
and a block with any left at the rule's top is given back, for the array path to
refuse the row by name. So a guard (``when offences >= 1``) keeps a rule compiled
over rows it does not let through. Anything else, a variable the context lacks, a
constant whose numerator or denominator leaves int64 (the array path refuses it), or
a numerator, denominator or bound that could leave int64 — before or after the
rule's rounding scales the values to a place finer than 1 — and :func:`compile_rule`
returns ``None`` (or a plan with no nodes, below): the rule takes the array path.
So no step of a plan depends on the rows of a block: the array path's only such
steps (taking common factors out when a bound fails) are left to it. A compiled
rule that meets a negative amount, or an amount or fen beyond int64, in some block
gives that block back (:meth:`RulePlan.fen` returns ``False``), and the caller gives
the whole rule to the array path, which refuses the rows by name. So a rule gives
the same amounts, and the same errors, whether compiled or not (a plan with no
nodes may give exact amounts where the array path would refuse for overflow risk,
below); the agreement tests hold both to the exact path.

A rule of any other of the library's shapes (a rounded :class:`Sum`, a
:class:`Shortfall` counted in started units, …) that reads input variables alone
has no nodes; when
every combination of its variables' counts is few enough, its own array path
computes the amount of each combination once, and blocks look them up as below
(:func:`_opaque`). The amounts are the array path's, and where it refuses any
combination there is no table; the only error this can change is a refusal for
overflow risk (a bound, which over a branch few rows take depends on which rows
take it), which a table computed without it may replace by the exact amounts.

A rule's amount on a row depends on the row only through its leaves: the
counts of the variables it reads and its cut-off comparisons (:class:`_Leaves`).
When every combination of their values is few enough — a score of 60.00–100.00
is 4,001 counts, and each comparison doubles them, except one with a ranking of
the whole population whose values are the very counts of a variable the rule
reads (as :func:`~bankkpi.vector.evaluate_arrays` builds a ranking): that one
is a function of the count — :meth:`RulePlan.tabulated` computes the rule once
per combination, with the very same nodes (:class:`_TableRows`), rounds it to
fen, and each block then only numbers its rows' combinations and looks their
amounts up (:class:`_Layout`): a few passes over the block instead of one per
step of the rule. A combination whose amount is negative, or whose rows the
array path refuses, holds −1, and a block with a row on one is given back; a
table with a step past int64, even at a combination no row has, is not used:
the rows are computed as without one.

A block's arrays come from a :class:`Scratch` of the thread's own: a node takes
a buffer for its result, the caller consumes it and gives it back, so after the
first block a block allocates almost nothing (the last, shorter block copies its
result once; a half-even rounding, or a table's negative amounts, take the general path) —
fresh memory, faulted in and zeroed by the kernel, cost as much as the
arithmetic. A constant node gives a Python int.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, wait
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, TypeAlias

import attrs
import numpy as np
from numpy.typing import NDArray

from bankkpi import _fixedpoint as fx
from bankkpi._bands import BandSet
from bankkpi._expressions import Expression
from bankkpi._formulas import (
    AllOf,
    AnyOf,
    ArrayContext,
    BandAmount,
    Choose,
    Clamp,
    Compare,
    Counts,
    Discretionary,
    Escalating,
    Fixed,
    InBand,
    InRanks,
    Met,
    Multiply,
    Not,
    PerCount,
    PerPeriodEarly,
    RateTable,
    Rule,
    Shortfall,
    Sum,
    Var,
    When,
    _var,
    formula_array,
    met_op,
)
from bankkpi._ranking import Exemption, RankSource, Selection
from bankkpi._schemes import references
from bankkpi._targets import AtLeast, AtMost
from bankkpi.exceptions import BankKPIError

PLAN_ROWS: Final = 1 << 17
"""Rows per block of a compiled rule: a block's int64 buffers (1 MiB each) stay in
the processor's cache."""

TABLE_SHARE: Final = 8
"""By default a rule's table (:meth:`RulePlan.tabulated`) has at most a
``TABLE_SHARE`` th as many rows as the population. Over 10^6 rows on two threads,
a table of 90,000 rows took 15.2 ms against 19.5 ms without one; of 250,000 rows
(a quarter), 20.5 ms against 18.7 ms."""

TABLE_ROWS: Final = 1 << 20
"""By default, the most rows of a rule's table (8 MiB)."""

_INDEX_ROWS: Final = 2**31 - 1
"""The most rows of any table: a block numbers its rows' table rows in int32."""

_LIMIT: Final = fx.INT64_MAX

Values: TypeAlias = NDArray[np.int64] | int
"""A node's numerators over a block: a scratch buffer now the caller's, or one int
for every row."""
Mask: TypeAlias = NDArray[np.bool_]


class Scratch:
    """One thread's buffers of :data:`PLAN_ROWS` rows, by dtype, reused block after block.

    :meth:`take` lends one (a view of its first rows), :meth:`give` takes it back.
    :meth:`kept` computes a block's shared input once (a shortfall's gap, a
    comparison with a cut-off) and keeps it until :meth:`clear`; nobody writes into
    what it keeps. Not shared between threads.
    """

    def __init__(self, rows: int = PLAN_ROWS) -> None:
        self.rows = rows
        self._free: dict[np.dtype[Any], list[NDArray[Any]]] = {}
        self._kept: dict[object, tuple[NDArray[Any], ...]] = {}

    def kept(
        self, key: object, make: Callable[[], tuple[NDArray[Any], ...]]
    ) -> tuple[NDArray[Any], ...]:
        """``make()``'s buffers, made once per block (``key`` names what they hold)."""
        found = self._kept.get(key)
        if found is None:
            found = self._kept[key] = make()
        return found

    def clear(self) -> None:
        """Give back what :meth:`kept` kept: the block is done."""
        for arrays in self._kept.values():
            self.give(*arrays)
        self._kept.clear()

    def take(self, dtype: type[Any] | np.dtype[Any], rows: int) -> NDArray[Any]:
        """A buffer of ``rows`` rows, its contents undefined (new if over :attr:`rows`)."""
        if rows > self.rows:
            return np.empty(rows, dtype=dtype)
        free = self._free.get(np.dtype(dtype))
        whole = free.pop() if free else np.empty(self.rows, dtype=dtype)
        return whole[:rows]

    def give(self, *arrays: object) -> None:
        """Take back buffers lent by :meth:`take` (ints and other objects are ignored)."""
        for array in arrays:
            if isinstance(array, np.ndarray):
                whole = array.base if isinstance(array.base, np.ndarray) else array
                self._free.setdefault(whole.dtype, []).append(whole)


class Block:
    """The rows a compiled rule evaluates at once, and what its leaves read of them.

    ``rows`` rows, whose buffers come from ``scratch``. :meth:`counts` gives a
    variable's counts and :meth:`good` a cut-off comparison (a leaf of
    :class:`_Leaves`), both read only. Rows of the population
    (:class:`_PopulationRows`) or of a rule's table (:class:`_TableRows`).
    """

    def __init__(self, rows: int, scratch: Scratch) -> None:
        self.rows = rows
        self.scratch = scratch
        self.refused: list[Mask] = []
        """Rows the array path would refuse if they needed the value a node gave
        them (a value in no band, a count not whole): each node notes its own
        (:func:`_note_refused`); a branch keeps only those of the rows it takes
        (:func:`_first_case`); any left at the rule's top give the block back."""

    def counts(self, variable: str) -> NDArray[np.int64]:
        """The block's counts of ``variable``."""
        raise NotImplementedError

    def good(self, leaf: int) -> Mask:
        """The block's rows as good as the cut-off :attr:`_Leaves.goods` ``[leaf]``."""
        raise NotImplementedError


def _note_refused(block: Block, bad: Mask) -> None:
    """Note ``bad`` (now the block's) as rows the array path would refuse if they need them."""
    if bad.any():
        block.refused.append(bad)
    else:
        block.scratch.give(bad)


def _refused_since(block: Block, mark: int) -> Mask | None:
    """The rows noted since ``block.refused`` held ``mark`` masks, taken off it (``None``: none)."""
    if len(block.refused) <= mark:
        return None
    found = block.refused[mark:]
    del block.refused[mark:]
    union = found[0]
    for other in found[1:]:
        np.logical_or(union, other, out=union)
        block.scratch.give(other)
    return union


def _keep_refused(block: Block, mark: int, rows: Mask) -> None:
    """Of the rows noted since ``mark``, keep noted only those among ``rows``."""
    bad = _refused_since(block, mark)
    if bad is not None:
        _note_refused(block, np.logical_and(bad, rows, out=bad))


def _outside(
    counts: Counts, *, least: int | None = None, most: int | None = None, step: int = 1
) -> Callable[[Block, NDArray[np.int64]], None] | None:
    """A check that notes rows as refused (:func:`_note_refused`) by their counts.

    Those below ``least``, above ``most`` or not a multiple of ``step``; ``None``
    when no count of the population can be.
    """
    low, high = counts.span
    below = least if least is not None and low < least else None
    above = most if most is not None and high > most else None
    if below is None and above is None and step == 1:
        return None

    def check(block: Block, values: NDArray[np.int64]) -> None:
        scratch = block.scratch
        bad = scratch.take(np.bool_, block.rows)
        bad[...] = False
        more = scratch.take(np.bool_, block.rows)
        if below is not None:
            np.logical_or(bad, np.less(values, below, out=more), out=bad)
        if above is not None:
            np.logical_or(bad, np.greater(values, above, out=more), out=bad)
        if step > 1:
            rest = scratch.take(np.int64, block.rows)
            np.logical_or(
                bad, np.not_equal(np.remainder(values, step, out=rest), 0, out=more), out=bad
            )
            scratch.give(rest)
        scratch.give(more)
        _note_refused(block, bad)

    return check


Run: TypeAlias = Callable[[Block], Values]
_Test: TypeAlias = Callable[[Block], Mask]
"""A compiled predicate over a block: a bool buffer now the caller's."""


@attrs.frozen(eq=False)
class _Node:
    """A compiled formula: ``run(block)`` gives the block's rows as ``num / den``.

    Every ``|num|`` is at most ``bound``; ``den`` and ``bound`` fit int64.
    """

    den: int
    bound: int
    run: Run


def _fits(*bounds: int) -> bool:
    """Whether every magnitude given fits int64."""
    return all(abs(b) <= _LIMIT for b in bounds)


def _constant(value: Decimal | Fraction | int) -> Fraction | None:
    """``value`` exactly, or ``None`` when its numerator or denominator leaves int64.

    The array path refuses such a constant (:func:`~bankkpi._fixedpoint.constant`);
    a plan leaves the rule to it.
    """
    exact = Fraction(value)
    return exact if _fits(exact.numerator, exact.denominator) else None


def _scaled(node: _Node, den: int) -> Run:
    """``node`` over the common denominator ``den`` (a multiple of its own)."""
    factor = den // node.den
    if factor == 1:
        return node.run
    run = node.run

    def scaled(block: Block) -> Values:
        values = run(block)
        if isinstance(values, int):
            return values * factor
        return np.multiply(values, factor, out=values)

    return scaled


class _Leaves:
    """What a rule being compiled reads of each row: its leaves, each once.

    ``variables``: each variable's :class:`Counts` (a block reads them with
    :meth:`Block.counts`); ``goods``: each cut-off comparison, ``(source,
    largest, rank)``: rows as good as the ``rank``-th best of their group (read
    with :meth:`Block.good` by its index; its table from :meth:`cut`). A rule's
    amount on a row depends on the row through these alone, so a table over every
    combination of their values gives it (:meth:`RulePlan.tabulated`).
    """

    def __init__(self, env: ArrayContext) -> None:
        self.env = env
        self.variables: dict[str, Counts] = {}
        self.goods: list[tuple[RankSource, bool, int | NDArray[np.int64]]] = []
        self._keys: list[tuple[RankSource, bool, object]] = []

    def variable(self, variable: str | Var) -> tuple[str, Counts] | None:
        """``variable``'s name and counts, read by the rule (``None``: the context lacks it)."""
        name = _var(variable).name
        counts = self.env.variables.get(name)
        if counts is None:
            return None
        self.variables[name] = counts
        return name, counts

    def good(self, source: RankSource, largest: bool, rank: int | NDArray[np.int64]) -> int:
        """The index of the comparison with ``rank``'s cut-off (the same for the same one)."""
        key = rank if isinstance(rank, int) else rank.tobytes()
        for leaf, (known, larger, same) in enumerate(self._keys):
            if known is source and larger == largest and same == key:
                return leaf
        self.goods.append((source, largest, rank))
        self._keys.append((source, largest, key))
        return len(self.goods) - 1

    def cut(self, leaf: int) -> NDArray[Any]:
        """Comparison ``leaf``'s cut-off table, computed now if not before.

        Raises:
            BankKPIError: when the ranking cannot select by cut-offs after all.
        """
        source, largest, rank = self.goods[leaf]
        return source._cut_table(largest, rank)  # noqa: SLF001 - the ranking module's own plan


# -------------------------------------------------------------------- formulas


def _formula(formula: object, env: _Leaves) -> _Node | None:
    """``formula`` compiled for ``env``'s population, or ``None`` (see the module)."""
    # these classes exactly: a subclass may evaluate otherwise
    compile_node = _FORMULAS.get(type(formula))
    return None if compile_node is None else compile_node(formula, env)


def _fixed(formula: Fixed, _env: _Leaves) -> _Node | None:
    amount = _constant(formula.amount)
    if amount is None:
        return None
    constant = amount.numerator
    return _Node(amount.denominator, abs(constant), lambda _block: constant)


def _chosen(formula: Choose, env: _Leaves) -> _Node | None:
    return _choose(list(formula.cases), formula.otherwise, env)


def _when(formula: When, env: _Leaves) -> _Node | None:
    return _choose([(formula.predicate, formula.then)], formula.otherwise, env)


def _per_count(formula: PerCount, env: _Leaves) -> _Node | None:
    """``rate × count`` (:func:`_times_count`)."""
    return _times_count(formula.variable, formula.rate, env)


def _per_period_early(formula: PerPeriodEarly, env: _Leaves) -> _Node | None:
    """``amount × periods early`` (:func:`_times_count`)."""
    return _times_count(formula.variable, formula.amount, env)


def _times_count(variable: str | Var, factor: Decimal, env: _Leaves) -> _Node | None:
    """``factor × count``, the count over ``10^p`` and the factor over its denominator.

    The count must be a whole number >= 0: a negative count or one that is not
    whole is noted as refused (:func:`_note_refused`), for the array path to
    refuse where a row needs it.
    """
    read = env.variable(variable)
    rate = _constant(factor)
    if read is None or rate is None:
        return None
    name, counts = read
    unit = 10**counts.places
    den, times = unit * rate.denominator, rate.numerator
    bound = counts.bound * abs(times)
    if not _fits(unit, den, times, bound):
        return None
    check = _outside(counts, least=0, step=unit)  # whole counts >= 0 only

    def run(block: Block) -> Values:
        values = block.counts(name)
        if check is not None:
            check(block, values)
        out = block.scratch.take(np.int64, block.rows)
        result: NDArray[np.int64] = np.multiply(values, times, out=out)
        return result

    return _Node(den, bound, run)


def _discretionary(formula: Discretionary, env: _Leaves) -> _Node | None:
    """The amount chosen, as the array path gives it.

    One outside the range is noted as refused (:func:`_note_refused`), for the
    array path to refuse where a row needs it. Compiled where the array path
    compares the amounts with the range's ends without reducing them first.
    """
    read = env.variable(formula.variable)
    low, high = _constant(formula.low), _constant(formula.high)
    if read is None or low is None or high is None:
        return None
    name, counts = read
    unit = 10**counts.places
    value = (unit, counts.bound)
    if any(_meta_aligned([value, _meta_constant(end)]) is None for end in (low, high)):
        return None
    # the counts within the range
    check = _outside(counts, least=math.ceil(low * unit), most=math.floor(high * unit))

    def run(block: Block) -> Values:
        values = block.counts(name)
        if check is not None:
            check(block, values)
        out: NDArray[np.int64] = block.scratch.take(np.int64, block.rows)
        np.copyto(out, values)
        return out

    return _Node(unit, counts.bound, run)


def _escalating(formula: Escalating, env: _Leaves) -> _Node | None:
    """``units × rate of the offence number``: each row's rate gathered from a table.

    As the array path: the rates over their least common denominator ``R``, times
    the units over ``10^p × R``. Offence numbers must be whole and at least 1, units
    at least 0: other rows are noted as refused (:func:`_note_refused`), for the
    array path to refuse where a row needs them (their rate is the first).
    """
    units_read, offence_read = env.variable(formula.units), env.variable(formula.offence)
    rates = _constants(formula.rates)
    if units_read is None or offence_read is None or rates is None:
        return None
    (units_name, units), (offence_name, offences) = units_read, offence_read
    per = 10**offences.places
    common = _meta_aligned([_meta_constant(rate) for rate in rates])  # fx.align
    if common is None:
        return None
    rate_den, rate_bound = common
    product = _meta_product((10**units.places, units.bound), (rate_den, rate_bound))
    if product is None:
        return None
    table = np.array([r.numerator * (rate_den // r.denominator) for r in rates], dtype=np.int64)
    last = len(rates)
    check_offence = _outside(offences, least=per, step=per)  # whole numbers >= 1 only
    check_units = _outside(units, least=0)

    def run(block: Block) -> Values:
        scratch = block.scratch
        offence, count = block.counts(offence_name), block.counts(units_name)
        if check_offence is not None:
            check_offence(block, offence)
        if check_units is not None:
            check_units(block, count)
        index = scratch.take(np.int64, block.rows)
        if per > 1:
            np.floor_divide(offence, per, out=index)
            np.minimum(index, last, out=index)
        else:
            np.minimum(offence, last, out=index)
        np.subtract(index, 1, out=index)  # offence k takes rate k − 1, the last beyond
        rate = scratch.take(np.int64, block.rows)
        np.take(table, index, out=rate, mode="clip")  # an offence below 1: the first rate
        scratch.give(index)
        result: NDArray[np.int64] = np.multiply(count, rate, out=rate)
        return result

    return _Node(*product, run)


def _rate_table(formula: RateTable, env: _Leaves) -> _Node | None:
    """A tiered or graduated rate table: within tier *k*, ``A_k + M_k × count``.

    Each row's tier is the number of tier starts its count reaches (a search in
    the starts as counts, rounded up); below the first, ``A`` and ``M`` are 0.
    The denominator and bound are the array path's (:func:`_rate_table_meta`),
    so the plan compiles only what the array path computes without refusing; the
    coefficients over that denominator must be whole, and ``|A| + |M| × count``
    within int64.
    """
    read = env.variable(formula.variable)
    starts = _constants([start for start, _rate in formula.tiers])
    rates = _constants([rate for _start, rate in formula.tiers])
    scale = _constant(formula.scale)
    if read is None or starts is None or rates is None or scale is None:
        return None
    name, counts = read
    unit = 10**counts.places
    tiered = formula.mode == "tiered"
    meta = _rate_table_meta((unit, counts.bound), starts, rates, scale, tiered=tiered)
    if meta is None:
        return None
    den, bound = meta
    slopes, intercepts = [0], [0]
    below = Fraction(0)  # the amount of every tier below this one, in full
    for k, (start, rate) in enumerate(zip(starts, rates, strict=True)):
        slope = scale * rate * den / unit
        intercept = Fraction(0) if tiered else scale * den * (below - start * rate)
        if slope.denominator != 1 or intercept.denominator != 1:
            return None
        slopes.append(slope.numerator)
        intercepts.append(intercept.numerator)
        if k + 1 < len(starts):
            below += (starts[k + 1] - start) * rate
    largest = counts.bound * max(abs(m) for m in slopes)
    ours = largest + max(abs(a) for a in intercepts)
    if not _fits(largest, ours, *slopes, *intercepts):  # each coefficient too, for no rows
        return None
    least, most = counts.span
    firsts = [max(math.ceil(start * unit), least) for start in starts]  # the count reaching it
    reached = np.array([first for first in firsts if first <= most], dtype=np.int64)
    slope_table = np.array(slopes, dtype=np.int64)
    intercept_table = np.array(intercepts, dtype=np.int64) if any(intercepts) else None

    def run(block: Block) -> Values:
        scratch = block.scratch
        values = block.counts(name)
        tier = np.searchsorted(reached, values, side="right")  # 0: below the first tier
        out = scratch.take(np.int64, block.rows)
        np.take(slope_table, tier, out=out, mode="clip")  # every index is valid
        np.multiply(out, values, out=out)
        if intercept_table is not None:
            intercept = scratch.take(np.int64, block.rows)
            np.take(intercept_table, tier, out=intercept, mode="clip")
            np.add(out, intercept, out=out)
            scratch.give(intercept)
        result: NDArray[np.int64] = out
        return result

    return _Node(den, max(bound, ours), run)


def _constants(values: Iterable[Decimal]) -> list[Fraction] | None:
    """Each of ``values`` by :func:`_constant`, or ``None`` when one leaves int64."""
    exact = [_constant(value) for value in values]
    found = [value for value in exact if value is not None]
    return found if len(found) == len(exact) else None


# The array path's denominator and bound, step by step, as (den, bound) pairs: what
# _fixedpoint computes before it computes anything. ``None`` where a step would not
# fit int64 with them, where the array path would reduce its operands by their
# values (and might refuse them): a plan is not compiled there.
_Meta: TypeAlias = tuple[int, int]


def _meta_constant(value: Fraction) -> _Meta:
    """``fx.constant``: fits, as :func:`_constant` checked."""
    return value.denominator, abs(value.numerator)


def _meta_aligned(parts: list[_Meta], *, summed: bool = False) -> _Meta | None:
    """``parts`` over their least common denominator; the bound of one, or of their sum."""
    den = math.lcm(*(d for d, _ in parts))
    bounds = [b * (den // d) for d, b in parts]
    largest, total = max(bounds), sum(bounds)
    if not _fits(den, largest, total if summed else 0):
        return None
    return den, total if summed else largest


def _meta_product(left: _Meta, right: _Meta) -> _Meta | None:
    """``fx.multiply`` of two arrays."""
    den, bound = left[0] * right[0], left[1] * right[1]
    return (den, bound) if _fits(den, bound) else None


def _meta_scaled(left: _Meta, factor: Fraction) -> _Meta | None:
    """``fx.scale``: an array times a constant, which first cancels with its denominator."""
    den, bound = left
    times = factor.numerator
    if den > 1:
        common = math.gcd(times, den)
        den, times = den // common, times // common
    return _meta_product((den, bound), (factor.denominator, abs(times)))


def _rate_table_meta(
    value: _Meta,
    starts: list[Fraction],
    rates: list[Fraction],
    scale: Fraction,
    *,
    tiered: bool,
) -> _Meta | None:
    """The denominator and bound of ``RateTable.evaluate_array``, step by step."""
    zero = (1, 0)
    if tiered:
        for start in starts:  # each start compared with the value
            if _meta_aligned([value, _meta_constant(start)]) is None:
                return None
        common = _meta_aligned([_meta_constant(rate) for rate in rates])
        amount = None if common is None else _meta_product(value, common)
    else:
        amount = zero
        for k, (start, rate) in enumerate(zip(starts, rates, strict=True)):
            part = _meta_aligned([value, _meta_constant(start)], summed=True)  # value − start
            if part is not None and k + 1 < len(starts):  # at most the tier's width
                width = _constant(starts[k + 1] - start)
                part = None if width is None else _meta_aligned([part, _meta_constant(width)])
            part = None if part is None else _meta_scaled(part, rate)
            amount = None if part is None else _meta_aligned([amount, part], summed=True)
            if amount is None:
                return None
    if amount is None or scale == 1:
        return amount
    return _meta_scaled(amount, scale)


def _bands(bands: BandSet, variable: str | Var, env: _Leaves) -> list[_Test] | None:
    """Each band's rows, as comparisons with its bounds (what ``_band_mask`` does)."""
    tests: list[_Test] = []
    for band in bands.bands:
        parts: list[_Test] = []
        for bound, inclusive, ops in (
            (band.low, band.low_inclusive, (">=", ">")),
            (band.high, band.high_inclusive, ("<=", "<")),
        ):
            if bound is None:
                continue
            value = _constant(bound)
            test = None if value is None else _compare(env, variable, ops[not inclusive], value)
            if test is None:
                return None
            parts.append(test)
        tests.append(_joined(parts, every=True))
    return tests


def _in_some_band(tests: list[_Test]) -> Callable[[Block], None]:
    """A check that notes the rows in no band as refused (:func:`_note_refused`)."""
    some = _joined(tests, every=False)

    def check(block: Block) -> None:
        covered = some(block)
        _note_refused(block, np.logical_not(covered, out=covered))

    return check


def _band_amount(formula: BandAmount, env: _Leaves) -> _Node | None:
    """The amount of each row's band: a :func:`_choose` over the bands.

    Without a catch-all band, the rows in no band are noted as refused.
    """
    tests = _bands(formula.bands, formula.variable, env)
    if tests is None:
        return None
    catch_all = formula.bands.catch_all
    labels = [band.label for band in formula.bands.bands]
    if catch_all is not None:  # the rows in no band: after every band, as otherwise
        labels.append(catch_all)
    common = _aligned([Fixed(formula.amounts[label]) for label in labels], env, summed=False)
    if common is None:
        return None
    den, bound, runs = common
    chosen = _first_case(tests, runs)
    if catch_all is not None:
        return _Node(den, bound, chosen)
    check = _in_some_band(tests)

    def checked(block: Block) -> Values:
        check(block)
        return chosen(block)

    return _Node(den, bound, checked)


def _clamp(formula: Clamp, env: _Leaves) -> _Node | None:
    """``max(minimum, min(formula, maximum))``, the bounds over the formula's denominator."""
    inner = _formula(formula.formula, env)
    if inner is None:
        return None
    given = [formula.minimum, formula.maximum]
    limits = [None if value is None else _constant(value) for value in given]
    if any(limit is None for limit, value in zip(limits, given, strict=True) if value is not None):
        return None
    den = math.lcm(inner.den, *(limit.denominator for limit in limits if limit is not None))
    low, high = (
        None if limit is None else limit.numerator * (den // limit.denominator) for limit in limits
    )
    bound = max(inner.bound * (den // inner.den), *(abs(n) for n in (low, high) if n is not None))
    if not _fits(den, bound):
        return None
    run = _scaled(inner, den)

    def clamped(block: Block) -> Values:
        values = run(block)
        if isinstance(values, int):
            values = values if high is None else min(values, high)
            return values if low is None else max(values, low)
        if high is not None:
            np.minimum(values, high, out=values)
        if low is not None:
            np.maximum(values, low, out=values)
        return values

    return _Node(den, bound, clamped)


def _multiply(formula: Multiply, env: _Leaves) -> _Node | None:
    """``formula × factor`` where ``when`` holds (everywhere without one), else ``formula``.

    With the factor ``p / q``, over the formula's denominator × ``q``: the rows
    that hold are multiplied by ``p``, the others by ``q``.
    """
    inner = _formula(formula.formula, env)
    factor = _constant(formula.factor)
    test = None if formula.when is None else _predicate(formula.when, env)
    if inner is None or factor is None or (formula.when is not None and test is None):
        return None
    times, keep = factor.numerator, factor.denominator
    den = inner.den * keep
    bound = inner.bound * max(abs(times), keep if test is not None else 0)
    if not _fits(den, bound, times - keep):
        return None
    run = inner.run
    if test is None:

        def everywhere(block: Block) -> Values:
            values = run(block)
            if isinstance(values, int):
                return values * times
            return np.multiply(values, times, out=values)

        return _Node(den, bound, everywhere)
    where = test

    def where_held(block: Block) -> Values:
        values, held = run(block), where(block)
        scratch = block.scratch
        if isinstance(values, int):  # one value for every row: an array of the products
            constant, values = values, scratch.take(np.int64, block.rows)
            values.fill(constant)
        factors = scratch.take(np.int64, block.rows)
        np.multiply(held, times - keep, out=factors)  # q + (p − q) on the rows that hold
        np.add(factors, keep, out=factors)
        np.multiply(values, factors, out=values)
        scratch.give(factors, held)
        return values

    return _Node(den, bound, where_held)


def _shortfall(formula: Shortfall, env: _Leaves) -> _Node | None:
    """``base + rate × gap`` where the target is missed, else 0 (exact units, per 1).

    With the value ``v = c / 10^p`` and the threshold ``t``, over ``D1 = lcm(10^p,
    den t)``: the gap's numerator is ``t·D1 − c·D1/10^p`` (at least; negated at
    most); the target is met where it is <= 0 (inclusive) or < 0.
    """
    if formula.per != 1 or formula.counting != "exact":
        return None
    read = env.variable(formula.variable)
    if read is None:
        return None
    name, counts = read
    threshold = _constant(formula.target.threshold)
    rate, base = _constant(formula.rate), _constant(formula.base)
    if threshold is None or rate is None or base is None:
        return None
    unit = 10**counts.places
    gap_den = math.lcm(unit, threshold.denominator)
    step = gap_den // unit
    target = threshold.numerator * (gap_den // threshold.denominator)
    common = math.gcd(rate.numerator, gap_den * rate.denominator) or 1
    times, rate_den = rate.numerator // common, gap_den * rate.denominator // common
    den = math.lcm(rate_den, base.denominator)
    times *= den // rate_den
    base_num = base.numerator * (den // base.denominator)
    largest = counts.bound * step
    gap_bound = abs(target) + largest
    bound = gap_bound * abs(times) + abs(base_num)
    if not _fits(
        unit, gap_den, step, target, times, den, largest, gap_bound, gap_bound * times, bound
    ):
        return None
    at_least = isinstance(formula.target, AtLeast)
    inclusive = formula.target.inclusive
    key = ("gap", name, at_least, inclusive, step, target)

    def gap_of(block: Block) -> tuple[NDArray[Any], ...]:
        gap = block.scratch.take(np.int64, block.rows)
        np.multiply(block.counts(name), step, out=gap)
        if at_least:
            np.subtract(target, gap, out=gap)
        else:
            np.subtract(gap, target, out=gap)
        missed = block.scratch.take(np.bool_, block.rows)
        (np.greater if inclusive else np.greater_equal)(gap, 0, out=missed)
        return gap, missed

    def run(block: Block) -> Values:
        gap, missed = block.scratch.kept(key, lambda: gap_of(block))  # shared, read only
        amount = block.scratch.take(np.int64, block.rows)
        np.multiply(gap, times, out=amount)
        if base_num:
            np.add(amount, base_num, out=amount)
        result: NDArray[np.int64] = np.multiply(amount, missed, out=amount)
        return result

    return _Node(den, bound, run)


def _over_one_den(nodes: list[_Node], *, summed: bool) -> tuple[int, int, list[Run]] | None:
    """``nodes`` over their least common denominator: it, a bound, and their runs.

    The bound is of their sum (``summed``) or of any one of them (branches, of
    which a row takes one). ``None`` when the denominator or bound leaves int64.
    """
    den = math.lcm(*(node.den for node in nodes))
    bounds = [node.bound * (den // node.den) for node in nodes]
    bound = sum(bounds) if summed else max(bounds)
    if not _fits(den, bound):
        return None
    return den, bound, [_scaled(node, den) for node in nodes]


def _aligned(
    formulas: list[object], env: _Leaves, *, summed: bool
) -> tuple[int, int, list[Run]] | None:
    """``formulas`` compiled and over one denominator (:func:`_over_one_den`), or ``None``."""
    nodes = [_formula(formula, env) for formula in formulas]
    if any(node is None for node in nodes):
        return None
    return _over_one_den([node for node in nodes if node is not None], summed=summed)


def _sum(formula: Sum, env: _Leaves) -> _Node | None:
    if formula.rounding is not None:
        return None
    common = _aligned(list(formula.parts), env, summed=True)
    if common is None:
        return None
    den, bound, runs = common

    def run(block: Block) -> Values:
        total: Values = 0
        for part in runs:
            values = part(block)
            if isinstance(values, int):
                if isinstance(total, int):
                    total += values
                else:
                    np.add(total, values, out=total)
            elif isinstance(total, int):  # the first array: it takes the ints so far
                total = np.add(values, total, out=values) if total else values
            else:
                np.add(total, values, out=total)
                block.scratch.give(values)
        return total

    return _Node(den, bound, run)


def _choose(
    cases: list[tuple[object, object]], otherwise: object | None, env: _Leaves
) -> _Node | None:
    """The first case whose predicate holds, else ``otherwise`` (0 without), as masks."""
    tests = [_predicate(predicate, env) for predicate, _ in cases]
    if any(test is None for test in tests):
        return None
    formulas = [formula for _, formula in cases]
    common = _aligned(
        [*formulas, otherwise] if otherwise is not None else formulas, env, summed=False
    )
    if common is None:
        return None
    den, bound, runs = common
    checks = [test for test in tests if test is not None]
    return _Node(den, bound, _first_case(checks, runs))


def _first_case(checks: list[_Test], runs: list[Run]) -> Run:
    """Case *k*'s value where its test holds and no earlier one's.

    The last run (``otherwise``, when there is one more run than tests) on the rest.
    """

    def run(block: Block) -> Values:
        scratch = block.scratch
        total = scratch.take(np.int64, block.rows)
        total.fill(0)
        free: Mask | None = None  # rows no earlier case took
        for check, branch in zip(checks, runs, strict=False):
            mark = len(block.refused)
            taken = check(block)
            if free is not None:  # the test is for the rows no earlier case took
                _keep_refused(block, mark, free)
                np.logical_and(taken, free, out=taken)
            mark = len(block.refused)
            values = branch(block)
            _keep_refused(block, mark, taken)  # the branch is for the rows it takes
            _add_on(total, values, taken, scratch)
            if free is None:
                free = np.logical_not(taken, out=taken)
            else:
                np.logical_not(taken, out=taken)
                np.logical_and(free, taken, out=free)
                scratch.give(taken)
        if len(runs) > len(checks):  # otherwise
            if free is None:
                free = scratch.take(np.bool_, block.rows)
                free[...] = True
            mark = len(block.refused)
            values = runs[-1](block)
            _keep_refused(block, mark, free)
            _add_on(total, values, free, scratch)
        scratch.give(free)
        return total

    return run


def _add_on(total: NDArray[np.int64], values: Values, rows: Mask, scratch: Scratch) -> None:
    """``total``, 0 on ``rows``, takes ``values`` there; ``values`` given back to ``scratch``.

    The cases' rows are disjoint, so each row is written once.
    """
    if not isinstance(values, int) or values:  # 0 leaves the zeros as they are
        np.copyto(total, values, where=rows)
    scratch.give(values)  # an int is ignored


# ------------------------------------------------------------------- predicates


def _predicate(predicate: object, env: _Leaves) -> _Test | None:
    # these classes exactly: a subclass may test otherwise
    compile_test = _PREDICATES.get(type(predicate))
    return None if compile_test is None else compile_test(predicate, env)


def _compared(predicate: Compare, env: _Leaves) -> _Test | None:
    value = _constant(predicate.value)
    return None if value is None else _compare(env, predicate.variable, predicate.op, value)


def _met(predicate: Met, env: _Leaves) -> _Test | None:
    if not isinstance(predicate.target, AtLeast | AtMost):  # a range: two comparisons
        return None
    threshold = _constant(predicate.target.threshold)
    if threshold is None:
        return None
    return _compare(env, predicate.variable, met_op(predicate.target), threshold)


def _all_or_any(predicate: AllOf | AnyOf, env: _Leaves) -> _Test | None:
    tests = [_predicate(part, env) for part in predicate.predicates]
    if any(test is None for test in tests):
        return None
    return _joined([t for t in tests if t is not None], every=type(predicate) is AllOf)


def _not(predicate: Not, env: _Leaves) -> _Test | None:
    inner = _predicate(predicate.predicate, env)
    if inner is None:
        return None
    return lambda block: np.logical_not((mask := inner(block)), out=mask)


def _in_band(predicate: InBand, env: _Leaves) -> _Test | None:
    """In one of the bands named (the catch-all: in none of the bands), else not.

    Without a catch-all band, the rows in no band are noted as refused.
    """
    tests = _bands(predicate.bands, predicate.variable, env)
    if tests is None:
        return None
    named = [
        test
        for band, test in zip(predicate.bands.bands, tests, strict=True)
        if band.label in predicate.labels
    ]
    held = _joined(named, every=False)
    catch_all = predicate.bands.catch_all
    if catch_all is None:
        check = _in_some_band(tests)

        def checked(block: Block) -> Mask:
            check(block)
            return held(block)

        return checked
    if catch_all not in predicate.labels:
        return held
    some = _joined(tests, every=False)

    def with_rest(block: Block) -> Mask:  # the named bands, and the rows in no band
        outside = np.logical_not((covered := some(block)), out=covered)
        inside = held(block)
        np.logical_or(inside, outside, out=inside)
        block.scratch.give(outside)
        return inside

    return with_rest


def _joined(tests: list[_Test], *, every: bool) -> _Test:
    """All of ``tests`` (``every``) or any; of none, every row or none."""
    combine = np.logical_and if every else np.logical_or

    def run(block: Block) -> Mask:
        if not tests:
            result: Mask = block.scratch.take(np.bool_, block.rows)
            result[...] = every
            return result
        result = tests[0](block)
        for test in tests[1:]:
            other = test(block)
            combine(result, other, out=result)
            block.scratch.give(other)
        return result

    return run


def _compare(env: _Leaves, variable: str | Var, op: str, constant: Fraction) -> _Test | None:
    """``variable op constant``, as ``c · den op num · 10^p`` in integers."""
    if op not in fx.COMPARE_UFUNCS:
        return None
    read = env.variable(variable)
    if read is None:
        return None
    name, counts = read
    left = counts.bound * constant.denominator
    right = constant.numerator * 10**counts.places
    if not _fits(constant.numerator, constant.denominator, 10**counts.places, left, right):
        return None
    times, compare = constant.denominator, fx.COMPARE_UFUNCS[op]

    def run(block: Block) -> Mask:
        out: Mask = block.scratch.take(np.bool_, block.rows)
        if times == 1:
            compare(block.counts(name), right, out=out)
            return out
        own = block.scratch.take(np.int64, block.rows)
        compare(np.multiply(block.counts(name), times, out=own), right, out=out)
        block.scratch.give(own)
        return out

    return run


def _in_ranks(predicate: InRanks, env: _Leaves) -> _Test | None:
    """The selection's rows from its cut-off tables (what :meth:`RankSource.mask` does)."""
    source = env.env.ranks.get(predicate.ranking)
    selection = predicate.selection
    if isinstance(selection, Exemption):  # selects as its selection does
        selection = selection.selection
    if not isinstance(source, RankSource) or not isinstance(selection, Selection):
        return None
    try:
        if not source._by_cutoffs():  # noqa: SLF001 - the ranking module's own plan
            return None
        largest, last, before = source._window_ranks(selection)  # noqa: SLF001
    except BankKPIError:  # the array path raises it where a row needs the selection
        return None
    to_last = env.good(source, largest, last)
    to_before = None if before is None else env.good(source, largest, before)

    def run(block: Block) -> Mask:
        inside = block.scratch.take(np.bool_, block.rows)
        if to_before is None:
            np.copyto(inside, block.good(to_last))
        else:  # as good as the last rank's cut-off and not as the one before the first
            np.greater(block.good(to_last), block.good(to_before), out=inside)
        return inside

    return run


_EXPRESSION_ROWS: Final = 1 << 16
"""The most combinations of its variables' counts an :class:`~bankkpi.Expression`
is compiled over (:func:`_expression`): 512 KiB of numerators."""


def _expression(formula: Expression, env: _Leaves) -> _Node | None:
    """An expression as a node whose values its own array path gives, looked up.

    The array path evaluates the expression once over every combination of the
    counts of the variables it reads, each from its least to its greatest (at
    most :data:`_EXPRESSION_ROWS`; a plan is compiled for populations of more than
    :data:`PLAN_ROWS` rows, twice as many): exact
    numerators over one denominator, with the largest magnitude among them as
    the bound. A block numbers its rows' combinations and takes their
    numerators; where its array path refuses a combination there is no node.
    Every amount is exact either way, but a refusal for overflow risk may
    differ: the array path may evaluate the expression over every row of a
    branch most rows take, with the other rows' values set to 0 (which may lie
    outside the counts' range and overflow), and checks the steps around it with
    the denominator and bound it carries, where the plan uses the node's. A
    refusal for overflow risk around an expression may differ, never an amount.
    """
    columns: dict[str, Counts] = {}
    for name in sorted(references(formula)[0]):
        found = env.variable(name)
        if found is None:
            return None
        columns[name] = found[1]
    layout = _Layout.over(columns)
    rows = layout.size
    if rows > _EXPRESSION_ROWS:
        return None
    try:
        exact = formula_array(formula, _combinations(layout, columns))
    except (BankKPIError, ArithmeticError, ValueError):  # refused somewhere: the rows decide
        return None
    table = np.ascontiguousarray(np.broadcast_to(exact.num, (rows,)), dtype=np.int64)
    bound = int(np.abs(table).max()) if rows else 0
    if not _fits(exact.den, bound):
        return None
    den = exact.den

    def run(block: Block) -> Values:
        index = layout.index(block)
        out = block.scratch.take(np.int64, block.rows)
        np.take(table, index, out=out, mode="clip")  # every index is a combination's
        block.scratch.give(index)
        return out

    return _Node(den, bound, run)


_FORMULAS: Final[dict[type, Callable[[Any, _Leaves], _Node | None]]] = {
    Fixed: _fixed,
    Expression: _expression,
    Shortfall: _shortfall,
    Sum: _sum,
    Choose: _chosen,
    When: _when,
    Clamp: _clamp,
    Multiply: _multiply,
    BandAmount: _band_amount,
    PerCount: _per_count,
    PerPeriodEarly: _per_period_early,
    Escalating: _escalating,
    Discretionary: _discretionary,
    RateTable: _rate_table,
}
"""The compiled formulas, by their exact class."""

_PREDICATES: Final[dict[type, Callable[[Any, _Leaves], _Test | None]]] = {
    InRanks: _in_ranks,
    Compare: _compared,
    Met: _met,
    AllOf: _all_or_any,
    AnyOf: _all_or_any,
    Not: _not,
    InBand: _in_band,
}
"""The compiled predicates, by their exact class."""


# ------------------------------------------------------------------------ rules


class _PopulationRows(Block):
    """Rows ``lo … hi − 1`` of the population."""

    def __init__(
        self, leaves: _Leaves, cuts: tuple[NDArray[Any], ...], lo: int, hi: int, scratch: Scratch
    ) -> None:
        super().__init__(hi - lo, scratch)
        self._leaves = leaves
        self._cuts = cuts
        self._lo, self._hi = lo, hi

    def counts(self, variable: str) -> NDArray[np.int64]:
        return self._leaves.variables[variable].counts[self._lo : self._hi]

    def good(self, leaf: int) -> Mask:
        """Kept for the block: two selections may share a cut-off.

        The key is the leaf's index among this plan's: a scratch is shared by the
        plans of a thread, which is why :meth:`RulePlan.fen` clears it before it
        returns.
        """

        def make() -> tuple[NDArray[Any], ...]:
            source, largest, _ = self._leaves.goods[leaf]
            cut = self._cuts[leaf]
            out = self.scratch.take(np.bool_, self.rows)
            buffer = self.scratch.take(cut.dtype, self.rows)
            rows = slice(self._lo, self._hi)
            source._as_good_rows(rows, cut, largest, out=out, buffer=buffer)  # noqa: SLF001
            self.scratch.give(buffer)
            return (out,)

        return self.scratch.kept(("good", leaf), make)[0]


@attrs.frozen(eq=False)
class _Layout:
    """How a table numbers every combination of a rule's leaves' values.

    Table row ``t``: each cut-off comparison in ``bits`` (an index into
    :attr:`_Leaves.goods`) is one bit, the last the lowest; above them, each
    variable's count less its least (``variables``: name, least count, how many
    counts from the least to the greatest), in mixed radix, the last variable the
    least significant. A comparison in ``folded`` is a function of a variable's
    count: one ranking of the whole population on that very variable, the row
    as good as the cut-off where its count is at least (``largest``) or at most
    the threshold. It takes no bit: a table row compares its own count.
    """

    variables: tuple[tuple[str, int, int], ...]
    bits: tuple[int, ...]
    folded: dict[int, tuple[str, int, bool]]

    @classmethod
    def over(cls, variables: Mapping[str, Counts]) -> _Layout:
        """The layout of every combination of ``variables``' counts (no comparisons)."""
        return cls(
            tuple(
                (name, counts.span[0], counts.span[1] - counts.span[0] + 1)
                for name, counts in variables.items()
            ),
            (),
            {},
        )

    @classmethod
    def of(cls, leaves: _Leaves) -> _Layout:
        """The layout of ``leaves``' table."""
        counted = {id(counts.counts): name for name, counts in leaves.variables.items()}
        bits: list[int] = []
        folded: dict[int, tuple[str, int, bool]] = {}
        for leaf, (source, largest, _) in enumerate(leaves.goods):
            name = counted.get(id(source.values))
            if source.groups is None and name is not None:  # a row's value is its count
                threshold = source._threshold(leaves.cut(leaf))  # noqa: SLF001
                folded[leaf] = (name, threshold, largest)
            else:
                bits.append(leaf)
        return cls(cls.over(leaves.variables).variables, tuple(bits), folded)

    @property
    def size(self) -> int:
        """Rows in the table: every combination."""
        return math.prod(size for _, _, size in self.variables) << len(self.bits)

    def index(self, block: Block) -> NDArray[np.int32]:
        """The table row of each of ``block``'s rows (int32: see :data:`_INDEX_ROWS`)."""
        scratch = block.scratch
        index: NDArray[np.int32] = scratch.take(np.int32, block.rows)
        if not self.variables:
            index.fill(0)
        for place, (name, least, size) in enumerate(self.variables):
            if place == 0:  # within 0 … size − 1: int32 holds it
                np.subtract(block.counts(name), least, out=index, casting="unsafe")
                continue
            part = scratch.take(np.int32, block.rows)
            np.subtract(block.counts(name), least, out=part, casting="unsafe")
            np.multiply(index, size, out=index)
            np.add(index, part, out=index)
            scratch.give(part)
        for leaf in self.bits:
            np.left_shift(index, 1, out=index)
            np.bitwise_or(index, block.good(leaf), out=index)
        return index


class _TableRows(Block):
    """Rows ``lo … hi − 1`` of a rule's table (:class:`_Layout`): the values they stand for."""

    def __init__(self, layout: _Layout, lo: int, hi: int, scratch: Scratch) -> None:
        super().__init__(hi - lo, scratch)
        self._layout = layout
        self._lo = lo

    def _row(self) -> NDArray[np.int64]:
        def make() -> tuple[NDArray[Any], ...]:
            row = self.scratch.take(np.int64, self.rows)
            row[...] = np.arange(self._lo, self._lo + self.rows, dtype=np.int64)
            return (row,)

        return self.scratch.kept(("row",), make)[0]

    def counts(self, variable: str) -> NDArray[np.int64]:
        def make() -> tuple[NDArray[Any], ...]:
            names = [name for name, _, _ in self._layout.variables]
            place = names.index(variable)
            _, least, size = self._layout.variables[place]
            stride = math.prod(size for _, _, size in self._layout.variables[place + 1 :])
            counts = self.scratch.take(np.int64, self.rows)
            np.right_shift(self._row(), len(self._layout.bits), out=counts)
            np.floor_divide(counts, stride, out=counts)
            np.remainder(counts, size, out=counts)
            np.add(counts, least, out=counts)
            return (counts,)

        return self.scratch.kept(("counts", variable), make)[0]

    def good(self, leaf: int) -> Mask:
        def make() -> tuple[NDArray[Any], ...]:
            out = self.scratch.take(np.bool_, self.rows)
            if leaf in self._layout.folded:
                name, threshold, largest = self._layout.folded[leaf]
                compare = np.greater_equal if largest else np.less_equal
                compare(self.counts(name), threshold, out=out)
                return (out,)
            bit = len(self._layout.bits) - 1 - self._layout.bits.index(leaf)
            bits = self.scratch.take(np.int64, self.rows)
            np.right_shift(self._row(), bit, out=bits)
            np.bitwise_and(bits, 1, out=bits)
            np.not_equal(bits, 0, out=out)
            self.scratch.give(bits)
            return (out,)

        return self.scratch.kept(("good", leaf), make)[0]


@attrs.frozen(eq=False)
class RulePlan:
    """A rule compiled for one population (:func:`compile_rule`).

    With a ``table`` (the rule's amounts in fen for every combination of its
    leaves' values, in ``layout``'s order), a block's amounts are looked up;
    without, computed.
    """

    rule: Rule
    node: _Node | None
    """``None`` for a rule of another shape (:func:`_opaque`): its table gives every amount."""
    leaves: _Leaves
    layout: _Layout | None = None
    table: NDArray[np.int64] | None = None
    refusing: bool = False
    """Whether the table holds −1 for a combination whose rows the array path refuses."""
    cuts: tuple[NDArray[Any], ...] | None = None
    """Each comparison's cut-off table (:meth:`resolved`): needed by :meth:`fen`."""

    def fen(self, lo: int, hi: int, scratch: Scratch, out: NDArray[np.int64]) -> bool:
        """Rows ``lo … hi − 1``'s amounts in fen into ``out[lo:hi]``, as ``evaluate_fen`` gives.

        ``False`` (``out[lo:hi]`` then holds nothing of use) when a row's amount is
        negative, a step would leave int64, or a row needs a value the array path
        refuses (:attr:`Block.refused`): the array path then evaluates the rule and
        refuses what it refuses.
        """
        if self.cuts is None:
            raise AssertionError("a plan's cut-offs are resolved before its blocks")
        rows = _PopulationRows(self.leaves, self.cuts, lo, hi, scratch)
        if self.layout is None or self.table is None:
            return self._fen(rows, out[lo:hi])
        index = self.layout.index(rows)
        scratch.clear()
        # every index is a row of the table (clip only spares numpy a checked copy)
        np.take(self.table, index, out=out[lo:hi], mode="clip")
        scratch.give(index)
        return not (self.refusing and hi > lo and int(out[lo:hi].min()) < 0)

    def _fen(self, block: Block, out: NDArray[np.int64], *, marking: bool = False) -> bool:
        """``block``'s amounts in fen into ``out`` (``False``: see :meth:`fen`).

        ``marking`` (a table's rows): a row the array path refuses — noted as
        refused, or of a negative amount — gets −1 instead of failing the block.
        """
        scratch = block.scratch
        if self.node is None:
            raise AssertionError("a plan without nodes looks every amount up in its table")
        try:
            values = self.node.run(block)
        finally:
            scratch.clear()  # the block's shared inputs: none is read after this
        refused = _refused_since(block, 0)
        if isinstance(values, int):
            constant, values = values, scratch.take(np.int64, block.rows)
            values.fill(constant)
        try:
            negative = bool(values.size) and int(values.min()) < 0
            if not marking and (negative or refused is not None):
                return False
            if negative:
                below = scratch.take(np.bool_, block.rows)
                np.less(values, 0, out=below)
                if refused is None:
                    refused = below
                else:
                    np.logical_or(refused, below, out=refused)
                    scratch.give(below)
            # round in place: round_counts writes into an array that owns its data
            whole = values.base if isinstance(values.base, np.ndarray) else values
            own = whole if whole.shape == values.shape else values.copy()
            what = f"rule {self.rule.id}"
            exact = fx.FixedArray(own, self.node.den, self.node.bound)
            counts = fx.round_counts(exact, self.rule.rounding, what, reuse=exact)
            out[...] = fx.to_fen(counts, self.rule.rounding.place, what, in_place=True)
            if refused is not None:
                out[refused] = -1
        except BankKPIError:
            return False
        finally:
            scratch.give(values, refused)
        return True

    def tabulated(self, limit: int, pool: Executor | None = None, parts: int = 1) -> RulePlan:
        """This plan with a table, when it has at most ``limit`` rows and every amount in it is one.

        Else this plan: it computes each block. The table is computed in ``parts``
        parts (or more, of at most :data:`PLAN_ROWS` rows), in ``pool``'s threads
        if given.
        """
        try:
            layout = _Layout.of(self.leaves)
        except BankKPIError:  # a ranking of the whole population refuses its cut-offs
            return self
        size = layout.size
        if size > min(limit, _INDEX_ROWS):
            return self
        table = np.empty(size, dtype=np.int64)
        rows = min(PLAN_ROWS, max(1, -(-size // max(1, parts))))

        def part(lo: int) -> bool:
            hi = min(size, lo + rows)
            scratch = Scratch(hi - lo)
            return self._fen(_TableRows(layout, lo, hi, scratch), table[lo:hi], marking=True)

        starts = range(0, size, rows)
        others = [] if pool is None else [pool.submit(part, lo) for lo in starts[1:]]
        try:
            made = [part(starts[0]), *(future.result() for future in others)]
        finally:  # none left running, whatever raised
            wait(others)
        if pool is None:
            made.extend(part(lo) for lo in starts[1:])
        if not all(made):  # a step past int64 somewhere: the rows decide
            return self
        refusing = bool(size) and int(table.min()) < 0
        return attrs.evolve(self, layout=layout, table=table, refusing=refusing)

    def resolved(self) -> RulePlan | None:
        """This plan with its comparisons' cut-off tables (computed now if not before).

        ``None`` when a ranking refuses them: the array path evaluates the rule
        and raises where a row needs the selection.
        """
        try:
            cuts = tuple(self.leaves.cut(leaf) for leaf in range(len(self.leaves.goods)))
        except BankKPIError:
            return None
        return attrs.evolve(self, cuts=cuts)


def _combinations(layout: _Layout, variables: Mapping[str, Counts]) -> ArrayContext:
    """A context whose rows are ``layout``'s combinations of ``variables``' counts."""
    rows = _TableRows(layout, 0, layout.size, Scratch(layout.size))
    return ArrayContext(
        layout.size,
        {name: Counts(rows.counts(name), counts.places) for name, counts in variables.items()},
    )


def _opaque(rule: Rule, env: ArrayContext, table_rows: int) -> RulePlan | None:
    """A rule of no compiled shape, as a table of amounts the array path computes.

    ``None`` unless it reads variables alone and every combination is computed.
    For a formula built of the library's own shapes (:func:`_row_wise`: a rounded
    :class:`Sum`, a :class:`Shortfall` counted in started units, …) reading no ranking,
    the array path evaluates the rule over every combination of the counts of
    the variables it reads, from each one's least to its greatest (as a compiled
    rule's table numbers them, :class:`_Layout`), if those are at most
    ``table_rows``. A row's amount there depends on the row alone: every amount
    the array path gives is exact, so the table's are each row's. Whatever it
    refuses row by row (a value in no band, a negative amount, a value that is
    not a whole fen) a population holds only where the table does, since the
    table holds every row's combination: if the array path refuses any
    combination, even one no row has, or raises for any other reason, there is
    no table and the rows decide, as without a plan. Its refusals for overflow
    *risk* are bounds, not values, and may differ: a branch that few rows take is
    evaluated on those rows alone, with their own tighter bound, and the share
    of rows taking it differs between the table and a population. So where the
    array path over the population would refuse a rule for overflow risk, a
    table computed without that refusal may give the rule's exact amounts.
    """
    if not _row_wise(rule.formula):
        return None
    variables, _ = references(rule.formula)
    leaves = _Leaves(env)
    if any(leaves.variable(name) is None for name in sorted(variables)):
        return None
    layout = _Layout.of(leaves)
    size = layout.size
    if size > min(table_rows, _INDEX_ROWS):
        return None
    try:
        table = rule.evaluate_fen(_combinations(layout, leaves.variables))
    except (BankKPIError, ArithmeticError, ValueError):  # refused somewhere: the rows decide
        return None
    if size and int(table.min()) < 0:
        return None
    return RulePlan(rule, None, leaves, layout, table, cuts=())


_PLAIN: Final = (type(None), bool, int, str, Decimal, Fraction)


def _row_wise(node: object) -> bool:
    """Whether a formula tree's amount on a row depends on the row alone.

    So it is when the tree is built of the library's own classes alone (not a
    subclass, nor another :class:`~bankkpi.Formula`, which may read the population
    as a whole) and reads no ranking.
    """
    if isinstance(node, _PLAIN):
        return True
    if isinstance(node, tuple | list | frozenset):
        return all(_row_wise(item) for item in node)
    if isinstance(node, Mapping):  # a band's amounts by label
        return all(_row_wise(key) and _row_wise(value) for key, value in node.items())
    kind = type(node)
    if (
        isinstance(node, InRanks)
        or not kind.__module__.startswith("bankkpi.")
        or not attrs.has(kind)
    ):
        return False
    return all(_row_wise(getattr(node, field.name)) for field in attrs.fields(kind))


def compile_rule(
    rule: Rule,
    env: ArrayContext,
    *,
    table_rows: int | None = None,
    pool: Executor | None = None,
    parts: int = 1,
    resolve: bool = True,
) -> RulePlan | None:
    """``rule`` compiled for ``env``'s population, or ``None`` if not one of the shapes.

    A rule of another of the library's shapes that reads variables alone gets a
    plan with no nodes, whose table its array path computes (:func:`_opaque`).

    ``env`` is a whole population (no ``active`` rows); its rankings' cut-offs are
    computed here if not before. The plan looks its amounts up in a table when
    one of at most ``table_rows`` rows covers every combination of what the rule
    reads of a row (default: a :data:`TABLE_SHARE` th of the rows, at most
    :data:`TABLE_ROWS`; 0: never; never more than 2^31 − 1), computed in
    ``parts`` parts in ``pool``'s threads if given. Without ``resolve``, the
    grouped rankings' cut-offs are left for :meth:`RulePlan.resolved` (a table
    needs none of them): another thread may be computing them meanwhile.
    """
    if env.active is not None:
        return None
    if table_rows is None:
        table_rows = min(env.size // TABLE_SHARE, TABLE_ROWS)
    leaves = _Leaves(env)
    node = _formula(rule.formula, leaves)
    if node is None:
        return _opaque(rule, env, table_rows)
    exponent = rule.rounding.exponent
    if exponent < 0 and not _fits(node.bound * 10**-exponent):
        # the array path would first take common factors out of the rows it rounds:
        # over a block they could differ from those over the whole population
        return None
    plan = RulePlan(rule, node, leaves).tabulated(table_rows, pool, parts)
    return plan.resolved() if resolve else plan
