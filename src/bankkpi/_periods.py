"""Periods, named phases and calendars.

A :class:`Period` is a range of whole days, **both ends included**, as banks write
them ("1月1日至4月30日" is ``Period(date(2024, 1, 1), date(2024, 4, 30))``). Two
periods are adjacent when one's ``end`` is the day before the other's ``start``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction

import attrs
from dateutil.relativedelta import relativedelta

from bankkpi._checks import non_empty
from bankkpi.exceptions import (
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    MissingDataError,
    UnknownKeyError,
    ValidationErrorGroup,
)

__all__ = ["Calendar", "Period", "Phase", "prorate"]

_ONE_DAY = dt.timedelta(days=1)


def _date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidValueError("date", "must be a date, not a datetime", value)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidValueError("date", "must be an ISO date YYYY-MM-DD", value) from None
    raise InvalidValueError("date", "must be a date or an ISO date string", value)


@attrs.frozen(order=True)
class Period:
    """A range of days, ``start`` and ``end`` both included.

    >>> p = Period("2024-01-01", "2024-04-30")
    >>> p.days, p.contains(dt.date(2024, 4, 30)), p.contains(dt.date(2024, 5, 1))
    (121, True, False)
    """

    start: dt.date = attrs.field(converter=_date)
    end: dt.date = attrs.field(converter=_date)

    @end.validator
    def _check_order(self, _attribute: object, end: dt.date) -> None:
        if end < self.start:
            raise InvalidValueError(
                "end",
                f"must not be before start {self.start.isoformat()}",
                end.isoformat(),
            )

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """The calendar month ``year-month``, its last day right in every year."""
        first = dt.date(year, month, 1)
        return cls(first, first + relativedelta(months=1) - _ONE_DAY)

    @classmethod
    def quarter(cls, year: int, quarter: int) -> Period:
        """Calendar quarter 1–4 of ``year``."""
        if quarter not in (1, 2, 3, 4):
            raise InvalidValueError("quarter", "must be 1, 2, 3 or 4", quarter)
        first = dt.date(year, 3 * quarter - 2, 1)
        return cls(first, first + relativedelta(months=3) - _ONE_DAY)

    @classmethod
    def year(cls, year: int) -> Period:
        """The calendar year."""
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31))

    @classmethod
    def months(cls, year: int, first_month: int, last_month: int) -> Period:
        """Whole months ``first_month``..``last_month`` of one year (Jan–Apr = 1, 4)."""
        start = cls.month(year, first_month)
        return cls(start.start, cls.month(year, last_month).end)

    @property
    def days(self) -> int:
        """Number of days in the period, both ends counted."""
        return (self.end - self.start).days + 1

    def contains(self, day: dt.date) -> bool:
        """Whether ``day`` lies in the period (ends included)."""
        return self.start <= day <= self.end

    def overlap(self, other: Period) -> Period | None:
        """The days both periods share, or ``None``."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Period(start, end) if start <= end else None

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


def prorate(period: Period, joined: dt.date, left: dt.date | None = None) -> Fraction:
    """The exact fraction of ``period`` a subject was a member.

    Membership runs from ``joined`` to ``left``, both days included (``left=None``:
    still a member). The result is member-days ÷ period-days, in [0, 1], and is
    additive: member-days over two adjacent periods add up to those of their union.

    >>> prorate(Period.year(2024), dt.date(2024, 7, 1))
    Fraction(92, 183)
    """
    joined = _date(joined)
    if left is not None:
        left = _date(left)
        if left < joined:
            raise InvalidValueError("left", f"must not be before joined {joined}", left)
    membership = Period(joined, left if left is not None else max(joined, period.end))
    shared = period.overlap(membership)
    return Fraction(shared.days if shared else 0, period.days)


@attrs.frozen
class Phase:
    """A named period, such as scheme A's phase 1 (Jan–Apr, target 92).

    ``label`` is free text and may be Chinese (``"第一阶段：自查整改"``).
    """

    name: str = attrs.field(validator=non_empty("name"))
    period: Period = attrs.field(validator=attrs.validators.instance_of(Period))
    label: str = ""


