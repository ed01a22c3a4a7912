"""The vector path: a whole :class:`~bankkpi.Scheme` over numpy columns, for what-if work.

:func:`evaluate_arrays` computes what :func:`bankkpi.evaluate` computes — every rule's
amount per subject, each subject's penalty, reward and net, totals per group — over
columns of a population at once, with no Python loop over subjects, and agrees with
the exact path **to the fen**. Amounts are int64 counts of fen (0.01 yuan); every
intermediate value is an exact int64 fixed-point array (:class:`FixedArray`), and an
operation that could leave int64 raises :class:`~bankkpi.exceptions.OverflowRiskError`
before it runs. No float is used.

>>> from pathlib import Path
>>> from bankkpi import load_scheme
>>> scheme = load_scheme(Path("examples/scheme_a.toml").read_text(encoding="utf-8"),
...                      format="toml")
>>> out = evaluate_arrays(
...     scheme,
...     {"score": np.array([9750, 9900, 9615, 9820]), "complaints": np.array([0, 1, 0, 0])},
...     {"region": np.array(["东", "东", "西", "西"]), "head": np.array(["张", "张", "李", "李"])},
... )
>>> out.amounts["A.no_complaint"].tolist(), out.net.tolist()
([50000, 0, 50000, 50000], [50000, 50000, 50000, 100000])

The vector path is for clean data. A row the exact path would refuse (a missing
value, a score out of scale, an offence number of 0 where a rule needs one, a
discretionary amount outside its range, a negative penalty) is not skipped: the
whole call raises a :class:`~bankkpi.exceptions.ValidationErrorGroup` whose errors
name the offending rows. Batch runs over raw exports, where bad rows must be
reported and the others still computed, use :func:`bankkpi.evaluate`.
"""

from __future__ import annotations

import contextlib
import decimal
import itertools
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor, wait
from decimal import Decimal
from fractions import Fraction
from types import NoneType
from typing import Any, Final, TypeAlias, TypeVar, cast

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bankkpi import _fixedpoint as fx
from bankkpi._fixedpoint import FixedArray, round_counts, to_fen
from bankkpi._formulas import (
    ArrayContext,
    ArrayFormula,
    ArrayPredicate,
    Counts,
    InRanks,
    OwnedCounts,
    Ranks,
    Rule,
    RuleKind,
    describe_rows,
)
from bankkpi._indicators import Indicator
from bankkpi._money import (
    CONTEXT,
    FloatPolicy,
    check_float_policy,
    decimal_from_float,
    fen_to_yuan,
    to_decimal,
)
from bankkpi._plan import PLAN_ROWS, Scratch, compile_rule
from bankkpi._ranking import Exemption, RankArrays, RankSource, Selection, known_range
from bankkpi._schemes import Input, Scheme
from bankkpi._workspace import Workspace, lend
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    FloatMoneyError,
    InvalidValueError,
    MissingDataError,
    OutOfRangeError,
    OverflowRiskError,
    ValidationErrorGroup,
)

__all__ = [
    "ArrayContext",
    "ArrayFormula",
    "ArrayPredicate",
    "ArrayResults",
    "Counts",
    "FixedArray",
    "FloatPolicy",
    "GroupTotals",
    "ScenarioResult",
    "ScenarioTable",
    "Workspace",
    "array_context",
    "evaluate_arrays",
    "grid",
    "monte_carlo",
    "override",
    "round_counts",
    "seek_parameter",
    "to_fen",
    "what_if",
]


# ----------------------------------------------------------------------- results


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    """``array``, made read-only (results are values: copy one to change it)."""
    array.flags.writeable = False
    return array


def _each_read_only(arrays: Mapping[str, NDArray[np.int64]]) -> Mapping[str, NDArray[np.int64]]:
    """``arrays``, each made read-only."""
    for array in arrays.values():
        _read_only(array)
    return arrays


