"""Rankings (前N名 / 倒数后N名) within groups, and selections on ranks.

A :class:`RankingRule` states which way is better and how ties rank; neither has a
default. :func:`rank` ranks Decimal values exactly; :func:`rank_arrays` ranks
integer-coded values with numpy and gives the same ranks. Rank 1 is the best.

Tie policies, shown on the values 30, 20, 20, 10 (higher is better):

- ``competition`` ("1224"): 1, 2, 2, 4 — one plus the number strictly better;
- ``dense`` ("1223"): 1, 2, 2, 3 — one plus the number of distinct better values;
- ``ordinal`` (1234): 1, 2, 3, 4 — ties broken by the rule's stated ``tie_break``;
- ``average``: 1, 2.5, 2.5, 4 — the mean of the tie block's ordinal positions, an
  exact :class:`~decimal.Decimal` (always a whole or half number).

The rank from the bottom is the same policy applied to the reversed order: with
competition ties it is one plus the number strictly *worse* (30, 20, 20, 10 rank
4, 2, 2, 1 from the bottom); for ``ordinal`` and ``average``,
``top + bottom = group size + 1``.

Selections (:class:`Top`, :class:`Bottom`, :class:`RankRange`, :class:`Percentile`,
and :class:`Exemption` around any of them) test a subject's rank, never its
position in a list:

- **Ties at a cut-off are all inside.** ``Top(200)`` holds every subject whose rank
  from the top is ≤ 200; with competition ties ten subjects tied at rank 195 are all
  in, so the selection may hold more than 200. With ``average`` ties a block at 200.5
  is outside ``Top(200)``. Use ``ordinal`` ties when exactly N are wanted.
- **Small and empty groups.** In a group of 50, everyone is in ``Bottom(100)`` and in
  ``Top(200)``: one subject can be in both, and the scheme decides which rule
  prevails. A range such as ``RankRange("bottom", 101, 200)`` is empty in a group of
  50. An empty population ranks to an empty :class:`Ranking`, from which every
  selection selects nothing.
- **Exemption does not re-rank.** After ``Exemption(Top(200))`` the others keep
  their ranks in the whole group; to rank only the assessed subjects, rank again
  over ``exemption.assessed(ranking)``.
- ``scope`` only names the grouping in :meth:`describe` (``"province"`` → 省内 /
  in province); the grouping itself is the ranking's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Literal, TypeAlias, get_args

import attrs
import numpy as np
from numpy.typing import NDArray

from bankkpi import _fixedpoint as fx
from bankkpi._checks import one_of
from bankkpi._money import CONTEXT, DecimalLike, RoundingPolicy, round_fraction, to_decimal
from bankkpi._workspace import Workspace, lend
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    FloatMoneyError,
    InvalidValueError,
    MissingDataError,
    OverflowRiskError,
    UnknownKeyError,
    ValidationErrorGroup,
)

__all__ = [
    "Better",
    "Bottom",
    "CountRounding",
    "Exemption",
    "Percentile",
    "Rank",
    "RankArrays",
    "RankRange",
    "RankSource",
    "RankView",
    "RankedSubject",
    "Ranking",
    "RankingRule",
    "Selection",
    "Side",
    "TieBreak",
    "TiePolicy",
    "Top",
    "rank",
    "rank_arrays",
]

Better: TypeAlias = Literal["higher", "lower"]
"""Which values rank first: ``higher`` for scores, ``lower`` for error rates."""

TiePolicy: TypeAlias = Literal["competition", "dense", "ordinal", "average"]
"""How tied values rank: ``competition`` 1224, ``dense`` 1223, ``ordinal`` 1234 (by a
stated tie-break), ``average`` 1, 2.5, 2.5, 4."""

TieBreak: TypeAlias = Literal["subject_asc", "subject_desc", "secondary_higher", "secondary_lower"]
"""How ``ordinal`` ties are broken: by subject id ascending or descending, or by a
secondary key the caller gives (higher or lower first), then by subject id ascending."""

Side: TypeAlias = Literal["top", "bottom"]
"""Which end a selection counts ranks from."""

CountRounding: TypeAlias = Literal["ceiling", "floor", "half_up", "half_even", "half_down"]
"""How a percentage of a group size becomes a whole count (``half_up`` is 四舍五入)."""

Rank: TypeAlias = int | Decimal
"""A rank: an ``int``, or a ``Decimal`` such as 2.5 under ``average`` ties."""

Lang: TypeAlias = Literal["zh", "en"]

_BETTER: Final = get_args(Better)
_TIES: Final = get_args(TiePolicy)
_TIE_BREAKS: Final = get_args(TieBreak)
_SIDES: Final = get_args(Side)
_COUNT_ROUNDINGS: Final = get_args(CountRounding)
_LANGS: Final = get_args(Lang)
_SECONDARY: Final = ("secondary_higher", "secondary_lower")

_INT64_MAX: Final = int(np.iinfo(np.int64).max)
# Products in the percentile count stay below this, so 2 × remainder cannot overflow.
_SAFE: Final = 2**62

_TIE_NAMES: Final[dict[str, tuple[str, str]]] = {
    "competition": ("并列同名次、后续跳号(1224)", "competition ties (1224)"),
    "dense": ("并列同名次、后续不跳号(1223)", "dense ties (1223)"),
    "ordinal": ("不并列(1234)", "ordinal (1234)"),
    "average": ("并列取平均名次(1, 2.5, 2.5, 4)", "average ties (1, 2.5, 2.5, 4)"),
}
_TIE_BREAK_NAMES: Final[dict[str, tuple[str, str]]] = {
    "subject_asc": ("同分按编号升序", "ties by subject id ascending"),
    "subject_desc": ("同分按编号降序", "ties by subject id descending"),
    "secondary_higher": (
        "同分按次要指标高者在前、再按编号升序",
        "ties by secondary key, higher first, then subject id ascending",
    ),
    "secondary_lower": (
        "同分按次要指标低者在前、再按编号升序",
        "ties by secondary key, lower first, then subject id ascending",
    ),
}
_SCOPE_NAMES: Final[dict[str, tuple[str, str]]] = {
    "province": ("省内", "in province"),
    "region": ("区内", "in region"),
    "city": ("市内", "in city"),
    "branch": ("分行内", "in branch"),
    "sub_branch": ("支行内", "in sub-branch"),
    "department": ("部门内", "in department"),
    "team": ("团队内", "in team"),
}
_COUNT_ROUNDING_NAMES: Final[dict[str, str]] = {
    "ceiling": "向上取整",
    "floor": "向下取整",
    "half_up": "四舍五入",
    "half_even": "四舍六入五成双",
    "half_down": "五舍六入",
}


def _check_lang(lang: object) -> Lang:
    if lang == "zh" or lang == "en":  # noqa: PLR1714 - the fast path of a hot check
        return lang
    one_of("lang", _LANGS)(None, None, lang)
    return lang  # type: ignore[return-value]


# --- the rule ---------------------------------------------------------------------------


@attrs.frozen
class RankingRule:
    """Which way is better and how ties rank; both stated, no default.

    ``tie_break`` is required with ``ties="ordinal"`` and refused with the others,
    whose ranks do not depend on any order among tied subjects.

    >>> RankingRule("higher", "competition").describe("en")
    'higher is better, competition ties (1224)'
    >>> RankingRule("lower", "ordinal")
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.AmbiguousInputError: 'tie_break' must be stated for ties='ordinal':
    one of 'subject_asc', 'subject_desc', 'secondary_higher', 'secondary_lower': None
    """

    better: Better = attrs.field(validator=one_of("better", _BETTER))
    ties: TiePolicy = attrs.field(validator=one_of("ties", _TIES))
    tie_break: TieBreak | None = attrs.field(default=None, kw_only=True)

    @tie_break.validator
    def _check_tie_break(self, _attribute: object, tie_break: object) -> None:
        if self.ties != "ordinal":
            if tie_break is not None:
                raise InvalidValueError(
                    "tie_break",
                    f"applies only to ties='ordinal', not ties={self.ties!r}; leave it out",
                    tie_break,
                )
            return
        if tie_break is None:
            allowed = ", ".join(repr(t) for t in _TIE_BREAKS)
            raise AmbiguousInputError(
                "tie_break", f"must be stated for ties='ordinal': one of {allowed}", tie_break
            )
        one_of("tie_break", _TIE_BREAKS)(self, _attribute, tie_break)

    @property
    def uses_secondary(self) -> bool:
        """Whether ranking needs a secondary key (``tie_break="secondary_…"``)."""
        return self.tie_break in _SECONDARY

    def describe(self, lang: Lang = "en") -> str:
        """The rule in words: ``越高越好，并列同名次、后续跳号(1224)``."""
        index = 0 if _check_lang(lang) == "zh" else 1
        parts = [
            ("越高越好", "higher is better")[index]
            if self.better == "higher"
            else ("越低越好", "lower is better")[index],
            _TIE_NAMES[self.ties][index],
        ]
        if self.tie_break is not None:
            parts.append(_TIE_BREAK_NAMES[self.tie_break][index])
        return ("，" if index == 0 else ", ").join(parts)


# --- the exact path ---------------------------------------------------------------------


@attrs.frozen
class RankedSubject:
    """One subject's place in its group: value, ranks from both ends, group size.

    >>> r = rank({"A": "95", "B": "90"}, RankingRule("higher", "dense"), groups="province")
    >>> r["B"]
    RankedSubject(subject='B', group='province', value=Decimal('90'), rank_from_top=2,
    rank_from_bottom=1, group_size=2)
    """

    subject: str
    group: str
    value: Decimal
    rank_from_top: Rank
    rank_from_bottom: Rank
    group_size: int
    _where: tuple[str, str] | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def where(self) -> tuple[str, str]:
        """Where the subject ranks, as trace notes say it: ``（第3名，倒数第48名，共50）``."""
        where = self._where
        if where is None:  # worded once: an entry never changes
            top, bottom, size = self.rank_from_top, self.rank_from_bottom, self.group_size
            where = (
                f"（第{top}名，倒数第{bottom}名，共{size}）",
                f" (rank {top} of {size}, {bottom} from the bottom)",
            )
            object.__setattr__(self, "_where", where)
        return where

    def rank(self, side: Side) -> Rank:
        """The rank counted from ``side``."""
        if side == "top":
            return self.rank_from_top
        one_of("side", _SIDES)(self, None, side)  # refuses anything but "bottom"
        return self.rank_from_bottom


RankRow: TypeAlias = tuple[str, str, Decimal, Rank, Rank, int]
"""A :class:`RankedSubject`'s fields as a tuple, in order: subject, group, value, rank
from the top, rank from the bottom, group size (``RankedSubject(*row)`` is the entry)."""


def _entries(entries: Iterable[RankedSubject]) -> tuple[RankedSubject, ...]:
    return tuple(entries)


def _index(ranking: Ranking) -> dict[str, RankedSubject]:
    return {entry.subject: entry for entry in ranking.entries}


@attrs.frozen
class Ranking:
    """The ranked subjects of a population, ordered by group, rank and subject id.

    Look a subject up with ``ranking[subject]`` (:class:`UnknownKeyError` if it was
    not ranked); iterate for every :class:`RankedSubject`.

    >>> r = rank({"A": "1.5", "B": "0.8", "C": "0.8"}, RankingRule("lower", "competition"),
    ...          groups={"A": "east", "B": "east", "C": "west"})
    >>> [(s.subject, s.group, s.rank_from_top) for s in r]
    [('B', 'east', 1), ('A', 'east', 2), ('C', 'west', 1)]
    >>> r.groups()
    ('east', 'west')
    """

    rule: RankingRule
    entries: tuple[RankedSubject, ...] = attrs.field(converter=_entries)
    _by_subject: dict[str, RankedSubject] = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_index, takes_self=True)
    )

    def __iter__(self) -> Iterator[RankedSubject]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, subject: object) -> bool:
        return subject in self._by_subject

    def __getitem__(self, subject: str) -> RankedSubject:
        found = self._by_subject.get(subject)
        if found is None:
            raise UnknownKeyError("ranked subject", subject)
        return found

    def groups(self) -> tuple[str, ...]:
        """The group keys that hold at least one ranked subject, sorted."""
        return tuple(sorted({entry.group for entry in self.entries}))

    def group(self, key: str) -> tuple[RankedSubject, ...]:
        """The ranked subjects of group ``key``, best first.

        Raises:
            UnknownKeyError: when no ranked subject is in that group.
        """
        members = tuple(entry for entry in self.entries if entry.group == key)
        if not members:
            raise UnknownKeyError("ranked group", key)
        return members


def _group_map(
    subjects: list[str], groups: Mapping[str, str] | str
) -> tuple[dict[str, str], list[BankKPIError]]:
    if isinstance(groups, str):
        if not groups.strip():
            return {}, [InvalidValueError("groups", "must be a non-empty group key", groups)]
        return dict.fromkeys(subjects, groups), []
    found: dict[str, str] = {}
    errors: list[BankKPIError] = []
    for subject in subjects:
        if subject not in groups:
            errors.append(MissingDataError("group", subject, subject=subject))
            continue
        key = groups[subject]
        if not isinstance(key, str) or not key.strip():
            errors.append(
                InvalidValueError("group", "must be a non-empty string", key, subject=subject)
            )
            continue
        found[subject] = key
    return found, errors


def _decimals(
    values: Mapping[str, object], field: str, subjects: list[str]
) -> tuple[dict[str, Decimal], list[BankKPIError]]:
    found: dict[str, Decimal] = {}
    errors: list[BankKPIError] = []
    for subject in subjects:
        if subject not in values:
            errors.append(MissingDataError(field, subject, subject=subject))
            continue
        try:
            found[subject] = to_decimal(values[subject], field=field, subject=subject)
        except BankKPIError as exc:
            errors.append(exc)
    return found, errors


def _rank_group(
    group: str,
    subjects: list[str],
    values: dict[str, Decimal],
    secondary: dict[str, Decimal],
    rule: RankingRule,
) -> list[RankRow]:
    """Rank one group by the definitions, with stable sorts from the last key to the first."""
    ordered = sorted(subjects, reverse=rule.tie_break == "subject_desc")
    if rule.uses_secondary:
        ordered.sort(key=secondary.__getitem__, reverse=rule.tie_break == "secondary_higher")
    ordered.sort(key=values.__getitem__, reverse=rule.better == "higher")
    ranked = [values[subject] for subject in ordered]
    size = len(ordered)
    # tie blocks: positions where the value changes (sorted, so equal values are adjacent)
    starts = [0, *(i for i in range(1, size) if ranked[i] != ranked[i - 1])]
    ends = [*starts[1:], size]
    blocks = len(starts)
    ties = rule.ties
    result: list[RankRow] = []
    append = result.append
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        first, last = start + 1, end  # 1-based positions of the block
        top: Rank
        bottom: Rank
        if ties == "ordinal":
            for position in range(start, end):
                top = position + 1
                append((ordered[position], group, ranked[position], top, size + 1 - top, size))
            continue
        if ties == "competition":
            top, bottom = first, size - last + 1
        elif ties == "dense":
            top, bottom = index + 1, blocks - index
        else:
            top = CONTEXT.divide(Decimal(first + last), 2)
            bottom = CONTEXT.divide(Decimal(2 * (size + 1) - first - last), 2)
        for position in range(start, end):
            append((ordered[position], group, ranked[position], top, bottom, size))
    return result


def rank(
    values: Mapping[str, DecimalLike],
    rule: RankingRule,
    *,
    groups: Mapping[str, str] | str,
    secondary: Mapping[str, DecimalLike] | None = None,
) -> Ranking:
    """Rank ``values`` (subject id → value) within groups by ``rule``, exactly.

    Args:
        values: each subject's value, already quantized by its indicator; a float is
            refused (:class:`~bankkpi.exceptions.FloatMoneyError`).
        rule: which way is better and how ties rank.
        groups: subject id → group key (region, department, …), or one key for the
            whole population (``groups="province"``). Subjects in the mapping without
            a value are ignored.
        secondary: subject id → secondary key, required exactly when
            ``rule.tie_break`` is ``secondary_higher`` or ``secondary_lower``.

    Returns:
        The :class:`Ranking`; it does not depend on the order of the inputs.

    Raises:
        ValidationErrorGroup: every bad row at once (a value that is not an exact
            number, a subject without a group or secondary key, a blank id).
        InvalidValueError: ``secondary`` given to a rule that does not use it.

    >>> r = rank({"A": "30", "B": "20", "C": "20", "D": "10"},
    ...          RankingRule("higher", "average"), groups="province")
    >>> [str(s.rank_from_top) for s in r], [str(s.rank_from_bottom) for s in r]
    (['1', '2.5', '2.5', '4'], ['4', '2.5', '2.5', '1'])
    """
    return Ranking(
        rule,
        [
            RankedSubject(*row)
            for row in rank_rows(values, rule, groups=groups, secondary=secondary)
        ],
    )


def rank_rows(
    values: Mapping[str, DecimalLike],
    rule: RankingRule,
    *,
    groups: Mapping[str, str] | str,
    secondary: Mapping[str, DecimalLike] | None = None,
) -> list[RankRow]:
    """:func:`rank`'s entries as :data:`RankRow` tuples, in the ranking's order.

    The same checks and errors as :func:`rank`; ``evaluate`` keeps the rows and
    makes :class:`RankedSubject` entries only for the traces it builds.
    """
    if rule.uses_secondary and secondary is None:
        raise AmbiguousInputError(
            "secondary", f"must be given for tie_break={rule.tie_break!r}", secondary
        )
    if not rule.uses_secondary and secondary is not None:
        raise InvalidValueError(
            "secondary",
            f"applies only to tie_break 'secondary_higher' or 'secondary_lower', "
            f"not {rule.tie_break!r}; leave it out",
            "<mapping>",
        )
    errors: list[BankKPIError] = []
    subjects: list[str] = []
    for subject in values:
        if isinstance(subject, str) and subject.strip():
            subjects.append(subject)
        else:
            errors.append(InvalidValueError("subject", "must be a non-empty string", subject))
    exact, value_errors = _decimals(values, "value", subjects)
    group_of, group_errors = _group_map(subjects, groups)
    second: dict[str, Decimal] = {}
    second_errors: list[BankKPIError] = []
    if secondary is not None:
        second, second_errors = _decimals(secondary, "secondary", subjects)
    errors.extend([*value_errors, *group_errors, *second_errors])
    if errors:
        raise ValidationErrorGroup("invalid ranking input", errors)
    members: dict[str, list[str]] = {}
    for subject in subjects:
        members.setdefault(group_of[subject], []).append(subject)
    rows: list[RankRow] = []
    for group in sorted(members):
        rows.extend(_rank_group(group, members[group], exact, second, rule))
    return rows


# --- the array path ---------------------------------------------------------------------


def _readonly(array: NDArray[np.int64]) -> NDArray[np.int64]:
    array.flags.writeable = False
    return array


@attrs.frozen(eq=False)
class RankArrays:
    """Ranks from :func:`rank_arrays` by ``rule``, aligned with its input arrays.

    Ranks are integers scaled by :attr:`denominator`: 1 for every policy but
    ``average``, where it is 2 so that rank 2.5 is stored as 5 (exact). The arrays
    are read-only int64.

    >>> ra = rank_arrays(np.array([30, 20, 20, 10]), RankingRule("higher", "average"),
    ...                  groups=np.zeros(4, dtype=np.int64))
    >>> ra.rank_from_top.tolist(), ra.denominator
    ([2, 5, 5, 8], 2)
    """

    rule: RankingRule
    rank_from_top: NDArray[np.int64] = attrs.field(converter=_readonly)
    rank_from_bottom: NDArray[np.int64] = attrs.field(converter=_readonly)
    group_size: NDArray[np.int64] = attrs.field(converter=_readonly)

    def __reduce__(self) -> tuple[type[RankArrays], tuple[Any, ...]]:
        """Pickled and copied through the constructor: a copy's arrays are read-only too.

        (numpy gives an unpickled or deep-copied array back writeable.)
        """
        return type(self), attrs.astuple(self, recurse=False)

    @property
    def denominator(self) -> int:
        """What the stored ranks are multiplied by: 2 for ``average`` ties, else 1."""
        return 2 if self.rule.ties == "average" else 1

    def rank(self, side: Side) -> NDArray[np.int64]:
        """The scaled ranks counted from ``side``."""
        one_of("side", _SIDES)(self, None, side)
        return self.rank_from_top if side == "top" else self.rank_from_bottom

    def __len__(self) -> int:
        return int(self.group_size.shape[0])


def _int_array(array: object, field: str, length: int | None) -> NDArray[np.int64]:
    if not isinstance(array, np.ndarray):
        raise InvalidValueError(field, "must be a numpy array", type(array).__name__)
    if np.issubdtype(array.dtype, np.floating):
        raise FloatMoneyError(
            field,
            "must be an integer array (counts of the indicator's precision steps), not float; "
            "convert exactly first, e.g. with Indicator.steps()",
            str(array.dtype),
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidValueError(field, "must be an integer array", str(array.dtype))
    if array.ndim != 1:
        raise InvalidValueError(field, "must be one-dimensional", array.shape)
    if length is not None and array.shape[0] != length:
        raise InvalidValueError(field, f"must have the length of values, {length}", array.shape[0])
    if array.dtype == np.uint64 and array.size and int(array.max()) > _INT64_MAX:
        raise OverflowRiskError(f"'{field}' holds values beyond int64: {int(array.max())}")
    return array.astype(np.int64, copy=False)


def _code_array(array: object, field: str, length: int) -> NDArray[np.signedinteger[Any]]:
    """:func:`_int_array`, except that int32 codes stay int32 (half the width)."""
    if isinstance(array, np.ndarray) and array.dtype == np.int32 and array.shape == (length,):
        result: NDArray[np.signedinteger[Any]] = array
        return result
    return _int_array(array, field, length)  # converts, or raises naming what is wrong


def _dense(array: NDArray[np.int64]) -> NDArray[np.int64]:
    """Codes 0, 1, 2, … in the order of the values; equal values share a code."""
    inverse = np.unique(array, return_inverse=True)[1]
    return inverse.reshape(-1).astype(np.int64)


def _sort_keys(
    values: NDArray[np.int64],
    groups: NDArray[np.int64],
    rule: RankingRule,
    subject_codes: NDArray[np.int64] | None,
    secondary: NDArray[np.int64] | None,
) -> list[NDArray[np.int64]]:
    """``np.lexsort`` keys, least significant first: best first within each group."""
    goodness = _dense(values)
    keys: list[NDArray[np.int64]] = [-goodness if rule.better == "higher" else goodness, groups]
    if rule.ties != "ordinal":
        return keys
    assert subject_codes is not None  # noqa: S101 - checked by rank_arrays
    subject_order = _dense(subject_codes)
    if rule.tie_break == "subject_desc":
        return [-subject_order, *keys]
    if rule.tie_break == "subject_asc":
        return [subject_order, *keys]
    assert secondary is not None  # noqa: S101 - checked by rank_arrays
    second = _dense(secondary)
    return [subject_order, -second if rule.tie_break == "secondary_higher" else second, *keys]


_INT63: Final = 2**63 - 1


def _counting_ranks(
    values: NDArray[np.int64], groups: NDArray[np.int64], rule: RankingRule
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] | None:
    """Ranks without sorting, by counting values per (group, value) cell, or ``None``.

    Used when the cells (groups × value span) are few — a province ranked on a
    0–100.00 scale has 10,001 — so one ``bincount`` and one ``cumsum`` over the
    cells replace the sort. ``ordinal`` ties need an order among equals: ``None``.
    """
    if rule.ties == "ordinal":
        return None
    n = int(values.shape[0])
    low, high = int(values.min()), int(values.max())
    first_group, last_group = int(groups.min()), int(groups.max())
    span = high - low + 1
    cells = (last_group - first_group + 1) * span
    if cells > 4 * n + 65_536:
        return None
    goodness = (np.int64(high) - values) if rule.better == "higher" else (values - np.int64(low))
    group = groups - np.int64(first_group)
    cell = group * np.int64(span) + goodness
    counts = np.bincount(cell, minlength=cells).astype(np.int64)
    before = np.cumsum(counts) - counts  # subjects in earlier cells, over all groups
    group_first = group * np.int64(span)
    better = before[cell] - before[group_first]  # strictly better in the same group
    tied = counts[cell]
    sizes = np.bincount(group).astype(np.int64)
    size = sizes[group]
    if rule.ties == "competition":
        return better + 1, size - better - tied + 1, size
    if rule.ties == "average":  # doubled: positions better + 1 .. better + tied
        top = 2 * better + tied + 1
        return top, 2 * (size + 1) - top, size
    distinct = np.cumsum(counts > 0, dtype=np.int64)  # dense
    distinct_before = distinct - (counts > 0)
    top = distinct_before[cell] - distinct_before[group_first] + 1
    group_last = group_first + np.int64(span - 1)
    blocks = distinct[group_last] - distinct_before[group_first]
    return top, blocks - top + 1, size


def _fast_order(
    values: NDArray[np.int64], groups: NDArray[np.int64], rule: RankingRule
) -> NDArray[np.int64] | None:
    """Best-first order within groups from one sort of packed int64 keys, or ``None``.

    For every policy but ``ordinal`` the order among tied subjects does not change
    their ranks, so group and goodness pack into one key ``group × span + goodness``;
    with the row index in the low bits, a plain ``np.sort`` (much faster than
    ``argsort`` or ``lexsort``) gives the order. ``None`` when the keys would not fit
    in int64: the caller then uses ``np.lexsort``.
    """
    if rule.ties == "ordinal":
        return None
    n = int(values.shape[0])
    low, high = int(values.min()), int(values.max())
    first_group, last_group = int(groups.min()), int(groups.max())
    span = high - low + 1
    index_bits = max(n - 1, 1).bit_length()
    largest_key = (last_group - first_group + 1) * span - 1
    if (largest_key << index_bits) > _INT63:
        return None
    goodness = (np.int64(high) - values) if rule.better == "higher" else (values - np.int64(low))
    packed = (groups - np.int64(first_group)) * np.int64(span) + goodness
    packed <<= np.int64(index_bits)
    packed |= np.arange(n, dtype=np.int64)
    packed.sort()
    order: NDArray[np.int64] = packed & np.int64((1 << index_bits) - 1)
    return order


def rank_arrays(
    values: NDArray[np.integer[Any]],
    rule: RankingRule,
    *,
    groups: NDArray[np.integer[Any]],
    subject_codes: NDArray[np.integer[Any]] | None = None,
    secondary: NDArray[np.integer[Any]] | None = None,
) -> RankArrays:
    """Rank integer-coded values within integer-coded groups, vectorised; same as :func:`rank`.

    Only order and equality of the codes matter, so code a Decimal value as its
    count of the indicator's precision steps (91.50 on a 0.01 indicator is 9150) and
    a group as any integer. Sorting is one ``np.sort`` of packed int64 keys (or one
    ``np.lexsort`` when they would not fit, and for ``ordinal`` ties); group and
    tie-block boundaries come from comparing neighbours: no Python loop over subjects.

    Args:
        values: int values, one per subject (floats are refused).
        rule: the same rule as on the exact path.
        groups: int group code per subject.
        subject_codes: unique ints ordered as the subject ids (e.g. each id's
            position in ``sorted(ids)``); required when ``rule.ties="ordinal"``,
            ignored otherwise.
        secondary: int-coded secondary key, required exactly when the rule's
            tie-break uses one.

    Returns:
        :class:`RankArrays` aligned with the inputs.

    >>> ra = rank_arrays(np.array([30, 20, 20, 10]), RankingRule("higher", "competition"),
    ...                  groups=np.array([0, 0, 0, 0]))
    >>> ra.rank_from_top.tolist(), ra.rank_from_bottom.tolist(), ra.group_size.tolist()
    ([1, 2, 2, 4], [4, 2, 2, 1], [4, 4, 4, 4])
    """
    vals, grps, codes, second = _array_inputs(values, rule, groups, subject_codes, secondary)
    n = int(vals.shape[0])
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return RankArrays(rule, empty, empty.copy(), empty.copy())
    counted = _counting_ranks(vals, grps, rule)
    if counted is not None:
        return RankArrays(rule, *counted)
    order = _fast_order(vals, grps, rule)
    if order is None:
        order = np.lexsort(_sort_keys(vals, grps, rule, codes, second))
    top, bottom, size = _sorted_ranks(grps[order], vals[order], rule.ties)
    rank_from_top = np.empty(n, dtype=np.int64)
    rank_from_bottom = np.empty(n, dtype=np.int64)
    group_size = np.empty(n, dtype=np.int64)
    rank_from_top[order] = top
    rank_from_bottom[order] = bottom
    group_size[order] = size
    return RankArrays(rule, rank_from_top, rank_from_bottom, group_size)


Rows: TypeAlias = NDArray[np.intp] | slice
"""Some rows of a population: their indices, or a slice."""


_Kept: TypeAlias = tuple[NDArray[np.signedinteger[Any]], NDArray[np.bool_]]
"""A cut-off table and some rows' comparison with it (see :meth:`RankSource.mask`)."""