def _phase_tuple(phases: Iterable[Phase]) -> tuple[Phase, ...]:
    return tuple(phases)


@attrs.frozen
class Calendar:
    """An ordered list of non-overlapping phases.

    With ``contiguous=True`` (the default) each phase must start the day after the
    previous one ends; a gap is refused. Construction reports every problem at once.

    >>> cal = Calendar.quarters(2024)
    >>> cal.phase_of(dt.date(2024, 5, 20)).name
    'Q2'
    >>> cal.steps_between("Q2", "Q4")
    2
    """

    phases: tuple[Phase, ...] = attrs.field(converter=_phase_tuple)
    contiguous: bool = True

    @phases.validator
    def _check_phases(self, _attribute: object, phases: tuple[Phase, ...]) -> None:
        problems: list[BankKPIError] = []
        if not phases:
            problems.append(InvalidValueError("phases", "must not be empty", phases))
        seen: set[str] = set()
        for phase in phases:
            if phase.name in seen:
                problems.append(DuplicateError("phases", "must have unique names", phase.name))
            seen.add(phase.name)
        for before, after in itertools.pairwise(phases):
            if after.period.start <= before.period.end:
                problems.append(
                    InvalidValueError(
                        f"phases[{after.name}]",
                        f"must start after phase {before.name} ends "
                        f"({before.period.end.isoformat()})",
                        after.period.start.isoformat(),
                    )
                )
            elif self.contiguous and after.period.start != before.period.end + _ONE_DAY:
                problems.append(
                    InvalidValueError(
                        f"phases[{after.name}]",
                        f"must start the day after phase {before.name} ends "
                        "(the calendar is contiguous; pass contiguous=False to allow gaps)",
                        after.period.start.isoformat(),
                    )
                )
        if problems:
            raise ValidationErrorGroup("invalid calendar", problems)

    @classmethod
    def months(cls, year: int) -> Calendar:
        """Twelve phases ``M01``..``M12``."""
        return cls(Phase(f"M{m:02d}", Period.month(year, m)) for m in range(1, 13))

    @classmethod
    def quarters(cls, year: int) -> Calendar:
        """Four phases ``Q1``..``Q4``."""
        return cls(Phase(f"Q{q}", Period.quarter(year, q)) for q in range(1, 5))

    @classmethod
    def years(cls, first_year: int, count: int) -> Calendar:
        """``count`` consecutive calendar years, each named by its number."""
        return cls(Phase(str(y), Period.year(y)) for y in range(first_year, first_year + count))

    def __iter__(self) -> Iterator[Phase]:
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)

    @property
    def span(self) -> Period:
        """From the first phase's start to the last phase's end."""
        return Period(self.phases[0].period.start, self.phases[-1].period.end)

    def phase(self, name: str) -> Phase:
        """The phase called ``name``; :class:`UnknownKeyError` names the known ones."""
        for phase in self.phases:
            if phase.name == name:
                return phase
        known = ", ".join(p.name for p in self.phases)
        raise UnknownKeyError(f"phase (known: {known})", name)

    def index(self, name: str) -> int:
        """Position of the phase called ``name`` (0-based)."""
        return self.phases.index(self.phase(name))

    def phase_of(self, day: dt.date) -> Phase:
        """The phase containing ``day``; :class:`MissingDataError` outside them all."""
        for phase in self.phases:
            if phase.period.contains(day):
                return phase
        raise MissingDataError(f"phase in calendar {self.span}", day.isoformat())

    def steps_between(self, earlier: str, later: str) -> int:
        """How many phases ``earlier`` comes before ``later`` (negative if after).

        "Reached the standard in Q2, due in Q4" is ``steps_between("Q2", "Q4") == 2``
        quarters early.
        """
        return self.index(later) - self.index(earlier)

    def phases_in(self, period: Period) -> Iterable[Phase]:
        """Phases lying wholly inside ``period``."""
        return tuple(
            p for p in self.phases if period.start <= p.period.start and p.period.end <= period.end
        )