@attrs.frozen(eq=False)
class GroupTotals:
    """Penalties and rewards summed per group key, in fen; keys sorted.

    >>> totals = GroupTotals(np.array(["东", "西"]), np.array([170000, 0]),
    ...                      np.array([50000, 100000]))
    >>> totals.net.tolist(), totals.as_dict()["东"]
    ([-120000, 100000], (Decimal('1700.00'), Decimal('500.00')))
    """

    keys: NDArray[Any] = attrs.field(converter=_read_only)
    penalty: NDArray[np.int64] = attrs.field(converter=_read_only)
    reward: NDArray[np.int64] = attrs.field(converter=_read_only)

    def __reduce__(self) -> tuple[type[GroupTotals], tuple[Any, ...]]:
        """Pickled and copied through the constructor: a copy's arrays are read-only too.

        (numpy gives an unpickled or deep-copied array back writeable.)
        """
        return type(self), attrs.astuple(self, recurse=False)

    @property
    def net(self) -> NDArray[np.int64]:
        """Rewards minus penalties, per group."""
        return _difference(self.reward, self.penalty)

    def amount(self, kind: RuleKind) -> NDArray[np.int64]:
        """The ``penalty`` or ``reward`` column."""
        return self.penalty if kind == "penalty" else self.reward

    def as_dict(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{key: (penalty, reward)}`` in Decimal yuan, keys as strings in sorted order.

        The form of :attr:`bankkpi.Results.group_totals`' entries (a Python loop over
        groups, not subjects).
        """
        rows = {
            str(key): (fen_to_yuan(int(p)), fen_to_yuan(int(r)))
            for key, p, r in zip(self.keys.tolist(), self.penalty, self.reward, strict=True)
        }
        return dict(sorted(rows.items()))


@attrs.frozen(eq=False)
class ArrayResults:
    """What :func:`evaluate_arrays` computed; every amount in fen (int64), row-aligned.

    The arrays are read-only: a result is a value (copy one to change it).

    ``amounts`` maps each rule id (in the scheme's order) to its amounts;
    ``penalty`` and ``reward`` are each row's sums and :attr:`net` their difference;
    ``group_totals`` holds a :class:`GroupTotals` per ``scheme.group_by`` attribute
    and ``rollups`` one per roll-up, named as in :class:`bankkpi.Results`
    (``penalty→head``: take its ``penalty`` column). ``ranks`` are the rankings
    used, for seeing who was selected. Team splits are not computed here (see
    :attr:`bankkpi.Results.splits` on the exact path); they change no amount or
    total above.
    """

    scheme_id: str
    scheme_version: str
    size: int
    subjects: NDArray[Any] | None = attrs.field(converter=attrs.converters.optional(_read_only))
    kinds: Mapping[str, RuleKind]
    amounts: Mapping[str, NDArray[np.int64]] = attrs.field(converter=_each_read_only)
    penalty: NDArray[np.int64] = attrs.field(converter=_read_only)
    reward: NDArray[np.int64] = attrs.field(converter=_read_only)
    group_totals: Mapping[str, GroupTotals]
    rollups: Mapping[str, GroupTotals]
    ranks: Mapping[str, RankArrays]

    def __reduce__(self) -> tuple[type[ArrayResults], tuple[Any, ...]]:
        """Pickled and copied through the constructor: a copy's arrays are read-only too."""
        return type(self), attrs.astuple(self, recurse=False)

    @property
    def net(self) -> NDArray[np.int64]:
        """Rewards minus penalties, per row."""
        return _difference(self.reward, self.penalty)

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule ids, in the scheme's order."""
        return tuple(self.amounts)

    def total(self, kind: RuleKind) -> int:
        """The population's total penalty or reward, in fen."""
        column = self.penalty if kind == "penalty" else self.reward
        fx.check_bound(fx.max_abs(column) * max(self.size, 1), f"total {kind}")
        return int(column.sum())


def _total(results: ArrayResults, kind: RuleKind, largest: int) -> int:
    """:meth:`ArrayResults.total` of results as an evaluation just made them.

    Given the largest magnitude in the kind's column, which the evaluation found
    (:meth:`_Population.evaluate_knowing`), and from a group totals' column where
    there is one (every row is in one group of each attribute): a few thousand
    numbers instead of two passes over every row. :mod:`bankkpi._whatif` totals
    each scenario so.
    """
    fx.check_bound(largest * max(results.size, 1), f"total {kind}")  # no partial sum wraps
    for totals in results.group_totals.values():
        return int((totals.penalty if kind == "penalty" else totals.reward).sum())
    return int((results.penalty if kind == "penalty" else results.reward).sum())


def _difference(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    fx.check_bound(fx.max_abs(a) + fx.max_abs(b), "net amount")
    return np.asarray(a - b, dtype=np.int64)


# ----------------------------------------------------------------------- inputs


@attrs.frozen
class _Problems:
    """Row problems of one column, gathered by kind before one error per kind is built."""

    rows: dict[str, list[int]] = attrs.field(factory=dict)
    first: dict[str, object] = attrs.field(factory=dict)
    seen: set[int] = attrs.field(factory=set)

    def add(self, kind: str, row: int, value: object) -> None:
        self.rows.setdefault(kind, []).append(row)
        self.first.setdefault(kind, value)
        self.seen.add(row)


def _length(name: str, array: NDArray[Any], size: int | None) -> list[BankKPIError]:
    if array.ndim != 1:
        return [InvalidValueError(name, "must be one-dimensional", array.shape)]
    if size is not None and array.shape[0] != size:
        return [InvalidValueError(name, f"must have one entry per row ({size})", array.shape[0])]
    return []


def _size(
    columns: Mapping[str, ArrayLike], attributes: Mapping[str, ArrayLike], subjects: object
) -> int:
    arrays = [*columns.values(), *attributes.values()]
    if subjects is not None:
        arrays.append(subjects)  # type: ignore[arg-type]
    if not arrays:
        raise InvalidValueError("columns", "must hold at least one column", {})
    first = arrays[0]
    if isinstance(first, list | tuple):  # its length, whatever its items (checked later)
        return len(first)
    try:
        return int(np.shape(first)[0]) if np.ndim(first) else 0
    except ValueError:  # a ragged nesting numpy cannot shape
        raise InvalidValueError(
            "columns", "must be one-dimensional", type(first).__name__
        ) from None


def _blank(text: NDArray[np.str_]) -> NDArray[np.bool_]:
    """Which strings are empty or whitespace only (``not s.strip()``).

    Without stripping them: no new strings, half the time.
    """
    result: NDArray[np.bool_] = np.char.isspace(text) | (np.char.str_len(text) == 0)
    return result


def _subject_array(
    subjects: ArrayLike | None, size: int
) -> tuple[NDArray[Any] | None, list[BankKPIError]]:
    if subjects is None:
        return None, []
    array = np.asarray(subjects)
    problems = _length("subjects", array, size)
    if problems:
        return None, problems
    text = _object_text(array) if array.dtype.kind == "O" else array.astype(str)
    blank = _blank(text)
    if blank.any():
        first, subject, phrase = describe_rows(np.flatnonzero(blank), None)
        problems.append(
            InvalidValueError("subject", f"must not be blank ({phrase})", "", subject=subject)
        )
    repeated = np.zeros(size, dtype=np.bool_)
    if size > 1 and _may_repeat(text):  # rare: then sort the text itself
        order = np.argsort(text, kind="stable")
        same = text[order][1:] == text[order][:-1]
        repeated[order[1:][same]] = True
    if repeated.any():
        first, subject, phrase = describe_rows(np.flatnonzero(repeated), text)
        problems.append(
            DuplicateError(
                "subject", f"must be unique; repeated ({phrase})", str(text[first]), subject=subject
            )
        )
    text.flags.writeable = False  # our own copy: contexts and results share it
    return text, problems


def _attribute_array(
    name: str,
    raw: ArrayLike | None,
    size: int,
    subjects: NDArray[Any] | None,
    *,
    blanks: bool = True,
) -> tuple[NDArray[Any] | None, list[BankKPIError]]:
    """An attribute's group keys as an int or text array, or what is wrong with them.

    ``blanks``: look for blank keys here, row by row; else the caller looks for
    them among the distinct keys once factorized (:func:`_blank_groups`).
    """
    if raw is None:
        return None, [MissingDataError("array of attribute", name)]
    array = np.asarray(raw)
    problems = _length(f"attributes[{name}]", array, size)
    if problems:
        return None, problems
    kind = array.dtype.kind
    if kind in "iu":
        return array, []
    if kind not in "UO":
        return None, [
            InvalidValueError(
                f"attributes[{name}]", "must hold str or int group keys", str(array.dtype)
            )
        ]
    if kind == "O":
        array = _object_text(array)
    if blanks:
        errors = _blank_rows(name, _blank(array), subjects)
        if errors:
            return None, errors
    return array, []


def _object_text(array: NDArray[np.object_]) -> NDArray[np.str_]:
    """Object keys (a pandas or polars column's) as text, each missing one blank.

    A ``str`` as it is; a missing entry (:func:`_is_missing`: ``None``, a NaN,
    pandas' ``NA``) as ``""``, which the caller refuses as blank, where before it
    became the text ``"nan"`` or ``"<NA>"``, a group like any other; anything
    else as ``str(value)``.
    """
    return np.array(
        [v if type(v) is str else "" if _is_missing(v) else str(v) for v in array.tolist()],
        dtype=str,
    )


def _is_missing(value: object) -> bool:
    """Whether ``value`` marks a missing entry.

    ``None``; a value unequal to itself (a float NaN, numpy's ``NaT``); or one
    whose comparison has no truth value (pandas' ``NA``, whose comparisons give
    ``NA``).
    """
    if value is None:
        return True
    try:
        return bool(value != value)  # noqa: PLR0124 - NaN and NaT are unequal to themselves
    except (TypeError, ValueError):
        return True


def _blank_rows(
    name: str, blank: NDArray[np.bool_], subjects: NDArray[Any] | None
) -> list[BankKPIError]:
    """The error for attribute ``name``'s ``blank`` rows, if any."""
    if not blank.any():
        return []
    _first, subject, phrase = describe_rows(np.flatnonzero(blank), subjects)
    return [MissingDataError(f"attribute {name!r} ({phrase})", subject, subject=subject)]


def _blank_groups(name: str, groups: _Groups, subjects: NDArray[Any] | None) -> list[BankKPIError]:
    """:func:`_blank_rows` from the distinct keys: a row is blank when its key is."""
    if groups.keys.dtype.kind != "U":
        return []
    blank = _blank(groups.keys)
    return _blank_rows(name, np.take(blank, groups.index), subjects) if blank.any() else []


def _places(indicator: Indicator | None, item: Input, places: Mapping[str, int]) -> int:
    """The places of an integer column: the indicator's, else ``places[name]``, else 0."""
    if indicator is not None:
        return max(0, -indicator.policy.exponent)
    return places.get(item.name, 0)


def _int_column(
    item: Input,
    array: NDArray[Any],
    indicator: Indicator | None,
    places: int,
    subjects: NDArray[Any] | None,
    *,
    space: Workspace | None = None,
) -> tuple[Counts | None, list[BankKPIError]]:
    try:
        column = _counts_of(array, places, space)  # one copy, range checked
    except OverflowRiskError:
        return None, [OverflowRiskError(f"'{item.name}' holds values beyond int64")]
    counts = column.counts
    if indicator is not None and indicator.policy.exponent > 0:
        step = 10**indicator.policy.exponent
        off = counts % np.int64(step) != 0
        if off.any():
            first, subject, phrase = describe_rows(np.flatnonzero(off), subjects)
            return None, [
                InvalidValueError(
                    item.name,
                    f"must be a multiple of the precision {indicator.precision} ({phrase})",
                    int(counts[first]),
                    subject=subject,
                )
            ]
    return column, []


def _counts_of(array: NDArray[Any], places: int, space: Workspace | None) -> Counts:
    """``Counts(array, places)`` (a copy, range checked): in ``space``'s memory if given.

    Only an array of an int type whose every value fits in int64 is copied into
    the workspace; any other (uint64, not one-dimensional) goes to ``Counts`` itself,
    which copies it or refuses it.
    """
    if space is None or array.ndim != 1 or (array.dtype.kind == "u" and array.dtype.itemsize == 8):
        return Counts(array, places)
    owned = space.empty(array.shape[0], np.int64)
    np.copyto(owned, array, casting="unsafe")  # every value fits
    return Counts(OwnedCounts(owned), places)


def _missing(raw: object, *, nan: bool) -> bool:
    """A missing value: ``None``, blank text, pandas' ``NA``, and a NaN if ``nan``.

    pandas marks a missing cell of a text column with NaN (its ``str`` columns)
    or ``NA`` (its ``string`` columns); ``NA`` is told by its type's name, without
    importing pandas. A NaN is a blank where floats are read (``floats="repr"``)
    or in a column of text or Decimals; among floats refused, it is one of them.
    """
    if raw is None:
        return True
    if isinstance(raw, str):
        return not raw.strip()
    if isinstance(raw, float):
        return nan and math.isnan(raw)
    kind = type(raw)
    return kind.__name__ == "NAType" and kind.__module__.startswith("pandas")


def _text_column(raw: object, values: list[object]) -> bool:
    """Whether a column holds text or Decimals: a text dtype, or a str or Decimal among its values.

    The text dtypes are numpy's and pandas' ``str`` and ``string``.
    """
    dtype = getattr(raw, "dtype", None)
    if dtype is not None and (
        getattr(dtype, "kind", "") in ("U", "S", "T") or str(dtype) in ("str", "string")
    ):
        return True
    return any(isinstance(value, str | Decimal) for value in values)


def _exact_values(
    item: Input,
    array: NDArray[Any],
    floats: FloatPolicy,
    problems: _Problems,
    given: object = None,
) -> list[Decimal | None]:
    """Each row as an exact Decimal, or ``None`` for a blank; problems noted by kind.

    ``given``: the column as the caller gave it (its dtype tells a text column).
    """
    cells = array.tolist()
    nan = floats == "repr" or _text_column(given, cells)
    values: list[Decimal | None] = []
    for row, raw in enumerate(cells):
        if _missing(raw, nan=nan):
            values.append(None)
            continue
        if isinstance(raw, float) and floats == "refuse":
            problems.add("float", row, raw)
            values.append(None)
            continue
        try:
            value = decimal_from_float(raw, field=item.name) if isinstance(raw, float) else raw
            values.append(to_decimal(value, field=item.name))
        except BankKPIError:
            problems.add("invalid", row, raw)
            values.append(None)
    return values


def _decimal_column(
    item: Input,
    values: list[Decimal | None],
    indicator: Indicator | None,
    problems: _Problems,
) -> Counts | None:
    """Blanks filled with the default, an indicator's values quantized and checked."""
    default = item.default
    filled: list[Decimal] = []
    for row, given in enumerate(values):
        value = default if given is None else given
        if value is None:
            if row not in problems.seen:
                problems.add("missing", row, None)
            filled.append(Decimal(0))
            continue
        if indicator is not None:
            try:
                value = indicator.check(value)
            except OutOfRangeError as exc:
                problems.add("scale", row, exc.value)
            except (decimal.InvalidOperation, OverflowRiskError):
                problems.add("digits", row, value)
        filled.append(value)
    return None if problems.rows else _to_counts(filled, indicator, problems)


def _to_counts(
    filled: list[Decimal], indicator: Indicator | None, problems: _Problems
) -> Counts | None:
    """Exact values as counts: at the indicator's precision, else at the places they need."""
    if indicator is not None:
        places = max(0, -indicator.policy.exponent)
    else:
        places = max([0, *(_decimals(v) for v in filled)])
        if places > fx.MAX_PLACES:
            problems.add("places", 0, places)
            return None
    counts = [int(v.scaleb(places, context=CONTEXT)) for v in filled]
    if counts and (max(counts) > fx.INT64_MAX or min(counts) <= fx.INT64_MIN):
        problems.add("overflow", 0, max(counts, key=abs))
        return None
    return Counts(np.array(counts, dtype=np.int64), places)


def _default_column(item: Input, indicator: Indicator | None, size: int) -> Counts:
    assert item.default is not None  # noqa: S101 - checked by the caller
    if indicator is not None:
        value = indicator.quantize(item.default)
        places = max(0, -indicator.policy.exponent)
    else:
        value = item.default
        places = _decimals(value)
    count = int(value.scaleb(places, context=CONTEXT))
    fx.check_bound(abs(count), f"default of {item.name}")
    return Counts(np.full(size, count, dtype=np.int64), places)


def _decimals(value: Decimal) -> int:
    """How many decimal places ``value`` is written with (0 for a whole number)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # noqa: S101 - values are finite
    return max(0, -exponent)


def _errors_for(
    item: Input,
    indicator: Indicator | None,
    problems: _Problems,
    subjects: NDArray[Any] | None,
) -> list[BankKPIError]:
    errors: list[BankKPIError] = []
    for kind, rows in problems.rows.items():
        first, subject, phrase = describe_rows(np.array(rows, dtype=np.intp), subjects)
        value = problems.first[kind]
        if kind == "missing":
            errors.append(
                MissingDataError(
                    f"value of input {item.name!r} ({phrase})", subject, subject=subject
                )
            )
        elif kind == "float":
            errors.append(
                FloatMoneyError(
                    item.name,
                    "must hold exact numbers or integer counts, not floats; pass "
                    f"floats='repr' to convert each through its shortest repr ({phrase})",
                    value,
                    subject=subject,
                )
            )
        elif kind == "invalid":
            errors.append(
                InvalidValueError(
                    item.name,
                    f"must be an exact number (Decimal, int or decimal str) ({phrase})",
                    value,
                    subject=subject,
                )
            )
        elif kind == "scale" and indicator is not None:
            errors.append(
                OutOfRangeError(
                    indicator.code,
                    f"must be within {_scale_text(indicator)} ({phrase})",
                    value,
                    subject=subject,
                )
            )
        elif kind == "digits":
            errors.append(
                InvalidValueError(
                    item.name,
                    "has more digits than exact arithmetic holds (34 significant digits) "
                    f"({phrase})",
                    value,
                    subject=subject,
                )
            )
        elif kind == "places":
            errors.append(
                InvalidValueError(
                    item.name,
                    f"needs at most {fx.MAX_PLACES} decimal places on the array path; "
                    "use the exact path",
                    value,
                )
            )
        else:
            errors.append(OverflowRiskError(f"'{item.name}' holds values beyond int64: {value}"))
        del first
    return errors


def _scale_text(indicator: Indicator) -> str:
    low, high = indicator.scale_min, indicator.scale_max
    return f"[{'-∞' if low is None else low}, {'+∞' if high is None else high}]"


def _scale_errors(
    indicator: Indicator, counts: Counts, subjects: NDArray[Any] | None
) -> list[BankKPIError]:
    value = counts.fixed()
    if len(counts):  # the extremes first: rows are looked for only when one is out of scale
        extremes = FixedArray(np.array(counts.span, dtype=np.int64), value.den, value.bound)
        what = f"scale of {indicator.code}"
        low_ok = (
            indicator.scale_min is None
            or not fx.compare(extremes, "<", fx.constant(indicator.scale_min, what), what).any()
        )
        high_ok = (
            indicator.scale_max is None
            or not fx.compare(extremes, ">", fx.constant(indicator.scale_max, what), what).any()
        )
        if low_ok and high_ok:
            return []
    bad = np.zeros(len(counts), dtype=np.bool_)
    what = f"scale of {indicator.code}"
    if indicator.scale_min is not None:
        bad |= fx.compare(value, "<", fx.constant(indicator.scale_min, what), what)
    if indicator.scale_max is not None:
        bad |= fx.compare(value, ">", fx.constant(indicator.scale_max, what), what)
    if not bad.any():
        return []
    first, subject, phrase = describe_rows(np.flatnonzero(bad), subjects)
    return [
        OutOfRangeError(
            indicator.code,
            f"must be within {_scale_text(indicator)} ({phrase})",
            counts.decimal(first),
            subject=subject,
        )
    ]


def _input_column(
    scheme: Scheme,
    item: Input,
    raw: ArrayLike | None,
    size: int,
    *,
    places: Mapping[str, int],
    floats: FloatPolicy,
    subjects: NDArray[Any] | None,
    space: Workspace | None = None,
) -> tuple[Counts | None, list[BankKPIError]]:
    indicator = None if item.indicator is None else scheme.indicator(item.indicator)
    int_places = _places(indicator, item, places)
    if raw is None:
        if item.default is None:
            return None, [MissingDataError("column of input", item.name)]
        column = _default_column(item, indicator, size)
        return column, [] if indicator is None else _scale_errors(indicator, column, subjects)
    given = raw if isinstance(raw, np.ndarray) else None
    clean = _fast_counts(raw, indicator, size, floats, subjects)
    if clean is not None:
        return clean, []
    if given is not None and given.dtype.kind in "iu":
        early = _length(f"columns[{item.name}]", given, size)
        if early:
            return None, early
        counts, errors = _int_column(item, given, indicator, int_places, subjects, space=space)
    elif given is not None and given.dtype.kind == "f" and floats == "refuse":
        return None, [
            FloatMoneyError(
                item.name,
                "must hold integer counts at the input's precision or exact numbers "
                "(Decimal or str), not floats; pass floats='repr' to convert each "
                "through its shortest repr",
                str(given.dtype),
            )
        ]
    elif given is not None and given.dtype.kind not in "fUSO":
        return None, [
            InvalidValueError(
                f"columns[{item.name}]",
                "must hold integer counts or exact numbers (Decimal or str)",
                str(given.dtype),
            )
        ]
    else:
        array = np.array(raw, dtype=object)
        early = _length(f"columns[{item.name}]", array, size)
        if early:
            return None, early
        problems = _Problems()
        values = _exact_values(item, array, floats, problems, raw)
        counts = _decimal_column(item, values, indicator, problems)
        return counts, _errors_for(item, indicator, problems, subjects)
    if counts is not None and indicator is not None:
        errors.extend(_scale_errors(indicator, counts, subjects))
    return counts, errors


def _fast_counts(
    raw: ArrayLike | None,
    indicator: Indicator | None,
    size: int,
    floats: FloatPolicy,
    subjects: NDArray[Any] | None,
) -> Counts | None:
    """A clean float or text column as counts of the indicator's precision, at once.

    A float array (``floats="repr"``), a text array, or a list of ``str``. ``None``
    when the column is not one (no indicator, another type, a value to quantize or
    out of scale, a blank…): the row-by-row path then converts it and names every
    problem, as it always has.
    """
    if raw is None or indicator is None:
        return None
    if isinstance(raw, list | tuple):  # each item as it is: numpy would turn 0.1 into '0.1'
        given = np.array(raw, dtype=str) if all(type(v) is str for v in raw) else None
    else:  # an array, or a pandas or polars column
        try:
            given = np.asarray(raw)
        except (TypeError, ValueError):  # the row-by-row path says what is wrong
            return None
        if given.dtype.kind == "O" and all(type(v) is str for v in given.ravel().tolist()):
            given = given.astype(str)
    if given is None or given.shape != (size,) or size == 0:
        return None
    places = -indicator.policy.exponent
    if not 0 <= places <= 15:
        return None
    if given.dtype.kind == "f" and floats == "repr":
        counts = _float_counts(given, places)
    elif given.dtype.kind == "U":
        counts = _text_counts(given, places)
    else:
        return None
    if counts is None:
        return None
    column = Counts(counts, places)
    return None if _scale_errors(indicator, column, subjects) else column


def _float_counts(given: NDArray[np.floating[Any]], places: int) -> NDArray[np.int64] | None:
    """Floats as counts of ``10**-places``, without a loop, or ``None``.

    The same counts as converting each float through its shortest ``repr`` (the
    ``"repr"`` policy) whenever every value's ``repr`` has at most the indicator's
    places: ``c = rint(f × 10^p)`` is kept only if ``c / 10^p`` (one correctly
    rounded division) gives ``f`` back, so the decimal ``c·10^−p`` rounds to ``f``;
    and with ``|c| < 2^52`` no other decimal of ``p`` places does, so it is ``f``'s
    shortest ``repr``. ``None`` for anything else: NaN, infinities, more places,
    magnitudes past that bound.
    """
    if not np.isfinite(given).all():
        return None
    scale = float(10**places)  # exact: a power of ten up to 10^15
    counts: NDArray[np.floating[Any]] = np.rint(given * scale)
    if np.abs(counts).max() >= 2.0**52 or not np.array_equal(counts / scale, given):
        return None
    return counts.astype(np.int64)


def _text_counts(given: NDArray[np.str_], places: int) -> NDArray[np.int64] | None:
    """Plain decimal texts (``91.5``, ``-3``, ``.25``) as counts of ``10**-places``.

    The same counts as ``Decimal(text)`` row by row, for texts of an optional
    leading ``-``, digits and at most one ``.``, with at least one digit, at most
    ``places`` after the point and at most 18 digits once scaled; ``None`` for any
    column with another text (blanks, spaces, ``+``, exponents: the row-by-row
    path reads those). One pass per character position.
    """
    n = int(given.shape[0])
    width = given.dtype.itemsize // 4
    points = np.ascontiguousarray(given).view(np.uint32).reshape(n, width)
    negative = points[:, 0] == 45
    value = np.zeros(n, dtype=np.int64)
    digits = np.zeros(n, dtype=np.int64)
    fraction = np.zeros(n, dtype=np.int64)
    dots = np.zeros(n, dtype=np.int64)
    ended = np.zeros(n, dtype=np.bool_)  # numpy pads shorter texts with NUL at the end
    for column in range(width):
        point = points[:, column]
        digit = (point >= 48) & (point <= 57)
        end = point == 0
        dot = point == 46
        allowed = digit | dot | end | (negative if column == 0 else False)
        if not allowed.all() or (ended & ~end).any():  # another character, or a NUL inside
            return None
        ended |= end
        dots += dot
        digits += digit
        fraction += digit & (dots > 0)
        value *= np.where(digit, 10, 1)
        value += np.where(digit, point.astype(np.int64) - 48, 0)
    if (dots > 1).any() or (digits == 0).any() or (fraction > places).any():
        return None
    if (digits + (places - fraction) > 18).any():  # past int64, scaled
        return None
    value *= np.power(np.int64(10), places - fraction)
    return np.where(negative, -value, value)


def _derived_column(
    scheme: Scheme,
    item: Input,
    variables: Mapping[str, Counts],
    columns: Mapping[str, ArrayLike],
    subjects: NDArray[Any] | None,
) -> tuple[Counts | None, list[BankKPIError]]:
    """A derived input computed from earlier inputs, rounded once by its indicator."""
    assert item.derive is not None  # noqa: S101 - only called for derived inputs
    assert item.indicator is not None  # noqa: S101 - a derived input names one (checked)
    if item.name in columns:
        return None, [
            InvalidValueError(
                f"columns[{item.name}]",
                f"must not be given: the input is derived from {', '.join(item.derive.names)}",
                item.derive.source,
            )
        ]
    missing = [name for name in item.derive.names if name not in variables]
    if missing:
        return None, []  # the missing inputs are reported already
    indicator = scheme.indicator(item.indicator)
    policy = indicator.policy
    try:
        counts = item.derive.evaluate_array(
            {name: variables[name].counts for name in item.derive.names},
            rounding=policy,
            places={name: variables[name].places for name in item.derive.names},
        )
    except BankKPIError as exc:
        return None, [exc]
    column = Counts(counts, max(0, -policy.exponent))
    return column, _scale_errors(indicator, column, subjects)


def array_context(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None = None,
    *,
    subjects: ArrayLike | None = None,
    places: Mapping[str, int] | None = None,
    floats: FloatPolicy = "refuse",
) -> ArrayContext:
    """The :class:`ArrayContext` of a population: inputs as counts, rankings on demand.

    The first half of :func:`evaluate_arrays` (same arguments), for evaluating one
    rule on its own with :meth:`bankkpi.Rule.evaluate_array`.
    """
    env, _groups = _prepare(
        scheme, columns, attributes, subjects=subjects, places=places, floats=floats
    )
    return env


def _variables(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    size: int,
    *,
    places: Mapping[str, int],
    floats: FloatPolicy,
    ids: NDArray[Any] | None,
    problems: list[BankKPIError],
    space: Workspace | None = None,
) -> dict[str, Counts]:
    """Every input's column, read or derived in declaration order; problems collected."""
    variables: dict[str, Counts] = {}
    for item in scheme.inputs:
        if item.derive is not None:
            counts, errors = _derived_column(scheme, item, variables, columns, ids)
        else:
            counts, errors = _input_column(
                scheme,
                item,
                columns.get(item.name),
                size,
                places=places,
                floats=floats,
                subjects=ids,
                space=space,
            )
        problems.extend(errors)
        if counts is not None:
            variables[item.name] = counts
    return variables


def _read_attributes(
    names: Iterable[str],
    attributes: Mapping[str, ArrayLike],
    size: int,
    ids: NDArray[Any] | None,
    used: set[str],
) -> tuple[dict[str, NDArray[Any]], dict[str, list[BankKPIError]]]:
    """The attributes' key arrays, and each one's problems (in ``names``' order).

    The blank keys of an attribute in ``used`` (grouping) are looked for among its
    distinct keys, once factorized (:func:`_factorized`).
    """
    keys: dict[str, NDArray[Any]] = {}
    found: dict[str, list[BankKPIError]] = {}
    for name in names:
        array, found[name] = _attribute_array(
            name, attributes.get(name), size, ids, blanks=name not in used
        )
        if array is not None:
            keys[name] = array
    return keys, found


def _factorized(
    keys: Mapping[str, NDArray[Any]],
    used: set[str],
    factorizing: Mapping[str, Future[_Groups]],
    ids: NDArray[Any] | None,
    found: dict[str, list[BankKPIError]],
    *,
    refused: bool,
    space: Workspace | None = None,
) -> dict[str, _Groups] | None:
    """The grouping attributes factorized, their blank keys' problems put in ``found``.

    Factorized by ``factorizing``'s threads, or else here. ``refused`` (other
    inputs are): nothing factorized (``None``), blank keys looked for row by row.
    """
    if refused:
        for name in used & keys.keys():
            if keys[name].dtype.kind == "U":  # int keys are never blank
                found[name] = _blank_rows(name, _blank(keys[name]), ids)
        return None
    groups = {
        name: factorizing[name].result() if name in factorizing else _Groups.of(keys[name], space)
        for name in sorted(used)
    }
    for name in used & keys.keys():
        found[name] = _blank_groups(name, groups[name], ids)
    return groups


def _table(table: object, what: str) -> Mapping[str, ArrayLike]:
    """``table`` as a mapping of names to columns: a mapping as it is, a data frame by column.

    A pandas or polars ``DataFrame`` (anything with ``columns`` and a column per
    name) gives its columns with text names; anything else is a typed error.
    """
    if isinstance(table, Mapping):
        return table
    column = getattr(table, "__getitem__", None)
    names = getattr(table, "columns", None) if column is not None else None
    if column is not None and names is not None:
        try:
            return {name: column(name) for name in names if isinstance(name, str)}
        except (TypeError, KeyError, IndexError):  # not a frame after all
            pass
    raise InvalidValueError(
        what,
        "must map names to columns (a dict, or a pandas or polars DataFrame; "
        "a lazy frame collected first)",
        type(table).__name__,
    )


@contextlib.contextmanager
def _cancelled_on_error(futures: Mapping[str, Future[Any]]) -> Iterator[None]:
    """On an exception, cancel ``futures``: their work is not wanted.

    Those not begun never will be; those running finish unobserved.
    """
    try:
        yield
    except BaseException:
        for future in futures.values():
            future.cancel()
        raise


def _prepare(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None,
    *,
    subjects: ArrayLike | None,
    places: Mapping[str, int] | None,
    floats: FloatPolicy,
    groups: Mapping[str, _Groups] | None = None,
    pool: ThreadPoolExecutor | None = None,
    space: Workspace | None = None,
) -> tuple[ArrayContext, dict[str, _Groups]]:
    """Read and check the columns for ``scheme``.

    ``groups``: the attributes as an earlier reading of the same attribute arrays
    factorized them (they are not read again). ``pool``: threads to factorize the
    attributes in while the columns are read (a population of more than
    :data:`~bankkpi._plan.PLAN_ROWS` rows). ``space``: memory for the copies of the
    columns and the attributes' codes, and for the rankings' arrays.
    """
    check_float_policy(floats)
    columns = _table(columns, "columns")
    attributes = {} if attributes is None else _table(attributes, "attributes")
    size = _size(columns, attributes, subjects)
    ids, subject_problems = _subject_array(subjects, size)
    used = {s.group_by for s in scheme.rankings if s.group_by is not None}
    used |= {*scheme.group_by, *(r.to for r in scheme.rollups)}
    keys, found = _read_attributes(
        () if groups is not None else scheme.attributes, attributes, size, ids, used
    )
    factorizing: dict[str, Future[_Groups]] = {}
    if groups is None and pool is not None and size > PLAN_ROWS:  # beside the columns
        factorizing = {
            name: pool.submit(_Groups.of, keys[name], space) for name in used & keys.keys()
        }
    problems: list[BankKPIError] = []
    with _cancelled_on_error(factorizing):
        variables = _variables(
            scheme,
            columns,
            size,
            places={} if places is None else places,
            floats=floats,
            ids=ids,
            problems=problems,
            space=space,
        )
    if any(spec.rule.ties == "ordinal" for spec in scheme.rankings) and subjects is None:
        problems.append(
            AmbiguousInputError(
                "subjects",
                "must be given when a ranking breaks ties by subject id (ties='ordinal')",
                None,
            )
        )
    if groups is None:
        refused = bool(subject_problems or problems or any(found.values()))
        with _cancelled_on_error(factorizing):
            groups = _factorized(keys, used, factorizing, ids, found, refused=refused, space=space)
    problems = [*subject_problems, *itertools.chain(*found.values()), *problems]
    if problems or groups is None:
        with _cancelled_on_error(factorizing):
            raise ValidationErrorGroup(f"input arrays refused for scheme {scheme.id}", problems)
    ranks: dict[str, Ranks] = {}
    for spec in scheme.rankings:  # ranked on demand: a selection may need only cut-offs
        ordinal = spec.rule.ties == "ordinal" and ids is not None
        grouped = None if spec.group_by is None else groups[spec.group_by]
        ranks[spec.name] = known_range(
            RankSource(
                spec.rule,
                variables[spec.variable].counts,
                None if grouped is None else grouped.index,
                subject_codes=(
                    _Groups.of(ids).index.astype(np.int64, copy=False)
                    if ordinal and ids is not None
                    else None
                ),
                group_sizes=None if grouped is None else grouped.sizes,
                workspace=space,
            ),
            *variables[spec.variable].span,
        )
    return ArrayContext(size, variables, ranks, ids), dict(groups)


@attrs.frozen(eq=False)
class _Groups:
    """An attribute factorized once: sorted keys, each row's key index, group sizes."""

    keys: NDArray[Any]
    index: NDArray[np.signedinteger[Any]]
    """Each row's key index: int32 when the keys are few enough, else int64; never
    the caller's array (a ranking reads it when its ranks are first asked for)."""
    sizes: NDArray[np.int64]

    @classmethod
    def of(cls, values: NDArray[Any], space: Workspace | None = None) -> _Groups:
        """Factorize: sorted distinct keys and each row's position among them.

        Small non-negative integer keys (region codes) are counted in one pass
        instead of sorted (their codes in ``space``'s memory if given); text keys
        are packed into integers first (:func:`_text_codes`); any other keys go
        through ``numpy.unique``.
        """
        n = int(values.shape[0])
        if values.dtype.kind in "iu" and n:
            counted = _counted(values, space)
            if counted is not None:
                codes, index, sizes = counted
                return cls(codes.astype(values.dtype), index, sizes)
        if values.dtype.kind == "U" and n:
            return cls(*_text_codes(values))
        keys, inverse = np.unique(values, return_inverse=True)
        index = inverse.reshape(-1).astype(np.int64)
        return cls(keys, index, np.bincount(index, minlength=keys.shape[0]).astype(np.int64))

    def sums(
        self,
        column: NDArray[np.int64],
        largest: int,
        what: str,
        found: NDArray[np.int64] | None = None,
    ) -> NDArray[np.int64]:
        """``column`` summed per group, exactly (``numpy.add.at`` on int64); read-only.

        ``largest`` is the largest magnitude in ``column``. ``found``: the same
        sums, added up block by block as the blocks were computed (see
        :class:`_BlockSums`), used once the bound is checked. Else in one thread:
        ``numpy.add.at`` holds Python's lock, and summing two blocks in two threads
        measured no faster.
        """
        fx.check_bound(largest * int(self.sizes.max(initial=0)), what)
        if found is not None:  # a copy: totals by and rolled up to one attribute share it
            return _frozen(found.copy())
        out = np.zeros(self.keys.shape[0], dtype=np.int64)
        if largest:  # a column of zeros (no reward rules) sums to zeros
            np.add.at(out, self.index, column)
        return _frozen(out)

    def totals(
        self,
        penalty: _Column,
        reward: _Column,
        what: str,
        found: tuple[NDArray[np.int64] | None, NDArray[np.int64] | None] = (None, None),
    ) -> GroupTotals:
        """Penalties and rewards per group (``found``: either's sums, where known)."""
        return GroupTotals(
            self.keys, self.sums(*penalty, what, found[0]), self.sums(*reward, what, found[1])
        )


_Factors: TypeAlias = tuple[NDArray[Any], NDArray[np.signedinteger[Any]], NDArray[np.int64]]
"""Sorted distinct keys, each row's position among them, and each key's rows."""


def _counted(values: NDArray[np.integer[Any]], space: Workspace | None = None) -> _Factors | None:
    """Small non-negative integer keys factorized by counting them, in one pass.

    ``None`` when a key is negative, or the greatest is 4 × the rows + 1024 or
    more (counting would cost more than sorting).
    """
    n = int(values.shape[0])
    top = int(values.max())
    if not 0 <= top < 4 * n + 1024:
        return None
    try:  # numpy.bincount checks that no key is negative: no pass of our own
        present = fx.bincount(values, minlength=top + 1)
    except ValueError:  # a negative key
        return None
    codes = np.flatnonzero(present)
    width = np.int32 if top < 2**31 else np.int64
    index: NDArray[np.signedinteger[Any]] = lend(space, n, width)
    if codes.shape[0] == top + 1:  # codes 0 … top all used: each is its index
        np.copyto(index, values, casting="unsafe")  # a copy: the caller's array may change
    else:
        position = np.cumsum(present > 0, dtype=width) - 1
        np.take(position, values, out=index, mode="clip")  # every key is within 0 … top
    return codes, index, present[codes].astype(np.int64)


def _text_codes(
    values: NDArray[np.str_],
    digest: Callable[[NDArray[np.uint32]], NDArray[np.int64]] | None = None,
) -> _Factors:
    """``numpy.unique(values, return_inverse=True, return_counts=True)`` for text.

    Without sorting the text: each string's code points are packed into one
    int64 — exactly, when they fit (:func:`_text_keys`: ``R00042`` in 17 bits),
    else as a hash (``digest``, default :func:`_text_hash`) whose every row is
    then checked against its key's string, falling back to ``numpy.unique`` on
    a collision. Exact keys within a small range are counted (:func:`_counted`)
    and give their strings back without reading the rows. Other keys are sorted
    without row indices, and each row finds its key's place through a hash
    table (:func:`_positions`). Only the few distinct strings are sorted as text.
    """
    n = int(values.shape[0])
    if n == 0:
        return values.copy(), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    packed, frame = _text_keys(values, digest)
    if frame is not None:
        low = int(packed.min())
        packed -= low
        counted = _counted(packed)
        if counted is not None:
            codes, rows, counts = counted
            return _text_ordered(_unpacked(codes + low, frame, values.dtype), rows, counts)
        packed += low
    ordered = np.sort(packed)
    first = np.empty(n, dtype=np.bool_)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    found = ordered[first]
    sizes = np.diff(np.append(np.flatnonzero(first), n)).astype(np.int64)
    index: NDArray[np.signedinteger[Any]] = _positions(found, packed)
    if frame is not None:
        distinct = _unpacked(found, frame, values.dtype)
    else:
        some = np.empty(found.shape[0], dtype=np.intp)
        some[index] = np.arange(n)  # a row of each key (the last one written)
        distinct = values[some]
        if not _same_text(distinct, index, values):  # a hash collision
            keys, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
            return keys, inverse.reshape(-1).astype(np.int64), counts.astype(np.int64)
    return _text_ordered(distinct, index, sizes)


def _text_ordered(
    keys: NDArray[np.str_], index: NDArray[np.signedinteger[Any]], sizes: NDArray[np.int64]
) -> _Factors:
    """Distinct ``keys`` sorted as text, with each row's ``index`` and ``sizes`` to match.

    Exact keys of native byte order sort as their text already: nothing moves.
    """
    order = np.argsort(keys, kind="stable")
    if bool(np.all(order[1:] > order[:-1])):
        return keys, index, sizes
    rank = np.empty(order.shape[0], dtype=index.dtype)
    rank[order] = np.arange(order.shape[0])
    return keys[order], np.take(rank, index), sizes[order]


_MIX: Final = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0x9E3779B97F4A7C15))
"""Odd 64-bit multipliers: MurmurHash3's finalizer's and Fibonacci hashing's."""