@attrs.frozen(eq=False)
class RankSource:
    """A ranking's inputs on the array path; ranks and selections computed on demand.

    :meth:`arrays` gives the full :class:`RankArrays` (what :func:`rank_arrays`
    computes, once). :meth:`mask` answers a :class:`Top`, :class:`Bottom`,
    :class:`RankRange` or :class:`Percentile` selection under ``competition`` or
    ``dense`` ties *without* ranking every subject: under competition ties a
    subject's rank from the top is at most ``last`` exactly when its value is at
    least as good as the ``last``-th best value of its group counted with repeats,
    and at least ``first`` exactly when it is worse than the ``first − 1``-th (under
    dense ties, among distinct values). A selection needs only those cut-off values
    per group: from a ``bincount`` over (group, value) cells when they are few, else
    from one sort of packed ``group × span + value`` keys (no row indices, nothing
    scattered back). ``average`` and ``ordinal`` ties use the full ranks.

    ``groups`` are non-negative int codes (``None``: one group). Results are cached
    in the instance, a memo of pure computations on its inputs: the arrays given
    must not change afterwards (they are used as given, not copied; evaluate_arrays
    gives it copies of its own).

    >>> source = RankSource(RankingRule("higher", "competition"),
    ...                     np.array([30, 20, 20, 10, 5]), np.array([0, 0, 0, 0, 1]))
    >>> source.mask(Top(2)).tolist(), source.mask(Bottom(1)).tolist()
    ([True, True, True, False, True], [False, False, False, True, True])
    >>> source.arrays().rank_from_top.tolist()
    [1, 2, 2, 4, 1]
    """

    rule: RankingRule
    values: NDArray[np.int64]
    groups: NDArray[np.signedinteger[Any]] | None = None
    """Group codes, int32 (kept as they are) or any ints (as int64)."""
    subject_codes: NDArray[np.int64] | None = None
    secondary: NDArray[np.int64] | None = None
    group_sizes: NDArray[np.int64] | None = attrs.field(default=None, kw_only=True)
    """Subjects per group code (``bincount(groups)``), when the caller has them."""
    workspace: Workspace | None = attrs.field(default=None, kw_only=True, repr=False)
    """Memory for the arrays as long as the population: its offsets and sorted keys."""
    _memo: dict[object, Any] = attrs.field(factory=dict, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        values = _int_array(self.values, "values", None)
        n = int(values.shape[0])
        object.__setattr__(self, "values", values)
        if self.groups is not None:
            object.__setattr__(self, "groups", _code_array(self.groups, "groups", n))
        if self.group_sizes is not None and self.groups is not None:
            sizes = _int_array(self.group_sizes, "group_sizes", None)
            if n and sizes.shape[0] != int(self.groups.max()) + 1:
                raise InvalidValueError(
                    "group_sizes", "must hold one count per group code", sizes.shape[0]
                )
            object.__setattr__(self, "group_sizes", sizes)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def release_workspace(self) -> None:
        """Forget :attr:`workspace`: arrays made from now on are new (its lent ones stay)."""
        object.__setattr__(self, "workspace", None)  # a cache's setting, not a value

    def arrays(self) -> RankArrays:
        """The full ranks (computed once)."""
        if "arrays" not in self._memo:
            self._memo["arrays"] = rank_arrays(
                self.values,
                self.rule,
                groups=self._codes(),
                subject_codes=self.subject_codes,
                secondary=self.secondary,
            )
        result: RankArrays = self._memo["arrays"]
        return result

    def mask(
        self,
        selection: Selection,
        rows: Rows | None = None,
        *,
        kept: dict[int, _Kept] | None = None,
    ) -> NDArray[np.bool_]:
        """``selection.mask(self.arrays())``, from cut-off values where it can.

        ``rows`` (indices or a slice) computes only those rows of the mask: a
        thread's block of rows, or the few rows of a branch. ``kept`` (with
        ``rows``; a :class:`RankView` passes its own) keeps the rows' comparisons
        with each cut-off for later calls on the same rows: two selections that
        share a cut-off (the top 200 in two rules; rank 1 and rank 2, both bounded
        by rank 1's cut-off) compare once.
        """
        if not self._by_cutoffs():
            full = self._full_mask(selection)  # kept: each caller gets its own copy
            return full[slice(None) if rows is None else rows].copy()
        if rows is None:  # the whole population: masks kept for every use
            within, beyond = self._bounds(selection)
            return within.copy() if beyond is None else within & ~beyond
        largest, last, before = self._window_cuts(selection)
        inside = self._rows_as_good(rows, last, largest, kept)
        if before is not None:
            return inside & ~self._rows_as_good(rows, before, largest, kept)
        return inside if kept is None else inside.copy()  # each caller gets its own

    def prepare(self, selection: Selection) -> None:
        """Compute the cut-offs :meth:`mask` needs for ``selection`` now (before threads)."""
        if self._by_cutoffs():
            self._window_cuts(selection)
        else:
            self._full_mask(selection)

    def _window_cuts(
        self, selection: Selection
    ) -> tuple[bool, NDArray[np.signedinteger[Any]], NDArray[np.signedinteger[Any]] | None]:
        """A window's cut-offs per group, as offsets from the lowest value.

        Whether best is largest; the cut-off of the window's last rank; and that of
        the rank before its first (``None`` for a window from rank 1). The window
        holds the rows as good as the first and not as good as the second.
        """
        largest, last, before = self._window_ranks(selection)
        cut = None if before is None else self._cut_table(largest, before)
        return largest, self._cut_table(largest, last), cut

    def _window_ranks(
        self, selection: Selection
    ) -> tuple[bool, int | NDArray[np.int64], int | NDArray[np.int64] | None]:
        """A window's ranks per group, for :meth:`_cut_table` (no cut-off computed).

        Whether best is largest; the window's last rank; and the rank before its
        first (``None`` for a window from rank 1).
        """
        first, last = selection._window_arrays(self._sizes())  # noqa: SLF001 - same module
        largest = (selection._side() == "top") == (self.rule.better == "higher")  # noqa: SLF001
        before = None if isinstance(first, int) and first <= 1 else first - 1
        return largest, last, before

    def _bounds(self, selection: Selection) -> tuple[NDArray[np.bool_], NDArray[np.bool_] | None]:
        """The rows a window needs: as good as its last rank, and as its first − 1.

        The window is the first less the second (``None`` when it starts at rank 1).
        """
        first, last = selection._window_arrays(self._sizes())  # noqa: SLF001 - same module
        largest = (selection._side() == "top") == (self.rule.better == "higher")  # noqa: SLF001
        within = self._at_least_as_good(largest, last)
        if isinstance(first, int) and first <= 1:
            return within, None
        return within, self._at_least_as_good(largest, first - 1)

    # -- internals --------------------------------------------------------------------

    def _full_mask(self, selection: Selection) -> NDArray[np.bool_]:
        """``selection.mask`` of the full ranks, once per selection (blocks slice it)."""
        key = ("mask", selection)
        if key not in self._memo:
            self._memo[key] = selection.mask(self.arrays())
        result: NDArray[np.bool_] = self._memo[key]
        return result

    def _by_cutoffs(self) -> bool:
        if "by_cutoffs" not in self._memo:
            if self.rule.ties not in ("competition", "dense") or len(self) == 0:
                self._memo["by_cutoffs"] = False
            else:  # packed (group, offset) keys and their sentinels must fit in int64
                self._memo["by_cutoffs"] = (
                    self.groups is None or int(self.groups.min()) >= 0
                ) and self._cells() < 2**62
        result: bool = self._memo["by_cutoffs"]
        return result

    def _cells(self) -> int:
        """How many (group code, value) cells the values span: codes × (high − low + 1).

        Only for non-negative group codes (:meth:`_sizes` counts them).
        """
        low, high = self._range()
        return int(self._sizes().shape[0]) * (high - low + 1)

    def _range(self) -> tuple[int, int]:
        if "range" not in self._memo:
            self._memo["range"] = (int(self.values.min()), int(self.values.max()))
        result: tuple[int, int] = self._memo["range"]
        return result

    def _codes(self) -> NDArray[np.int64]:
        return np.zeros(len(self), dtype=np.int64) if self.groups is None else self.groups

    def _sizes(self) -> NDArray[np.int64]:
        """Subjects per group code."""
        if "sizes" not in self._memo:
            if self.groups is None:
                self._memo["sizes"] = np.array([len(self)], dtype=np.int64)
            elif self.group_sizes is not None:
                self._memo["sizes"] = self.group_sizes
            else:
                self._memo["sizes"] = np.bincount(self.groups).astype(np.int64)
        result: NDArray[np.int64] = self._memo["sizes"]
        return result

    def _at_least_as_good(self, largest: bool, j: int | NDArray[np.int64]) -> NDArray[np.bool_]:
        """Rows at least as good as the ``j``-th best value of their group.

        Best is the largest value when ``largest``, else the smallest; the ``j``-th
        counts repeats (competition) or distinct values (dense). ``j ≤ 0`` selects
        nobody; ``j`` past the group's values selects everybody.
        """
        key = ("rows", largest, j if isinstance(j, int) else j.tobytes())
        if key not in self._memo:
            self._memo[key] = self._as_good_rows(None, self._cut_table(largest, j), largest)
        result: NDArray[np.bool_] = self._memo[key]
        return result

    def _rows_as_good(
        self,
        rows: Rows,
        cut: NDArray[np.signedinteger[Any]],
        largest: bool,
        kept: dict[int, _Kept] | None,
    ) -> NDArray[np.bool_]:
        """:meth:`_as_good_rows`, kept in ``kept`` by cut-off table (``None``: not kept).

        Each entry holds its table, so the table's ``id`` names no other while the
        entry lives (two threads racing to compute the same table may each store
        one; the entry keeps the one it compared with).
        """
        if kept is None:
            return self._as_good_rows(rows, cut, largest)
        key = id(cut) if largest else ~id(cut)
        entry = kept.get(key)
        if entry is None or entry[0] is not cut:
            entry = kept[key] = (cut, self._as_good_rows(rows, cut, largest))
        return entry[1]

    def _as_good_rows(
        self,
        rows: Rows | None,
        cut: NDArray[np.signedinteger[Any]],
        largest: bool,
        *,
        out: NDArray[np.bool_] | None = None,
        buffer: NDArray[np.signedinteger[Any]] | None = None,
    ) -> NDArray[np.bool_]:
        """The ``rows`` (all: ``None``) at least as good as their group's cut-off.

        One group compares the values themselves with one threshold (no offsets
        array); several gather each row's cut-off by its group code. ``out`` (one
        bool per row) and ``buffer`` (at least one per row, in :meth:`_width`) are
        the caller's to reuse, block after block; else new.
        """
        if self.groups is None:
            low, high = self._range()
            values = self.values if rows is None else self.values[rows]
            if out is None:
                out = np.empty(values.shape, dtype=np.bool_)
            threshold = self._threshold(cut)
            if largest:
                if threshold > high or threshold <= low:
                    out.fill(threshold <= low)
                    return out
                return np.greater_equal(values, threshold, out=out)
            if threshold < low or threshold >= high:
                out.fill(threshold >= high)
                return out
            return np.less_equal(values, threshold, out=out)
        offsets, codes = self._small()
        assert codes is not None  # noqa: S101 - several groups have codes
        if rows is not None:
            offsets, codes = offsets[rows], codes[rows]
        return _as_good(offsets, codes, cut, largest, out=out, buffer=buffer)

    def _threshold(self, cut: NDArray[np.signedinteger[Any]]) -> int:
        """One group's cut-off as a value, for a ranking of the whole population.

        A row is as good as the cut-off where its value is at least (largest best)
        or at most the threshold. Within ``[low − 1, high + 1]`` (the sentinels
        select everybody or nobody): it may pass int64.
        """
        return int(cut[0]) + self._range()[0]

    def _cut_table(
        self, largest: bool, j: int | NDArray[np.int64]
    ) -> NDArray[np.signedinteger[Any]]:
        """:meth:`_cutoffs` in the offsets' int type."""
        if isinstance(j, int):  # 0 selects nobody, past the population everybody
            j = max(0, min(j, len(self) + 1))
        key = ("cut", largest, j if isinstance(j, int) else j.tobytes())
        if key not in self._memo:
            self._memo[key] = self._cutoffs(largest, j).astype(self._offset_width())
        result: NDArray[np.signedinteger[Any]] = self._memo[key]
        return result

    def _width(self) -> np.dtype[np.signedinteger[Any]]:
        """int32 when every (group, value) cell and both sentinels fit in it, else int64."""
        if "width" not in self._memo:
            low, high = self._range()
            fits = self._cells() < 2**31 - 1 and low >= -(2**31) and high < 2**31
            self._memo["width"] = np.dtype(np.int32 if fits else np.int64)
        result: np.dtype[np.signedinteger[Any]] = self._memo["width"]
        return result

    def _offset_width(self) -> np.dtype[np.signedinteger[Any]]:
        """The offsets' and cut-offs' type: int16 when both sentinels fit, else :meth:`_width`.

        The sentinels are one past either end of the offsets: −1 and ``span``.
        """
        low, high = self._range()
        return np.dtype(np.int16) if high - low + 1 < 2**15 else self._width()

    def _small(
        self,
    ) -> tuple[NDArray[np.signedinteger[Any]], NDArray[np.signedinteger[Any]] | None]:
        """Values as offsets from the lowest, and group codes, in the narrowest int types.

        Offsets in :meth:`_offset_width` (int16 for a score of 0.00–100.00), codes in
        :meth:`_width` (int32 when every (group, value) cell and the sentinels one
        past either end, offsets −1 and ``span``, fit in it): a quarter or half the
        memory traffic of int64 for every gather and comparison.
        """
        if "small" not in self._memo:
            low = self._range()[0]
            small = self._offset_width()
            offsets = self._empty(small)
            np.subtract(self.values, low, out=offsets, casting="unsafe")  # within 0 … span − 1
            width = self._width()
            codes = None if self.groups is None else self.groups.astype(width, copy=False)
            self._memo["small"] = (offsets, codes)
        result: tuple[NDArray[np.signedinteger[Any]], NDArray[np.signedinteger[Any]] | None] = (
            self._memo["small"]
        )
        return result

    def _cutoffs(self, largest: bool, j: int | NDArray[np.int64]) -> NDArray[np.int64]:
        """Per group code, the ``j``-th best value as an offset from the lowest value.

        Past either end, a sentinel one past the values' offsets: ``span`` (above
        the highest) or −1 (below the lowest), whichever selects nobody (``j ≤ 0``)
        or everybody (``j`` past the group's count). One ``j`` for every group (an
        int) makes few arrays as long as the groups: with 200,000 regions each is
        1.6 MB, and new memory costs more than the work on it.
        """
        low, high = self._range()
        starts, counts = self._counts()
        above, below = high - low + 1, -1
        nobody, everybody = (above, below) if largest else (below, above)
        if not isinstance(j, int):
            wanted = np.broadcast_to(np.asarray(j, dtype=np.int64), counts.shape)
            inside = (wanted >= 1) & (wanted <= counts)
            nth = np.where(largest, counts - wanted + 1, wanted)  # k-th smallest, 1-based
            offsets = self._kth_smallest(starts, np.where(inside, nth, 1))
            cut = np.where(inside, offsets, np.where(wanted <= 0, nobody, everybody))
            return np.asarray(cut, dtype=np.int64)
        if j <= 0:
            return np.full(counts.shape[0], nobody, dtype=np.int64)
        outside = counts < j  # fewer values than j: everybody is as good
        if largest:  # the j-th largest is the (count − j + 1)-th smallest
            smallest = counts - np.int64(j - 1)
            np.maximum(smallest, 1, out=smallest)  # outside: any rank (replaced below)
            cut = self._kth_smallest(starts, smallest)
        else:  # outside: past the group's values (replaced below)
            cut = self._kth_smallest(starts, j)
        np.putmask(cut, outside, everybody)
        return cut

    def _counts(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Per group code: where its values start in the ordered store, and how many.

        The store holds each group's values in ascending order — every value under
        competition ties, the distinct ones under dense ties — as a running count
        over (group, value) cells or as sorted packed keys.
        """
        if "counts" in self._memo:
            result: tuple[NDArray[np.int64], NDArray[np.int64]] = self._memo["counts"]
            return result
        low, high = self._range()
        span = high - low + 1
        n_groups = int(self._sizes().shape[0])
        dense = self.rule.ties == "dense"
        limit = 4 * len(self) + 65_536
        if n_groups * span <= limit:
            if self.groups is None and low >= 0 and high < limit:  # counted as they are
                tally = fx.bincount(self.values, minlength=high + 1)[low:]
            else:
                tally = np.bincount(self._cell_keys(), minlength=n_groups * span)
            running = np.cumsum(tally > 0 if dense else tally, dtype=np.int64)
            ends = running[span - 1 :: span]
            self._memo["store"] = ("running", running, span)
        else:
            packed = self._cell_keys()
            if self.groups is None:  # the keys are the offsets themselves: sort a copy
                packed, offsets = self._empty(packed.dtype), packed
                packed[...] = offsets
            packed.sort()
            if dense:
                keep = np.ones(packed.shape[0], dtype=np.bool_)
                keep[1:] = packed[1:] != packed[:-1]
                packed = packed[keep]
                bounds = np.arange(1, n_groups, dtype=np.int64) * np.int64(span)  # groups 1 …
                ends = np.append(
                    np.searchsorted(packed, bounds.astype(packed.dtype)), packed.shape[0]
                ).astype(np.int64)
            else:  # every value is stored: a group's run is as long as the group
                ends = np.cumsum(self._sizes(), dtype=np.int64)
            self._memo["store"] = ("sorted", packed, span)
        starts = np.empty(ends.shape[0], dtype=np.int64)  # each group's first place
        starts[:1] = 0
        starts[1:] = ends[:-1]
        counts = ends - starts
        self._memo["counts"] = (starts, counts)
        return starts, counts

    def _cell_keys(self) -> NDArray[np.signedinteger[Any]]:
        """Each row's (group, value) cell, ``group × span + offset`` (one group: the offset)."""
        offsets, codes = self._small()
        if codes is None:
            return offsets
        low, high = self._range()
        keys = self._empty(codes.dtype)
        np.multiply(codes, np.array(high - low + 1, dtype=codes.dtype), out=keys)
        keys += offsets  # in the codes' type, which holds every cell
        return keys

    def _empty(self, dtype: np.dtype[np.signedinteger[Any]]) -> NDArray[np.signedinteger[Any]]:
        """A new array of one ``dtype`` item per row, from :attr:`workspace` if any."""
        return lend(self.workspace, len(self), dtype)

    def _kth_smallest(
        self, starts: NDArray[np.int64], nth: int | NDArray[np.int64]
    ) -> NDArray[np.int64]:
        """Per group, its ``nth`` smallest stored value (1-based), as an offset from the lowest.

        An ``nth`` (at least 1) past a group's values gives a value of no use, never
        an error.
        """
        kind, store, span = self._memo["store"]
        bases = np.arange(starts.shape[0], dtype=np.int64)
        bases *= np.int64(span)  # each group's first cell
        if kind == "running":  # the first cell whose running count reaches the wanted one
            cell = np.searchsorted(store, starts + nth, side="left").astype(np.int64, copy=False)
        else:
            cell = starts + nth
            cell -= 1
            np.minimum(cell, max(store.shape[0] - 1, 0), out=cell)
            np.subtract(np.take(store, cell), bases, out=cell)
            return cell
        cell -= bases
        return cell


def known_range(source: RankSource, low: int, high: int) -> RankSource:
    """``source``, told the least and greatest of its values (a pass over them fewer).

    For :func:`bankkpi.vector.evaluate_arrays`, which knows them from reading the
    column (:attr:`~bankkpi.vector.Counts.span`); not part of the public API, as a
    wrong range would give wrong selections.
    """
    if len(source):
        source._memo.setdefault("range", (low, high))  # noqa: SLF001 - this module's class
    return source


_GATHER_ROWS: Final = 1 << 16
"""Rows per step of :func:`_as_good`: its gathered cut-offs stay in the cache."""


def _as_good(
    offsets: NDArray[np.signedinteger[Any]],
    codes: NDArray[np.signedinteger[Any]],
    cut: NDArray[np.signedinteger[Any]],
    largest: bool,
    *,
    out: NDArray[np.bool_] | None = None,
    buffer: NDArray[np.signedinteger[Any]] | None = None,
) -> NDArray[np.bool_]:
    """Rows whose value is at least as good as their group's cut-off.

    ``offsets`` and ``cut`` share one int type. The cut-offs are gathered a step of
    rows at a time into one small buffer, not into a fresh array as long as the
    population (page faults cost more than the gather itself). ``out`` and
    ``buffer`` (``cut``'s type, any length): the caller's, else new.
    """
    n = int(offsets.shape[0])
    if out is None:
        out = np.empty(n, dtype=np.bool_)
    compare = np.greater_equal if largest else np.less_equal
    if buffer is None or buffer.shape[0] == 0:
        buffer = np.empty(min(n, _GATHER_ROWS), dtype=cut.dtype)
    step = max(1, min(_GATHER_ROWS, int(buffer.shape[0])))
    for start in range(0, n, step):
        stop = min(n, start + step)
        part = buffer[: stop - start]
        # every code is a valid index: "clip" never clips, and unlike the default
        # "raise" it writes into ``out`` directly instead of through a buffer
        np.take(cut, codes[start:stop], out=part, mode="clip")
        compare(offsets[start:stop], part, out=out[start:stop])
    return out


@attrs.frozen(eq=False)
class RankView:
    """Some rows of a ranking of a larger population; ranks stay the population's.

    What a branch of a formula sees when it is evaluated on only the rows that
    take it (see :meth:`bankkpi.vector.ArrayContext.subset`).
    """

    source: RankSource | RankArrays
    rows: Rows
    _kept: dict[int, _Kept] = attrs.field(factory=dict, init=False, repr=False)
    """These rows' comparisons with the source's cut-offs (see :meth:`RankSource.mask`)."""

    def __len__(self) -> int:
        if isinstance(self.rows, slice):
            return len(range(*self.rows.indices(len(self.source))))
        return int(self.rows.shape[0])

    def arrays(self) -> RankArrays:
        """The population's ranks of these rows."""
        full = self.source.arrays() if isinstance(self.source, RankSource) else self.source
        return RankArrays(
            full.rule,
            full.rank_from_top[self.rows],
            full.rank_from_bottom[self.rows],
            full.group_size[self.rows],
        )

    def mask(self, selection: Selection) -> NDArray[np.bool_]:
        """The selection over the population, read at these rows."""
        if isinstance(self.source, RankSource):
            return self.source.mask(selection, self.rows, kept=self._kept)
        return selection.mask(self.source)[self.rows]

    def take(self, rows: NDArray[np.intp]) -> RankView:
        """A view of some of these rows."""
        if isinstance(self.rows, slice):
            start, _stop, step = self.rows.indices(len(self.source))
            return RankView(self.source, start + step * np.asarray(rows, dtype=np.intp))
        return RankView(self.source, self.rows[rows])


def _array_inputs(
    values: object,
    rule: RankingRule,
    groups: object,
    subject_codes: object,
    secondary: object,
) -> tuple[
    NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None, NDArray[np.int64] | None
]:
    """Check and convert :func:`rank_arrays`' inputs to int64."""
    vals = _int_array(values, "values", None)
    n = int(vals.shape[0])
    grps = _int_array(groups, "groups", n)
    codes: NDArray[np.int64] | None = None
    if rule.ties == "ordinal":
        if subject_codes is None:
            raise AmbiguousInputError(
                "subject_codes", "must be given for ties='ordinal'", subject_codes
            )
        codes = _int_array(subject_codes, "subject_codes", n)
        if np.unique(codes).shape[0] != n:
            raise DuplicateError("subject_codes", "must be unique, one per subject", "<array>")
    second: NDArray[np.int64] | None = None
    if rule.uses_secondary:
        if secondary is None:
            raise AmbiguousInputError(
                "secondary", f"must be given for tie_break={rule.tie_break!r}", secondary
            )
        second = _int_array(secondary, "secondary", n)
    elif secondary is not None:
        raise InvalidValueError(
            "secondary",
            f"applies only to tie_break 'secondary_higher' or 'secondary_lower', "
            f"not {rule.tie_break!r}; leave it out",
            "<array>",
        )
    return vals, grps, codes, second


def _sorted_ranks(
    groups: NDArray[np.int64], values: NDArray[np.int64], ties: TiePolicy
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Ranks from top and bottom and group sizes of subjects sorted best first per group.

    A group starts where the group code changes, a tie block where the group or the
    value changes; ranks follow from each subject's offsets in its group and block.
    """
    n = int(values.shape[0])
    new_group = np.ones(n, dtype=np.bool_)
    new_group[1:] = groups[1:] != groups[:-1]
    new_block = new_group.copy()
    new_block[1:] |= values[1:] != values[:-1]

    group_starts = np.flatnonzero(new_group)
    group_lengths = np.diff(np.append(group_starts, n))
    size = np.repeat(group_lengths, group_lengths).astype(np.int64)
    group_start = np.repeat(group_starts, group_lengths).astype(np.int64)

    block_starts = np.flatnonzero(new_block)
    block_lengths = np.diff(np.append(block_starts, n))
    block_first = np.repeat(block_starts, block_lengths).astype(np.int64) - group_start
    block_last = block_first + np.repeat(block_lengths, block_lengths).astype(np.int64) - 1

    if ties == "competition":
        top = block_first + 1
        return top, size - block_last, size
    if ties == "dense":
        block_number = np.cumsum(new_block, dtype=np.int64) - 1
        top = block_number - block_number[group_start] + 1
        blocks_in_group = np.add.reduceat(new_block.astype(np.int64), group_starts)
        return top, np.repeat(blocks_in_group, group_lengths).astype(np.int64) - top + 1, size
    if ties == "ordinal":
        top = np.arange(n, dtype=np.int64) - group_start + 1
        return top, size + 1 - top, size
    top = block_first + block_last + 2
    return top, 2 * (size + 1) - top, size


# --- selections -------------------------------------------------------------------------


def _positive(field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidValueError(field, "must be a positive integer", value)

    return check


def _scope_check(_instance: object, _attribute: object, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise InvalidValueError("scope", "must be a non-empty string or None", value)


def _scope_words(scope: str | None, lang: Lang) -> str:
    if scope is None:
        return ""
    zh, en = _SCOPE_NAMES.get(scope, (f"{scope}内", f"in {scope}"))
    return zh if lang == "zh" else f" {en}"


def _percent(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="percent")


class _Window:
    """Shared behaviour: a selection is "rank from ``side`` within [first, last]"."""

    __slots__ = ()

    def _side(self) -> Side:
        raise NotImplementedError

    def _window(self, group_size: int) -> tuple[int, int]:
        raise NotImplementedError

    def _window_arrays(
        self, group_size: NDArray[np.int64]
    ) -> tuple[int | NDArray[np.int64], int | NDArray[np.int64]]:
        raise NotImplementedError

    def contains(self, ranked: RankedSubject) -> bool:
        """Whether ``ranked`` is selected (ties at the cut-off are inside)."""
        first, last = self._window(ranked.group_size)
        side = self._side()
        if side == "top" and type(ranked) is RankedSubject:
            return first <= ranked.rank_from_top <= last
        if side == "bottom" and type(ranked) is RankedSubject:
            return first <= ranked.rank_from_bottom <= last
        return first <= ranked.rank(side) <= last

    def select(self, ranking: Ranking) -> tuple[str, ...]:
        """The selected subject ids, in the ranking's order (group, rank, id)."""
        return tuple(entry.subject for entry in ranking if self.contains(entry))

    def mask(self, arrays: RankArrays) -> NDArray[np.bool_]:
        """The selection as a boolean array aligned with :func:`rank_arrays`' input."""
        first, last = self._window_arrays(arrays.group_size)
        ranks = arrays.rank(self._side())
        scale = arrays.denominator
        result: NDArray[np.bool_] = (ranks >= _scaled(first, scale)) & (
            ranks <= _scaled(last, scale)
        )
        return result


def _scaled(bound: int | NDArray[np.int64], scale: int) -> np.int64 | NDArray[np.int64]:
    """A rank bound times ``scale`` in int64; a bound past any possible rank is clipped.

    Array bounds are percentile counts, never above their group size.
    """
    if isinstance(bound, int):
        return np.int64(min(bound, _INT64_MAX // scale) * scale)
    result: NDArray[np.int64] = bound * scale
    return result


@attrs.frozen
class Top(_Window):
    """The best ``n`` of each group (前N名): rank from the top ≤ ``n``.

    >>> Top(200, scope="province").describe("zh"), Top(5, scope="department").describe("en")
    ('省内前200名', 'top 5 in department')
    """

    n: int = attrs.field(validator=_positive("n"))
    scope: str | None = attrs.field(default=None, kw_only=True, validator=_scope_check)

    def _side(self) -> Side:
        return "top"

    def contains(self, ranked: RankedSubject) -> bool:
        """Whether ``ranked`` is selected (ties at the cut-off are inside)."""
        if type(ranked) is RankedSubject:
            return 1 <= ranked.rank_from_top <= self.n
        return _Window.contains(self, ranked)

    def _window(self, group_size: int) -> tuple[int, int]:  # noqa: ARG002 - one signature
        return 1, self.n

    def _window_arrays(self, group_size: NDArray[np.int64]) -> tuple[int, int]:  # noqa: ARG002
        return 1, self.n

    def describe(self, lang: Lang = "en") -> str:
        """``省内前200名`` / ``top 200 in province``."""
        if _check_lang(lang) == "zh":
            return f"{_scope_words(self.scope, lang)}前{self.n}名"
        return f"top {self.n}{_scope_words(self.scope, lang)}"


@attrs.frozen
class Bottom(_Window):
    """The worst ``n`` of each group (倒数后N名): rank from the bottom ≤ ``n``.

    >>> Bottom(100, scope="province").describe("zh"), Bottom(2, scope="region").describe("en")
    ('省内倒数后100名', 'bottom 2 in region')
    """

    n: int = attrs.field(validator=_positive("n"))
    scope: str | None = attrs.field(default=None, kw_only=True, validator=_scope_check)

    def _side(self) -> Side:
        return "bottom"

    def contains(self, ranked: RankedSubject) -> bool:
        """Whether ``ranked`` is selected (ties at the cut-off are inside)."""
        if type(ranked) is RankedSubject:
            return 1 <= ranked.rank_from_bottom <= self.n
        return _Window.contains(self, ranked)

    def _window(self, group_size: int) -> tuple[int, int]:  # noqa: ARG002 - one signature
        return 1, self.n

    def _window_arrays(self, group_size: NDArray[np.int64]) -> tuple[int, int]:  # noqa: ARG002
        return 1, self.n

    def describe(self, lang: Lang = "en") -> str:
        """``省内倒数后100名`` / ``bottom 100 in province``."""
        if _check_lang(lang) == "zh":
            return f"{_scope_words(self.scope, lang)}倒数后{self.n}名"
        return f"bottom {self.n}{_scope_words(self.scope, lang)}"


@attrs.frozen
class RankRange(_Window):
    """Ranks ``first`` to ``last`` (both included) counted from ``side``.

    "Bottom 101–200" (倒数第101–200名) is ``RankRange("bottom", 101, 200)``; the
    second-lowest outlet is ``RankRange("bottom", 2, 2)``.

    >>> RankRange("bottom", 101, 200).describe("zh"), RankRange("bottom", 101, 200).describe("en")
    ('倒数第101–200名', 'bottom 101–200')
    >>> RankRange("top", 3, 2)
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.InvalidValueError: 'last' must be >= first 3: 2
    """

    side: Side = attrs.field(validator=one_of("side", _SIDES))
    first: int = attrs.field(validator=_positive("first"))
    last: int = attrs.field(validator=_positive("last"))
    scope: str | None = attrs.field(default=None, kw_only=True, validator=_scope_check)

    def __attrs_post_init__(self) -> None:
        if self.last < self.first:
            raise InvalidValueError("last", f"must be >= first {self.first}", self.last)

    def _side(self) -> Side:
        return self.side

    def contains(self, ranked: RankedSubject) -> bool:
        """Whether ``ranked`` is selected (ties at the cut-off are inside)."""
        if type(ranked) is RankedSubject:
            rank = ranked.rank_from_top if self.side == "top" else ranked.rank_from_bottom
            return self.first <= rank <= self.last
        return _Window.contains(self, ranked)

    def _window(self, group_size: int) -> tuple[int, int]:  # noqa: ARG002 - one signature
        return self.first, self.last

    def _window_arrays(self, group_size: NDArray[np.int64]) -> tuple[int, int]:  # noqa: ARG002
        return self.first, self.last

    def describe(self, lang: Lang = "en") -> str:
        """``倒数第101–200名`` / ``bottom 101–200``; one rank: ``倒数第2名`` / ``bottom rank 2``."""
        scope = _scope_words(self.scope, _check_lang(lang))
        ranks = f"{self.first}" if self.first == self.last else f"{self.first}–{self.last}"
        if lang == "zh":
            return f"{scope}{'倒数' if self.side == 'bottom' else ''}第{ranks}名"
        single = " rank" if self.first == self.last else ""
        return f"{self.side}{single} {ranks}{scope}"


@attrs.frozen
class Percentile(_Window):
    """The best (``side="top"``) or worst ``percent`` % of each group.

    The count is ``group size × percent ÷ 100`` rounded to a whole number by the
    stated ``rounding``; a subject is in when its rank from ``side`` ≤ that count.
    The count can be 0 in a small group (20% of 2, floor), selecting nobody there.

    >>> core = Percentile("top", 20, "ceiling")
    >>> core.count(37), core.describe("zh"), core.describe("en")
    (8, '前20%(向上取整)', 'top 20% (ceiling)')
    """

    side: Side = attrs.field(validator=one_of("side", _SIDES))
    percent: Decimal = attrs.field(converter=_percent)
    rounding: CountRounding = attrs.field(validator=one_of("rounding", _COUNT_ROUNDINGS))
    scope: str | None = attrs.field(default=None, kw_only=True, validator=_scope_check)

    @percent.validator
    def _check_percent(self, _attribute: object, percent: Decimal) -> None:
        if not 0 < percent <= 100:
            raise InvalidValueError("percent", "must be in (0, 100]", percent)

    def count(self, group_size: int) -> int:
        """How many ranks the percentage of ``group_size`` covers, rounded as stated."""
        exact = Fraction(group_size) * Fraction(self.percent) / 100
        return int(round_fraction(exact, RoundingPolicy(self.rounding, 1)))

    def counts(self, group_size: NDArray[np.int64]) -> NDArray[np.int64]:
        """:meth:`count` for an array of group sizes, in exact integer arithmetic.

        Raises:
            OverflowRiskError: when a group size times the percentage's numerator
                would leave int64 (a percentage with very many decimals).
        """
        fraction = Fraction(self.percent) / 100
        numerator, denominator = fraction.numerator, fraction.denominator
        largest = int(group_size.max()) if group_size.size else 0
        if largest * numerator > _SAFE or 2 * denominator > _SAFE:
            raise OverflowRiskError(
                f"'percent' {self.percent} of a group of {largest} leaves int64; "
                "use fewer decimals in the percentage"
            )
        scaled = group_size * np.int64(numerator)
        whole, rest = np.divmod(scaled, np.int64(denominator))
        twice = 2 * rest
        if self.rounding == "floor":
            bump = np.zeros_like(rest, dtype=np.bool_)
        elif self.rounding == "ceiling":
            bump = rest > 0
        elif self.rounding == "half_up":
            bump = twice >= denominator
        elif self.rounding == "half_down":
            bump = twice > denominator
        else:
            bump = (twice > denominator) | ((twice == denominator) & (whole % 2 == 1))
        result: NDArray[np.int64] = (whole + bump).astype(np.int64)
        return result

    def _side(self) -> Side:
        return self.side

    def _window(self, group_size: int) -> tuple[int, int]:
        return 1, self.count(group_size)

    def _window_arrays(self, group_size: NDArray[np.int64]) -> tuple[int, NDArray[np.int64]]:
        return 1, self.counts(group_size)

    def describe(self, lang: Lang = "en") -> str:
        """``前20%(向上取整)`` / ``top 20% (ceiling)``."""
        scope = _scope_words(self.scope, _check_lang(lang))
        if lang == "zh":
            end = "前" if self.side == "top" else "倒数后"
            return f"{scope}{end}{self.percent}%({_COUNT_ROUNDING_NAMES[self.rounding]})"
        return f"{self.side} {self.percent}%{scope} ({self.rounding})"


Selection: TypeAlias = Top | Bottom | RankRange | Percentile
"""Any selection on ranks."""


def _selection(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, Top | Bottom | RankRange | Percentile):
        raise InvalidValueError(
            "selection", "must be a Top, Bottom, RankRange or Percentile", value
        )


@attrs.frozen
class Exemption:
    """A selection used as an exemption set (不考核): the subjects it selects are not assessed.

    Ranks are not recomputed without the exempt subjects (see the module notes).

    >>> ex = Exemption(Top(2, scope="province"))
    >>> r = rank({"A": "99", "B": "97", "C": "95"}, RankingRule("higher", "competition"),
    ...          groups="province")
    >>> ex.select(r), ex.assessed(r), ex.describe("zh")
    (('A', 'B'), ('C',), '省内前2名不考核')
    """

    selection: Selection = attrs.field(validator=_selection)

    def contains(self, ranked: RankedSubject) -> bool:
        """Whether ``ranked`` is exempt."""
        return self.selection.contains(ranked)

    def select(self, ranking: Ranking) -> tuple[str, ...]:
        """The exempt subject ids, in the ranking's order."""
        return self.selection.select(ranking)

    def assessed(self, ranking: Ranking) -> tuple[str, ...]:
        """The subject ids still assessed, in the ranking's order."""
        return tuple(entry.subject for entry in ranking if not self.contains(entry))

    def mask(self, arrays: RankArrays) -> NDArray[np.bool_]:
        """Exempt subjects as a boolean array."""
        return self.selection.mask(arrays)

    def assessed_mask(self, arrays: RankArrays) -> NDArray[np.bool_]:
        """Assessed subjects as a boolean array (the complement of :meth:`mask`)."""
        result: NDArray[np.bool_] = ~self.mask(arrays)
        return result

    def describe(self, lang: Lang = "en") -> str:
        """``省内前200名不考核`` / ``top 200 in province not assessed``."""
        if _check_lang(lang) == "zh":
            return f"{self.selection.describe('zh')}不考核"
        return f"{self.selection.describe('en')} not assessed"
