"""Scoring bands (分数段): intervals whose every bound states (含) or (不含).

"90分(含)以上" is ``Band.interval("优秀", "[90, +inf)")``; "98分以下(不含98分)" is
``Band.interval("未达标", "(-inf, 98)")``. A :class:`BandSet` is checked at
construction: no two bands overlap, and together they cover the scale without a gap
unless a catch-all band is given.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

import attrs

from bankkpi import _checks as checks
from bankkpi._checks import non_empty
from bankkpi._money import to_decimal
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    InvalidValueError,
    MissingDataError,
    ValidationErrorGroup,
)

__all__ = ["Band", "BandSet"]

_INTERVAL = re.compile(
    r"^\s*(?P<open>[\[(])\s*(?P<low>[^,\s]+)\s*,\s*(?P<high>[^\]\)\s]+)\s*(?P<close>[\])])\s*$"
)


def _flag(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise InvalidValueError("inclusive", "must be True or False", value)


@attrs.frozen
class Band:
    """A labelled interval. ``low=None`` is −∞ and ``high=None`` is +∞.

    Each finite bound must say whether it is included: there is no default, so a
    band cannot silently mean "≥" where the document said ">".

    >>> good = Band.interval("达标", "[90, 100]")
    >>> good.contains(Decimal("90")), good.contains(Decimal("89.99"))
    (True, False)
    >>> Band.interval("未达标", "(-inf, 98)").describe("zh")
    '98以下(不含98)'
    """

    label: str = attrs.field(validator=non_empty("label"))
    low: Decimal | None = attrs.field(default=None, converter=checks.optional_low)
    high: Decimal | None = attrs.field(default=None, converter=checks.optional_high)
    low_inclusive: bool | None = attrs.field(default=None, kw_only=True, converter=_flag)
    high_inclusive: bool | None = attrs.field(default=None, kw_only=True, converter=_flag)

    def __attrs_post_init__(self) -> None:
        for bound, flag, name in (
            (self.low, self.low_inclusive, "low_inclusive"),
            (self.high, self.high_inclusive, "high_inclusive"),
        ):
            if bound is not None and flag is None:
                raise AmbiguousInputError(
                    name,
                    f"must be stated for band {self.label!r} (含 is True, 不含 is False); "
                    "or write Band.interval(label, '[80, 85)')",
                    flag,
                )
            if bound is None and flag:
                raise InvalidValueError(
                    name,
                    f"cannot include an infinite bound in band {self.label!r}",
                    flag,
                )
        if self.low is not None and self.high is not None:
            empty = self.low > self.high or (
                self.low == self.high and not (self.low_inclusive and self.high_inclusive)
            )
            if empty:
                raise InvalidValueError(
                    "high",
                    f"must leave band {self.label!r} non-empty above low {self.low}",
                    self.high,
                )

    @classmethod
    def interval(cls, label: str, notation: str) -> Band:
        """Build a band from interval notation: ``[80, 85)``, ``(-inf, 60)``, ``[90, +inf)``."""
        match = _INTERVAL.match(notation)
        if match is None:
            raise InvalidValueError(
                "interval", "must look like '[80, 85)' or '[90, +inf)'", notation
            )
        low_text, high_text = match["low"], match["high"]
        low = None if low_text in ("-inf", "-∞") else to_decimal(low_text, field="low")
        high = (
            None if high_text in ("inf", "+inf", "+∞", "∞") else to_decimal(high_text, field="high")
        )
        if (low is None and match["open"] == "[") or (high is None and match["close"] == "]"):
            raise InvalidValueError(
                "interval", "must not close an infinite end with [ or ]", notation
            )
        return cls(
            label,
            low,
            high,
            low_inclusive=None if low is None else match["open"] == "[",
            high_inclusive=None if high is None else match["close"] == "]",
        )

    def contains(self, value: Decimal) -> bool:
        """Whether ``value`` lies in the band, by its stated inclusivity."""
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_inclusive)
        ):
            return False
        return (
            self.high is None
            or value < self.high
            or (value == self.high and bool(self.high_inclusive))
        )

    @property
    def notation(self) -> str:
        """Interval notation: ``[80, 85)``."""
        low = "(-inf" if self.low is None else f"{'[' if self.low_inclusive else '('}{self.low}"
        high = "+inf)" if self.high is None else f"{self.high}{']' if self.high_inclusive else ')'}"
        return f"{low}, {high}"

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """The band in words: ``90(含)以上``, ``80(含)至85(不含)``; ``[80, 85)`` in English."""
        if lang == "en":
            return self.notation

        if self.low is None and self.high is None:
            return "全部"
        if self.low is None:
            if self.high_inclusive:
                return f"{self.high}(含)以下"
            return f"{self.high}以下(不含{self.high})"
        if self.high is None:
            if self.low_inclusive:
                return f"{self.low}(含)以上"
            return f"{self.low}以上(不含{self.low})"
        low_mark = "(含)" if self.low_inclusive else "(不含)"
        high_mark = "(含)" if self.high_inclusive else "(不含)"
        return f"{self.low}{low_mark}至{self.high}{high_mark}"


def _starts_before(a: Band, b: Band) -> bool:
    """Order of bands by their low end (−∞ first; an included low before an excluded one)."""
    if a.low is None:
        return b.low is not None
    if b.low is None:
        return False
    return a.low < b.low or (a.low == b.low and bool(a.low_inclusive) and not b.low_inclusive)


def _band_tuple(bands: Iterable[Band]) -> tuple[Band, ...]:
    return tuple(bands)


def _scale(scale: tuple[object, object] | None) -> tuple[Decimal, Decimal] | None:
    if scale is None:
        return None
    low, high = (to_decimal(end, field="scale") for end in scale)
    if high <= low:
        raise InvalidValueError("scale", "must run from a low to a higher end", scale)
    return low, high


@attrs.frozen
class BandSet:
    """Bands that never overlap and, over the scale, leave no gap.

    ``scale`` is the (low, high) range to cover, both ends included; ``None`` means
    the whole line. With a ``catch_all`` label, values in no band get that band and
    gaps are allowed; overlaps never are. Every problem is reported at once.

    >>> bands = BandSet([Band.interval("不达标", "[0, 80)"), Band.interval("待改进", "[80, 85)"),
    ...                  Band.interval("合格", "[85, 100]")], scale=(0, 100))
    >>> bands.classify(Decimal("84.99")).label
    '待改进'
    """

    bands: tuple[Band, ...] = attrs.field(converter=_band_tuple)
    scale: tuple[Decimal, Decimal] | None = attrs.field(default=None, converter=_scale)
    catch_all: str | None = None

    @bands.validator
    def _check_bands(self, _attribute: object, bands: tuple[Band, ...]) -> None:
        problems: list[BankKPIError] = []
        labels = [b.label for b in bands]
        problems.extend(
            InvalidValueError("bands", "must have unique labels", label)
            for label in sorted({x for x in labels if labels.count(x) > 1})
        )
        ordered = sorted(bands, key=_SortKey)
        for before, after in itertools.pairwise(ordered):
            gap, overlap = _between(before, after)
            if overlap:
                problems.append(
                    InvalidValueError(
                        "bands",
                        f"must not overlap: {before.label} {before.notation} and",
                        f"{after.label} {after.notation}",
                    )
                )
            elif gap and self.catch_all is None:
                problems.append(
                    InvalidValueError(
                        "bands",
                        f"leave a gap after {before.label} {before.notation}; "
                        "add a band or a catch_all before",
                        f"{after.label} {after.notation}",
                    )
                )
        if self.catch_all is None and ordered:
            problems.extend(self._coverage_problems(ordered[0], ordered[-1]))
        if not bands:
            problems.append(InvalidValueError("bands", "must hold at least one band", bands))
        if problems:
            raise ValidationErrorGroup("invalid band set", problems)

    def _coverage_problems(self, first: Band, last: Band) -> Iterable[BankKPIError]:
        low, high = (None, None) if self.scale is None else self.scale
        if not (
            first.low is None
            or (low is not None and (first.low < low or (first.low == low and first.low_inclusive)))
        ):
            yield InvalidValueError(
                "bands",
                f"must cover the scale's low end {'-inf' if low is None else low}; first band is",
                f"{first.label} {first.notation}",
            )
        if not (
            last.high is None
            or (
                high is not None
                and (last.high > high or (last.high == high and last.high_inclusive))
            )
        ):
            yield InvalidValueError(
                "bands",
                f"must cover the scale's high end {'+inf' if high is None else high}; last band is",
                f"{last.label} {last.notation}",
            )

    def classify(self, value: Decimal) -> Band:
        """The one band containing ``value`` (or the catch-all band)."""
        for band in self.bands:
            if band.contains(value):
                return band
        if self.catch_all is not None:
            return Band(self.catch_all)
        raise MissingDataError("band containing value", value)

    def labels(self) -> tuple[str, ...]:
        """The band labels in construction order."""
        return tuple(b.label for b in self.bands)


class _SortKey:
    """Sort adaptor for :func:`_starts_before`."""

    __slots__ = ("band",)

    def __init__(self, band: Band) -> None:
        self.band = band

    def __lt__(self, other: _SortKey) -> bool:
        return _starts_before(self.band, other.band)


def _between(before: Band, after: Band) -> tuple[bool, bool]:
    """(gap, overlap) between two bands sorted by their low end."""
    if before.high is None:
        return False, True
    if after.low is None:
        return False, True
    if before.high < after.low:
        return True, False
    if before.high > after.low:
        return False, True
    both = bool(before.high_inclusive) and bool(after.low_inclusive)
    neither = not before.high_inclusive and not after.low_inclusive
    return neither, both