def _slots(values: NDArray[np.int64], bits: int) -> NDArray[np.int64]:
    """Each value's slot among ``2**bits``: its bits mixed (multiplied modulo 2**64)."""
    mixed = values.view(np.uint64) >> np.uint64(33)
    mixed ^= values.view(np.uint64)
    mixed *= _MIX[0]
    mixed ^= mixed >> np.uint64(29)
    mixed *= _MIX[1]
    mixed >>= np.uint64(64 - bits)  # the top bits, the best mixed
    return mixed.view(np.int64)


def _positions(
    keys: NDArray[np.int64], values: NDArray[np.int64], bits: int | None = None
) -> NDArray[np.signedinteger[Any]]:
    """``numpy.searchsorted(keys, values)`` for ``values`` that are all among ``keys``.

    ``keys`` are sorted and distinct (positions in int32 for fewer than 2**31). A
    table of ``2**bits`` slots (default: at least 32 a key, from 2**10 to 2**22)
    holds each key's position at its slot (:func:`_slots`); a row reads its own
    slot, and only the rows whose slot two keys share (about one in thirty or
    fewer, for random-looking slots) are searched for. A row reads one int32 from
    a table that mostly stays in the cache, where a binary search reads some
    fifteen.
    """
    if bits is None:
        bits = min(22, max(10, (32 * keys.shape[0]).bit_length()))
    own = _slots(keys, bits)
    width = np.int32 if keys.shape[0] < 2**31 else np.int64
    table = np.full(1 << bits, -1, dtype=width)
    table[own] = np.arange(keys.shape[0], dtype=width)
    taken = np.sort(own)
    table[taken[1:][taken[1:] == taken[:-1]]] = -1  # shared by two keys: searched for
    positions = np.take(table, _slots(values, bits))
    shared = np.flatnonzero(positions < 0)
    if shared.shape[0]:
        positions[shared] = np.searchsorted(keys, values[shared])
    return positions


