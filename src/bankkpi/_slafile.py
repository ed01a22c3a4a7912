"""SLA run files: the time limits, zone, calendar and periods of a compliance run.

A small TOML (or JSON) file, read as data like a scheme file. Every problem is
reported at once with its key::

    zone = "Asia/Shanghai"                 # cases' periods are local dates here
    as_of = "2024-12-31T23:59:59+08:00"    # the evaluation instant (no hidden clock)
    year = 2024
    periods = "months"                     # months, quarters or year
    rounding = { mode = "half_up", place = "0.01" }
    unit = "percent"                       # or "ratio"

    [working]                              # optional: working hours and calendar
    hours = [["08:30", "12:00"], ["13:30", "17:30"]]
    holidays = [["2024-02-10", "2024-02-17"]]
    working_days = ["2024-02-04", "2024-02-18"]

    [[limits]]
    code = "complaint_response"
    start = "opened"
    end = "responded"
    hours = 48                             # or minutes = / seconds =
    inclusive = true                       # "within 48 h" includes 48:00:00
    working = false                        # true: count working time only
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from bankkpi._money import RoundingPolicy, to_decimal
from bankkpi._periods import Calendar, Period
from bankkpi._sla import ComplianceUnit, OfficialCalendar, TimeLimit, WorkingTime
from bankkpi.exceptions import BankKPIError, ConfigError, ValidationErrorGroup

__all__ = ["SlaRun", "load_sla_run"]


@attrs.frozen
class SlaRun:
    """Everything an SLA batch run needs besides the cases."""

    limits: tuple[TimeLimit, ...]
    zone: str
    as_of: str
    periods: Calendar
    rounding: RoundingPolicy
    unit: ComplianceUnit


_TOP = {"zone", "as_of", "year", "periods", "rounding", "unit", "working", "limits"}
_LIMIT = {"code", "start", "end", "hours", "minutes", "seconds", "inclusive", "working"}
_WORKING = {"hours", "holidays", "working_days"}


def _unknown(
    data: Mapping[str, Any], allowed: set[str], path: str, problems: list[BankKPIError]
) -> None:
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            problems.append(
                ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")
            )


def _span(data: Mapping[str, Any], path: str) -> dt.timedelta:
    given = [k for k in ("hours", "minutes", "seconds") if k in data]
    if len(given) != 1:
        raise ConfigError(f"{path}: give exactly one of hours, minutes or seconds")
    amount = to_decimal(data[given[0]], field=f"{path}.{given[0]}")
    seconds = amount * {"hours": 3600, "minutes": 60, "seconds": 1}[given[0]]
    return dt.timedelta(microseconds=int(seconds * 1_000_000))


def _working(data: object, zone: str) -> WorkingTime:
    if not isinstance(data, Mapping):
        raise ConfigError("working: must be a table")
    problems: list[BankKPIError] = []
    _unknown(data, _WORKING, "working", problems)
    if problems:
        raise ValidationErrorGroup("invalid working time", problems)
    holidays = [Period(a, b) for a, b in data.get("holidays", [])]
    calendar = OfficialCalendar(holidays=holidays, working_days=data.get("working_days", []))
    return WorkingTime([tuple(pair) for pair in data.get("hours", [])], zone, calendar)


def _periods(kind: object, year: object) -> Calendar:
    if not isinstance(year, int) or isinstance(year, bool):
        raise ConfigError(f"year: must be a whole number: {year!r}")
    if kind == "months":
        return Calendar.months(year)
    if kind == "quarters":
        return Calendar.quarters(year)
    if kind == "year":
        return Calendar.years(year, 1)
    raise ConfigError(f"periods: must be one of 'months', 'quarters', 'year': {kind!r}")


def _limit(data: object, index: int, working: WorkingTime | None) -> TimeLimit:
    path = f"limits[{index}]"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: must be a table")
    problems: list[BankKPIError] = []
    _unknown(data, _LIMIT, path, problems)
    if problems:
        raise ValidationErrorGroup("invalid limit", problems)
    if not isinstance(data.get("inclusive"), bool):
        raise ConfigError(f"{path}.inclusive: must be stated, true or false")
    uses_working = data.get("working", False)
    if uses_working and working is None:
        raise ConfigError(f"{path}.working: needs a [working] table")
    return TimeLimit(
        str(data.get("code", "")),
        str(data.get("start", "")),
        str(data.get("end", "")),
        _span(data, path),
        inclusive=data["inclusive"],
        working=working if uses_working else None,
    )


def _parts(data: Mapping[str, Any], zone: str, problems: list[BankKPIError]) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for key in ("working", "periods", "rounding"):
        try:
            if key == "working":
                parts[key] = _working(data["working"], zone) if "working" in data else None
            elif key == "periods":
                parts[key] = _periods(data.get("periods"), data.get("year"))
            else:
                parts[key] = RoundingPolicy(**data.get("rounding", {}))
        except ValidationErrorGroup as group:
            problems.extend(ConfigError(f"{key}: {p}") for p in group.problems)
        except (BankKPIError, TypeError) as exc:
            problems.append(exc if isinstance(exc, ConfigError) else ConfigError(f"{key}: {exc}"))
    return parts


def _repeated_codes(items: object, problems: list[BankKPIError]) -> set[int]:
    """The indices of limits whose code an earlier limit has, each reported.

    Read from the tables as written, valid or not, so a repeat is reported with
    the first limit's other problems. A code with blanks at either end is refused
    too: it would look like another in the results.
    """
    if not isinstance(items, list):
        return set()
    first: dict[str, int] = {}
    repeated: set[int] = set()
    for index, item in enumerate(items):
        code = item.get("code") if isinstance(item, Mapping) else None
        if not isinstance(code, str):
            continue
        if code != code.strip():
            problems.append(
                ConfigError(f"limits[{index}].code: must not begin or end with blanks: {code!r}")
            )
        if code.strip() in first:
            repeated.add(index)
            problems.append(
                ConfigError(
                    f"limits[{index}].code: {code!r} is also limits[{first[code.strip()]}]'s"
                    " (each limit's code names its results)"
                )
            )
        else:
            first[code.strip()] = index
    return repeated


def _limits(
    data: Mapping[str, Any], working: WorkingTime | None, problems: list[BankKPIError]
) -> list[TimeLimit]:
    limits: list[TimeLimit] = []
    items = data.get("limits", [])
    repeated = _repeated_codes(items, problems)
    for index, item in enumerate(items):
        try:
            limit = _limit(item, index, working)
            if index not in repeated:  # a repeat's results would merge with the first's
                limits.append(limit)
        except ValidationErrorGroup as group:
            problems.extend(group.problems)
        except BankKPIError as exc:
            wrapped = (
                exc if isinstance(exc, ConfigError) else ConfigError(f"limits[{index}]: {exc}")
            )
            problems.append(wrapped)
    if not limits and not problems:
        problems.append(ConfigError("limits: at least one [[limits]] table is required"))
    return limits


def load_sla_run(text: str, *, format: str) -> SlaRun:  # noqa: A002 - the file format's name
    """Parse an SLA run file (``toml`` or ``json``); every problem reported at once."""
    try:
        data = (
            tomllib.loads(text, parse_float=Decimal)
            if format == "toml"
            else json.loads(text, parse_float=Decimal)
        )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ValidationErrorGroup("invalid SLA file", [ConfigError(f"(syntax): {exc}")]) from None
    problems: list[BankKPIError] = []
    _unknown(data, _TOP, "", problems)
    zone = data.get("zone")
    if not isinstance(zone, str):
        problems.append(ConfigError("zone: is required, e.g. 'Asia/Shanghai'"))
        zone = "UTC"
    parts = _parts(data, zone, problems)
    limits = _limits(data, parts.get("working"), problems)
    as_of = data.get("as_of")
    if not isinstance(as_of, str):
        problems.append(ConfigError("as_of: is required, an ISO instant with its offset"))
    unit = data.get("unit", "percent")
    if unit not in ("percent", "ratio"):
        problems.append(ConfigError(f"unit: must be 'percent' or 'ratio': {unit!r}"))
    if problems:
        raise ValidationErrorGroup("invalid SLA file", problems)
    return SlaRun(tuple(limits), zone, str(as_of), parts["periods"], parts["rounding"], unit)
