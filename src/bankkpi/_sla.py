"""Time limits (时限, SLA): per-case compliance from timestamps, and compliance rates.

A :class:`TimeLimit` says which event starts the clock (``opened``), which stops it
(``responded``, ``resolved``), how long is allowed and whether the bound itself is
allowed ("within 48 h" is ``elapsed ≤ 48 h``: ``inclusive=True``). The clock runs in
calendar time, or in working time (:class:`WorkingTime`: working hours in a stated
zone on the working days of a :class:`WorkdayCalendar`, holidays and swapped working
days 调休 included).

Elapsed time is measured between **instants**, in integer microseconds: aware
timestamps are converted to UTC and naive ones are refused unless the zone they were
written in is stated, so daylight-saving changes cannot bend a duration and no float
ever holds one. There is no hidden clock: an open case is judged at ``as_of``, an
explicit argument — breached once its limit has passed, else *pending* (never met).

Two paths give identical elapsed times and flags: :func:`evaluate_cases` (records,
exact) and :func:`evaluate_cases_array` (NumPy int64 microseconds, no loop over records).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal, Protocol, TypeAlias, get_args, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
import numpy as np
from numpy.typing import NDArray

from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Text, Trace, num
from bankkpi._measurements import Measurement
from bankkpi._money import RoundingPolicy
from bankkpi._periods import Calendar, Period
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    MissingDataError,
    ValidationErrorGroup,
    ZeroDenominatorError,
)

__all__ = [
    "NO_INSTANT",
    "Case",
    "CaseResult",
    "ComplianceArrays",
    "ComplianceSummary",
    "ComplianceUnit",
    "OfficialCalendar",
    "SlaArrays",
    "SlaStatus",
    "TimeLimit",
    "WorkdayCalendar",
    "WorkingTime",
    "Zone",
    "compliance_measurements",
    "evaluate_case",
    "evaluate_cases",
    "evaluate_cases_array",
    "summarize_compliance",
    "summarize_compliance_array",
    "to_utc",
    "utc_microseconds",
]

Zone: TypeAlias = str | dt.tzinfo
"""A time zone: an IANA name such as ``"Asia/Shanghai"``, or a ``tzinfo``."""

SlaStatus: TypeAlias = Literal["met", "breached", "pending"]
"""``met`` (closed within the limit), ``breached`` (closed late, or open past the
limit at ``as_of``), ``pending`` (open, limit not yet passed at ``as_of``)."""

ComplianceUnit: TypeAlias = Literal["percent", "ratio"]
"""How a compliance rate is written: ``percent`` (``95``) or ``ratio`` (``0.95``)."""

NO_INSTANT: Final = int(np.iinfo(np.int64).min)
"""The int64 that stands for "no timestamp" in the array path (NaT's bit pattern)."""

_UTC: Final = dt.UTC
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_ONE_DAY: Final = dt.timedelta(days=1)
_US_PER_SECOND: Final = 1_000_000
_UNITS: Final[tuple[str, ...]] = get_args(ComplianceUnit)


# --- instants -------------------------------------------------------------------------


def _tz(value: object, field: str = "zone") -> dt.tzinfo:
    if isinstance(value, dt.tzinfo):
        return value
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValueError(
                field, "must be an IANA time-zone name such as 'Asia/Shanghai'", value
            ) from None
    raise InvalidValueError(field, "must be an IANA zone name or a tzinfo", value)


def to_utc(
    value: object,
    *,
    zone: Zone | None = None,
    field: str = "instant",
    subject: str | None = None,
) -> dt.datetime:
    """Read a timestamp as an instant in UTC.

    An aware ``datetime`` (or ISO string with an offset) is converted. A naive one is
    refused with :class:`AmbiguousInputError` unless ``zone`` states where it was
    written; a naive wall time that the zone skips or repeats (a daylight-saving
    change) is refused too, with what to write instead.

    >>> to_utc("2024-02-08T09:00:00+08:00")
    datetime.datetime(2024, 2, 8, 1, 0, tzinfo=datetime.timezone.utc)
    >>> to_utc(dt.datetime(2024, 2, 8, 9, 0), zone="Asia/Shanghai")
    datetime.datetime(2024, 2, 8, 1, 0, tzinfo=datetime.timezone.utc)
    >>> to_utc(dt.datetime(2024, 2, 8, 9, 0), field="opened", subject="outlet 7")
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.AmbiguousInputError: outlet 7: 'opened' has no time zone; pass zone=
    (the zone it was written in, e.g. 'Asia/Shanghai') or give an aware datetime:
    '2024-02-08T09:00:00'
    """
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidValueError(
                field,
                "must be an ISO timestamp such as '2024-02-08T09:00:00+08:00'",
                value,
                subject=subject,
            ) from None
    if not isinstance(value, dt.datetime):
        kind = "a date" if isinstance(value, dt.date) else type(value).__name__
        raise InvalidValueError(
            field, f"must be a datetime (an instant), not {kind}", value, subject=subject
        )
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(_UTC)
    if zone is None:
        raise AmbiguousInputError(
            field,
            "has no time zone; pass zone= (the zone it was written in, e.g. "
            "'Asia/Shanghai') or give an aware datetime",
            value.isoformat(),
            subject=subject,
        )
    tz = _tz(zone)
    early = value.replace(tzinfo=tz, fold=0)
    late = value.replace(tzinfo=tz, fold=1)
    if early.utcoffset() != late.utcoffset():
        skipped = early.astimezone(_UTC).astimezone(tz).replace(tzinfo=None) != value
        what = "does not exist" if skipped else "occurs twice"
        raise AmbiguousInputError(
            field,
            f"{what} in {tz} (a daylight-saving change); write it with its UTC offset, "
            "e.g. '2024-11-03T01:30:00-04:00'",
            value.isoformat(),
            subject=subject,
        )
    return early.astimezone(_UTC)


def _us(instant: dt.datetime) -> int:
    return (instant - _EPOCH) // _MICROSECOND


def _instant(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _local_date(us: int, tz: dt.tzinfo) -> dt.date:
    return _instant(us).astimezone(tz).date()


def _midnight_us(day: dt.date, tz: dt.tzinfo) -> int:
    return _us(dt.datetime.combine(day, dt.time(0), tzinfo=tz).astimezone(_UTC))


def utc_microseconds(
    values: Iterable[object],
    *,
    zone: Zone | None = None,
    field: str = "instant",
) -> NDArray[np.int64]:
    """Timestamps as int64 microseconds since 1970-01-01 UTC, for the array path.

    ``None`` becomes :data:`NO_INSTANT`. Every bad value is reported at once in a
    :class:`ValidationErrorGroup` (subjects are ``row i``). Arrays of UTC
    ``datetime64`` can skip this: ``a.astype("datetime64[us]").view(np.int64)``.

    >>> utc_microseconds(["1970-01-01T00:00:01Z", None]).tolist() == [1_000_000, NO_INSTANT]
    True
    """
    out: list[int] = []
    errors: list[BankKPIError] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(NO_INSTANT)
            continue
        try:
            out.append(_us(to_utc(value, zone=zone, field=field, subject=f"row {row}")))
        except BankKPIError as exc:
            errors.append(exc)
            out.append(NO_INSTANT)
    if errors:
        raise ValidationErrorGroup(f"invalid {field} timestamps", errors)
    return np.array(out, dtype=np.int64)


def _format_us(us: int) -> str:
    sign = "−" if us < 0 else ""
    seconds, micro = divmod(abs(us), _US_PER_SECOND)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    text = f"{sign}{hours}:{minute:02d}:{sec:02d}"
    return f"{text}.{micro:06d}" if micro else text


# --- working days and working hours ----------------------------------------------------


@runtime_checkable
class WorkdayCalendar(Protocol):
    """Anything that says whether a date is a working day.

    :class:`OfficialCalendar` holds the bank's own list. An adapter for a maintained
    holiday package needs only this one method (``workalendar``'s ``China`` already
    has it); a date the calendar has no data for must raise
    :class:`~bankkpi.exceptions.MissingDataError`, never guess.
    """

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day."""
        ...  # pragma: no cover


DayLike: TypeAlias = dt.date | str | Period
"""A day (``date`` or ISO string) or a :class:`Period` of days, both ends included."""


def _expand(field: str, values: Iterable[DayLike]) -> frozenset[dt.date]:
    days: set[dt.date] = set()
    errors: list[BankKPIError] = []
    for value in values:
        if isinstance(value, Period):
            days.update(value.start + dt.timedelta(days=i) for i in range(value.days))
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            days.add(value)
        elif isinstance(value, str):
            try:
                days.add(dt.date.fromisoformat(value.strip()))
            except ValueError:
                errors.append(InvalidValueError(field, "must hold ISO dates YYYY-MM-DD", value))
        else:
            errors.append(InvalidValueError(field, "must hold dates or Periods", value))
    if errors:
        raise ValidationErrorGroup(f"invalid {field}", errors)
    return frozenset(days)


def _holidays(values: Iterable[DayLike]) -> frozenset[dt.date]:
    return _expand("holidays", values)


def _working_days(values: Iterable[DayLike]) -> frozenset[dt.date]:
    return _expand("working_days", values)


def _weekend(values: Iterable[int]) -> frozenset[int]:
    days = frozenset(values)
    if not days <= set(range(7)) or any(isinstance(d, bool) for d in days):
        raise InvalidValueError(
            "weekend", "must hold weekday numbers 0 (Monday) to 6 (Sunday)", sorted(days)
        )
    return days


_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@attrs.frozen
class OfficialCalendar:
    """Working days from the bank's official list: weekends, holidays and 调休.

    A day is a working day when it is a swapped working day (``working_days``: a
    weekend day worked, 调休), or a weekday that is not a holiday. With ``covers``
    set, asking about a day outside it raises
    :class:`~bankkpi.exceptions.MissingDataError`: the list ends there, and a
    missing holiday must not pass for a working day. Construction reports every
    problem at once.

    >>> spring_2024 = OfficialCalendar(
    ...     holidays=[Period("2024-02-10", "2024-02-17")],
    ...     working_days=["2024-02-04", "2024-02-18"],
    ...     covers=Period.year(2024),
    ... )
    >>> [spring_2024.is_working_day(dt.date(2024, 2, d)) for d in (4, 9, 12, 18, 19)]
    [True, True, False, True, True]
    """

    holidays: frozenset[dt.date] = attrs.field(default=(), converter=_holidays)
    working_days: frozenset[dt.date] = attrs.field(default=(), converter=_working_days)
    covers: Period | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Period))
    )
    weekend: frozenset[int] = attrs.field(default=(5, 6), converter=_weekend)

    def __attrs_post_init__(self) -> None:
        problems: list[BankKPIError] = [
            DuplicateError("working_days", "must not also be listed as a holiday", d.isoformat())
            for d in sorted(self.holidays & self.working_days)
        ]
        problems.extend(
            InvalidValueError(
                "working_days",
                f"must be weekend days worked (调休); this one is a {_WEEKDAYS[d.weekday()]}",
                d.isoformat(),
            )
            for d in sorted(self.working_days)
            if d.weekday() not in self.weekend
        )
        if self.covers is not None:
            for field, days in (("holidays", self.holidays), ("working_days", self.working_days)):
                problems.extend(
                    InvalidValueError(field, f"must lie within covers {self.covers}", d.isoformat())
                    for d in sorted(days)
                    if not self.covers.contains(d)
                )
        if problems:
            raise ValidationErrorGroup("invalid official calendar", problems)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day (see the class docstring)."""
        if self.covers is not None and not self.covers.contains(day):
            raise MissingDataError(
                f"official calendar entry (the calendar covers {self.covers})", day.isoformat()
            )
        if day in self.working_days:
            return True
        return day.weekday() not in self.weekend and day not in self.holidays


def _time(value: object) -> dt.time:
    if isinstance(value, str):
        try:
            value = dt.time.fromisoformat(value.strip())
        except ValueError:
            raise InvalidValueError("hours", "must hold times such as '08:30'", value) from None
    if not isinstance(value, dt.time):
        raise InvalidValueError("hours", "must hold times such as '08:30'", value)
    if value.tzinfo is not None:
        raise InvalidValueError(
            "hours", "must hold wall-clock times; state the zone in WorkingTime.zone", value
        )
    return value


def _hours(
    values: Iterable[tuple[dt.time | str, dt.time | str]],
) -> tuple[tuple[dt.time, dt.time], ...]:
    pairs: list[tuple[dt.time, dt.time]] = []
    problems: list[BankKPIError] = []
    for pair in values:
        try:
            start, end = pair
            pairs.append((_time(start), _time(end)))
        except BankKPIError as exc:
            problems.append(exc)
        except (TypeError, ValueError):
            problems.append(
                InvalidValueError("hours", "must hold (start, end) pairs of times", pair)
            )
    if not pairs and not problems:
        problems.append(InvalidValueError("hours", "must hold at least one interval", ()))
    for start, end in pairs:
        if end <= start:
            problems.append(
                InvalidValueError(
                    "hours",
                    "must hold intervals that end after they start, within one day",
                    f"{start.isoformat()}-{end.isoformat()}",
                )
            )
    ordered = sorted(pairs)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        if start < end:
            problems.append(
                InvalidValueError(
                    "hours",
                    f"must not overlap (an interval ends {end.isoformat()})",
                    start.isoformat(),
                )
            )
    if problems:
        raise ValidationErrorGroup("invalid working hours", problems)
    return tuple(ordered)


def _calendar(_instance: object, _attribute: object, value: object) -> None:
    if not isinstance(value, WorkdayCalendar):
        raise InvalidValueError(
            "calendar", "must have an is_working_day(date) -> bool method", value
        )


@attrs.frozen
class WorkingTime:
    """Working hours of each working day, as wall-clock times in ``zone``.

    The working time between two instants is the total length of the working
    intervals between them. Each interval is turned into instants on its own day,
    so a daylight-saving change in ``zone`` moves it as the wall clock does.

    >>> wt = WorkingTime([("08:30", "12:00"), ("13:30", "17:30")], "Asia/Shanghai")
    >>> wt.elapsed(to_utc("2024-03-01T11:00+08:00"), to_utc("2024-03-04T09:00+08:00"))
    datetime.timedelta(seconds=19800)
    """

    hours: tuple[tuple[dt.time, dt.time], ...] = attrs.field(converter=_hours)
    zone: dt.tzinfo = attrs.field(converter=_tz)
    calendar: WorkdayCalendar = attrs.field(factory=OfficialCalendar, validator=_calendar)

    @property
    def day_length(self) -> dt.timedelta:
        """The working time of an ordinary working day (no clock change)."""
        total = dt.timedelta()
        for start, end in self.hours:
            total += dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
        return total

    def intervals_us(self, day: dt.date) -> list[tuple[int, int]]:
        """The day's working intervals as UTC microseconds (none on a non-working day)."""
        if not self.calendar.is_working_day(day):
            return []
        out: list[tuple[int, int]] = []
        for start, end in self.hours:
            low = _us(dt.datetime.combine(day, start, tzinfo=self.zone).astimezone(_UTC))
            high = _us(dt.datetime.combine(day, end, tzinfo=self.zone).astimezone(_UTC))
            out.append((low, max(low, high)))
        return out

    def elapsed_us(self, start_us: int, end_us: int) -> int:
        """Working microseconds between two instants (``end_us ≥ start_us``)."""
        total = 0
        day = _local_date(start_us, self.zone)
        last = _local_date(end_us, self.zone)
        while day <= last:
            for low, high in self.intervals_us(day):
                total += max(0, min(high, end_us) - max(low, start_us))
            day += _ONE_DAY
        return total

    def elapsed(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta:
        """Working time between two aware instants."""
        return dt.timedelta(
            microseconds=self.elapsed_us(_us(to_utc(start)), _us(to_utc(end, field="end")))
        )

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """``working time 08:30-12:00, 13:30-17:30 (Asia/Shanghai)``."""
        spans = ", ".join(f"{a.strftime('%H:%M')}-{b.strftime('%H:%M')}" for a, b in self.hours)
        if lang == "zh":
            return f"工作时间 {spans}（{self.zone}）"
        return f"working time {spans} ({self.zone})"


# --- limits and cases ------------------------------------------------------------------


def _limit(value: object) -> dt.timedelta:
    if not isinstance(value, dt.timedelta):
        raise InvalidValueError("limit", "must be a datetime.timedelta", value)
    if value <= dt.timedelta(0):
        raise InvalidValueError("limit", "must be positive", str(value))
    return value


def _describe_span(us: int, lang: Literal["zh", "en"]) -> str:
    for size, zh, en in (
        (3600 * _US_PER_SECOND, "小时", "h"),
        (60 * _US_PER_SECOND, "分钟", "min"),
        (_US_PER_SECOND, "秒", "s"),
    ):
        if us % size == 0:
            return f"{us // size}{zh}" if lang == "zh" else f"{us // size} {en}"
    return _format_us(us)


@attrs.frozen
class TimeLimit:
    """A time limit: from event ``start`` to event ``end``, at most ``limit``.

    ``inclusive`` must be stated: "within 48 h" is ``inclusive=True`` (elapsed ≤ 48 h
    meets); "less than 30 s" is ``inclusive=False``. ``working=None`` runs the clock
    in calendar time. ``code`` names the compliance indicator the limit produces.

    >>> respond = TimeLimit("complaint_response", "opened", "responded",
    ...                     dt.timedelta(hours=48), inclusive=True)
    >>> respond.describe("en")
    'responded ≤ 48 h after opened (calendar time)'
    >>> respond.describe("zh")
    'opened至responded 48小时(含)以内（自然时间）'
    >>> respond.within(dt.timedelta(hours=48)), respond.within(dt.timedelta(hours=48, seconds=1))
    (True, False)
    """

    code: str = attrs.field(validator=non_empty("code"))
    start: str = attrs.field(validator=non_empty("start"))
    end: str = attrs.field(validator=non_empty("end"))
    limit: dt.timedelta = attrs.field(converter=_limit)
    inclusive: bool = attrs.field(kw_only=True, validator=attrs.validators.instance_of(bool))
    working: WorkingTime | None = attrs.field(
        default=None,
        kw_only=True,
        validator=attrs.validators.optional(attrs.validators.instance_of(WorkingTime)),
    )
    label: Text | None = attrs.field(default=None, kw_only=True)

    @end.validator
    def _check_events(self, _attribute: object, end: str) -> None:
        if end == self.start:
            raise InvalidValueError("end", "must name another event than start", end)

    @property
    def limit_us(self) -> int:
        """The limit in microseconds."""
        return self.limit // _MICROSECOND

    def within(self, elapsed: dt.timedelta) -> bool:
        """Whether ``elapsed`` meets the limit, by the stated inclusivity."""
        return self.within_us(elapsed // _MICROSECOND)

    def within_us(self, elapsed_us: int) -> bool:
        """:meth:`within` for microseconds."""
        return elapsed_us <= self.limit_us if self.inclusive else elapsed_us < self.limit_us

    def elapsed_us(self, start_us: int, end_us: int) -> int:
        """Time on this limit's clock between two instants, in microseconds."""
        if self.working is None:
            return end_us - start_us
        return self.working.elapsed_us(start_us, end_us)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """The limit in words, with its inclusivity and its clock."""
        span = _describe_span(self.limit_us, lang)
        if lang == "zh":
            bound = "(含)以内" if self.inclusive else "以内(不含)"
            clock = "自然时间" if self.working is None else self.working.describe("zh")
            return f"{self.start}至{self.end} {span}{bound}（{clock}）"
        op = "≤" if self.inclusive else "<"
        clock = "calendar time" if self.working is None else self.working.describe("en")
        return f"{self.end} {op} {span} after {self.start} ({clock})"

    @property
    def text(self) -> Text:
        """The label, or a description in both languages."""
        return self.label or Text(self.describe("zh"), self.describe("en"))


def _events(mapping: Mapping[str, object]) -> dict[str, object]:
    return dict(mapping)


@attrs.frozen
class Case:
    """One case (工单, ATM fault, call, transaction) of ``subject`` with its timestamps.

    ``events`` maps event names (``opened``, ``responded``, ``resolved`` …) to
    timestamps: aware ``datetime`` values or ISO strings; ``None`` or absence means
    the event has not happened. Timestamps are read when the case is evaluated.

    >>> c = Case("outlet 7", "T-001", {"opened": "2024-02-08T09:00+08:00", "resolved": None})
    >>> c.instant("opened")
    datetime.datetime(2024, 2, 8, 1, 0, tzinfo=datetime.timezone.utc)
    >>> c.instant("resolved") is None
    True
    """

    subject: str = attrs.field(validator=non_empty("subject"))
    case_id: str = attrs.field(validator=non_empty("case_id"))
    events: Mapping[str, object] = attrs.field(factory=dict, converter=_events)

    def instant(self, event: str, *, zone: Zone | None = None) -> dt.datetime | None:
        """The event's instant in UTC, or ``None`` if it has not happened."""
        value = self.events.get(event)
        if value is None:
            return None
        return to_utc(value, zone=zone, field=event, subject=f"{self.subject} {self.case_id}")


@attrs.frozen
class CaseResult:
    """The verdict on one case for one limit, judged at ``as_of``.

    ``elapsed`` runs to the ``end`` event, or to ``as_of`` while the case is open
    (``ended is None``); it is measured on the limit's clock. ``overrun`` is how much
    the limit was missed by (zero unless breached).
    """

    subject: str
    case_id: str
    limit: TimeLimit
    started: dt.datetime
    ended: dt.datetime | None
    as_of: dt.datetime
    elapsed: dt.timedelta
    status: SlaStatus

    @property
    def elapsed_us(self) -> int:
        """``elapsed`` in microseconds."""
        return self.elapsed // _MICROSECOND

    @property
    def closed(self) -> bool:
        """Whether the ``end`` event happened by ``as_of``."""
        return self.ended is not None

    @property
    def overrun(self) -> dt.timedelta:
        """``max(0, elapsed − limit)`` for a breach, else zero."""
        if self.status != "breached":
            return dt.timedelta(0)
        return max(dt.timedelta(0), self.elapsed - self.limit.limit)

    def trace(self) -> Trace:
        """The verdict explained: elapsed seconds, the instants, the limit, the status.

        >>> limit = TimeLimit("atm_response", "reported", "arrived", dt.timedelta(hours=2),
        ...                   inclusive=True)
        >>> case = Case("ATM 12", "F-9", {"reported": "2024-05-06T10:00+08:00",
        ...                                "arrived": "2024-05-06T12:00:30+08:00"})
        >>> as_of = to_utc("2024-05-07T00:00+08:00")
        >>> print(evaluate_case(case, limit, as_of=as_of).trace().render("en"))
        elapsed = 7,230 seconds [breached by 0:00:30]
        """
        seconds = Decimal(self.elapsed_us).scaleb(-6).normalize()
        if self.status == "met":
            note = Text("达标", "met")
        elif self.status == "pending":
            note = Text("未到期（未办结）", "pending (open, limit not yet passed)")
        else:
            over = _format_us(self.overrun // _MICROSECOND)
            note = Text(f"超时 {over}", f"breached by {over}")
        end_text = (
            self.ended.isoformat()
            if self.ended is not None
            else f"open at {self.as_of.isoformat()}"
        )
        return Trace.fixed(
            self.limit.code,
            Text("用时", "elapsed"),
            seconds,
            unit=Text("秒", "seconds"),
            inputs=[
                (Text("个案", "case"), f"{self.subject} {self.case_id}"),
                (Text(self.limit.start, self.limit.start), self.started.isoformat()),
                (Text(self.limit.end, self.limit.end), end_text),
                (Text("时限", "limit"), self.limit.describe("en")),
            ],
            notes=[note],
        )


def _as_of(value: object, zone: Zone | None) -> dt.datetime:
    return to_utc(value, zone=zone, field="as_of")


def evaluate_case(
    case: Case,
    limit: TimeLimit,
    *,
    as_of: dt.datetime | str,
    zone: Zone | None = None,
) -> CaseResult:
    """Judge one case against one limit at the instant ``as_of``.

    ``zone`` is only used to read naive timestamps. An ``end`` event after ``as_of``
    had not happened yet at ``as_of``: the case is judged open.

    Raises:
        MissingDataError: the ``start`` event is absent.
        InvalidValueError: ``end`` before ``start``, or ``start`` after ``as_of``.
        AmbiguousInputError: a naive timestamp and no ``zone``.

    >>> limit = TimeLimit("complaint_response", "opened", "responded",
    ...                   dt.timedelta(hours=48), inclusive=True)
    >>> case = Case("outlet 7", "T-1", {"opened": "2024-03-01T09:00+08:00",
    ...                                 "responded": "2024-03-03T09:00+08:00"})
    >>> evaluate_case(case, limit, as_of="2024-04-01T00:00+08:00").status
    'met'
    """
    when = _as_of(as_of, zone)
    label = f"{case.subject} {case.case_id}"
    started = case.instant(limit.start, zone=zone)
    if started is None:
        raise MissingDataError(
            f"'{limit.start}' timestamp of case {case.case_id}", limit.code, subject=case.subject
        )
    ended = case.instant(limit.end, zone=zone)
    if ended is not None and ended < started:
        raise InvalidValueError(
            limit.end,
            f"must not be before {limit.start} {started.isoformat()}",
            ended.isoformat(),
            subject=label,
        )
    if started > when:
        raise InvalidValueError(
            limit.start,
            f"must not be after the evaluation instant as_of {when.isoformat()}",
            started.isoformat(),
            subject=label,
        )
    if ended is not None and ended > when:
        ended = None
    stop = ended if ended is not None else when
    try:
        elapsed_us = limit.elapsed_us(_us(started), _us(stop))
    except MissingDataError as exc:
        raise MissingDataError(exc.what, exc.key, subject=label) from exc
    within = limit.within_us(elapsed_us)
    status: SlaStatus
    if not within:
        status = "breached"
    elif ended is None:
        status = "pending"
    else:
        status = "met"
    return CaseResult(
        case.subject,
        case.case_id,
        limit,
        started,
        ended,
        when,
        dt.timedelta(microseconds=elapsed_us),
        status,
    )


def evaluate_cases(
    cases: Iterable[Case],
    limits: TimeLimit | Iterable[TimeLimit],
    *,
    as_of: dt.datetime | str,
    zone: Zone | None = None,
) -> tuple[tuple[CaseResult, ...], tuple[BankKPIError, ...]]:
    """Judge every case against every limit; return the results and every error.

    Results come in input order (case by case, limit by limit). A bad case is
    reported with its subject, case id and event, never dropped silently: each
    (case, limit) pair ends up in the results or in the errors, the error noting the
    limit (``exc.__notes__``: ``time limit r48``). A case id seen twice for the same
    subject is reported for its second occurrence.

    >>> limit = TimeLimit("r48", "opened", "responded", dt.timedelta(hours=48),
    ...                   inclusive=True)
    >>> cases = [Case("A", "1", {"opened": "2024-03-01T09:00Z"}),
    ...          Case("A", "2", {"responded": "2024-03-01T10:00Z"})]
    >>> results, errors = evaluate_cases(cases, limit, as_of="2024-03-02T09:00Z")
    >>> [r.status for r in results], [str(e) for e in errors], errors[0].__notes__
    (['pending'], ["A: no 'opened' timestamp of case 2 for 'r48'"], ['time limit r48'])
    """
    when = _as_of(as_of, zone)
    chosen = (limits,) if isinstance(limits, TimeLimit) else tuple(limits)
    results: list[CaseResult] = []
    errors: list[BankKPIError] = []
    seen: set[tuple[str, str]] = set()
    for case in cases:
        key = (case.subject, case.case_id)
        if key in seen:
            errors.append(
                DuplicateError(
                    "case_id", "must be unique per subject", case.case_id, subject=key[0]
                )
            )
            continue
        seen.add(key)
        for limit in chosen:
            try:
                results.append(evaluate_case(case, limit, as_of=when, zone=zone))
            except BankKPIError as exc:
                exc.add_note(f"time limit {limit.code}")  # a bad case fails every limit
                errors.append(exc)
    return tuple(results), tuple(errors)


# --- compliance per subject and period -------------------------------------------------


def _periods(periods: Calendar | Iterable[Period]) -> tuple[Period, ...]:
    items = tuple(p.period for p in periods) if isinstance(periods, Calendar) else tuple(periods)
    ordered = tuple(sorted(items))
    problems: list[BankKPIError] = [
        InvalidValueError("periods", f"must not overlap {before}", str(after))
        for before, after in itertools.pairwise(ordered)
        if after.start <= before.end
    ]
    if not ordered:
        problems.append(InvalidValueError("periods", "must not be empty", ()))
    if problems:
        raise ValidationErrorGroup("invalid periods", problems)
    return ordered


def _percentiles(values: Iterable[int]) -> tuple[int, ...]:
    chosen = tuple(values)
    for p in chosen:
        if isinstance(p, bool) or not isinstance(p, int) or not 0 < p <= 100:
            raise InvalidValueError("percentiles", "must be whole percents in 1..100", p)
    return chosen


def _nearest_rank(sorted_us: Sequence[int], percent: int) -> int:
    rank = (percent * len(sorted_us) + 99) // 100
    return sorted_us[rank - 1]


@attrs.frozen
class ComplianceSummary:
    """Compliance of one subject with one limit over one period.

    ``compliance = met ÷ (met + breached)`` (× 100 for ``percent``), rounded once by
    ``rounding``; pending cases are not yet decided and stay out of it. It is
    ``None`` when no case is decided. ``percentiles`` are nearest-rank percentiles of
    the elapsed time of the closed cases (an observed value, never interpolated).
    """

    subject: str
    limit: str
    period: Period
    met: int
    breached: int
    pending: int
    rounding: RoundingPolicy
    unit: ComplianceUnit = attrs.field(validator=one_of("unit", _UNITS))
    percentiles: tuple[tuple[int, dt.timedelta], ...] = ()
    compliance: Decimal | None = attrs.field(init=False)

    @compliance.default
    def _compliance(self) -> Decimal | None:
        return None if self.decided == 0 else self.trace().amount

    @property
    def decided(self) -> int:
        """Cases met or breached."""
        return self.met + self.breached

    @property
    def total(self) -> int:
        """Every case counted, pending included."""
        return self.decided + self.pending

    def percentile(self, percent: int) -> dt.timedelta | None:
        """The stored nearest-rank percentile, or ``None`` (no closed case)."""
        for p, value in self.percentiles:
            if p == percent:
                return value
        return None

    def trace(self) -> Trace:
        """``达标率 = met ÷ (met + breached) × 100``, rounded once.

        Raises:
            ZeroDenominatorError: when no case is decided.
        """
        if self.decided == 0:
            raise ZeroDenominatorError(f"{self.limit} compliance", self.met, subject=self.subject)
        rate = num(self.met) / (num(self.met) + num(self.breached))
        expr = rate * num(100) if self.unit == "percent" else rate
        return Trace.of(
            self.limit,
            Text("时限达标率", "time-limit compliance"),
            expr,
            rounding=self.rounding,
            unit=Text("%", "%") if self.unit == "percent" else Text("", ""),
            inputs=[
                (Text("期间", "period"), str(self.period)),
                (Text("达标", "met"), self.met),
                (Text("超时", "breached"), self.breached),
                (Text("未到期", "pending"), self.pending),
            ],
            notes=(
                [Text(f"{self.pending} 件未到期，不计入", f"{self.pending} pending, not counted")]
                if self.pending
                else []
            ),
        )

    def measurement(self) -> Measurement:
        """The compliance as a :class:`~bankkpi.Measurement` of indicator ``limit``.

        Raises:
            ZeroDenominatorError: when no case is decided.
        """
        if self.compliance is None:
            raise ZeroDenominatorError(f"{self.limit} compliance", self.met, subject=self.subject)
        return Measurement(self.subject, self.limit, self.period, self.compliance)


def summarize_compliance(
    results: Iterable[CaseResult],
    periods: Calendar | Iterable[Period],
    *,
    zone: Zone,
    rounding: RoundingPolicy,
    unit: ComplianceUnit = "percent",
    percentiles: Iterable[int] = (50, 90),
) -> tuple[ComplianceSummary, ...]:
    """Compliance per (subject, limit, period), sorted by those three.

    A case belongs to the period holding the local date, in ``zone`` (the bank's
    zone, stated), of the instant its clock started. Cases starting outside every
    period are out of scope and not counted. Periods must not overlap.

    >>> limit = TimeLimit("r48", "opened", "responded", dt.timedelta(hours=48),
    ...                   inclusive=True)
    >>> cases = [Case("A", str(i), {"opened": f"2024-03-0{i}T09:00+08:00",
    ...                             "responded": f"2024-03-0{i + h}T09:00+08:00"})
    ...          for i, h in ((1, 1), (2, 2), (3, 3))]
    >>> results, _ = evaluate_cases(cases, limit, as_of="2024-04-01T00:00+08:00")
    >>> [s] = summarize_compliance(results, [Period.month(2024, 3)], zone="Asia/Shanghai",
    ...                 rounding=RoundingPolicy("half_up", "0.01"))
    >>> s.met, s.breached, s.compliance, s.percentile(50)
    (2, 1, Decimal('66.67'), datetime.timedelta(days=2))
    """
    tz = _tz(zone)
    chosen = _percentiles(percentiles)
    ordered = _periods(periods)
    groups: dict[tuple[str, str, Period], list[CaseResult]] = {}
    for result in results:
        day = result.started.astimezone(tz).date()
        for period in ordered:
            if period.contains(day):
                groups.setdefault((result.subject, result.limit.code, period), []).append(result)
                break
    out: list[ComplianceSummary] = []
    for (subject, code, period), items in sorted(groups.items(), key=lambda kv: kv[0]):
        closed = sorted(r.elapsed_us for r in items if r.closed)
        out.append(
            ComplianceSummary(
                subject,
                code,
                period,
                sum(r.status == "met" for r in items),
                sum(r.status == "breached" for r in items),
                sum(r.status == "pending" for r in items),
                rounding,
                unit,
                tuple(
                    (p, dt.timedelta(microseconds=_nearest_rank(closed, p)))
                    for p in chosen
                    if closed
                ),
            )
        )
    return tuple(out)


def compliance_measurements(
    summaries: Iterable[ComplianceSummary],
) -> tuple[tuple[Measurement, ...], tuple[BankKPIError, ...]]:
    """The summaries as measurements, plus the errors of those that have none.

    A summary with no decided case gives a :class:`ZeroDenominatorError` instead of a
    measurement: nothing is dropped silently.

    >>> s = ComplianceSummary("A", "r48", Period.month(2024, 3), 19, 1, 0,
    ...                       RoundingPolicy("half_up", "0.1"), "percent")
    >>> compliance_measurements([s])[0][0].value
    Decimal('95.0')
    """
    measurements: list[Measurement] = []
    errors: list[BankKPIError] = []
    for summary in summaries:
        try:
            measurements.append(summary.measurement())
        except ZeroDenominatorError as exc:
            errors.append(exc)
    return tuple(measurements), tuple(errors)


# --- the array path --------------------------------------------------------------------


def _int64(values: object, field: str) -> NDArray[np.int64]:
    array = np.asarray(values)
    if array.dtype != np.int64:
        raise InvalidValueError(
            field,
            "must be an int64 array of UTC microseconds (see utc_microseconds)",
            str(array.dtype),
        )
    return array


def _flags(
    working: WorkingTime, first: dt.date, last: dt.date
) -> tuple[list[int], list[bool], list[tuple[int, int]], dict[int, MissingDataError]]:
    """Per local day from ``first`` to ``last`` + 1: midnights, known flags, intervals."""
    midnights: list[int] = []
    known: list[bool] = []
    intervals: list[tuple[int, int]] = []
    unknown: dict[int, MissingDataError] = {}
    day, index = first, 0
    while day <= last + _ONE_DAY:
        midnights.append(_midnight_us(day, working.zone))
        try:
            intervals.extend(working.intervals_us(day))
            known.append(True)
        except MissingDataError as exc:
            known.append(False)
            unknown[index] = exc
        day += _ONE_DAY
        index += 1
    return midnights, known, intervals, unknown


class _WorkingClock:
    """Cumulative working time W(t) over a range of days, evaluated by searchsorted."""

    def __init__(self, working: WorkingTime, low_us: int, high_us: int) -> None:
        first = _local_date(low_us, working.zone)
        last = _local_date(high_us, working.zone)
        midnights, known, intervals, unknown = _flags(working, first, last)
        self.midnights = np.array(midnights, dtype=np.int64)
        self.unknown_before = np.concatenate(
            ([0], np.cumsum(~np.array(known, dtype=np.bool_), dtype=np.int64))
        )
        self.unknown = unknown
        pairs = np.array(intervals, dtype=np.int64).reshape(-1, 2)
        self.starts = pairs[:, 0]
        self.lengths = pairs[:, 1] - pairs[:, 0]
        self.before = np.concatenate(([0], np.cumsum(self.lengths, dtype=np.int64)))

    def day_index(self, us: NDArray[np.int64]) -> NDArray[np.intp]:
        return np.searchsorted(self.midnights, us, side="right") - 1

    def cumulative(self, us: NDArray[np.int64]) -> NDArray[np.int64]:
        if not len(self.starts):
            return np.zeros(us.shape, dtype=np.int64)
        i = np.searchsorted(self.starts, us, side="right") - 1
        safe = np.maximum(i, 0)
        inside = np.clip(us - self.starts[safe], 0, self.lengths[safe])
        return np.where(i >= 0, self.before[safe] + inside, 0).astype(np.int64)


@attrs.frozen(eq=False)
class SlaArrays:
    """The array-path verdicts, one element per case (flags are False on invalid rows).

    ``elapsed_us`` and ``overrun_us`` are int64 microseconds; ``errors`` holds one
    error per invalid row (``row i``), in row order.
    """

    elapsed_us: NDArray[np.int64]
    met: NDArray[np.bool_]
    breached: NDArray[np.bool_]
    pending: NDArray[np.bool_]
    closed: NDArray[np.bool_]
    overrun_us: NDArray[np.int64]
    valid: NDArray[np.bool_]
    errors: tuple[BankKPIError, ...] = ()


def evaluate_cases_array(
    start_us: NDArray[np.int64],
    end_us: NDArray[np.int64],
    limit: TimeLimit,
    *,
    as_of: dt.datetime | str,
    zone: Zone | None = None,
) -> SlaArrays:
    """:func:`evaluate_case` on int64 UTC-microsecond arrays, with no loop over cases.

    Working time is a cumulative function of the instant, built once per day of the
    range and read with ``searchsorted``. ``end_us`` may hold :data:`NO_INSTANT`
    (open). Invalid rows (no start, end before start, start after ``as_of``, a day
    the calendar has no data for) get ``valid=False`` and an error each.

    >>> limit = TimeLimit("r2h", "reported", "arrived", dt.timedelta(hours=2), inclusive=True)
    >>> h = 3600 * 10**6
    >>> start = np.array([0, 0, 2 * h])
    >>> end = np.array([2 * h, 2 * h + 1, NO_INSTANT])
    >>> out = evaluate_cases_array(start, end, limit, as_of="1970-01-01T03:00Z")
    >>> out.met.tolist(), out.breached.tolist(), out.pending.tolist()
    ([True, False, False], [False, True, False], [False, False, True])
    """
    when = _us(_as_of(as_of, zone))
    start = _int64(start_us, "start_us")
    end = _int64(end_us, "end_us")
    if start.shape != end.shape or start.ndim != 1:
        raise InvalidValueError(
            "end_us", f"must be 1-D with the shape of start_us {start.shape}", end.shape
        )
    has_start = start != NO_INSTANT
    has_end = end != NO_INSTANT
    backwards = has_start & has_end & (end < start)
    future = has_start & (start > when)
    valid = has_start & ~backwards & ~future
    closed = valid & has_end & (end <= when)
    stop = np.where(closed, end, when)
    begin = np.where(valid, start, when)
    stop = np.where(valid, stop, when)
    unknown_rows = np.zeros(start.shape, dtype=np.bool_)
    clock: _WorkingClock | None = None
    if limit.working is None:
        elapsed = stop - begin
    else:
        low = int(begin.min()) if begin.size else when
        high = int(stop.max()) if stop.size else when
        clock = _WorkingClock(limit.working, low, high)
        first_day, last_day = clock.day_index(begin), clock.day_index(stop)
        unknown_rows = valid & (
            clock.unknown_before[last_day + 1] - clock.unknown_before[first_day] > 0
        )
        valid &= ~unknown_rows
        closed &= valid
        elapsed = clock.cumulative(stop) - clock.cumulative(begin)
    elapsed = np.where(valid, elapsed, 0).astype(np.int64)
    within = elapsed <= limit.limit_us if limit.inclusive else elapsed < limit.limit_us
    met = valid & closed & within
    pending = valid & ~closed & within
    breached = valid & ~within
    overrun = np.where(breached, np.maximum(elapsed - limit.limit_us, 0), 0).astype(np.int64)
    errors = _array_errors(
        limit,
        start,
        end,
        when,
        has_start=has_start,
        backwards=backwards,
        future=future,
        unknown=(unknown_rows, clock),
    )
    return SlaArrays(elapsed, met, breached, pending, closed, overrun, valid, errors)


def _array_errors(
    limit: TimeLimit,
    start: NDArray[np.int64],
    end: NDArray[np.int64],
    when: int,
    *,
    has_start: NDArray[np.bool_],
    backwards: NDArray[np.bool_],
    future: NDArray[np.bool_],
    unknown: tuple[NDArray[np.bool_], _WorkingClock | None],
) -> tuple[BankKPIError, ...]:
    rows, clock = unknown
    bad = ~has_start | backwards | future | rows
    errors: list[BankKPIError] = []
    for row in np.flatnonzero(bad).tolist():
        subject = f"row {row}"
        if not has_start[row]:
            errors.append(
                MissingDataError(f"'{limit.start}' timestamp", limit.code, subject=subject)
            )
        elif backwards[row]:
            errors.append(
                InvalidValueError(
                    limit.end,
                    f"must not be before {limit.start} {_instant(int(start[row])).isoformat()}",
                    _instant(int(end[row])).isoformat(),
                    subject=subject,
                )
            )
        elif future[row]:
            errors.append(
                InvalidValueError(
                    limit.start,
                    f"must not be after the evaluation instant as_of {_instant(when).isoformat()}",
                    _instant(int(start[row])).isoformat(),
                    subject=subject,
                )
            )
        elif clock is not None:
            closed = end[row] != NO_INSTANT and end[row] <= when
            stop = int(end[row]) if closed else when
            first = int(clock.day_index(np.array([start[row]]))[0])
            last = int(clock.day_index(np.array([stop]))[0])
            day = next(d for d in range(first, last + 1) if d in clock.unknown)
            cause = clock.unknown[day]
            errors.append(MissingDataError(cause.what, cause.key, subject=subject))
    return tuple(errors)


@attrs.frozen(eq=False)
class ComplianceArrays:
    """Counts and percentiles per (subject, period), from :func:`summarize_compliance_array`.

    ``met``, ``breached`` and ``pending`` have shape (subjects, periods);
    ``percentile_us`` has shape (subjects, periods, len(percentiles)) and holds −1
    where the group has no closed case.
    """

    subjects: tuple[str, ...]
    periods: tuple[Period, ...]
    percentiles: tuple[int, ...]
    met: NDArray[np.int64]
    breached: NDArray[np.int64]
    pending: NDArray[np.int64]
    percentile_us: NDArray[np.int64]

    def summaries(
        self,
        limit: str,
        *,
        rounding: RoundingPolicy,
        unit: ComplianceUnit = "percent",
    ) -> tuple[ComplianceSummary, ...]:
        """The non-empty groups as summaries, as :func:`summarize_compliance` gives them.

        Sorted by subject then period; this loops over groups, not cases.
        """
        totals = self.met + self.breached + self.pending
        out: list[ComplianceSummary] = []
        for s, p in zip(*np.nonzero(totals), strict=True):
            si, pi = int(s), int(p)
            pct = self.percentile_us[si, pi]
            out.append(
                ComplianceSummary(
                    self.subjects[si],
                    limit,
                    self.periods[pi],
                    int(self.met[si, pi]),
                    int(self.breached[si, pi]),
                    int(self.pending[si, pi]),
                    rounding,
                    unit,
                    tuple(
                        (q, dt.timedelta(microseconds=int(v)))
                        for q, v in zip(self.percentiles, pct.tolist(), strict=True)
                        if v >= 0
                    ),
                )
            )
        return tuple(out)


def summarize_compliance_array(
    subjects: Sequence[str] | NDArray[np.str_],
    start_us: NDArray[np.int64],
    verdicts: SlaArrays,
    periods: Calendar | Iterable[Period],
    *,
    zone: Zone,
    percentiles: Iterable[int] = (50, 90),
) -> ComplianceArrays:
    """:func:`summarize_compliance` on arrays: ``bincount`` and ``lexsort``, no loop over cases.

    Invalid rows and rows starting outside every period are not counted.

    >>> limit = TimeLimit("r2h", "reported", "arrived", dt.timedelta(hours=2), inclusive=True)
    >>> start = utc_microseconds(["2024-03-01T09:00+08:00"] * 2)
    >>> end = utc_microseconds(["2024-03-01T10:00+08:00", "2024-03-01T12:00+08:00"])
    >>> v = evaluate_cases_array(start, end, limit, as_of="2024-04-01T00:00Z")
    >>> grid = summarize_compliance_array(["A", "A"], start, v, [Period.month(2024, 3)],
    ...                                   zone="Asia/Shanghai")
    >>> grid.met.tolist(), grid.breached.tolist()
    ([[1]], [[1]])
    """
    tz = _tz(zone)
    chosen = _percentiles(percentiles)
    ordered = _periods(periods)
    start = _int64(start_us, "start_us")
    names, codes = np.unique(np.asarray(subjects, dtype=np.str_), return_inverse=True)
    if codes.shape != start.shape:
        raise InvalidValueError(
            "subjects", f"must have the shape of start_us {start.shape}", codes.shape
        )
    lows = np.array([_midnight_us(p.start, tz) for p in ordered], dtype=np.int64)
    highs = np.array([_midnight_us(p.end + _ONE_DAY, tz) for p in ordered], dtype=np.int64)
    index = np.searchsorted(lows, start, side="right") - 1
    safe = np.maximum(index, 0)
    counted = verdicts.valid & (index >= 0) & (start < highs[safe])
    n_subjects, n_periods = len(names), len(ordered)
    group = codes.astype(np.int64) * n_periods + safe
    size = n_subjects * n_periods

    def count(mask: NDArray[np.bool_]) -> NDArray[np.int64]:
        return (
            np.bincount(group[mask], minlength=size).astype(np.int64).reshape(n_subjects, n_periods)
        )

    closed = counted & verdicts.closed
    closed_group = group[closed]
    order = np.lexsort((verdicts.elapsed_us[closed], closed_group))
    sorted_elapsed = verdicts.elapsed_us[closed][order]
    n_closed = np.bincount(closed_group, minlength=size).astype(np.int64)
    offsets = np.cumsum(n_closed) - n_closed
    pct = np.full((size, len(chosen)), -1, dtype=np.int64)
    for column, percent in enumerate(chosen):
        rank = (percent * n_closed + 99) // 100
        has = n_closed > 0
        pct[has, column] = sorted_elapsed[offsets[has] + rank[has] - 1]
    return ComplianceArrays(
        tuple(str(n) for n in names.tolist()),
        ordered,
        chosen,
        count(counted & verdicts.met),
        count(counted & verdicts.breached),
        count(counted & verdicts.pending),
        pct.reshape(n_subjects, n_periods, len(chosen)),
    )