@attrs.frozen
class _Frame:
    """How :func:`_text_keys` packed strings exactly.

    Per column of code points, the least code point and the bits above it (0:
    every string has the same one).
    """

    least: tuple[int, ...]
    bits: tuple[int, ...]


def _text_keys(
    values: NDArray[np.str_],
    digest: Callable[[NDArray[np.uint32]], NDArray[np.int64]] | None = None,
) -> tuple[NDArray[np.int64], _Frame | None]:
    """Each string as an int64, and the :class:`_Frame` that packed it (``None``: a hash).

    Exact when the code points' columns (numpy pads shorter strings with zeros),
    each less its least value, fit side by side in 63 bits, each in a field as
    wide as its greatest needs: a column every string shares takes none, a
    column of digits four bits. The keys then sort as the strings do (for
    native byte order). Else a hash (``digest``, default :func:`_text_hash`).
    """
    n = int(values.shape[0])
    width = values.dtype.itemsize // 4
    points = np.ascontiguousarray(values).view(np.uint32).reshape(n, width)
    if n == 0:
        return np.zeros(0, dtype=np.int64), _Frame((0,) * width, (0,) * width)
    least = [int(v) for v in _by_column(np.minimum, points)]
    most = [int(v) for v in _by_column(np.maximum, points)]
    bits = [(high - low).bit_length() for high, low in zip(most, least, strict=True)]
    if sum(bits) > 63:
        return (digest or _text_hash)(points), None
    packed = np.zeros(n, dtype=np.int64)
    field = np.empty(n, dtype=np.uint32)
    for column, (low, wide) in enumerate(zip(least, bits, strict=True)):
        if wide:
            packed <<= wide
            packed |= np.subtract(points[:, column], low, out=field) if low else points[:, column]
    return packed, _Frame(tuple(least), tuple(bits))


