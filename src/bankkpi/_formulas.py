"""Reward and penalty formulas (奖励 / 考核), evaluated exactly with a trace.

A formula is a frozen value. ``formula.evaluate(context)`` returns a
:class:`~bankkpi.Trace` whose exact ``value`` is computed from the expression it
shows; nothing is rounded until a :class:`Rule` (or a :class:`Sum` that rounds each
part) says so, once, by a stated :class:`~bankkpi.RoundingPolicy`.

Scheme A's phase-2 penalty, 1000 + (95 − score) × 200:

>>> from bankkpi import AtLeast, RoundingPolicy
>>> rule = Rule("A.P2", Text("二阶段考核", "phase 2 penalty"), "penalty",
...             Shortfall(AtLeast(95), "score", rate=200, base=1000),
...             RoundingPolicy("half_up", "yuan"))
>>> trace = rule.evaluate(Context("outlet 7", {"score": "91.5"}))
>>> print(trace.render("zh"))
考核 = 1000 + (95 − 91.5) × 200 = 1700 元【二阶段考核；得分91.5未达到目标95(含)以上】
>>> print(trace.render("en"))
penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan [phase 2 penalty; score 91.5 misses target ≥ 95]
>>> trace.amount
Decimal('1700')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Literal, Protocol, TypeAlias, cast, runtime_checkable

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bankkpi import _fixedpoint as fx
from bankkpi._bands import Band, BandSet
from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Call, Expr, Lang, Num, Text, Trace, exact_decimal, fast_num, num
from bankkpi._fixedpoint import FixedArray
from bankkpi._money import EXACT_CONTEXT, DecimalLike, RoundingPolicy, round_ratio, to_decimal
from bankkpi._ranking import (
    Bottom,
    Exemption,
    Rank,
    RankArrays,
    RankedSubject,
    RankRange,
    RankSource,
    RankView,
    Rows,
    Selection,
    Top,
)
from bankkpi._targets import AtLeast, AtMost, Within
from bankkpi.exceptions import (
    BankKPIError,
    FloatMoneyError,
    InvalidValueError,
    MissingDataError,
    OutOfRangeError,
    OverflowRiskError,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "ArrayContext",
    "ArrayFormula",
    "ArrayPredicate",
    "BandAmount",
    "Choose",
    "Clamp",
    "Compare",
    "Context",
    "Counts",
    "Discretionary",
    "Escalating",
    "Fixed",
    "Formula",
    "InBand",
    "InRanks",
    "Met",
    "Multiply",
    "Not",
    "PerCount",
    "PerPeriodEarly",
    "Predicate",
    "RateTable",
    "Rule",
    "RuleKind",
    "Shortfall",
    "Sum",
    "Var",
    "When",
    "describe_rows",
    "formula_array",
    "predicate_array",
]

RuleKind: TypeAlias = Literal["penalty", "reward"]
"""A penalty (考核/扣罚) or a reward (奖励); both are positive amounts."""

_KIND_LABEL: Final = {"penalty": Text("考核", "penalty"), "reward": Text("奖励", "reward")}
_AMOUNT: Final = Text("金额", "amount")
_DOUBLED: Final = Text("加倍考核", "doubled")
_ZERO: Final = Decimal(0)

KNOWN_LABELS: Final[Mapping[str, Text]] = {
    "score": Text("得分", "score"),
    "points": Text("扣分", "points"),
    "offence": Text("违规次数", "offence"),
    "count": Text("次数", "count"),
    "quarters_early": Text("提前达标季度数", "quarters early"),
    "chosen": Text("认定金额", "chosen amount"),
    "complaints": Text("投诉工单数", "complaint tickets"),
}
"""Bilingual names shown for common variables when a :class:`Var` gives none."""


# --------------------------------------------------------------------------- inputs


def _decimal_values(values: Mapping[str, object]) -> dict[str, Decimal]:
    return {name: to_decimal(v, field=name) for name, v in values.items()}


def _rank_map(ranks: Mapping[str, Any]) -> dict[str, Any]:
    return dict(ranks)


@attrs.frozen
class Context:
    """What a formula sees for one subject: named values and its ranks.

    ``values`` maps variable names (``score``, ``offences``, ``quarters_early``...) to
    exact numbers; ``ranks`` maps ranking names (``province``, ``region``) to the
    subject's ranked entry. A missing name is a :class:`MissingDataError` naming the
    subject and the variable.
    """

    subject: str = attrs.field(validator=non_empty("subject"))
    values: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_decimal_values)
    ranks: Mapping[str, Any] = attrs.field(factory=dict, converter=_rank_map)
    _traces: TraceMemo | None = attrs.field(default=None, init=False, eq=False, repr=False)
    """Traces that depend on the values alone, shared by a run's contexts (see
    :meth:`_trusted`): a formula built for one subject's values gives the same
    trace, an immutable value, to every subject with the same values."""

    def value(self, name: str) -> Decimal:
        """The value of variable ``name``."""
        try:
            return self.values[name]
        except KeyError:
            raise MissingDataError("value of variable", name, subject=self.subject) from None

    def rank(self, name: str) -> Any:
        """The subject's entry in ranking ``name``."""
        try:
            return self.ranks[name]
        except KeyError:
            raise MissingDataError("rank in ranking", name, subject=self.subject) from None

    @classmethod
    def _trusted(
        cls,
        subject: str,
        values: dict[str, Decimal],
        ranks: dict[str, Any],
        traces: TraceMemo | None = None,
    ) -> Context:
        """A context from values :func:`to_decimal` has already coerced (finite, no −0).

        :func:`~bankkpi.evaluate` builds one per subject from values it validated
        itself; this skips the converters and takes ``values`` and ``ranks`` as they
        are (the caller hands over fresh dicts and never changes them). ``traces``:
        the run's memo of traces that depend on values alone, one for every context
        of the run (:attr:`_traces`).
        """
        context = _new(cls)
        _set(context, "subject", subject)
        _set(context, "values", values)
        _set(context, "ranks", ranks)
        _set(context, "_traces", traces)
        return context

    def with_value(self, name: str, value: DecimalLike) -> Context:
        """A copy with variable ``name`` set to ``value`` (for what-if and goal-seek)."""
        return attrs.evolve(self, values={**self.values, name: value})


_new: Final = object.__new__
_set: Final = object.__setattr__


class TraceMemo:
    """A run's traces that depend on values alone, shared by its contexts.

    ``entries``: (formula id, value as written) → (formula, trace). Each entry holds
    its formula, so no formula built later (a user's formula may build them as it
    goes) takes the id of one the memo knows. A cache: a copy or a pickle of it is
    empty, and ``attrs.asdict`` of a context leaves it as it is.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[tuple[int, object], tuple[object, Trace]] = {}

    def __reduce__(self) -> tuple[type[TraceMemo], tuple[()]]:
        return TraceMemo, ()


LeanFn: TypeAlias = Callable[[Mapping[str, Decimal], Mapping[str, Any]], Decimal]
"""A formula's lean path: its exact value for a subject's values and ranks, without a trace.