def _by_column(reduce: np.ufunc, points: NDArray[np.uint32], rows: int = 512) -> NDArray[np.uint32]:
    """``reduce.reduce(points, axis=0)`` (the least or greatest of each column), fast.

    numpy reduces a few columns of many rows one row at a time; as rows of
    ``rows`` strings side by side it reduces long rows, twenty times faster.
    """
    n, width = points.shape
    whole = n - n % rows
    if not whole:
        return reduce.reduce(points, axis=0)  # type: ignore[no-any-return]
    wide = points[:whole].reshape(whole // rows, rows * width)
    found: NDArray[np.uint32] = reduce.reduce(reduce.reduce(wide, axis=0).reshape(rows, width))
    if whole < n:
        found = reduce(found, reduce.reduce(points[whole:], axis=0))
    return found


def _unpacked(keys: NDArray[np.int64], frame: _Frame, dtype: np.dtype[Any]) -> NDArray[np.str_]:
    """The strings :func:`_text_keys` packed into ``keys`` by ``frame``, as ``dtype``."""
    points = np.empty((keys.shape[0], len(frame.bits)), dtype=np.uint32)
    shift = sum(frame.bits)
    for column, (low, wide) in enumerate(zip(frame.least, frame.bits, strict=True)):
        shift -= wide
        points[:, column] = ((keys >> shift) & ((1 << wide) - 1)) + low
    return points.view(dtype).reshape(keys.shape[0])


def _same_text(
    distinct: NDArray[np.str_],
    index: NDArray[np.signedinteger[Any]],
    values: NDArray[np.str_],
    rows: int = 8192,
) -> bool:
    """Whether ``distinct[index]`` equals ``values`` (strings of one type).

    Compared as words of code points (two to a word when they pair up), a few
    thousand rows at a time, so that the gathered rows stay in the cache: about
    half the time of comparing the strings (10.6 against 19.6 ms for 10^6 rows of
    ten characters).
    """
    n = int(values.shape[0])
    word = np.uint64 if values.dtype.itemsize % 8 == 0 else np.uint32
    mine = np.ascontiguousarray(values).view(word).reshape(n, -1)
    theirs = np.ascontiguousarray(distinct).view(word).reshape(distinct.shape[0], -1)
    return all(
        np.array_equal(np.take(theirs, index[lo : lo + rows], axis=0), mine[lo : lo + rows])
        for lo in range(0, n, rows)
    )


def _may_repeat(values: NDArray[np.str_]) -> bool:
    """Whether two strings may be equal: two equal keys (strings or hash collisions)."""
    keys = np.sort(_text_keys(values)[0])
    return bool(np.any(keys[1:] == keys[:-1]))


def _text_hash(points: NDArray[np.uint32], rows: int = 16384) -> NDArray[np.int64]:
    """A 64-bit polynomial hash of each row of code points (collisions are checked).

    ``Σ word × P**k`` modulo 2**64 (``P`` FNV's prime), one matrix product: two
    code points to a word when they pair up (an even number of columns, rows
    contiguous, as :func:`_text_keys` gives them), else one, cast to 64 bits
    ``rows`` rows at a time.
    """
    n, width = points.shape
    if width % 2 == 0 and points.flags.c_contiguous:
        words = points.view(np.uint64)
        hashed: NDArray[np.uint64] = words @ _powers(words.shape[1])
        return hashed.view(np.int64)
    powers = _powers(width)
    out = np.empty(n, dtype=np.uint64)
    wide = np.empty((min(n, rows), width), dtype=np.uint64)
    for lo in range(0, n, rows):
        chunk = wide[: min(n, lo + rows) - lo]
        chunk[...] = points[lo : lo + rows]
        np.matmul(chunk, powers, out=out[lo : lo + rows])
    return out.view(np.int64)


def _powers(count: int) -> NDArray[np.uint64]:
    """FNV's 64-bit prime to the powers ``count`` … 1, modulo 2**64."""
    return np.array([pow(1099511628211, k, 2**64) for k in range(count, 0, -1)], dtype=np.uint64)


def evaluate_arrays(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None = None,
    *,
    subjects: ArrayLike | None = None,
    places: Mapping[str, int] | None = None,
    floats: FloatPolicy = "refuse",
    workers: int | None = None,
    workspace: Workspace | None = None,
) -> ArrayResults:
    """Evaluate ``scheme`` over a whole population given as columns; amounts in fen.

    Row *i* of every result equals what :func:`bankkpi.evaluate` gives the subject of
    row *i*, to the fen: same rankings (the same tie policies, over the whole
    population), same rules, same rounding.

    Args:
        scheme: the scheme, as loaded from its file.
        columns: input name → one value per row (a mapping, or a pandas or polars
            ``DataFrame``: its columns named as inputs are read). An **integer
            array** holds counts at the input's precision: an input with an
            indicator counts its precision steps (a 0.01-point score of 91.5 is
            ``9150``); one without counts ``10**-places[name]`` (default 0 places:
            plain integers). **Decimal or str sequences** are converted exactly (an
            indicator's values quantized by its rounding, as on the exact path;
            ``None``, a blank string, pandas' ``NA`` or a NaN among text is a
            missing value). **Floats** follow ``floats``. A missing column or
            value takes the input's ``default``.
        attributes: attribute name → group key per row (str or int), for every
            attribute the scheme names (region, head…); a mapping or a data frame.
        subjects: optional subject ids, one per row: named in error messages, and
            required when a ranking breaks ties by subject id (``ordinal``).
        places: decimal places of integer columns of inputs without an indicator.
        floats: ``"refuse"`` (default) or ``"repr"``; see :data:`FloatPolicy`.
        workers: threads for a large population (numpy works outside Python's
            lock): the grouping attributes are factorized while the columns are
            read, the rankings' cut-offs are found side by side, then the threads
            evaluate the rules block by block — a rule compiled for the population
            (:mod:`bankkpi._plan`) in blocks of 131,072 rows, any other in blocks
            set by the population's size alone (at most 524,288 rows each up to
            4,194,304 rows, then 8 or 9 blocks, and at most 1,048,576 rows each
            from 8,388,608 rows on). ``None`` (default) uses the processors this
            process may run on; ``1`` uses one thread, which evaluates an
            uncompiled rule over the whole population at once. A population of at
            most 131,072 rows always uses one. Results, errors and overflow
            refusals never depend on it: a population refused for overflow risk at
            once (a bound over all rows) is evaluated block by block before it is
            refused.
        workspace: memory kept from one call to the next (:class:`Workspace`),
            for evaluating again and again over populations of one size: the
            largest arrays (the copies of integer columns, integer attributes'
            codes, the rankings' offsets and keys, compiled rules' amounts) are
            taken from it instead of being new. Results are the same, never
            change afterwards, and do not refer to it.

    Returns:
        :class:`ArrayResults`.

    Raises:
        ValidationErrorGroup: every refused input (missing column or value, value
            out of scale, blank attribute, duplicate subject, float) at once, each
            naming its rows; or every rule that refuses some rows (an offence
            number below 1, a discretionary amount outside its range, a negative
            amount, a value outside every band), each naming its rows and rule.
    """
    threads = _threads(workers)
    if workspace is not None:
        workspace.begin()
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(threads)) if threads > 1 else None
        population = _Population.of(
            scheme,
            columns,
            attributes,
            subjects=subjects,
            places=places,
            floats=floats,
            pool=pool,
            space=workspace,
        )
        try:
            return population.evaluate(scheme, threads, pool, workspace)
        finally:  # the results' rankings outlive the call: not the workspace with them
            population.release()


def _data_key(scheme: Scheme) -> str:
    """The parts of a scheme that reading its population depends on (not its rules).

    As their ``repr``, which shows how each number is written: a default of ``1``
    and one of ``1.000`` are equal but read a column at different places.
    """
    parts = (
        scheme.id,
        scheme.inputs,
        scheme.indicators,
        scheme.attributes,
        scheme.rankings,
        scheme.group_by,
        scheme.rollups,
    )
    return repr(parts)


@attrs.frozen(eq=False)
class _Population:
    """A population read for a scheme: checked columns, factorized groups, rankings.

    What :func:`evaluate_arrays` prepares before it evaluates the rules. The what-if
    functions keep one across scenarios that change only rules (rates, bases,
    targets, selection sizes): the columns are read and checked once, and each
    ranking's ordered store is built once, its cut-offs found once per selection
    size. Reading depends on the scheme's inputs, indicators, attributes, rankings,
    groupings and roll-ups; :meth:`fits` says whether another scheme has the same.
    """

    key: str
    env: ArrayContext
    groups: dict[str, _Groups]

    @classmethod
    def of(
        cls,
        scheme: Scheme,
        columns: Mapping[str, ArrayLike],
        attributes: Mapping[str, ArrayLike] | None,
        *,
        subjects: ArrayLike | None = None,
        places: Mapping[str, int] | None = None,
        floats: FloatPolicy = "refuse",
        groups: Mapping[str, _Groups] | None = None,
        pool: ThreadPoolExecutor | None = None,
        space: Workspace | None = None,
    ) -> _Population:
        """Read and check the columns for ``scheme`` (see :func:`evaluate_arrays`).

        ``groups``: another population's, read from the same attribute arrays.
        ``pool``: threads to factorize the attributes in while the columns are read.
        ``space``: memory for the population's largest arrays.
        """
        env, groups = _prepare(
            scheme,
            columns,
            attributes,
            subjects=subjects,
            places=places,
            floats=floats,
            groups=groups,
            pool=pool,
            space=space,
        )
        return cls(_data_key(scheme), env, groups)

    def fits(self, scheme: Scheme) -> bool:
        """Whether ``scheme`` reads a population as the scheme this was read for does."""
        return self.key == _data_key(scheme)

    def release(self) -> None:
        """Let the rankings go of the workspace they were read with, if any.

        Results keep the rankings (ranks read later); a workspace kept with them
        would keep all its memory alive, and could be neither pickled nor copied.
        """
        for source in self.env.ranks.values():
            if isinstance(source, RankSource):
                source.release_workspace()

    def evaluate(
        self,
        scheme: Scheme,
        threads: int,
        pool: ThreadPoolExecutor | None = None,
        space: Workspace | None = None,
    ) -> ArrayResults:
        """``scheme``'s rules over this population (``scheme`` must :meth:`fit <fits>`).

        In ``threads`` threads: ``pool``'s, or a pool of its own for this call. The
        rules' amounts in ``space``'s memory, if given.
        """
        return self.evaluate_knowing(scheme, threads, pool, space)[0]

    def evaluate_knowing(
        self,
        scheme: Scheme,
        threads: int,
        pool: ThreadPoolExecutor | None = None,
        space: Workspace | None = None,
        known: _Kept | None = None,
    ) -> tuple[ArrayResults, _Kept, tuple[int, int]]:
        """:meth:`evaluate`, taking what ``known`` holds of this scheme as given.

        ``known``: what an earlier evaluation over this population kept. The
        amounts of a rule under the same :func:`_reusable` key as now are not
        computed again, nor the row and group sums of a
        kind (penalty, reward) whose every rule is so. It is emptied before the
        rules are evaluated, so that the rest's memory may serve again. Also
        returns what this evaluation keeps, as ``known`` takes it (nothing without
        ``known``: :meth:`evaluate` makes no keys), and the largest penalty and
        reward (for :func:`_total`).
        """
        if not self.fits(scheme):
            raise InvalidValueError(
                "scheme", "reads its population differently from the one given", scheme.id
            )
        env, groups = self.env, self.groups
        blocks = _blocks(env.size)
        with contextlib.ExitStack() as stack:
            split = None
            if threads > 1 and (len(blocks) > 1 or env.size > PLAN_ROWS):
                if pool is None:
                    pool = stack.enter_context(ThreadPoolExecutor(threads))
                split = _Split(pool, blocks, threads)
            totalled = {*scheme.group_by, *(r.to for r in scheme.rollups)}
            keys = {} if known is None else {rule.id: _reusable(rule) for rule in scheme.rules}
            given = {  # the rules as they were: their amounts as they were
                rule: kept
                for rule, kept in ({} if known is None else known.rules).items()
                if keys.get(rule) is not None and kept.key == keys[rule]
            }
            kind_keys = {
                kind: tuple(keys.get(rule.id) for rule in scheme.rules if rule.kind == kind)
                for kind in ("penalty", "reward")
            }
            whole = {  # kinds whose every rule is as it was: their sums are as they were
                kind: kept
                for kind, kept in ({} if known is None else known.kinds).items()
                if kept.keys == kind_keys[kind]
            }
            if known is not None:
                known.clear()  # the rest: memory for the workspace to lend again
            found = _rule_amounts(
                scheme,
                env,
                blocks,
                split,
                space,
                totalled={n: groups[n] for n in totalled},
                known=given,
                settled=set(whole),
            )
            amounts = {rule: _frozen(column) for rule, column in found.amounts.items()}
            kinds = {rule.id: rule.kind for rule in scheme.rules}
            penalty, reward = (
                whole[kind].column
                if kind in whole
                else _column_sum(
                    [(a, found.largest.get(r)) for r, a in amounts.items() if kinds[r] == kind],
                    env.size,
                    split,
                    space,
                    found.summed.get(kind),
                )
                for kind in ("penalty", "reward")
            )

        def totals(name: str, what: str) -> GroupTotals:
            # after _column_sum's bounds: a group's sums found block by block are
            # of row sums that wrapped only where the column's bound refuses them
            penalty_sums, reward_sums = found.group_sums(name)
            if "penalty" in whole:
                penalty_sums = whole["penalty"].groups.get(name)
            if "reward" in whole:
                reward_sums = whole["reward"].groups.get(name)
            return groups[name].totals(penalty, reward, what, (penalty_sums, reward_sums))

        group_totals = {name: totals(name, f"totals by {name}") for name in scheme.group_by}
        rollups = {f"{r.kind}→{r.to}": totals(r.to, f"roll-up to {r.to}") for r in scheme.rollups}
        results = ArrayResults(
            scheme.id,
            scheme.version,
            env.size,
            env.subjects,
            kinds,
            amounts,
            penalty[0],
            reward[0],
            group_totals,
            rollups,
            _RankMap(env.ranks),
        )
        kept = _Kept(
            {
                rule: _Known(key, amounts[rule], found.largest.get(rule))
                for rule, key in keys.items()
                if key is not None
            }
        )
        by_attribute = {
            **group_totals,
            **{r.to: rollups[f"{r.kind}→{r.to}"] for r in scheme.rollups},
        }
        sides: tuple[tuple[RuleKind, _Column], ...] = (("penalty", penalty), ("reward", reward))
        for kind, column in sides:
            if known is not None and kind_keys[kind] and None not in kind_keys[kind]:
                kept.kinds[kind] = _KnownKind(
                    kind_keys[kind],
                    column,
                    {name: table.amount(kind) for name, table in by_attribute.items()},
                )
        return results, kept, (penalty[1], reward[1])


_BLOCK_ROWS: Final = 1 << 19
"""Rows per block, at most, for populations of up to 8 × this many rows (a
population of at most this many rows is one block).

Blocks depend on the population's size alone (never on the threads), so that
results do not either. Fewer, larger blocks cost less Python per row: at 10^6
rows on two threads, with freed memory kept by the allocator, two blocks of
500,000 took 13 ms of rule evaluation where four of 250,000 took 17 ms (with
glibc's defaults the whole call took about the same either way, the larger
blocks faulting in more fresh memory).
"""
_BLOCK_ROWS_MOST: Final = 1 << 20
"""Rows per block, at most, for any population."""
_BLOCK_SHARE: Final = 8
"""Between the two, blocks of about an eighth of the population (8 or 9 blocks):
each block's temporaries are then reused for the next instead of faulted in afresh
(at 10^7 rows, 2^20-row blocks took 410 ms and 2^18-row blocks 486 ms on two
threads)."""


def _threads(workers: int | None) -> int:
    if workers is None:  # the processors this process may run on
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidValueError("workers", "must be a positive int or None", workers)
    return workers