The ranks map ranking names to :class:`~bankkpi.RankedSubject` entries or to
:data:`~bankkpi._ranking.RankRow` tuples of the same fields (as ``evaluate`` has them).
"""
HoldsFn: TypeAlias = Callable[[Mapping[str, Decimal], Mapping[str, Any]], bool]
"""A predicate's lean path: whether it holds for a subject's values and ranks."""


def _var(value: str | Var) -> Var:
    return value if isinstance(value, Var) else Var(value)


@attrs.frozen
class Var:
    """A reference to a context variable, with the bilingual name traces show.

    Two references are equal when they name the same variable; the label is
    presentation only (a scheme file takes it from the scheme's inputs).
    """

    name: str = attrs.field(validator=non_empty("name"))
    label: Text | None = attrs.field(default=None, eq=False)

    @property
    def text(self) -> Text:
        """The label; else a known name's (``score`` is 得分), else the bare name."""
        if self.label is not None:
            return self.label
        known = KNOWN_LABELS.get(self.name)
        return known if known is not None else Text(self.name, self.name)

    def get(self, context: Context) -> Decimal:
        """The variable's value in ``context``."""
        return context.value(self.name)

    def num(self, context: Context) -> Num:
        """The value as a named number for an expression."""
        return fast_num(self.get(context), self.text)


class Formula(Protocol):
    """Anything that turns a context into an explained exact amount."""

    def evaluate(self, context: Context) -> Trace:
        """The exact (unrounded unless stated) amount with its trace."""
        ...


@runtime_checkable
class RankSelection(Protocol):
    """A selection on ranks (top N, bottom 101–200, top 20%...)."""

    def contains(self, ranked: Any) -> bool:
        """Whether the ranked entry falls in the selection."""
        ...

    def describe(self, lang: Lang) -> str:
        """A short phrase: ``省内前200名`` / ``top 200``."""
        ...


# ---------------------------------------------------------------------- array inputs


@attrs.frozen(eq=False)
class OwnedCounts:
    """int64 counts the library has just written into an array nothing else writes to.

    :class:`Counts` takes its ``array`` as it is instead of copying it (the
    vector path's copy of a column, made in a
    :class:`~bankkpi._workspace.Workspace`'s array).
    """

    array: NDArray[np.int64]


def _count_array(values: ArrayLike | OwnedCounts) -> NDArray[np.int64]:
    if isinstance(values, OwnedCounts):  # already the library's own copy
        owned = values.array.view()  # read-only; its owner stays writeable for fx.bincount
        owned.flags.writeable = False
        return owned
    array = np.asarray(values)
    if array.dtype.kind in "fc":
        raise FloatMoneyError(
            "counts",
            "must hold integer counts of the variable's places (int64), not floats",
            str(array.dtype),
        )
    if array.dtype.kind not in "iu":
        raise InvalidValueError("counts", "must hold integer counts (int64)", str(array.dtype))
    if array.ndim != 1:
        raise InvalidValueError("counts", "must be one-dimensional", array.shape)
    if array.dtype.kind == "u" and array.size and int(array.max()) > fx.INT64_MAX:
        raise OverflowRiskError("'counts' holds values beyond the int64 range of the array path")
    owner = np.array(array, dtype=np.int64)
    result = owner.view()  # read-only; its owner stays writeable for fx.bincount
    result.flags.writeable = False
    return result


def _check_places(_instance: object, _attribute: object, places: Any) -> None:
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= fx.MAX_PLACES:
        raise InvalidValueError("places", f"must be an int from 0 to {fx.MAX_PLACES}", places)


@attrs.frozen(eq=False)
class Counts:
    """One variable over every row: int64 counts of ``10**-places``.

    A score of 91.5 on a 0.01-point indicator is ``9150`` at ``places=2``; an
    offence number is ``2`` at ``places=0``. The array is copied: ``counts`` is a
    read-only view of the library's copy (its ``base``, which only the library
    reads through, and never writes to while the counts exist: a copy in a
    :class:`~bankkpi.vector.Workspace`'s array is written again only once nothing
    refers to the counts).

    >>> Counts([9150, 9800], 2).decimal(0)
    Decimal('91.50')
    """

    counts: NDArray[np.int64] = attrs.field(converter=_count_array)
    places: int = attrs.field(validator=_check_places)
    span: tuple[int, int] = attrs.field(init=False, repr=False)
    """The least and the greatest count (``(0, 0)`` when empty); for a slice
    (:meth:`take`), those of the counts it was taken from, which hold it."""

    def __attrs_post_init__(self) -> None:
        low, high = (int(self.counts.min()), int(self.counts.max())) if self.counts.size else (0, 0)
        if low == fx.INT64_MIN:  # −min would wrap
            raise OverflowRiskError(
                "'counts' holds values beyond the int64 range of the array path"
            )
        object.__setattr__(self, "span", (low, high))

    @property
    def bound(self) -> int:
        """At least the largest magnitude among the counts (exactly it, when built)."""
        low, high = self.span
        return max(-low, high)

    def __reduce__(self) -> tuple[type[Counts], tuple[NDArray[np.int64], int]]:
        """Pickled and copied through the constructor, so a copy's array is read-only too.

        (numpy gives an unpickled or deep-copied array back writeable.)
        """
        return type(self), (self.counts, self.places)

    def fixed(self) -> FixedArray:
        """The values as an exact :class:`FixedArray` over ``10**places``."""
        return FixedArray(self.counts, 10**self.places, self.bound)

    def take(self, rows: Rows) -> Counts:
        """The counts of ``rows`` only; a slice is a read-only view, not a copy."""
        if not isinstance(rows, slice):
            return Counts(self.counts[rows], self.places)
        view = object.__new__(Counts)
        object.__setattr__(view, "counts", self.counts[rows])
        object.__setattr__(view, "places", self.places)
        object.__setattr__(view, "span", self.span)
        return view

    def decimal(self, index: int) -> Decimal:
        """Row ``index`` as an exact Decimal."""
        return Decimal(int(self.counts[index])).scaleb(-self.places)

    def __len__(self) -> int:
        return int(self.counts.shape[0])


def _counts_map(values: Mapping[str, Counts]) -> dict[str, Counts]:
    return dict(values)


Ranks: TypeAlias = RankArrays | RankSource | RankView
"""What an :class:`ArrayContext` holds per ranking: ranks, or what computes them."""


def _ranks_map(values: Mapping[str, Ranks]) -> dict[str, Ranks]:
    return dict(values)


def _subjects(values: ArrayLike | None) -> NDArray[Any] | None:
    """The subject ids, read-only: copied unless nothing can write to them already."""
    if values is None:
        return None
    array = np.asarray(values)
    base = array.base if isinstance(array.base, np.ndarray) else None
    if array.flags.writeable or (base is not None and base.flags.writeable):
        array = array.copy()
    if array.ndim != 1:
        raise InvalidValueError("subjects", "must be one-dimensional", array.shape)
    array.flags.writeable = False
    return array


def _active(values: ArrayLike | None) -> NDArray[np.bool_] | None:
    if values is None:
        return None
    array = np.asarray(values)
    if array.dtype != np.bool_ or array.ndim != 1:
        raise InvalidValueError("active", "must be a one-dimensional bool array", array.dtype)
    return array


_SHOWN: Final = 5
"""How many offending rows an array-path error names."""


@attrs.frozen(eq=False)
class ArrayContext:
    """What a formula sees on the array path: every row at once.

    The array counterpart of :class:`Context`: ``variables`` maps variable names to
    :class:`Counts` (one int64 count per row), ``ranks`` maps ranking names to the
    :class:`~bankkpi.RankArrays` of :func:`~bankkpi.rank_arrays` (or a
    :class:`~bankkpi.RankSource`, ranked on demand), ``size`` is the
    row count. ``subjects`` (optional) names the rows in error messages. ``active``
    marks the rows whose result matters: a branch of :class:`When` or
    :class:`Choose` is evaluated with only the rows that take it active, so a row
    is checked (offence numbers, discretionary ranges) exactly where the exact path
    would check it. Inactive rows read their variables as 0. A branch that few rows
    take is evaluated on a :meth:`subset` instead: a smaller context of just those
    rows, whose ``row_numbers`` keep the population's row numbers for messages and
    whose rankings stay the population's.

    >>> env = ArrayContext(3, {"score": Counts([9150, 9500, 8937], 2)})
    >>> Shortfall(AtLeast(95), "score", rate=200, base=1000).evaluate_array(env).fractions()
    [Fraction(1700, 1), Fraction(0, 1), Fraction(2126, 1)]
    """

    size: int
    variables: Mapping[str, Counts] = attrs.field(factory=dict, converter=_counts_map)
    ranks: Mapping[str, Ranks] = attrs.field(factory=dict, converter=_ranks_map)
    subjects: NDArray[Any] | None = attrs.field(default=None, converter=_subjects)
    active: NDArray[np.bool_] | None = attrs.field(default=None, converter=_active, kw_only=True)
    row_numbers: NDArray[np.intp] | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise InvalidValueError("size", "must be an int >= 0", self.size)
        lengths: list[tuple[str, int]] = [
            *((f"variables[{n}]", len(c)) for n, c in self.variables.items()),
            *((f"ranks[{n}]", len(r)) for n, r in self.ranks.items()),
        ]
        if self.subjects is not None:
            lengths.append(("subjects", int(self.subjects.shape[0])))
        if self.active is not None:
            lengths.append(("active", int(self.active.shape[0])))
        if self.row_numbers is not None:
            lengths.append(("row_numbers", int(self.row_numbers.shape[0])))
        for field, length in lengths:
            if length != self.size:
                raise InvalidValueError(field, f"must have one entry per row ({self.size})", length)

    def rows(self) -> NDArray[np.bool_]:
        """The active rows as a bool array (every row when ``active`` is ``None``)."""
        if self.active is None:
            return np.ones(self.size, dtype=np.bool_)
        return self.active

    def restrict(self, mask: NDArray[np.bool_]) -> ArrayContext:
        """A copy in which only the active rows where ``mask`` holds stay active."""
        return attrs.evolve(self, active=self.rows() & mask)

    def subset(self, mask: NDArray[np.bool_]) -> ArrayContext:
        """A context of only the active rows where ``mask`` holds, all active.

        Variables and subjects are those rows'; rankings stay the population's
        (:class:`~bankkpi.RankView`); ``row_numbers`` keep each row's number in the
        population, so errors name the same rows as on the whole.
        """
        return self.take(np.flatnonzero(self.rows() & mask))

    def take(self, rows: NDArray[np.intp]) -> ArrayContext:
        """:meth:`subset` given the rows' indices (active rows, in ascending order)."""
        return ArrayContext(
            int(rows.shape[0]),
            {name: counts.take(rows) for name, counts in self.variables.items()},
            {
                name: entry.take(rows) if isinstance(entry, RankView) else RankView(entry, rows)
                for name, entry in self.ranks.items()
            },
            None if self.subjects is None else self.subjects[rows],
            row_numbers=rows if self.row_numbers is None else self.row_numbers[rows],
        )

    def part(self, start: int, stop: int) -> ArrayContext:
        """Rows ``start`` to ``stop − 1`` as a context of their own, for one thread's share.

        Variables are views (no copy); rankings stay the population's; ``row_numbers``
        keep each row's number in the population.
        """
        rows = slice(start, stop)
        numbers = np.arange(start, stop, dtype=np.intp)
        return ArrayContext(
            stop - start,
            {name: counts.take(rows) for name, counts in self.variables.items()},
            {
                name: entry.take(numbers) if isinstance(entry, RankView) else RankView(entry, rows)
                for name, entry in self.ranks.items()
            },
            None if self.subjects is None else self.subjects[rows],
            active=None if self.active is None else self.active[rows],
            row_numbers=numbers if self.row_numbers is None else self.row_numbers[rows],
        )

    def any(self, mask: NDArray[np.bool_]) -> bool:
        """Whether ``mask`` holds in at least one active row."""
        return bool(np.any(self.rows() & mask))

    def counts(self, name: str) -> Counts:
        """The :class:`Counts` of variable ``name``."""
        try:
            return self.variables[name]
        except KeyError:
            raise MissingDataError("array of variable", name) from None

    def value(self, name: str) -> FixedArray:
        """Variable ``name`` as exact values; 0 in inactive rows."""
        counts = self.counts(name)
        if self.active is None:
            return counts.fixed()
        return FixedArray(counts.counts * self.active, 10**counts.places, counts.bound)

    def rank(self, name: str) -> RankArrays:
        """The ranks in ranking ``name``."""
        try:
            entry = self.ranks[name]
        except KeyError:
            raise MissingDataError("rank arrays of ranking", name) from None
        return entry if isinstance(entry, RankArrays) else entry.arrays()

    def rank_mask(self, name: str, selection: _RankMask) -> NDArray[np.bool_]:
        """The rows ``selection`` picks in ranking ``name`` (all rows, active or not).

        From cut-off values when the ranking is a :class:`~bankkpi.RankSource` and
        the selection one of the library's (or an :class:`~bankkpi.Exemption` of
        one: its mask is its selection's); else ``selection.mask`` of the ranks.
        """
        entry = self.ranks.get(name)
        if isinstance(selection, Exemption):
            selection = selection.selection
        if isinstance(entry, RankSource | RankView) and isinstance(selection, Selection):
            return entry.mask(selection)
        return np.asarray(selection.mask(self.rank(name)), dtype=np.bool_)

    def offending(self, bad: NDArray[np.bool_]) -> tuple[int, str, str]:
        """The first active row where ``bad`` holds, its subject, and a phrase naming the rows.

        The first row is this context's index (to read values at); the phrase and
        subject name the population's rows (see :func:`describe_rows`).
        """
        rows = np.flatnonzero(self.rows() & bad)
        _first, subject, phrase = describe_rows(rows, self.subjects, numbers=self.row_numbers)
        return int(rows[0]), subject, phrase


def describe_rows(
    rows: NDArray[np.intp],
    subjects: NDArray[Any] | None,
    *,
    numbers: NDArray[np.intp] | None = None,
) -> tuple[int, str, str]:
    """The first of ``rows``, its subject (or ``row i``), and a phrase naming the first few.

    ``numbers`` (optional) are the row numbers to show for ``rows``' positions, when
    those are positions in a subset of a population.

    >>> describe_rows(np.array([4, 7, 9, 10, 11, 12, 13]), None)
    (4, 'row 4', '7 rows: row 4, row 7, row 9, row 10, row 11 and 2 more')
    >>> describe_rows(np.array([1]), np.array(["O1", "O2"]))
    (1, 'O2', '1 row: row 1 (O2)')
    """
    shown = rows if numbers is None else numbers[rows]
    names = [
        f"row {n}" if subjects is None else f"row {n} ({subjects[i]})"
        for i, n in zip(rows[:_SHOWN], shown[:_SHOWN], strict=True)
    ]
    count = int(rows.shape[0])
    more = f" and {count - _SHOWN} more" if count > _SHOWN else ""
    first = int(shown[0])
    subject = f"row {first}" if subjects is None else str(subjects[int(rows[0])])
    return first, subject, f"{count} row{'s' if count > 1 else ''}: {', '.join(names)}{more}"


@runtime_checkable
class ArrayFormula(Protocol):
    """A formula with an array path: exact values for every row at once.

    The numerators returned are a new array or a read-only one: the caller may
    write into a writeable result (as :class:`Sum`, :class:`Rule`, and
    :class:`When` and :class:`Choose` assembling their branches do, to save
    allocating another full-size array). A formula that keeps an array to return
    it again must return it read-only.
    """

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The exact (unrounded unless stated) values, one per row."""
        ...


@runtime_checkable
class ArrayPredicate(Protocol):
    """A predicate with an array path."""

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """Whether it holds, one bool per row."""
        ...


class _RankMask(Protocol):
    def mask(self, arrays: RankArrays) -> NDArray[np.bool_]: ...


def formula_array(formula: Formula, env: ArrayContext) -> FixedArray:
    """``formula`` over every row of ``env``: exact values equal to the exact path's.

    Works for every formula of this module and for an
    :class:`~bankkpi.Expression` (through its own array evaluator).

    Raises:
        InvalidValueError: for a formula without an array path.
    """
    from bankkpi._expressions import Expression, _Arrays  # noqa: PLC0415 - it imports this module

    if isinstance(formula, Expression):
        inputs = {name: env.value(name) for name in formula.names}
        return _Arrays(inputs).number(formula.tree)
    evaluate = getattr(formula, "evaluate_array", None)  # isinstance(, ArrayFormula), faster
    if callable(evaluate):
        result: FixedArray = evaluate(env)
        return result
    raise InvalidValueError(
        "formula", "has no array path (evaluate_array); use the exact path", type(formula).__name__
    )


def predicate_array(predicate: Predicate, env: ArrayContext) -> NDArray[np.bool_]:
    """``predicate`` over every row of ``env``.

    Raises:
        InvalidValueError: for a predicate without an array path.
    """
    test = getattr(predicate, "test_array", None)  # isinstance(, ArrayPredicate), faster
    if callable(test):
        result = np.asarray(test(env), dtype=np.bool_)
        if result.shape != (env.size,):
            result = np.broadcast_to(result, (env.size,)).copy()
        return result
    raise InvalidValueError(
        "predicate", "has no array path (test_array); use the exact path", type(predicate).__name__
    )


def _zero() -> FixedArray:
    return FixedArray(np.array(0, dtype=np.int64), 1, 0)


def _const(value: Decimal | Fraction | int, what: str) -> FixedArray:
    return fx.constant(value, what)


def _rows_error(
    env: ArrayContext,
    bad: NDArray[np.bool_],
    value: FixedArray,
    make: Callable[[str, Decimal | Fraction, str], BankKPIError],
) -> None:
    """Raise ``make(phrase, first value, first subject)`` if ``bad`` holds in an active row."""
    if env.any(bad):
        first, subject, phrase = env.offending(bad)
        raise make(phrase, value.decimal(first), subject)


# ----------------------------------------------------------------------- predicates


class Predicate(Protocol):
    """A condition on a context that explains its own outcome."""

    def test(self, context: Context) -> tuple[bool, Text]:
        """Whether it holds, and a phrase saying why."""
        ...


def _fmt(value: Decimal) -> str:
    return f"{value:f}"


@attrs.frozen
class Met:
    """Holds when ``variable`` meets ``target`` (by the target's inclusivity)."""

    target: AtLeast | AtMost | Within
    variable: str | Var = attrs.field(default="score", converter=_var)
    _words: tuple[str, str] = attrs.field(init=False, eq=False, repr=False)

    @_words.default
    def _describe_once(self) -> tuple[str, str]:
        return self.target.describe("zh"), self.target.describe("en")

    def test(self, context: Context) -> tuple[bool, Text]:
        """Met or not, with the value and the target in the reason."""
        var = self.variable
        if not isinstance(var, Var):  # always a Var (the converter), but a str is typed too
            var = _var(var)
        value = var.get(context)
        ok = self.target.met(value)
        verb_zh, verb_en = ("达到", "meets") if ok else ("未达到", "misses")
        target_zh, target_en = self._words
        return ok, Text(
            f"{var.text.zh}{_fmt(value)}{verb_zh}目标{target_zh}",
            f"{var.text.en} {_fmt(value)} {verb_en} target {target_en}",
        )

    def _holds_fn(self) -> HoldsFn:
        """:meth:`test` without the reason, as a function (the lean path)."""
        name, met = _var(self.variable).name, self.target.met
        return lambda values, _ranks: met(values[name])

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """Met or not, per row."""
        return _met_array(self.target, env.value(_var(self.variable).name))


@attrs.frozen
class InRanks:
    """Holds when the subject's entry in ranking ``ranking`` is in ``selection``."""

    ranking: str
    selection: RankSelection
    _words: tuple[str, str, str, str] | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

    def test(self, context: Context) -> tuple[bool, Text]:
        """In the selection or not."""
        try:
            ranked = context.ranks[self.ranking]
        except KeyError:
            ranked = context.rank(self.ranking)  # raises the typed error
        ok = bool(self.selection.contains(ranked))
        words = self._words
        if words is None:  # described once: a selection never changes
            words = (
                f"{self.selection.describe('zh')}：是",
                f"{self.selection.describe('en')}: yes",
                f"{self.selection.describe('zh')}：否",
                f"{self.selection.describe('en')}: no",
            )
            object.__setattr__(self, "_words", words)
        if type(ranked) is RankedSubject:
            where_zh, where_en = ranked.where()
        else:
            where_zh = where_en = ""
            top, bottom = (
                getattr(ranked, "rank_from_top", None),
                getattr(ranked, "rank_from_bottom", None),
            )
            size = getattr(ranked, "group_size", None)
            if top is not None and bottom is not None and size is not None:
                where_zh = f"（第{top}名，倒数第{bottom}名，共{size}）"
                where_en = f" (rank {top} of {size}, {bottom} from the bottom)"
        if ok:
            return True, Text(words[0] + where_zh, words[1] + where_en)
        return False, Text(words[2] + where_zh, words[3] + where_en)

    def _holds_fn(self) -> HoldsFn:
        """:meth:`test` without the reason, as a function (the lean path)."""
        name, selection = self.ranking, self.selection
        contains = selection.contains
        window = _rank_window(selection)
        if window is None:

            def test(_values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> bool:
                ranked = ranks[name]
                if type(ranked) is tuple:  # a RankRow: the entry's fields
                    ranked = RankedSubject(*ranked)
                return bool(contains(ranked))

            return test
        top, first, last = window
        index = 3 if top else 4  # rank_from_top / rank_from_bottom in a RankRow

        def holds(_values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> bool:
            ranked = ranks[name]
            kind = type(ranked)
            rank: Rank
            if kind is tuple:
                rank = ranked[index]
            elif kind is RankedSubject:
                rank = ranked.rank_from_top if top else ranked.rank_from_bottom
            else:
                return bool(contains(ranked))
            return first <= rank <= last

        return holds

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """In the selection or not, per row (the selection's ``mask``)."""
        if not callable(getattr(self.selection, "mask", None)):  # isinstance(, _RankMask), faster
            raise InvalidValueError(
                "selection",
                "has no array form (mask); use the exact path",
                type(self.selection).__name__,
            )
        return env.rank_mask(self.ranking, cast("_RankMask", self.selection))


def _rank_window(selection: object) -> tuple[bool, int, int] | None:
    """``(from the top?, first, last)`` of a fixed rank window (Top, Bottom, RankRange).

    ``selection.contains(ranked)`` is ``first <= rank <= last`` for these exact
    classes; ``None`` for any other selection (a Percentile's window depends on the
    group size).
    """
    kind = type(selection)
    if kind is Top:
        return True, 1, selection.n  # type: ignore[attr-defined]
    if kind is Bottom:
        return False, 1, selection.n  # type: ignore[attr-defined]
    if kind is RankRange:
        side: str = selection.side  # type: ignore[attr-defined]
        return side == "top", selection.first, selection.last  # type: ignore[attr-defined]
    return None


@attrs.frozen
class InBand:
    """Holds when ``variable`` falls in one of the bands named ``labels``."""

    bands: BandSet
    labels: frozenset[str] = attrs.field(converter=frozenset)
    variable: str | Var = attrs.field(default="score", converter=_var)

    def test(self, context: Context) -> tuple[bool, Text]:
        """In one of the bands or not."""
        var = _var(self.variable)
        value = var.get(context)
        band = self.bands.classify(value)
        ok = band.label in self.labels
        return ok, Text(
            f"{var.text.zh}{_fmt(value)}属于“{band.label}”{band.describe('zh')}",
            f"{var.text.en} {_fmt(value)} is in band '{band.label}' {band.describe('en')}",
        )

    def _holds_fn(self) -> HoldsFn:
        """:meth:`test` without the reason, as a function (the lean path)."""
        name, classify, labels = _var(self.variable).name, self.bands.classify, self.labels

        def holds(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> bool:
            return classify(values[name]).label in labels

        return holds

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """In one of the bands or not, per row.

        Raises:
            MissingDataError: naming the active rows in no band (and no catch-all).
        """
        value = env.value(_var(self.variable).name)
        masks, covered = _classify(self.bands, value, env)
        ok = np.zeros(env.size, dtype=np.bool_)
        for band, mask in zip(self.bands.bands, masks, strict=True):
            if band.label in self.labels:
                ok |= mask
        if self.bands.catch_all is not None and self.bands.catch_all in self.labels:
            ok |= ~covered
        return ok


_COMPARE: Final[dict[str, Callable[[Decimal, Decimal], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


@attrs.frozen
class Compare:
    """Holds when ``variable op value`` (e.g. ``complaints == 0``)."""

    variable: str | Var = attrs.field(converter=_var)
    op: Literal["<", "<=", "==", "!=", ">=", ">"] = attrs.field(
        validator=one_of("op", tuple(_COMPARE))
    )
    value: Decimal = attrs.field(converter=to_decimal)

    def test(self, context: Context) -> tuple[bool, Text]:
        """The comparison, spelled out."""
        var = _var(self.variable)
        actual = var.get(context)
        ok = _COMPARE[self.op](actual, self.value)
        shown = f"{_fmt(actual)} {self.op} {_fmt(self.value)}"
        return ok, Text(
            f"{var.text.zh}：{shown}{'成立' if ok else '不成立'}",
            f"{var.text.en}: {shown} is {'true' if ok else 'false'}",
        )

    def _holds_fn(self) -> HoldsFn:
        """:meth:`test` without the reason, as a function (the lean path)."""
        name, compare, value = _var(self.variable).name, _COMPARE[self.op], self.value
        return lambda values, _ranks: compare(values[name], value)

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """The comparison, per row."""
        value = env.value(_var(self.variable).name)
        return fx.compare(value, self.op, _const(self.value, "Compare"), "Compare")


def _predicates(items: Iterable[Predicate]) -> tuple[Predicate, ...]:
    result = tuple(items)
    if not result:
        raise InvalidValueError("predicates", "must hold at least one condition", result)
    return result


@attrs.frozen
class AllOf:
    """Holds when every predicate holds (the reasons are joined)."""

    predicates: tuple[Predicate, ...] = attrs.field(converter=_predicates)

    def test(self, context: Context) -> tuple[bool, Text]:
        """All of them, with every reason."""
        results = [p.test(context) for p in self.predicates]
        return all(ok for ok, _ in results), _join(t for _, t in results)

    def _holds_fn(self) -> HoldsFn | None:
        """:meth:`test` without the reasons: every predicate is tested, as there."""
        tests = _holds_fns(self.predicates)
        if tests is None:
            return None
        return lambda values, ranks: all([test(values, ranks) for test in tests])  # noqa: C419

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """All of them, per row (every predicate is evaluated, as on the exact path)."""
        results = [predicate_array(p, env) for p in self.predicates]
        return np.asarray(np.logical_and.reduce(results), dtype=np.bool_)


@attrs.frozen
class AnyOf:
    """Holds when at least one predicate holds."""

    predicates: tuple[Predicate, ...] = attrs.field(converter=_predicates)

    def test(self, context: Context) -> tuple[bool, Text]:
        """Any of them, with every reason."""
        results = [p.test(context) for p in self.predicates]
        return any(ok for ok, _ in results), _join(t for _, t in results)

    def _holds_fn(self) -> HoldsFn | None:
        """:meth:`test` without the reasons: every predicate is tested, as there."""
        tests = _holds_fns(self.predicates)
        if tests is None:
            return None
        return lambda values, ranks: any([test(values, ranks) for test in tests])  # noqa: C419

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """Any of them, per row (every predicate is evaluated, as on the exact path)."""
        results = [predicate_array(p, env) for p in self.predicates]
        return np.asarray(np.logical_or.reduce(results), dtype=np.bool_)


@attrs.frozen
class Not:
    """Holds when ``predicate`` does not."""

    predicate: Predicate

    def test(self, context: Context) -> tuple[bool, Text]:
        """The negation; the reason is the inner one."""
        ok, why = self.predicate.test(context)
        return not ok, why

    def _holds_fn(self) -> HoldsFn | None:
        """:meth:`test` without the reason, as a function (the lean path)."""
        test = holds_fn(self.predicate)
        if test is None:
            return None
        return lambda values, ranks: not test(values, ranks)

    def test_array(self, env: ArrayContext) -> NDArray[np.bool_]:
        """The negation, per row."""
        return ~predicate_array(self.predicate, env)


def _join(texts: Iterable[Text]) -> Text:
    items = list(texts)
    return Text("，".join(t.zh for t in items), "; ".join(t.en for t in items))


def met_op(target: AtLeast | AtMost) -> fx.CompareOp:
    """The comparison ``value op threshold`` that holds where ``target`` is met."""
    if isinstance(target, AtLeast):
        return ">=" if target.inclusive else ">"
    return "<=" if target.inclusive else "<"


def _met_array(target: AtLeast | AtMost | Within, value: FixedArray) -> NDArray[np.bool_]:
    """``target.met`` for every row."""
    what = "target"
    if isinstance(target, AtLeast | AtMost):
        return fx.compare(value, met_op(target), _const(target.threshold, what), what)
    low: fx.CompareOp = ">=" if target.low_inclusive else ">"
    high: fx.CompareOp = "<=" if target.high_inclusive else "<"
    return fx.compare(value, low, _const(target.low, what), what) & fx.compare(
        value, high, _const(target.high, what), what
    )


def _band_mask(band: Band, value: FixedArray) -> NDArray[np.bool_]:
    """``band.contains`` for every row."""
    what = f"band {band.label}"
    ok = np.ones(np.shape(value.num), dtype=np.bool_)
    if band.low is not None:
        op: fx.CompareOp = ">=" if band.low_inclusive else ">"
        ok &= fx.compare(value, op, _const(band.low, what), what)
    if band.high is not None:
        op = "<=" if band.high_inclusive else "<"
        ok &= fx.compare(value, op, _const(band.high, what), what)
    return ok


def _classify(
    bands: BandSet, value: FixedArray, env: ArrayContext
) -> tuple[list[NDArray[np.bool_]], NDArray[np.bool_]]:
    """Each band's rows and the rows in some band; refuses active rows in none.

    Raises:
        MissingDataError: naming the active rows outside every band when there is
            no catch-all (the exact path's ``classify`` refuses them one by one).
    """
    masks = [_band_mask(band, value) for band in bands.bands]
    covered = np.asarray(np.logical_or.reduce(masks), dtype=np.bool_)
    if bands.catch_all is None:
        _rows_error(
            env,
            ~covered,
            value,
            lambda rows, first, subject: MissingDataError(
                f"band containing value ({rows})", first, subject=subject
            ),
        )
    return masks, covered


# ------------------------------------------------------------------------- formulas


def _amount(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="amount")


def _rate(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="rate")


def _optional_amount(value: DecimalLike | None) -> Decimal | None:
    return None if value is None else to_decimal(value, field="amount")


@attrs.frozen
class Fixed:
    """A stated amount (500 for the region's top 2; 0 for an exemption)."""

    amount: Decimal = attrs.field(converter=_amount)
    label: Text = _AMOUNT
    note: Text | None = None

    def evaluate(self, context: Context) -> Trace:  # noqa: ARG002 - same signature as every formula
        """The amount itself."""
        return Trace.fixed(
            "", self.label, self.amount, notes=() if self.note is None else [self.note]
        )

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        amount = self.amount
        return lambda _values, _ranks: amount

    def evaluate_array(self, env: ArrayContext) -> FixedArray:  # noqa: ARG002 - one signature
        """The amount itself, for every row."""
        return _const(self.amount, "Fixed")


Counting: TypeAlias = Literal["exact", "started", "completed"]
"""How a shortfall becomes units: ``exact`` (3.5 points = 3.5 units, the literal
formula), ``started`` (every unit begun counts: 3.5 → 4), ``completed`` (only whole
units count: 3.5 → 3)."""


def _target(value: object) -> AtLeast | AtMost:
    if not isinstance(value, AtLeast | AtMost):
        raise InvalidValueError("target", "must be AtLeast or AtMost", value)
    return value


@attrs.frozen
class Shortfall:
    """``base + rate × units short`` when the target is missed, else 0.

    ``units = shortfall ÷ per``, counted by ``counting`` (default ``exact``: the
    literal "每差1分" formula). For an at-most target the shortfall is the excess.

    >>> Shortfall(AtLeast(95), "score", rate=200, base=1000).evaluate(
    ...     Context("o", {"score": "91.5"})).amount
    Decimal('1700')
    """

    target: AtLeast | AtMost = attrs.field(converter=_target)
    variable: str | Var = attrs.field(default="score", converter=_var)
    rate: Decimal = attrs.field(default=_ZERO, converter=_rate, kw_only=True)
    base: Decimal = attrs.field(default=_ZERO, converter=_amount, kw_only=True)
    per: Decimal = attrs.field(default=Decimal(1), converter=_rate, kw_only=True)
    counting: Counting = attrs.field(
        default="exact",
        kw_only=True,
        validator=one_of("counting", ("exact", "started", "completed")),
    )
    label: Text = attrs.field(default=_AMOUNT, kw_only=True)
    _memo: tuple[Met, Num, Num, Num | None, Num] | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

    @per.validator
    def _check_per(self, _attribute: object, per: Decimal) -> None:
        if per <= 0:
            raise InvalidValueError("per", "must be > 0", per)
        for field, value in (("rate", self.rate), ("base", self.base)):
            if value < 0:
                raise InvalidValueError(field, "must be >= 0", value)

    def _parts(self) -> tuple[Met, Num, Num, Num | None, Num]:
        """The test and the constant numbers of the formula, built once."""
        parts = self._memo
        if parts is None:
            parts = (
                Met(self.target, self.variable),
                Num(self.target.threshold, Text("目标", "target")),
                Num(self.rate),
                None if self.per == 1 else Num(self.per),
                Num(self.base),
            )
            object.__setattr__(self, "_memo", parts)
        return parts

    def evaluate(self, context: Context) -> Trace:
        """Zero with a "met" note, or the shortfall formula with numbers substituted.

        The trace depends on the variable's value alone: within a run it is built
        once per value (as written: 95.0 and 95.00 show differently) and shared.
        """
        var = _var(self.variable)
        actual = var.get(context)
        memo = context._traces  # noqa: SLF001 - this module's class
        if memo is None:
            return self._trace(var, actual, context)
        key = (id(self), actual.as_tuple())
        entries = memo.entries
        found = entries.get(key)
        if found is None or found[0] is not self:
            # the entry holds this formula: while the memo lives, no other takes its id
            found = entries[key] = (self, self._trace(var, actual, context))
        return found[1]

    def _trace(self, var: Var, actual: Decimal, context: Context) -> Trace:
        """:meth:`evaluate`'s trace, built."""
        test, threshold, rate, per, base = self._parts()
        met, why = test.test(context)
        if met:
            return Trace.fixed("", self.label, _ZERO, notes=(why,))
        gap: Expr = (
            threshold - var.num(context)
            if isinstance(self.target, AtLeast)
            else var.num(context) - threshold
        )
        units: Expr = gap if per is None else gap / per
        notes = [why]
        if self.counting != "exact":
            exact_units = units.exact()
            whole = (
                math.ceil(exact_units) if self.counting == "started" else math.floor(exact_units)
            )
            shown = units.render("zh"), units.render("en")
            started = self.counting == "started"
            notes.append(
                Text(
                    f"{shown[0]}按{'不足1单位计1单位' if started else '满1单位计'}，计{whole}单位",
                    f"{shown[1]} counted as {whole} {'started' if started else 'whole'} units",
                )
            )
            units = Num(Decimal(whole), Text("计数单位", "units"))
        expr: Expr = units * rate
        if self.base:
            expr = base + expr
        return Trace.of("", self.label, expr, notes=tuple(notes), inputs=((var.text, actual),))

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path).

        It computes in exact Decimal arithmetic: ``decimal.Inexact`` when the units
        have no exact 34-digit decimal form (a division by ``per``), and the caller
        then builds the trace.
        """
        name, target = _var(self.variable).name, self.target
        met, threshold, below = target.met, target.threshold, isinstance(target, AtLeast)
        per, counting, rate, base = self.per, self.counting, self.rate, self.base
        subtract, divide = EXACT_CONTEXT.subtract, EXACT_CONTEXT.divide
        multiply, add = EXACT_CONTEXT.multiply, EXACT_CONTEXT.add

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            value = values[name]
            if met(value):
                return _ZERO
            units = subtract(threshold, value) if below else subtract(value, threshold)
            if per != 1:
                units = divide(units, per)
            if counting != "exact":
                units = Decimal(math.ceil(units) if counting == "started" else math.floor(units))
            amount = multiply(units, rate)
            return add(base, amount) if base else amount

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The same formula per row: 0 where met, ``base + rate × units`` elsewhere."""
        what = "Shortfall"
        value = env.value(_var(self.variable).name)
        met = _met_array(self.target, value)
        threshold = _const(self.target.threshold, what)
        # value is read here last: when env.value made it for this call (inactive
        # rows zeroed) it takes the gap; the variable's own array is never reused
        made = value if env.active is not None else None
        if isinstance(self.target, AtLeast):
            gap = fx.subtract(threshold, value, what, reuse=made)
        else:
            gap = fx.subtract(value, threshold, what, reuse=made)
        # gap and what follows are this method's own temporaries: each step reuses them
        units = gap if self.per == 1 else fx.scale(gap, 1 / Fraction(self.per), what, reuse=gap)
        if self.counting == "started":
            units = fx.negate(fx.floor(fx.negate(units)))
        elif self.counting == "completed":
            units = fx.floor(units)
        amount = fx.scale(units, self.rate, what, reuse=units)
        if self.base:
            amount = fx.add(_const(self.base, what), amount, what, reuse=amount)
        return fx.where(met, _zero(), amount, what, reuse=amount)


@attrs.frozen
class PerCount:
    """``rate × count``: 100 yuan per written praise, −1 point per finding."""

    rate: Decimal = attrs.field(converter=_rate)
    variable: str | Var = attrs.field(default="count", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The count times the rate; the count must be a whole number >= 0."""
        var = _var(self.variable)
        _whole_count(var, context, "must be a whole count >= 0")
        return Trace.of("", self.label, var.num(context) * num(self.rate))

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        return _times_whole_count(_var(self.variable).name, self.rate)

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The count times the rate, per row.

        Raises:
            InvalidValueError: naming the active rows whose count is negative or not whole.
        """
        count = _whole_count_array(env, _var(self.variable), "must be a whole count >= 0")
        return fx.scale(count, self.rate, "PerCount")


def _times_whole_count(name: str, factor: Decimal) -> LeanFn:
    """The lean path of ``value × factor`` for a whole count ``value >= 0``.

    A count that is not one raises, and the caller builds the trace (and its error).
    """
    multiply = EXACT_CONTEXT.multiply

    def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
        value = values[name]
        if value < 0 or value != value.to_integral_value():
            raise InvalidValueError(name, "must be a whole count >= 0", value)
        return multiply(value, factor)

    return lean


def _whole_count(var: Var, context: Context, rule: str) -> Decimal:
    """The variable's value, refused unless it is a whole number >= 0."""
    value = var.get(context)
    if value < 0 or value != value.to_integral_value():
        raise InvalidValueError(var.name, rule, value, subject=context.subject)
    return value


def _whole_count_array(env: ArrayContext, var: Var, rule: str) -> FixedArray:
    """The variable per row; the active rows that are negative or not whole are refused."""
    value = env.value(var.name)
    bad = (value.num < 0) | (value.num % np.int64(value.den) != 0)
    _rows_error(
        env,
        bad,
        value,
        lambda rows, first, subject: InvalidValueError(
            var.name, f"{rule} ({rows})", first, subject=subject
        ),
    )
    return value


def _rates(values: Iterable[DecimalLike]) -> tuple[Decimal, ...]:
    rates = tuple(to_decimal(v, field="rates") for v in values)
    if not rates:
        raise InvalidValueError("rates", "must hold at least one rate", rates)
    return rates


@attrs.frozen
class Escalating:
    """``units × rate of the offence number``: 200/point the first time, 500 again.

    ``rates[k]`` applies to offence ``k + 1``; offences beyond the list use the last.

    >>> f = Escalating((200, 500), units="points", offence="offence")
    >>> f.evaluate(Context("o", {"points": 2, "offence": 2})).amount
    Decimal('1000')
    """

    rates: tuple[Decimal, ...] = attrs.field(converter=_rates)
    units: str | Var = attrs.field(default="points", converter=_var)
    offence: str | Var = attrs.field(default="offence", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The units at the rate of this offence."""
        offence_var = _var(self.offence)
        offence = offence_var.get(context)
        if offence < 1 or offence != offence.to_integral_value():
            raise InvalidValueError(
                offence_var.name,
                "must be a whole offence number >= 1",
                offence,
                subject=context.subject,
            )
        units = _var(self.units)
        if units.get(context) < 0:
            raise InvalidValueError(
                units.name, "must be >= 0", units.get(context), subject=context.subject
            )
        index = min(int(offence), len(self.rates)) - 1
        note = Text(
            f"第{offence}次，每单位{self.rates[index]}元",
            f"offence {offence}: {self.rates[index]} per unit",
        )
        return Trace.of(
            "", self.label, _var(self.units).num(context) * num(self.rates[index]), notes=[note]
        )

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        offence_name, units_name, rates = _var(self.offence).name, _var(self.units).name, self.rates
        multiply = EXACT_CONTEXT.multiply

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            offence = values[offence_name]
            if offence < 1 or offence != offence.to_integral_value():
                raise InvalidValueError(
                    offence_name, "must be a whole offence number >= 1", offence
                )
            units = values[units_name]
            if units < 0:
                raise InvalidValueError(units_name, "must be >= 0", units)
            return multiply(units, rates[min(int(offence), len(rates)) - 1])

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The units at the rate of each row's offence.

        Raises:
            InvalidValueError: naming the active rows whose offence number is not a
                whole number >= 1.
        """
        what = "Escalating"
        name = _var(self.offence).name
        offence = env.value(name)
        whole = offence.num % np.int64(offence.den) == 0
        number = offence.num // np.int64(offence.den)
        valid = whole & (number >= 1)
        _rows_error(
            env,
            ~valid,
            offence,
            lambda rows, first, subject: InvalidValueError(
                name, f"must be a whole offence number >= 1 ({rows})", first, subject=subject
            ),
        )
        units_name = _var(self.units).name
        units = env.value(units_name)
        _rows_error(
            env,
            units.num < 0,
            units,
            lambda rows, first, subject: InvalidValueError(
                units_name, f"must be >= 0 ({rows})", first, subject=subject
            ),
        )
        index = np.where(valid, np.minimum(number, len(self.rates)) - 1, 0)
        rates, den = fx.align([_const(r, what) for r in self.rates], what)
        table = np.array([int(r) for r in rates], dtype=np.int64)
        rate = FixedArray(np.take(table, index), den, fx.max_abs(table))
        return fx.multiply(units, rate, what)


@attrs.frozen
class PerPeriodEarly:
    """``amount × periods early``: 300 yuan for each quarter the standard came early."""

    amount: Decimal = attrs.field(converter=_amount)
    variable: str | Var = attrs.field(default="quarters_early", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The amount per period times the (non-negative) number of periods early."""
        var = _var(self.variable)
        _whole_count(var, context, "must be a whole number >= 0")
        return Trace.of("", self.label, var.num(context) * num(self.amount))

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        return _times_whole_count(_var(self.variable).name, self.amount)

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The amount per period times the periods early, per row.

        Raises:
            InvalidValueError: naming the active rows with a negative or fractional
                number of periods.
        """
        early = _whole_count_array(env, _var(self.variable), "must be a whole number >= 0")
        return fx.scale(early, self.amount, "PerPeriodEarly")


@attrs.frozen
class Discretionary:
    """An amount the committee picks from a range (media praise 200–1000).

    A chosen amount outside ``[low, high]`` is an :class:`OutOfRangeError` naming the
    item, the range and the amount.
    """

    item: Text
    low: Decimal = attrs.field(converter=_amount)
    high: Decimal = attrs.field(converter=_amount)
    variable: str | Var = attrs.field(default="chosen", converter=_var)

    @high.validator
    def _check_range(self, _attribute: object, high: Decimal) -> None:
        if high < self.low:
            raise InvalidValueError("high", f"must not be below low {self.low}", high)

    def evaluate(self, context: Context) -> Trace:
        """The chosen amount, checked against the range."""
        var = _var(self.variable)
        chosen = var.get(context)
        if not self.low <= chosen <= self.high:
            raise OutOfRangeError(
                self.item.en,
                f"must be within the range [{self.low}, {self.high}] ({self.item.zh})",
                chosen,
                subject=context.subject,
            )
        range_note = Text(
            f"{self.item.zh}，范围{self.low}–{self.high}",
            f"{self.item.en}, range {self.low}–{self.high}",
        )
        return Trace.fixed("", self.item, chosen, notes=[range_note])

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        name, low, high = _var(self.variable).name, self.low, self.high

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            chosen = values[name]
            if not low <= chosen <= high:
                raise OutOfRangeError(name, "must be within the range", chosen)
            return chosen

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The chosen amounts, checked against the range.

        Raises:
            OutOfRangeError: naming the active rows whose amount is outside the range.
        """
        what = "Discretionary"
        chosen = env.value(_var(self.variable).name)
        inside = fx.compare(chosen, ">=", _const(self.low, what), what) & fx.compare(
            chosen, "<=", _const(self.high, what), what
        )
        _rows_error(
            env,
            ~inside,
            chosen,
            lambda rows, first, subject: OutOfRangeError(
                self.item.en,
                f"must be within the range [{self.low}, {self.high}] ({self.item.zh}) ({rows})",
                first,
                subject=subject,
            ),
        )
        return chosen


def _amounts(values: Mapping[str, DecimalLike]) -> dict[str, Decimal]:
    return {label: to_decimal(v, field=f"amounts[{label}]") for label, v in values.items()}


@attrs.frozen
class BandAmount:
    """The amount of the band ``variable`` falls in (below 85 → X, below 80 → Y).

    Every band label must have an amount; a value outside every band (and no
    catch-all) is a :class:`MissingDataError`.
    """

    bands: BandSet
    amounts: Mapping[str, Decimal] = attrs.field(converter=_amounts)
    variable: str | Var = attrs.field(default="score", converter=_var)
    label: Text = _AMOUNT

    @amounts.validator
    def _check_amounts(self, _attribute: object, amounts: Mapping[str, Decimal]) -> None:
        labels = set(self.bands.labels()) | (
            {self.bands.catch_all} if self.bands.catch_all else set()
        )
        missing = sorted(labels - set(amounts))
        extra = sorted(set(amounts) - labels)
        if missing:
            raise InvalidValueError(
                "amounts", "must give an amount for every band; missing", missing
            )
        if extra:
            raise InvalidValueError("amounts", "name bands that do not exist", extra)

    def evaluate(self, context: Context) -> Trace:
        """The band's amount, with the band named in a note."""
        _ok, why = InBand(self.bands, frozenset(), self.variable).test(context)
        band = self.bands.classify(_var(self.variable).get(context))
        return Trace.fixed("", self.label, self.amounts[band.label], notes=[why])

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        name, classify, amounts = _var(self.variable).name, self.bands.classify, self.amounts

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            return amounts[classify(values[name]).label]

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The amount of each row's band.

        Raises:
            MissingDataError: naming the active rows in no band (and no catch-all).
        """
        what = "BandAmount"
        masks, _covered = _classify(self.bands, env.value(_var(self.variable).name), env)
        result = (
            _zero()
            if self.bands.catch_all is None
            else _const(self.amounts[self.bands.catch_all], what)
        )
        for band, mask in zip(self.bands.bands, masks, strict=True):
            result = fx.where(mask, _const(self.amounts[band.label], what), result, what)
        return result


def _tiers(
    values: Iterable[tuple[DecimalLike, DecimalLike]],
) -> tuple[tuple[Decimal, Decimal], ...]:
    tiers = tuple(
        (to_decimal(lo, field="tiers.from"), to_decimal(r, field="tiers.rate")) for lo, r in values
    )
    if not tiers:
        raise InvalidValueError("tiers", "must hold at least one tier", tiers)
    starts = [lo for lo, _ in tiers]
    if starts != sorted(set(starts)):
        raise InvalidValueError(
            "tiers", "must start at strictly increasing values", [str(s) for s in starts]
        )
    return tiers


@attrs.frozen
class RateTable:
    """A rate table on ``variable``: ``tiered`` or ``graduated``.

    ``tiers`` are ``(from, rate)`` pairs; tier *k* runs from its ``from`` (included)
    to the next tier's ``from`` (excluded); the last tier is open above. A value
    below the first ``from`` earns 0.

    - ``tiered``: the whole value at the rate of the tier it reaches:
      ``scale × value × rate(tier of value)``.
    - ``graduated``: each slice at its own rate (like tax brackets):
      ``scale × Σ (min(value, to) − from) × rate`` over the tiers reached.

    When the first tier starts at 0 the two agree inside it; graduated is
    continuous at every bound, while tiered jumps there to ``bound × new rate``.

    >>> table = RateTable(((0, "0.01"), (1_000_000, "0.02")), "fees", "graduated")
    >>> table.evaluate(Context("o", {"fees": 1_500_000})).amount
    Decimal('20000')
    """

    tiers: tuple[tuple[Decimal, Decimal], ...] = attrs.field(converter=_tiers)
    variable: str | Var = attrs.field(converter=_var)
    mode: Literal["tiered", "graduated"] = attrs.field(
        validator=one_of("mode", ("tiered", "graduated"))
    )
    scale: Decimal = attrs.field(default=Decimal(1), converter=_rate, kw_only=True)
    label: Text = attrs.field(default=_AMOUNT, kw_only=True)

    def tier_of(self, value: Decimal) -> int | None:
        """Index of the tier ``value`` falls in, or ``None`` below the first."""
        found = None
        for index, (start, _rate) in enumerate(self.tiers):
            if value >= start:
                found = index
        return found

    def evaluate(self, context: Context) -> Trace:
        """The table applied to the variable, each slice shown for graduated tables."""
        var = _var(self.variable)
        value = var.get(context)
        index = self.tier_of(value)
        if index is None:
            note = Text(f"低于首档{self.tiers[0][0]}", f"below the first tier {self.tiers[0][0]}")
            return Trace.fixed("", self.label, _ZERO, notes=[note])
        if self.mode == "tiered":
            expr: Expr = var.num(context) * num(self.tiers[index][1])
        else:
            slices: list[Expr] = []
            for k in range(index + 1):
                start, rate = self.tiers[k]
                top = var.num(context) if k == index else num(self.tiers[k + 1][0])
                slices.append((top - num(start)) * num(rate))
            expr = slices[0]
            for part in slices[1:]:
                expr = expr + part
        if self.scale != 1:
            expr = expr * num(self.scale)
        note = Text(f"第{index + 1}档", f"tier {index + 1}")
        return Trace.of("", self.label, expr, notes=[note])

    def _lean_fn(self) -> LeanFn:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path).

        Exact Decimal arithmetic: a step without an exact 34-digit form raises and
        the caller builds the trace.
        """
        name, tiers, tier_of, scale = _var(self.variable).name, self.tiers, self.tier_of, self.scale
        tiered = self.mode == "tiered"
        subtract, multiply, add = EXACT_CONTEXT.subtract, EXACT_CONTEXT.multiply, EXACT_CONTEXT.add

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            value = values[name]
            index = tier_of(value)
            if index is None:
                return _ZERO
            if tiered:
                amount = multiply(value, tiers[index][1])
            else:
                amount = _ZERO
                for k in range(index + 1):
                    start, rate = tiers[k]
                    top = value if k == index else tiers[k + 1][0]
                    amount = add(amount, multiply(subtract(top, start), rate))
            return amount if scale == 1 else multiply(amount, scale)

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The table applied per row; graduated slices are clipped to their tier."""
        what = "RateTable"
        value = env.value(_var(self.variable).name)
        starts = [_const(start, what) for start, _rate in self.tiers]
        if self.mode == "tiered":
            reached = sum(
                (fx.compare(value, ">=", s, what).astype(np.int64) for s in starts),
                np.zeros(np.shape(value.num), dtype=np.int64),
            )
            index = reached - 1
            rates, den = fx.align([_const(r, what) for _start, r in self.tiers], what)
            table = np.array([int(r) for r in rates], dtype=np.int64)
            rate = FixedArray(np.take(table, np.maximum(index, 0)), den, fx.max_abs(table))
            amount = fx.where(index >= 0, fx.multiply(value, rate, what), _zero(), what)
        else:
            amount = _zero()
            for k, (start, rate_k) in enumerate(self.tiers):
                part = fx.maximum([fx.subtract(value, starts[k], what), _zero()], what)
                if k + 1 < len(self.tiers):
                    width = _const(self.tiers[k + 1][0] - start, what)
                    part = fx.minimum([part, width], what)
                amount = fx.add(amount, fx.scale(part, rate_k, what), what)
        if self.scale != 1:
            amount = fx.scale(amount, self.scale, what)
        return amount


@attrs.frozen
class When:
    """``then`` when ``predicate`` holds, otherwise ``otherwise`` (default 0)."""

    predicate: Predicate
    then: Formula
    otherwise: Formula | None = None

    def evaluate(self, context: Context) -> Trace:
        """The chosen branch, its trace noting why."""
        ok, why = self.predicate.test(context)
        if ok:
            return _with_note(self.then.evaluate(context), why)
        if self.otherwise is None:
            return Trace.fixed("", _AMOUNT, _ZERO, notes=[why])
        return _with_note(self.otherwise.evaluate(context), why)

    def _lean_fn(self) -> LeanFn | None:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        test, then = holds_fn(self.predicate), lean_fn(self.then)
        otherwise = _ZERO_FN if self.otherwise is None else lean_fn(self.otherwise)
        if test is None or then is None or otherwise is None:
            return None
        return lambda values, ranks: (
            then(values, ranks) if test(values, ranks) else otherwise(values, ranks)
        )

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """``then`` on the rows where the predicate holds, ``otherwise`` on the rest.

        Each branch is evaluated with only its own rows active (and not at all when
        no row takes it), so its checks apply to exactly the rows the exact path
        would evaluate it for.
        """
        ok = predicate_array(self.predicate, env) & env.rows()
        pieces = [_on_rows(self.then, env, ok)] if ok.any() else []
        rest = env.rows() & ~ok
        if self.otherwise is not None and rest.any():
            pieces.append(_on_rows(self.otherwise, env, rest))
        return _assemble(pieces, env.size, "When")


_SUBSET_SHARE: Final = 3
"""A branch taken by at most 1/3 of the rows is evaluated on a subset of them."""


@attrs.frozen(eq=False)
class _Piece:
    """A branch's values on the rows that take it: ``rows`` (``mask`` as indices)."""

    mask: NDArray[np.bool_]
    rows: NDArray[np.intp] | None
    value: FixedArray


def _on_rows(formula: Formula, env: ArrayContext, mask: NDArray[np.bool_]) -> _Piece:
    """``formula`` on the rows of ``mask`` (active rows only): a subset when they are few.

    A branch a few rows take (the bottom 100, each region's lowest two) costs
    those rows only; a branch most rows take is evaluated over every row with
    only its own rows active.
    """
    taken = int(np.count_nonzero(mask))
    if taken * _SUBSET_SHARE <= env.size:
        rows = np.flatnonzero(mask)
        return _Piece(mask, rows, formula_array(formula, env.take(rows)))
    return _Piece(mask, None, formula_array(formula, env.restrict(mask)))


def _assemble(pieces: list[_Piece], size: int, what: str) -> FixedArray:
    """One array from branches on disjoint rows; 0 on rows no branch took."""
    if not pieces:
        return _zero()
    aligned, den, bound = fx.aligned([piece.value for piece in pieces], what)
    out: NDArray[np.int64] | None = None
    for piece, values in zip(pieces, aligned, strict=True):  # a branch over all rows first
        if piece.rows is None and values.ndim > 0:
            # a writeable result is the branch's own (ArrayFormula): masked in place
            masked = np.multiply(values, piece.mask, out=values if values.flags.writeable else None)
            out = masked if out is None else np.add(out, masked, out=out)
    if out is None:
        out = np.zeros(size, dtype=np.int64)
    for piece, values in zip(pieces, aligned, strict=True):
        if piece.rows is not None:
            out[piece.rows] = values
        elif values.ndim == 0:
            out[piece.mask] = values
    return FixedArray(out, den, bound)


def _cases(items: Iterable[tuple[Predicate, Formula]]) -> tuple[tuple[Predicate, Formula], ...]:
    cases = tuple(items)
    if not cases:
        raise InvalidValueError("cases", "must hold at least one case", cases)
    return cases


@attrs.frozen
class Choose:
    """The first case whose predicate holds; else ``otherwise`` (``None``: nothing due).

    Scheme A phase 3, with both readings of the brief's ambiguity: outside the bottom
    200 an outlet below 98 pays the per-point part alone
    (``otherwise=Shortfall(AtLeast(98), rate=200)``) or nothing (``otherwise=None``).
    """

    cases: tuple[tuple[Predicate, Formula], ...] = attrs.field(converter=_cases)
    otherwise: Formula | None = None

    def evaluate(self, context: Context) -> Trace:
        """The first matching case's trace, noting which case matched."""
        reasons: list[Text] = []
        for predicate, formula in self.cases:
            ok, why = predicate.test(context)
            if ok:
                return _with_note(formula.evaluate(context), why)
            reasons.append(why)
        if self.otherwise is None:
            return Trace.fixed("", _AMOUNT, _ZERO, notes=tuple(reasons))
        trace = self.otherwise.evaluate(context)
        return trace.with_notes((*reasons, *trace.notes))

    def _lean_fn(self) -> LeanFn | None:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        cases: list[tuple[HoldsFn, LeanFn]] = []
        for predicate, formula in self.cases:
            test, then = holds_fn(predicate), lean_fn(formula)
            if test is None or then is None:
                return None
            cases.append((test, then))
        otherwise = _ZERO_FN if self.otherwise is None else lean_fn(self.otherwise)
        if otherwise is None:
            return None
        windows = [_rank_case(predicate) for predicate, _formula in self.cases]
        if all(window is not None for window in windows):
            return _windows_lean(windows, cases, otherwise)  # type: ignore[arg-type]

        def lean(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
            for test, then in cases:
                if test(values, ranks):
                    return then(values, ranks)
            return otherwise(values, ranks)

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """Per row, the first case whose predicate holds; else ``otherwise``.

        Case *k*'s predicate is tested on the rows no earlier case took, and its
        formula on the rows it takes, as on the exact path.
        """
        remaining = env.rows().copy()
        pieces: list[_Piece] = []
        for predicate, formula in self.cases:
            if not remaining.any():
                break
            ok = predicate_array(predicate, env.restrict(remaining)) & remaining
            if ok.any():
                pieces.append(_on_rows(formula, env, ok))
            remaining &= ~ok
        if self.otherwise is not None and remaining.any():
            pieces.append(_on_rows(self.otherwise, env, remaining))
        return _assemble(pieces, env.size, "Choose")


@attrs.frozen
class Clamp:
    """``formula`` held within ``[minimum, maximum]`` (a cap 封顶 and/or a floor 保底)."""

    formula: Formula
    minimum: Decimal | None = attrs.field(default=None, converter=_optional_amount, kw_only=True)
    maximum: Decimal | None = attrs.field(default=None, converter=_optional_amount, kw_only=True)

    @maximum.validator
    def _check(self, _attribute: object, maximum: Decimal | None) -> None:
        if self.minimum is None and maximum is None:
            raise InvalidValueError("maximum", "or minimum must be given", None)
        if maximum is not None and self.minimum is not None and maximum < self.minimum:
            raise InvalidValueError("maximum", f"must not be below minimum {self.minimum}", maximum)

    def evaluate(self, context: Context) -> Trace:
        """``max(minimum, min(formula, maximum))``, shown as such."""
        inner = self.formula.evaluate(context)
        expr: Expr = _as_expr(inner)
        notes = list(inner.notes)
        if self.maximum is not None:
            expr = Call("min", (expr, Num(self.maximum, Text("封顶", "cap"))))
            if inner.value > self.maximum:
                notes.append(Text(f"封顶{self.maximum}", f"capped at {self.maximum}"))
        if self.minimum is not None:
            expr = Call("max", (Num(self.minimum, Text("保底", "floor")), expr))
            if inner.value < self.minimum:
                notes.append(Text(f"保底{self.minimum}", f"floored at {self.minimum}"))
        return Trace.of("", inner.label, expr, notes=notes, inputs=inner.inputs, parts=inner.parts)

    def _lean_fn(self) -> LeanFn | None:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        inner = lean_fn(self.formula)
        if inner is None:
            return None
        low, high = self.minimum, self.maximum

        def lean(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
            value = inner(values, ranks)
            if high is not None and value > high:
                value = high
            if low is not None and value < low:
                value = low
            return value

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """``max(minimum, min(formula, maximum))`` per row."""
        what = "Clamp"
        value = formula_array(self.formula, env)
        if self.maximum is not None:
            value = fx.minimum([value, _const(self.maximum, what)], what)
        if self.minimum is not None:
            value = fx.maximum([_const(self.minimum, what), value], what)
        return value


@attrs.frozen
class Multiply:
    """``formula × factor`` when ``when`` holds (double penalty for a repeat offence)."""

    formula: Formula
    factor: Decimal = attrs.field(converter=_rate)
    when: Predicate | None = None
    reason: Text = _DOUBLED

    def evaluate(self, context: Context) -> Trace:
        """The inner amount, multiplied when the condition holds."""
        inner = self.formula.evaluate(context)
        if self.when is not None:
            ok, why = self.when.test(context)
            if not ok:
                return _with_note(inner, why)
            notes = [*inner.notes, why, self.reason]
        else:
            notes = [*inner.notes, self.reason]
        return Trace.of(
            "",
            inner.label,
            _as_expr(inner) * num(self.factor),
            notes=notes,
            inputs=inner.inputs,
            parts=inner.parts,
        )

    def _lean_fn(self) -> LeanFn | None:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        inner = lean_fn(self.formula)
        test = None if self.when is None else holds_fn(self.when)
        if inner is None or (self.when is not None and test is None):
            return None
        factor, multiply = self.factor, EXACT_CONTEXT.multiply

        def lean(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
            amount = inner(values, ranks)
            if test is not None and not test(values, ranks):
                return amount
            return multiply(amount, factor)

        return lean

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The inner amounts, multiplied on the rows where the condition holds."""
        what = "Multiply"
        inner = formula_array(self.formula, env)
        if self.when is None:
            return fx.scale(inner, self.factor, what)
        ok = predicate_array(self.when, env)
        product = fx.scale(fx.where(ok, inner, _zero(), what), self.factor, what)
        return fx.where(ok, product, inner, what)


def _formulas(items: Iterable[Formula]) -> tuple[Formula, ...]:
    parts = tuple(items)
    if not parts:
        raise InvalidValueError("parts", "must hold at least one formula", parts)
    return parts


@attrs.frozen
class Sum:
    """The sum of ``parts``. With ``rounding``, each part is rounded first.

    Without it the parts stay exact (even ``700 ÷ 3``) and only the enclosing
    :class:`Rule` rounds the total. With it, each part is rounded by ``rounding`` and
    the rule then rounds the sum by its own policy: give both the same place (a
    coarser rule place would round a second time).
    """

    parts: tuple[Formula, ...] = attrs.field(converter=_formulas)
    label: Text = _AMOUNT
    rounding: RoundingPolicy | None = None

    def evaluate(self, context: Context) -> Trace:
        """Each part's trace under this one, and their sum."""
        rounding = self.rounding
        traces = tuple([p.evaluate(context).with_rounding(rounding) for p in self.parts])
        terms = [fast_num(t.amount, t.label) if rounding else _exact_term(t) for t in traces]
        expr: Expr = terms[0]
        for term in terms[1:]:
            expr = expr + term
        return Trace.of("", self.label, expr, parts=traces)

    def _lean_fn(self) -> LeanFn | None:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path)."""
        parts = [lean_fn(part) for part in self.parts]
        if any(part is None for part in parts):
            return None
        leans = [part for part in parts if part is not None]
        rounding, add = self.rounding, EXACT_CONTEXT.add

        def lean(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
            total = _ZERO
            for part in leans:
                value = part(values, ranks)
                if rounding is not None:
                    value = _round(value, rounding)
                total = add(total, value)
            return total

        def lean_exact(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
            total = _ZERO
            for part in leans:
                total = add(total, part(values, ranks))
            return total

        return lean if rounding is not None else lean_exact

    def evaluate_array(self, env: ArrayContext) -> FixedArray:
        """The sum of the parts per row (exact); each part rounded first if ``rounding``."""
        what = "Sum"
        total: FixedArray | None = None
        for part in self.parts:
            value = formula_array(part, env)
            if self.rounding is not None:
                counts = fx.round_counts(value, self.rounding, what)
                value = fx.from_place_counts(counts, self.rounding, what)
            # a part's writeable result is new (ArrayFormula), so the total may take it
            total = value if total is None else fx.add(total, value, what, reuse=total)
        return _zero() if total is None else total


def _exact_term(trace: Trace) -> Expr:
    """A part's exact value as a named term; its expression when it has no finite decimal."""
    exact = exact_decimal(trace.value)
    if exact is not None:
        return fast_num(exact, trace.label)
    return _as_expr(trace)


def _as_expr(trace: Trace) -> Expr:
    return trace.expr if trace.expr is not None else Num(trace.amount, trace.label)


def _with_note(trace: Trace, note: Text) -> Trace:
    return trace.with_notes((note, *trace.notes))


def _rank_case(predicate: object) -> tuple[str, int, int, int] | None:
    """``(ranking, RankRow index, first, last)`` of an InRanks over a fixed rank window."""
    if type(predicate) is not InRanks:
        return None
    window = _rank_window(predicate.selection)
    if window is None:
        return None
    top, first, last = window
    return predicate.ranking, 3 if top else 4, first, last


def _windows_lean(
    windows: list[tuple[str, int, int, int]],
    cases: list[tuple[HoldsFn, LeanFn]],
    otherwise: LeanFn,
) -> LeanFn:
    """A :class:`Choose` over rank windows: a RankRow's rank is compared in the loop.

    The same tests as the cases' own (:meth:`InRanks._holds_fn`), without a call per
    case for the rows ``evaluate`` gives; any other rank entry goes through the test.
    """
    steps = [
        (name, index, first, last, test, then)
        for (name, index, first, last), (test, then) in zip(windows, cases, strict=True)
    ]

    def lean(values: Mapping[str, Decimal], ranks: Mapping[str, Any]) -> Decimal:
        for name, index, first, last, test, then in steps:
            row = ranks[name]
            if type(row) is tuple:
                if first <= row[index] <= last:
                    return then(values, ranks)
            elif test(values, ranks):
                return then(values, ranks)
        return otherwise(values, ranks)

    return lean


def lean_fn(formula: object) -> LeanFn | None:
    """The lean path of a formula tree: its exact value as a function, or ``None``.

    See :func:`lean_capable` for the formulas it covers.
    """
    from bankkpi._expressions import Expression  # noqa: PLC0415 - it imports this module

    if type(formula) in _LEAN_FORMULAS or type(formula) is Expression:
        build: Callable[[], LeanFn | None] = formula._lean_fn  # type: ignore[attr-defined]  # noqa: SLF001
        return build()
    return None


def holds_fn(predicate: object) -> HoldsFn | None:
    """The lean path of a predicate tree: whether it holds, as a function, or ``None``."""
    if type(predicate) in _LEAN_PREDICATES:
        build: Callable[[], HoldsFn | None] = predicate._holds_fn  # type: ignore[attr-defined]  # noqa: SLF001
        return build()
    return None


def _holds_fns(predicates: Iterable[Predicate]) -> list[HoldsFn] | None:
    tests = [holds_fn(p) for p in predicates]
    if any(test is None for test in tests):
        return None
    return [test for test in tests if test is not None]


_LEAN_FORMULAS: Final = frozenset(
    {
        Fixed,
        Shortfall,
        PerCount,
        Escalating,
        PerPeriodEarly,
        Discretionary,
        BandAmount,
        RateTable,
        Sum,
        Choose,
        When,
        Clamp,
        Multiply,
    }
)
_LEAN_PREDICATES: Final = frozenset({Met, InRanks, Compare, InBand, AllOf, AnyOf, Not})


def _zero_fn(_values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
    return _ZERO


_ZERO_FN: Final[LeanFn] = _zero_fn


def _round(value: Decimal, rounding: RoundingPolicy) -> Decimal:
    """``round_fraction(Fraction(value), rounding)`` of an exact Decimal.

    For a value > 0 the decimal module's rounding is the same single rounding to
    the same place (``RoundingPolicy.apply``); zero and negative values take the
    rational route, which never gives −0.
    """
    if value > 0:
        return rounding.apply(value)
    return round_ratio(*value.as_integer_ratio(), rounding)


def lean_capable(node: object) -> bool:
    """Whether a formula or predicate tree has a lean path: its value without a trace.

    The lean path covers every formula — :class:`Fixed`, :class:`Shortfall`,
    :class:`PerCount`, :class:`Escalating`, :class:`PerPeriodEarly`,
    :class:`Discretionary`, :class:`BandAmount`, :class:`RateTable`,
    :class:`~bankkpi.Expression`, :class:`Sum`, :class:`Choose`, :class:`When`,
    :class:`Clamp` and :class:`Multiply` — over :class:`Met`, :class:`InRanks`, :class:`Compare`,
    :class:`InBand`, :class:`AllOf`, :class:`AnyOf` and :class:`Not` (these exact
    classes, not subclasses). It performs the same lookups and tests as
    ``evaluate``/``test`` in the same order, computing in exact Decimal arithmetic.
    """
    return lean_fn(node) is not None or holds_fn(node) is not None


class _LeanMemo:
    """A rule's lean path, built once (a closure).

    A cache: it pickles as ``None``, and the rule builds it again where it is
    unpickled (a closure does not pickle).
    """

    __slots__ = ("fn",)

    def __init__(self, fn: LeanFn | None) -> None:
        self.fn = fn

    def __reduce__(self) -> tuple[Callable[[], None], tuple[()]]:
        return _no_memo, ()


def _no_memo() -> None:
    """What a :class:`_LeanMemo` unpickles as: nothing."""


@attrs.frozen
class Rule:
    """A named formula with its kind and the rounding applied once to its result.

    The rule's trace line is labelled 考核/penalty or 奖励/reward, carries the
    rule's id, shows the formula and names the rule in a note.
    """

    id: str = attrs.field(validator=non_empty("id"))
    name: Text
    kind: RuleKind = attrs.field(validator=one_of("kind", ("penalty", "reward")))
    formula: Formula
    rounding: RoundingPolicy
    _lean_memo: _LeanMemo | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def lean_amount(self, context: Context) -> Decimal | None:
        """:meth:`lean_amount_of` the context's values and ranks (see there)."""
        return self.lean_amount_of(context.values, context.ranks)

    def lean_amount_of(
        self, values: Mapping[str, Decimal], ranks: Mapping[str, Any]
    ) -> Decimal | None:
        """The rounded amount without building the trace, or ``None``.

        ``values`` and ``ranks`` are a context's (a rank may also be given as a
        :data:`~bankkpi._ranking.RankRow`, the fields of its entry). When this gives
        an amount, :meth:`evaluate` on that context gives a trace with that amount
        and raises nothing. ``None`` means the lean path
        cannot vouch for it (a formula without a lean path, see
        :func:`lean_capable`; a value with no exact 34-digit decimal form; a
        negative amount; any error): call :meth:`evaluate`, which gives the trace or
        the error.
        """
        memo = self._lean_memo
        if memo is None:  # built once: a rule never changes
            memo = _LeanMemo(lean_fn(self.formula))
            object.__setattr__(self, "_lean_memo", memo)
        lean = memo.fn
        if lean is None:
            return None
        try:
            value = lean(values, ranks)
            if value < 0:
                return None
            return _round(value, self.rounding)
        except (BankKPIError, ArithmeticError, LookupError):
            return None  # evaluate gives the trace or the error

    def evaluate(self, context: Context) -> Trace:
        """The rounded amount with the whole trace."""
        try:
            inner = self.formula.evaluate(context)
        except BankKPIError as exc:
            exc.add_note(f"while evaluating rule {self.id} for {context.subject}")
            raise
        if inner.value < 0:
            raise InvalidValueError(
                self.id,
                f"must give a non-negative {self.kind}",
                str(inner.value),
                subject=context.subject,
            )
        return inner.relabel(
            self.id, _KIND_LABEL[self.kind], self.rounding, (self.name, *inner.notes)
        )

    def evaluate_array(self, env: ArrayContext) -> NDArray[np.int64]:
        """The rounded amounts of every row, as int64 counts of ``rounding.place``.

        Row *i* times the place equals ``self.evaluate(context_i).amount``; rows
        that ``env`` marks inactive are 0.

        >>> from bankkpi import AtLeast, RoundingPolicy
        >>> rule = Rule("A.P2", Text("二阶段考核", "phase 2 penalty"), "penalty",
        ...             Shortfall(AtLeast(95), "score", rate=200, base=1000),
        ...             RoundingPolicy("half_up", "yuan"))
        >>> env = ArrayContext(3, {"score": Counts([9150, 9500, 8937], 2)})
        >>> rule.evaluate_array(env).tolist(), rule.evaluate_fen(env).tolist()
        ([1700, 0, 2126], [170000, 0, 212600])

        Raises:
            InvalidValueError: naming the active rows where the formula gives a
                negative amount, as the exact path refuses each of them.
            BankKPIError: any error of the formula, with a note naming the rule.
        """
        what = f"rule {self.id}"
        try:
            inner = formula_array(self.formula, env)
        except BankKPIError as exc:
            exc.add_note(f"while evaluating rule {self.id} on the array path")
            raise
        _rows_error(
            env,
            inner.num < 0,
            inner,
            lambda rows, first, subject: InvalidValueError(
                self.id,
                f"must give a non-negative {self.kind} ({rows})",
                str(first),
                subject=subject,
            ),
        )
        counts = fx.round_counts(inner, self.rounding, what, reuse=inner)  # ours to keep
        if counts.shape == (env.size,):
            result = counts
        else:
            result = np.array(np.broadcast_to(counts, (env.size,)), dtype=np.int64)
        if env.active is not None:
            result[~env.active] = 0
        return result

    def evaluate_fen(self, env: ArrayContext) -> NDArray[np.int64]:
        """:meth:`evaluate_array` expressed in fen (0.01 yuan), int64.

        Raises:
            InvalidValueError: when the rule rounds finer than a fen and an amount is
                not a whole number of fen.
        """
        return fx.to_fen(
            self.evaluate_array(env), self.rounding.place, f"rule {self.id}", in_place=True
        )