def _blocks(size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of equal blocks (±1 row), set by ``size`` alone.

    Up to 4,194,304 rows, blocks of at most 524,288 rows (10^6 rows: two); up to
    8,388,608 rows, 8 or 9 blocks; beyond, blocks of at most 1,048,576 rows (10^7
    rows: ten). At most 524,288 rows make one block.
    """
    rows = min(max(size // _BLOCK_SHARE, _BLOCK_ROWS), _BLOCK_ROWS_MOST)
    count = max(1, -(-size // rows))
    return list(itertools.pairwise(size * k // count for k in range(count + 1)))


def _rules_of(
    rules: Sequence[Rule], env: ArrayContext
) -> tuple[dict[str, NDArray[np.int64]], list[BankKPIError]]:
    amounts: dict[str, NDArray[np.int64]] = {}
    errors: list[BankKPIError] = []
    for rule in rules:
        try:
            amounts[rule.id] = rule.evaluate_fen(env)
        except BankKPIError as exc:
            errors.append(exc)
    return amounts, errors


def _selections(node: object, found: dict[str, list[Selection]]) -> None:
    """Every ranking selection (:class:`InRanks`) in a formula tree, by ranking."""
    if isinstance(node, InRanks):
        chosen = node.selection
        if isinstance(chosen, Exemption):  # selects as its selection does
            chosen = chosen.selection
        if isinstance(chosen, Selection):
            found.setdefault(node.ranking, []).append(chosen)
        return
    if attrs.has(type(node)):
        for field in attrs.fields(type(node)):  # type: ignore[arg-type] # checked by has()
            _selections(getattr(node, field.name), found)
    elif isinstance(node, tuple | list):
        for item in node:
            _selections(item, found)


@attrs.frozen(eq=False)
class _Known:
    """A rule's amounts over one population, for a later evaluation of the same rule."""

    key: str
    """What :func:`_reusable` gave the rule."""
    amounts: NDArray[np.int64]
    """Its amounts in fen (read-only)."""
    largest: int | None
    """Its largest amount, where known."""


@attrs.frozen(eq=False)
class _KnownKind:
    """A kind's sums over one population, for a later evaluation of the same rules."""

    keys: tuple[str | None, ...]
    """The kind's rules' :func:`_reusable` keys, in the scheme's order (none ``None``)."""
    column: _Column
    """Its rules' sum per row, and the largest."""
    groups: dict[str, NDArray[np.int64]]
    """Its totals per group, by totalled attribute (checked against int64)."""


@attrs.frozen(eq=False)
class _Kept:
    """What an evaluation keeps for the next over the same population.

    See :meth:`_Population.evaluate_knowing`, which empties it once it has taken
    what it may.
    """

    rules: dict[str, _Known] = attrs.Factory(dict)
    """Each rule's amounts, by rule id."""
    kinds: dict[str, _KnownKind] = attrs.Factory(dict)
    """Each kind's sums (penalty, reward), where every rule of the kind has a key."""

    def clear(self) -> None:
        """Keep nothing."""
        self.rules.clear()
        self.kinds.clear()


def _reusable(rule: Rule) -> str | None:
    """A key for ``rule``'s amounts, or ``None``.

    Rules of equal keys have equal amounts over one population (not conversely:
    ``98`` and ``98.0`` make different keys).

    ``repr(rule)`` — every field, and each number as written — for a rule made of
    plain values (``str``, ``int``, ``Decimal``, ``Fraction``, ``None``, and
    tuples, lists, sets and dicts of them, of those exact types) and the library's
    own classes alone; ``None`` for a rule holding anything else (a subclass of
    the caller's may compute from what its ``repr`` does not show), whose amounts
    are then computed every time.
    """
    return repr(rule) if _library_made(rule) else None


_LEAVES: Final = frozenset({str, int, Decimal, Fraction, NoneType, bool})
_CONTAINERS: Final = frozenset({tuple, list, frozenset, set})


def _library_made(node: object) -> bool:
    """Whether ``node`` is built of plain values and the library's own classes alone."""
    waiting = [node]
    while waiting:
        node = waiting.pop()
        kind = type(node)
        if kind in _LEAVES:
            continue
        if kind in _CONTAINERS:
            waiting.extend(cast("Iterable[object]", node))
            continue
        if kind is dict:
            waiting.extend(cast("dict[object, object]", node).items())
            continue
        fields: tuple[attrs.Attribute[Any], ...] | None = getattr(kind, "__attrs_attrs__", None)
        module = (
            sys.modules.get(kind.__module__) if kind.__module__.startswith("bankkpi.") else None
        )
        if fields is None or getattr(module, kind.__qualname__, None) is not kind:
            return False  # not an attrs class the library's modules define
        for field in fields:
            if field.init:  # the others are made from these (memos, parsed trees)
                waiting.append(getattr(node, field.name))  # noqa: PERF401 - faster
    return True


@attrs.frozen(eq=False)
class _Found:
    """Every rule's amounts in fen (:func:`_rule_amounts`), and what was found beside them."""

    amounts: dict[str, NDArray[np.int64]]
    """By rule id, in the scheme's order."""
    largest: dict[str, int]
    """The largest amount of each rule evaluated by its plan (or kept, with its
    amounts, from an earlier evaluation that knew it)."""
    summed: dict[str, _KindSums]
    """By kind (penalty, reward): its amounts added up block by block, where every
    rule of that kind was evaluated by its plan."""

    def group_sums(self, name: str) -> tuple[NDArray[np.int64] | None, NDArray[np.int64] | None]:
        """Penalties and rewards per group of attribute ``name``, where added up already."""
        penalty, reward = (self.summed.get(kind) for kind in ("penalty", "reward"))
        return (
            None if penalty is None else penalty.groups.get(name),
            None if reward is None else reward.groups.get(name),
        )


def _rule_amounts(
    scheme: Scheme,
    env: ArrayContext,
    blocks: list[tuple[int, int]],
    split: _Split | None,
    space: Workspace | None = None,
    *,
    totalled: Mapping[str, _Groups] | None = None,
    known: Mapping[str, _Known] | None = None,
    settled: AbstractSet[str] = frozenset(),
) -> _Found:
    """Every rule's amounts in fen, in ``split``'s threads; the same with or without them.

    And the largest amount of each rule evaluated by its plan (found block by
    block, while the block is in the cache), and each kind's sums over the
    rows and per group of ``totalled``'s attributes where :func:`_planned`
    added them up block by block. The amounts of the rules in ``known`` (by id)
    are taken from there; the kinds in ``settled`` are not added up (their sums
    are known too).

    With threads, each ranking's cut-offs for the selections the rules use are
    found first, side by side. Then each rule :func:`~bankkpi._plan.compile_rule`
    compiles is evaluated by its plan (:func:`_planned`), and every other rule, and
    any the plan gives back, by the array path (:func:`_unplanned`).

    Raises:
        ValidationErrorGroup: every rule that refuses some rows.
    """
    pending: list[Future[None]] = []
    if split is not None and split.pool is not None:
        pending = _prepare_cutoffs(scheme.rules, env, split.pool)
    given = known or {}
    try:
        amounts, largest, summed = _planned(
            scheme.rules,
            env,
            split,
            pending,
            space,
            totalled=totalled,
            known=given,
            settled=settled,
        )
    finally:  # the grouped rankings' cut-offs are done before anything else reads them
        wait(pending)
    for future in pending:
        future.result()
    amounts = {rule: kept.amounts for rule, kept in given.items()} | amounts
    largest = {r: kept.largest for r, kept in given.items() if kept.largest is not None} | largest
    rest = [rule for rule in scheme.rules if rule.id not in amounts]
    if rest:
        amounts |= _unplanned(scheme.id, rest, env, blocks, split)
    return _Found({rule.id: amounts[rule.id] for rule in scheme.rules}, largest, summed)


def _planned(
    rules: Sequence[Rule],
    env: ArrayContext,
    split: _Split | None,
    pending: Sequence[Future[None]] = (),
    space: Workspace | None = None,
    *,
    totalled: Mapping[str, _Groups] | None = None,
    known: Mapping[str, _Known] | None = None,
    settled: AbstractSet[str] = frozenset(),
) -> tuple[dict[str, NDArray[np.int64]], dict[str, int], dict[str, _KindSums]]:
    """The amounts of the rules that compile (:mod:`bankkpi._plan`), by their plans.

    And each one's largest amount (a plan's amounts are never negative), and
    each kind's sums (:class:`_BlockSums`) where every rule of the kind has a
    plan and kept it or is ``known``, when there is a plan to evaluate: over the
    rows, and per group of ``totalled``'s attributes, but for the kinds in
    ``settled``. The rules in ``known`` (by id) are not compiled: their amounts
    are there, and only added up here.

    Over blocks of :data:`~bankkpi._plan.PLAN_ROWS` rows, in ``split``'s threads
    if any; a population of one block is left to the array path (at 10^5 rows a
    plan, which works out every branch over every row, took 6.3 ms, the array path
    5.5 ms). A rule whose plan gives back a block (a negative amount, a step past
    int64, a row that needs a value the array path refuses) is left out: the array
    path evaluates it and refuses what it refuses.
    """
    if env.size <= PLAN_ROWS:  # one block: branches on their own rows cost less
        return {}, {}, {}
    pool, threads = (None, 1) if split is None else (split.pool, split.threads)
    known = known or {}
    compiled = [
        compile_rule(rule, env, pool=pool, parts=threads, resolve=False)
        for rule in rules
        if rule.id not in known
    ]
    for future in pending:  # the grouped rankings' cut-offs, found meanwhile
        future.result()
    plans = [plan for plan in (p.resolved() for p in compiled if p is not None) if plan is not None]
    if not plans:
        return {}, {}, {}
    size = env.size
    edges = [(lo, min(size, lo + PLAN_ROWS)) for lo in range(0, size, PLAN_ROWS)]
    out = {plan.rule.id: lend(space, size, np.int64) for plan in plans}
    given_back: set[str] = set()
    adding = _BlockSums.of(
        [rule for rule in rules if rule.kind not in settled],
        out | {rule: k.amounts for rule, k in known.items()},
        size,
        _few_groups(totalled or {}, size, threads),
        space,
    )
    mine = threading.local()  # each thread's scratch buffers and sums, for this call only

    def block(edge: tuple[int, int]) -> tuple[dict[str, int], dict[str, int]]:
        scratch = getattr(mine, "scratch", None)
        if scratch is None:
            scratch = mine.scratch = Scratch(PLAN_ROWS)
        largest = {}
        for plan in plans:
            rule = plan.rule.id
            if rule not in given_back and not plan.fen(*edge, scratch, out[rule]):
                given_back.add(rule)
            if rule not in given_back:
                largest[rule] = int(out[rule][edge[0] : edge[1]].max())
        return largest, adding.block(*edge, mine, given_back)

    tops = _Split(pool, edges).map(block)
    kept = {rule: amounts for rule, amounts in out.items() if rule not in given_back}
    return (
        kept,
        {rule: max(top.get(rule, 0) for top, _ in tops) for rule in kept},
        adding.found(given_back, [sums for _, sums in tops]),
    )


_FEW_GROUPS_SHARE: Final = 8
"""An attribute's groups are added up block by block (:class:`_BlockSums`) when
each thread's sums for it, one int64 per group and kind, take at most an eighth
of the rows' int64s per kind."""


def _few_groups(groups: Mapping[str, _Groups], size: int, threads: int) -> dict[str, _Groups]:
    """Those of ``groups`` few enough to add up block by block, with sums in every thread."""
    most = size // (_FEW_GROUPS_SHARE * max(1, threads))
    return {name: grouped for name, grouped in groups.items() if grouped.keys.shape[0] <= most}


@attrs.frozen(eq=False)
class _KindSums:
    """One kind's amounts (penalty or reward) added up by :class:`_BlockSums`."""

    column: _Column | None
    """The sum of the kind's rules per row, and its largest (``None``: a kind of
    one rule, whose own column is the sum)."""
    groups: dict[str, NDArray[np.int64]]
    """By attribute: the kind's amounts summed per group. Not checked against
    int64 here: amounts are never negative, so a sum that wrapped is past the
    bound :meth:`_Groups.sums` checks before using it."""


@attrs.frozen(eq=False)
class _BlockSums:
    """What each block of :func:`_planned` adds up once its rules' amounts are in.

    For each kind (penalty, reward) whose every rule has a plan or kept amounts:
    the sum of its rules per row (when more than one) and per group of
    ``groups``, while the block is in the cache and in the block's thread.
    ``numpy.add.at`` holds Python's lock, but there it runs beside the other
    threads' blocks instead of after all of them. One per call of
    :func:`_planned`; the blocks fill in its arrays and each thread's sums.
    ``what_if`` over 10^6 rows of scheme A (five rules, totals by region and
    rolled up by head office) went from 42.4 to 36.8 ms a scenario; a kind of one
    rule, grouped one way (the benchmark), gains about nothing.
    """

    kinds: dict[str, list[str]]
    """Each such kind's rule ids, in the scheme's order."""
    out: Mapping[str, NDArray[np.int64]]
    """Every planned rule's amounts, as the blocks fill them in, and the kept ones."""
    columns: dict[str, NDArray[np.int64]]
    """Each kind of several rules: its row sums, as the blocks fill them in."""
    groups: dict[str, _Groups]
    threads_sums: list[dict[tuple[str, str], NDArray[np.int64]]] = attrs.field(factory=list)
    """Each thread's sums by (kind, attribute), as the blocks add to them."""

    @classmethod
    def of(
        cls,
        rules: Sequence[Rule],
        out: Mapping[str, NDArray[np.int64]],
        size: int,
        groups: dict[str, _Groups],
        space: Workspace | None,
    ) -> _BlockSums:
        """For ``rules``, whose planned ones fill in ``out`` (by rule id, ``size`` rows)."""
        kinds = {
            kind: ids
            for kind in ("penalty", "reward")
            if (ids := [rule.id for rule in rules if rule.kind == kind])
            and all(rule in out for rule in ids)
        }
        columns = {kind: lend(space, size, np.int64) for kind, ids in kinds.items() if len(ids) > 1}
        return cls(kinds, out, columns, groups)

    def block(
        self, lo: int, hi: int, mine: threading.local, given_back: set[str]
    ) -> dict[str, int]:
        """Add up rows ``lo … hi − 1``; the largest row sum by kind, of each of several rules.

        ``mine``: the calling thread's own store, for its sums.
        """
        sums: dict[tuple[str, str], NDArray[np.int64]] | None = getattr(mine, "sums", None)
        if sums is None:
            sums = mine.sums = {}
            self.threads_sums.append(sums)  # one append per thread: atomic
        largest = {}
        for kind, ids in self.kinds.items():
            if given_back.intersection(ids):
                continue  # of no use: the array path evaluates the rule given back
            if len(ids) == 1:
                amounts = self.out[ids[0]][lo:hi]
            else:  # the row sums; past int64 only where the column's bound refuses them
                amounts = self.columns[kind][lo:hi]
                np.add(self.out[ids[0]][lo:hi], self.out[ids[1]][lo:hi], out=amounts)
                for rule in ids[2:]:
                    amounts += self.out[rule][lo:hi]
                largest[kind] = int(amounts.max()) if hi > lo else 0
            for name, grouped in self.groups.items():
                total = sums.get((kind, name))
                if total is None:
                    total = sums[kind, name] = np.zeros(grouped.keys.shape[0], dtype=np.int64)
                np.add.at(total, grouped.index[lo:hi], amounts)
        return largest

    def found(self, given_back: set[str], tops: list[dict[str, int]]) -> dict[str, _KindSums]:
        """Each kind's sums once every block is done (``tops``: what :meth:`block` returned)."""
        found = {}
        for kind, ids in self.kinds.items():
            if given_back.intersection(ids):
                continue
            groups = {}
            for name in self.groups:
                parts = [sums[kind, name] for sums in self.threads_sums if (kind, name) in sums]
                groups[name] = parts[0]
                for part in parts[1:]:
                    groups[name] += part
            column = None
            if kind in self.columns:
                column = self.columns[kind], max(top.get(kind, 0) for top in tops)
            found[kind] = _KindSums(column, groups)
        return found


def _unplanned(
    scheme_id: str,
    rules: Sequence[Rule],
    env: ArrayContext,
    blocks: list[tuple[int, int]],
    split: _Split | None,
) -> dict[str, NDArray[np.int64]]:
    """``rules``' amounts by the array path (each formula's ``evaluate_array``).

    In one thread (``split`` is ``None``), the whole population at once. In
    several, block by block (:func:`_by_blocks`); if a block refuses rows, the
    whole population is evaluated again at once, so that errors name every
    offending row at once. A bound checked over the whole population can refuse
    what no block refuses (a sum of two columns whose largest values lie in
    different blocks): when the whole population is refused for overflow risk
    alone, it is evaluated block by block. Either way, amounts are given exactly
    when every block of the population gives them or the whole does, whatever
    the threads.

    Raises:
        ValidationErrorGroup: every rule that refuses some rows.
    """
    if split is not None and len(split.blocks) > 1:
        joined = _by_blocks(rules, env, split)
        if joined is not None:
            return joined
        blocks = []  # refused block by block: the whole population names every row
    amounts, errors = _rules_of(rules, env)
    if errors and len(blocks) > 1 and all(isinstance(e, OverflowRiskError) for e in errors):
        joined = _by_blocks(rules, env, _Split(None, blocks))
        if joined is not None:
            return joined
    if errors:
        raise ValidationErrorGroup(f"rules of scheme {scheme_id} refuse some rows", errors)
    return amounts


_T = TypeVar("_T")


@attrs.frozen(eq=False)
class _Split:
    """A population's blocks (:func:`_blocks`) and the threads that take them.

    ``pool`` ``None``: one block after another, in this thread.
    """

    pool: ThreadPoolExecutor | None
    blocks: list[tuple[int, int]]
    threads: int = 1
    """How many threads ``pool`` has (1 without)."""

    def map(self, work: Callable[[tuple[int, int]], _T]) -> list[_T]:
        """``work`` of every block, in the blocks' order."""
        if self.pool is None:
            return [work(edge) for edge in self.blocks]
        return list(self.pool.map(work, self.blocks))


def _by_blocks(
    rules: Sequence[Rule], env: ArrayContext, split: _Split
) -> dict[str, NDArray[np.int64]] | None:
    """``rules``' amounts, block by block (:meth:`ArrayContext.part`); ``None`` if refused.

    With threads, each thread evaluates every rule over its blocks and copies them
    into the joined columns. Without threads, the blocks one after another, up to
    the first that refuses.
    """
    joined = {rule.id: np.empty(env.size, dtype=np.int64) for rule in rules}

    def block(edge: tuple[int, int]) -> bool:
        amounts, errors = _rules_of(rules, env.part(*edge))
        for rule, column in amounts.items():
            joined[rule][edge[0] : edge[1]] = column
        return not errors

    if split.pool is None:
        return joined if all(block(edge) for edge in split.blocks) else None
    return joined if all(split.map(block)) else None


def _prepare_cutoffs(
    rules: Sequence[Rule], env: ArrayContext, pool: ThreadPoolExecutor
) -> list[Future[None]]:
    """Each ranking's cut-offs for the selections ``rules`` use, found side by side.

    The grouped rankings' (a sort each) in ``pool``; their futures are returned,
    and the rules are compiled meanwhile (:func:`_planned`). Compiling needs only
    the cut-offs of the rankings of the whole population (counted, quick, and
    folded into compiled tables): they are found here, in this thread, while the
    pool sorts. (In the pool, a thread of its own counted the province while
    Python's lock, held by ``numpy.bincount``, kept the sort from starting.)
    """
    wanted: dict[str, list[Selection]] = {}
    for rule in rules:
        _selections(rule.formula, wanted)
    sources = [
        (source, chosen)
        for name, chosen in wanted.items()
        if isinstance(source := env.ranks.get(name), RankSource)
    ]
    grouped = [
        pool.submit(_prepare_selections, (source, chosen))
        for source, chosen in sources
        if source.groups is not None
    ]
    try:
        for source, chosen in sources:
            if source.groups is None:
                _prepare_selections((source, chosen))
    except BaseException:
        wait(grouped)  # none left running unobserved
        raise
    return grouped


def _prepare_selections(item: tuple[Ranks, list[Selection]]) -> None:
    """Cut-offs (or masks) for the selections found in the rules, ahead of the blocks.

    A selection that cannot be answered is left alone here: a block raises its
    error where a row actually needs it, as one thread would.
    """
    source, chosen = item
    if isinstance(source, RankSource):
        for selection in chosen:
            with contextlib.suppress(BankKPIError):
                source.prepare(selection)


class _RankMap(Mapping[str, RankArrays]):
    """Ranking name → :class:`RankArrays`, each computed on first access."""

    def __init__(self, ranks: Mapping[str, Ranks]) -> None:
        self._ranks = dict(ranks)

    def __getitem__(self, name: str) -> RankArrays:
        entry = self._ranks[name]
        return entry if isinstance(entry, RankArrays) else entry.arrays()

    def __iter__(self) -> Iterator[str]:
        return iter(self._ranks)

    def __len__(self) -> int:
        return len(self._ranks)


_Column: TypeAlias = tuple[NDArray[np.int64], int]
"""A column and the largest magnitude in it."""


def _column_sum(
    columns: list[tuple[NDArray[np.int64], int | None]],
    size: int,
    split: _Split | None = None,
    space: Workspace | None = None,
    summed: _KindSums | None = None,
) -> _Column:
    """The row sums of read-only ``columns``, and their largest magnitude.

    Each column comes with its largest magnitude when known (else ``None``: found
    here). Read-only: the one column itself if alone, zeros that take no memory if
    none. With ``split``, each block's largest magnitude is found in a thread. The
    sum of several in ``space``'s memory, if given, or the one ``summed`` found
    block by block (:class:`_BlockSums`), once the bound is checked.
    """

    def largest(column: NDArray[np.int64], known: int | None = None) -> int:
        if known is not None:
            return known
        if split is None:
            return fx.max_abs(column)
        return max(split.map(lambda edge: fx.max_abs(column[edge[0] : edge[1]])))

    if not columns:
        return np.broadcast_to(np.zeros(1, dtype=np.int64), (size,)), 0
    if len(columns) == 1:
        return columns[0][0], largest(*columns[0])
    fx.check_bound(sum(largest(*c) for c in columns), "sum of rule amounts")
    if summed is not None and summed.column is not None:
        return _frozen(summed.column[0]), summed.column[1]
    total = lend(space, size, np.int64)
    np.add(columns[0][0], columns[1][0], out=total)
    for column, _ in columns[2:]:
        total += column
    return _frozen(total), largest(total)


def _frozen(array: NDArray[np.int64]) -> NDArray[np.int64]:
    array.flags.writeable = False
    return array


# The what-if API lives in its own module and is public here; it calls back into
# evaluate_arrays above, so it is imported last.
from bankkpi._whatif import (  # noqa: E402
    ScenarioResult,
    ScenarioTable,
    grid,
    monte_carlo,
    override,
    seek_parameter,
    what_if,
)
