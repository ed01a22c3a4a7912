import datetime as dt
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import AtLeast, Period, RoundingPolicy
from bankkpi._sla import (
    NO_INSTANT,
    Case,
    ComplianceSummary,
    OfficialCalendar,
    TimeLimit,
    WorkdayCalendar,
    WorkingTime,
    compliance_measurements,
    evaluate_case,
    evaluate_cases,
    evaluate_cases_array,
    summarize_compliance,
    summarize_compliance_array,
    to_utc,
    utc_microseconds,
)
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    MissingDataError,
    ValidationErrorGroup,
    ZeroDenominatorError,
)

from .strategies import SPRING_FESTIVAL_2024, sla_cases, time_limits, zone_names

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
H = dt.timedelta(hours=1)
RESPOND_48H = TimeLimit("complaint_response", "opened", "responded", 48 * H, inclusive=True)
SOLVE_72H = TimeLimit("complaint_resolution", "opened", "resolved", 72 * H, inclusive=True)
ATM_2H = TimeLimit("atm_response", "reported", "arrived", 2 * H, inclusive=True)
CALL_30S = TimeLimit("call_answer", "rang", "answered", dt.timedelta(seconds=30), inclusive=True)
BANK_HOURS = [("08:30", "12:00"), ("13:30", "17:30")]
OFFICIAL_2024 = OfficialCalendar(**SPRING_FESTIVAL_2024, covers=Period.year(2024))
WORKING_2024 = WorkingTime(BANK_HOURS, "Asia/Shanghai", OFFICIAL_2024)
YEAR_END = dt.datetime(2025, 1, 1, tzinfo=SH)
HALF_UP_2 = RoundingPolicy("half_up", "0.01")


def at(*args: int, tz: dt.tzinfo = SH) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def complaint(case_id: str, opened: dt.datetime, **events: dt.datetime | None) -> Case:
    return Case("outlet 3201", case_id, {"opened": opened, **events})


# --- calendar-time limits: the bound itself ----------------------------------------------


@pytest.mark.parametrize(
    ("after", "status"),
    [
        (dt.timedelta(hours=47, minutes=59), "met"),
        (48 * H, "met"),
        (dt.timedelta(hours=48, minutes=1), "breached"),
        (dt.timedelta(hours=48, microseconds=1), "breached"),
    ],
)
def test_complaint_answered_within_48_hours(after, status):
    opened = at(2024, 3, 1, 9, 0)
    result = evaluate_case(
        complaint("T1", opened, responded=opened + after), RESPOND_48H, as_of=YEAR_END
    )
    assert result.status == status
    assert result.elapsed == after
    assert result.overrun == (after - 48 * H if status == "breached" else dt.timedelta(0))


def test_exclusive_limit_refuses_the_bound_itself_with_zero_overrun():
    under_48 = TimeLimit("r", "opened", "responded", 48 * H, inclusive=False)
    opened = at(2024, 3, 1, 9, 0)
    result = evaluate_case(
        complaint("T1", opened, responded=opened + 48 * H), under_48, as_of=YEAR_END
    )
    assert result.status == "breached"
    assert result.overrun == dt.timedelta(0)
    assert under_48.describe("en") == "responded < 48 h after opened (calendar time)"
    assert under_48.describe("zh") == "opened至responded 48小时以内(不含)（自然时间）"


def test_inclusivity_must_be_stated():
    with pytest.raises(TypeError, match="inclusive"):
        TimeLimit("r", "opened", "responded", 48 * H)  # type: ignore[call-arg]


def test_responded_in_48h_but_solved_after_72h():
    opened = at(2024, 3, 1, 9, 0)
    case = complaint("T1", opened, responded=opened + 20 * H, resolved=opened + 73 * H)
    results, errors = evaluate_cases([case], [RESPOND_48H, SOLVE_72H], as_of=YEAR_END)
    assert errors == ()
    assert [(r.limit.code, r.status) for r in results] == [
        ("complaint_response", "met"),
        ("complaint_resolution", "breached"),
    ]
    assert results[1].overrun == H


def test_atm_fault_two_hours_and_call_thirty_seconds():
    reported = at(2024, 5, 6, 10, 0)
    on_time = Case("ATM 12", "F-1", {"reported": reported, "arrived": reported + 2 * H})
    late = Case("ATM 12", "F-2", {"reported": reported, "arrived": at(2024, 5, 6, 12, 0, 30)})
    results, _ = evaluate_cases([on_time, late], ATM_2H, as_of=YEAR_END)
    assert [r.status for r in results] == ["met", "breached"]
    assert results[1].overrun == dt.timedelta(seconds=30)
    assert results[1].trace().render("zh") == "用时 = 7230 秒【超时 0:00:30】"

    rang = at(2024, 5, 6, 10, 0)
    calls = [
        Case("teller 8", "C1", {"rang": rang, "answered": rang + dt.timedelta(seconds=30)}),
        Case("teller 8", "C2", {"rang": rang, "answered": rang + dt.timedelta(seconds=31)}),
    ]
    results, _ = evaluate_cases(calls, CALL_30S, as_of=YEAR_END)
    assert [r.status for r in results] == ["met", "breached"]


# --- open cases and the evaluation instant ----------------------------------------------------


def test_open_case_breached_once_its_limit_passed_and_pending_before():
    opened = at(2024, 3, 1, 9, 0)
    open_case = complaint("T1", opened, responded=None)
    as_of_late = opened + dt.timedelta(hours=48, seconds=1)
    as_of_early = opened + 48 * H
    late = evaluate_case(open_case, RESPOND_48H, as_of=as_of_late)
    early = evaluate_case(open_case, RESPOND_48H, as_of=as_of_early)
    assert (late.status, late.closed, late.overrun) == ("breached", False, dt.timedelta(seconds=1))
    assert (early.status, early.closed) == ("pending", False)
    assert "pending (open, limit not yet passed)" in early.trace().render("en")


def test_an_end_after_as_of_had_not_happened_yet():
    opened = at(2024, 3, 1, 9, 0)
    case = complaint("T1", opened, responded=opened + 10 * H)
    result = evaluate_case(case, RESPOND_48H, as_of=opened + 5 * H)
    assert (result.status, result.ended, result.elapsed) == ("pending", None, 5 * H)


def test_as_of_is_required_and_never_read_from_a_clock():
    case = complaint("T1", at(2024, 3, 1, 9, 0))
    with pytest.raises(TypeError, match="as_of"):
        evaluate_case(case, RESPOND_48H)  # type: ignore[call-arg]
    with pytest.raises(AmbiguousInputError, match="'as_of' has no time zone"):
        evaluate_case(case, RESPOND_48H, as_of=dt.datetime(2024, 4, 1))  # noqa: DTZ001


def test_bad_cases_are_reported_and_good_ones_kept():
    opened = at(2024, 3, 1, 9, 0)
    cases = [
        complaint("T1", opened, responded=opened + H),
        Case("outlet 3202", "T2", {"responded": opened}),
        complaint("T3", opened, responded=opened - H),
        complaint("T4", at(2025, 6, 1, 9, 0)),
        complaint("T1", opened),
        Case("outlet 3203", "T5", {"opened": dt.datetime(2024, 3, 1, 9)}),  # noqa: DTZ001
        Case("outlet 3204", "T6", {"opened": "not a time"}),
    ]
    results, errors = evaluate_cases(cases, RESPOND_48H, as_of=YEAR_END)
    assert [r.case_id for r in results] == ["T1"]
    assert [type(e) for e in errors] == [
        MissingDataError,
        InvalidValueError,
        InvalidValueError,
        DuplicateError,
        AmbiguousInputError,
        InvalidValueError,
    ]
    messages = [str(e) for e in errors]
    assert messages[0] == "outlet 3202: no 'opened' timestamp of case T2 for 'complaint_response'"
    assert messages[1].startswith("outlet 3201 T3: 'responded' must not be before opened")
    assert "as_of" in messages[2]
    assert messages[3] == "outlet 3201: 'case_id' must be unique per subject: 'T1'"
    assert messages[4].startswith("outlet 3203 T5: 'opened' has no time zone")
    assert messages[5].startswith("outlet 3204 T6: 'opened' must be an ISO timestamp")


# --- instants, zones and daylight saving -------------------------------------------------------


def test_naive_timestamps_need_a_stated_zone():
    naive = dt.datetime(2024, 2, 8, 9, 0)  # noqa: DTZ001
    with pytest.raises(AmbiguousInputError, match="no time zone"):
        to_utc(naive)
    assert to_utc(naive, zone="Asia/Shanghai") == dt.datetime(2024, 2, 8, 1, 0, tzinfo=dt.UTC)
    assert to_utc("2024-02-08 09:00", zone=SH) == to_utc("2024-02-08T01:00:00Z")
    with pytest.raises(InvalidValueError, match="IANA"):
        to_utc(naive, zone="Mars/Olympus")
    with pytest.raises(InvalidValueError, match="not a date"):
        to_utc(dt.date(2024, 2, 8))


def test_naive_wall_times_a_clock_change_skips_or_repeats_are_refused():
    with pytest.raises(AmbiguousInputError, match="does not exist in America/New_York"):
        to_utc(dt.datetime(2024, 3, 10, 2, 30), zone=NY)  # noqa: DTZ001
    with pytest.raises(AmbiguousInputError, match="occurs twice in America/New_York"):
        to_utc(dt.datetime(2024, 11, 3, 1, 30), zone=NY)  # noqa: DTZ001
    assert to_utc("2024-11-03T01:30:00-04:00") + H == to_utc("2024-11-03T01:30:00-05:00")


@pytest.mark.parametrize(
    ("opened", "responded"),
    [
        # spring forward: 22:00 EST to 23:00 EDT next day is 24 h, not 25
        (at(2024, 3, 9, 22, 0, tz=NY), at(2024, 3, 10, 23, 0, tz=NY)),
        # fall back: 22:00 EDT to 21:00 EST next day is 24 h, not 23
        (at(2024, 11, 2, 22, 0, tz=NY), at(2024, 11, 3, 21, 0, tz=NY)),
    ],
)
def test_daylight_saving_cannot_bend_elapsed_time(opened, responded):
    one_day = TimeLimit("r24", "opened", "responded", 24 * H, inclusive=True)
    in_ny = Case("branch NY", "T1", {"opened": opened, "responded": responded})
    in_utc = Case(
        "branch NY",
        "T1",
        {"opened": opened.astimezone(dt.UTC), "responded": responded.astimezone(dt.UTC)},
    )
    as_of = at(2024, 12, 1, 0, 0, tz=dt.UTC)
    assert responded.replace(tzinfo=None) - opened.replace(tzinfo=None) != 24 * H
    ny_result = evaluate_case(in_ny, one_day, as_of=as_of)
    utc_result = evaluate_case(in_utc, one_day, as_of=as_of)
    assert ny_result == utc_result
    assert (ny_result.elapsed, ny_result.status) == (24 * H, "met")


def test_working_hours_follow_the_wall_clock_across_a_clock_change():
    nine_to_five = WorkingTime([("09:00", "17:00")], "America/New_York")
    limit = TimeLimit("r", "opened", "responded", 2 * H, inclusive=True, working=nine_to_five)
    # Friday 16:00 EST to Monday 10:00 EDT: one working hour each side of the weekend.
    case = Case(
        "NY",
        "1",
        {"opened": at(2024, 3, 8, 16, 0, tz=NY), "responded": at(2024, 3, 11, 10, 0, tz=NY)},
    )
    result = evaluate_case(case, limit, as_of=at(2024, 4, 1, 0, 0, tz=NY))
    assert (result.elapsed, result.status) == (2 * H, "met")


# --- working time: the 2024 Spring Festival with its swapped working days -------------------


def test_official_calendar_knows_holidays_and_swapped_working_days():
    assert isinstance(OFFICIAL_2024, WorkdayCalendar)
    cal = OFFICIAL_2024.is_working_day
    assert cal(dt.date(2024, 2, 4))  # Sunday, worked (调休)
    assert cal(dt.date(2024, 2, 9))  # Friday before the holiday
    assert not cal(dt.date(2024, 2, 10))  # Saturday, holiday
    assert not cal(dt.date(2024, 2, 14))  # Wednesday, holiday
    assert cal(dt.date(2024, 2, 18))  # Sunday, worked (调休)
    assert not cal(dt.date(2024, 2, 24))  # an ordinary Saturday
    with pytest.raises(MissingDataError, match=r"covers 2024-01-01\.\.2024-12-31"):
        cal(dt.date(2025, 1, 2))


def test_case_spanning_the_spring_festival_in_working_time():
    """Opened Thu 2024-02-08 16:00, solved Sun 2024-02-18 10:00 (a swapped working day).

    Working time: Thu 16:00–17:30 (1.5 h) + Fri 7.5 h + holiday 0 + Sun 08:30–10:00
    (1.5 h) = 10.5 h, against 234 h of calendar time.
    """
    two_days = TimeLimit(
        "complaint_resolution_wt",
        "opened",
        "resolved",
        15 * H,
        inclusive=True,
        working=WORKING_2024,
    )
    case = complaint("T1", at(2024, 2, 8, 16, 0), resolved=at(2024, 2, 18, 10, 0))
    working = evaluate_case(case, two_days, as_of=YEAR_END)
    calendar = evaluate_case(case, SOLVE_72H, as_of=YEAR_END)
    assert (working.elapsed, working.status) == (dt.timedelta(hours=10, minutes=30), "met")
    assert (calendar.elapsed, calendar.status) == (234 * H, "breached")

    # Without the swapped day, Sunday the 18th would not count: 9 h.
    plain = WorkingTime(
        BANK_HOURS, "Asia/Shanghai", OfficialCalendar(holidays=SPRING_FESTIVAL_2024["holidays"])
    )
    assert plain.elapsed(at(2024, 2, 8, 16, 0), at(2024, 2, 18, 10, 0)) == 9 * H


@pytest.mark.parametrize(
    ("responded", "status"),
    [(at(2024, 2, 18, 15, 30), "met"), (at(2024, 2, 18, 15, 30, 1), "breached")],
)
def test_eight_working_hours_resume_on_the_swapped_sunday(responded, status):
    """Opened Fri 2024-02-09 15:00: 2.5 h that day, then 5.5 h on Sunday the 18th."""
    eight = TimeLimit("r8", "opened", "responded", 8 * H, inclusive=True, working=WORKING_2024)
    result = evaluate_case(
        complaint("T1", at(2024, 2, 9, 15, 0), responded=responded), eight, as_of=YEAR_END
    )
    assert result.status == status


def test_swapped_sunday_at_the_start_counts_as_a_working_day():
    start, end = at(2024, 2, 4, 9, 0), at(2024, 2, 5, 9, 0)
    assert WORKING_2024.elapsed(start, end) == dt.timedelta(hours=7, minutes=30)


def test_case_outside_the_official_calendar_is_reported_not_guessed():
    limit = TimeLimit("r8", "opened", "responded", 8 * H, inclusive=True, working=WORKING_2024)
    late = complaint("T9", at(2024, 12, 31, 16, 0), responded=at(2025, 1, 2, 10, 0))
    results, errors = evaluate_cases([late], limit, as_of=at(2025, 2, 1, 0, 0))
    assert results == ()
    assert str(errors[0]) == (
        "outlet 3201 T9: no official calendar entry (the calendar covers "
        "2024-01-01..2024-12-31) for '2025-01-01'"
    )
    out = evaluate_cases_array(
        utc_microseconds([late.events["opened"]]),
        utc_microseconds([late.events["responded"]]),
        limit,
        as_of=at(2025, 2, 1, 0, 0),
    )
    assert out.valid.tolist() == [False]
    assert str(out.errors[0]).startswith("row 0: no official calendar entry")


def test_official_calendar_reports_every_problem_at_once():
    with pytest.raises(ValidationErrorGroup) as info:
        OfficialCalendar(
            holidays=["2024-02-10", "2025-01-01"],
            working_days=["2024-02-10", "2024-02-05"],
            covers=Period.year(2024),
        )
    messages = [str(e) for e in info.value.exceptions]
    assert messages == [
        "'working_days' must not also be listed as a holiday: '2024-02-10'",
        "'working_days' must be weekend days worked (调休); this one is a Monday: '2024-02-05'",
        "'holidays' must lie within covers 2024-01-01..2024-12-31: '2025-01-01'",
    ]
    with pytest.raises(ValidationErrorGroup):
        OfficialCalendar(holidays=["2024-02-30", 5])  # type: ignore[list-item]
    with pytest.raises(InvalidValueError, match="weekday numbers"):
        OfficialCalendar(weekend=[6, 7])


def test_working_hours_report_every_problem_at_once():
    with pytest.raises(ValidationErrorGroup) as info:
        WorkingTime(
            [("12:00", "08:30"), ("nine", "17:00"), ("13:00", "15:00"), ("14:00", "16:00")],
            "Asia/Shanghai",
        )
    assert len(info.value.exceptions) == 3
    with pytest.raises(ValidationErrorGroup) as empty:
        WorkingTime([], "Asia/Shanghai")
    assert "at least one" in str(empty.value.exceptions[0])
    with pytest.raises(InvalidValueError, match="is_working_day"):
        WorkingTime(BANK_HOURS, "Asia/Shanghai", calendar=object())  # type: ignore[arg-type]
    assert WORKING_2024.day_length == dt.timedelta(hours=7, minutes=30)
    assert WORKING_2024.describe("en") == "working time 08:30-12:00, 13:30-17:30 (Asia/Shanghai)"


def test_any_object_with_is_working_day_is_a_calendar():
    class FourDayWeek:
        def is_working_day(self, day: dt.date) -> bool:
            return day.weekday() < 4

    wt = WorkingTime([("09:00", "17:00")], "Asia/Shanghai", FourDayWeek())
    # Thursday 09:00 to Monday 09:00: Thursday only.
    assert wt.elapsed(at(2024, 3, 7, 9, 0), at(2024, 3, 11, 9, 0)) == 8 * H


def test_limit_validation():
    with pytest.raises(InvalidValueError, match="must be positive"):
        TimeLimit("r", "opened", "responded", dt.timedelta(0), inclusive=True)
    with pytest.raises(InvalidValueError, match="timedelta"):
        TimeLimit("r", "opened", "responded", 48, inclusive=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="another event"):
        TimeLimit("r", "opened", "opened", H, inclusive=True)


# --- compliance per subject and period -----------------------------------------------------


def month_of_cases() -> list[Case]:
    opened = at(2024, 3, 1, 9, 0)
    hours = [10, 20, 30, 40, 47, 48, 49, 60]
    cases = [complaint(f"T{i}", opened, responded=opened + h * H) for i, h in enumerate(hours)]
    cases.append(complaint("T-open", at(2024, 3, 31, 9, 0)))  # pending at April 1 00:00
    cases.append(Case("outlet 3202", "X1", {"opened": at(2024, 3, 2, 9, 0)}))  # breached, open
    return cases


def test_compliance_rate_counts_and_percentiles():
    results, errors = evaluate_cases(month_of_cases(), RESPOND_48H, as_of=at(2024, 4, 1, 0, 0))
    assert errors == ()
    first, second = summarize_compliance(
        results,
        [Period.month(2024, 3)],
        zone="Asia/Shanghai",
        rounding=HALF_UP_2,
        percentiles=(50, 90, 100),
    )
    assert (first.subject, first.met, first.breached, first.pending) == ("outlet 3201", 6, 2, 1)
    assert first.compliance == Decimal("75.00")
    assert first.percentile(50) == 40 * H
    assert first.percentile(90) == 60 * H
    assert first.percentile(100) == 60 * H
    assert first.trace().render("en") == (
        "time-limit compliance = 6 ÷ (6 + 2) × 100 = 75.00 % [1 pending, not counted]"
    )
    assert (second.met, second.breached, second.compliance, second.percentiles) == (
        0,
        1,
        Decimal("0.00"),
        (),
    )
    assert AtLeast(75).met(first.measurement().value)


def test_ratio_unit_and_subject_with_nothing_decided():
    results, _ = evaluate_cases(month_of_cases(), RESPOND_48H, as_of=at(2024, 4, 1, 0, 0))
    summaries = summarize_compliance(
        results,
        [Period.month(2024, 3)],
        zone=SH,
        rounding=RoundingPolicy("half_up", "0.0001"),
        unit="ratio",
    )
    assert summaries[0].compliance == Decimal("0.7500")
    pending_only = ComplianceSummary(
        "outlet 9", "complaint_response", Period.month(2024, 3), 0, 0, 2, HALF_UP_2, "percent"
    )
    assert pending_only.compliance is None
    measurements, errors = compliance_measurements([*summaries, pending_only])
    assert [m.subject for m in measurements] == ["outlet 3201", "outlet 3202"]
    assert [type(e) for e in errors] == [ZeroDenominatorError]
    assert "outlet 9" in str(errors[0])
    with pytest.raises(InvalidValueError, match="'percent' or 'ratio'"):
        ComplianceSummary("A", "r", Period.month(2024, 3), 1, 0, 0, HALF_UP_2, "permille")  # type: ignore[arg-type]


def test_period_of_a_case_is_its_local_start_date_in_the_stated_zone():
    # 2024-04-01 07:00 in Shanghai is still 2024-03-31 in UTC.
    case = complaint("T1", at(2024, 4, 1, 7, 0), responded=at(2024, 4, 1, 8, 0))
    results, _ = evaluate_cases([case], RESPOND_48H, as_of=YEAR_END)
    march, april = Period.month(2024, 3), Period.month(2024, 4)
    assert [
        s.period
        for s in summarize_compliance(
            results, [march, april], zone="Asia/Shanghai", rounding=HALF_UP_2
        )
    ] == [april]
    assert [
        s.period
        for s in summarize_compliance(results, [march, april], zone="UTC", rounding=HALF_UP_2)
    ] == [march]
    assert summarize_compliance(results, [Period.month(2024, 5)], zone=SH, rounding=HALF_UP_2) == ()


def test_summary_arguments_are_checked():
    with pytest.raises(ValidationErrorGroup):
        summarize_compliance(
            [],
            [Period.month(2024, 3), Period("2024-03-15", "2024-04-15")],
            zone=SH,
            rounding=HALF_UP_2,
        )
    with pytest.raises(InvalidValueError, match=r"1\.\.100"):
        summarize_compliance(
            [], [Period.month(2024, 3)], zone=SH, rounding=HALF_UP_2, percentiles=(0,)
        )


# --- the array path --------------------------------------------------------------------------


def arrays_of(cases, limit):
    start = utc_microseconds([c.events.get(limit.start) for c in cases])
    end = utc_microseconds([c.events.get(limit.end) for c in cases])
    return start, end


def test_array_path_on_the_brief_examples():
    cases = month_of_cases()
    as_of = at(2024, 4, 1, 0, 0)
    start, end = arrays_of(cases, RESPOND_48H)
    out = evaluate_cases_array(start, end, RESPOND_48H, as_of=as_of)
    assert out.met.sum() == 6
    assert out.breached.sum() == 3
    assert out.pending.sum() == 1
    grid = summarize_compliance_array(
        [c.subject for c in cases], start, out, [Period.month(2024, 3)], zone=SH
    )
    results, _ = evaluate_cases(cases, RESPOND_48H, as_of=as_of)
    expected = summarize_compliance(results, [Period.month(2024, 3)], zone=SH, rounding=HALF_UP_2)
    assert grid.summaries("complaint_response", rounding=HALF_UP_2) == expected


def test_array_path_reports_bad_rows():
    start = np.array([NO_INSTANT, 100, 10**15, 0], dtype=np.int64)
    end = np.array([NO_INSTANT, 50, NO_INSTANT, 10], dtype=np.int64)
    out = evaluate_cases_array(start, end, ATM_2H, as_of="2000-01-01T00:00Z")
    assert out.valid.tolist() == [False, False, False, True]
    assert [type(e) for e in out.errors] == [MissingDataError, InvalidValueError, InvalidValueError]
    assert [str(e).split(":")[0] for e in out.errors] == ["row 0", "row 1", "row 2"]
    with pytest.raises(InvalidValueError, match="int64"):
        evaluate_cases_array(np.array([0.5]), np.array([1.0]), ATM_2H, as_of="2000-01-01T00:00Z")
    with pytest.raises(ValidationErrorGroup) as info:
        utc_microseconds(["2024-01-01T00:00Z", dt.datetime(2024, 1, 1), "x"])  # noqa: DTZ001
    assert [str(e).split(":")[0] for e in info.value.exceptions] == ["row 1", "row 2"]


# --- properties --------------------------------------------------------------------------------

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
# hypothesis takes naive bounds and attaches the zone itself
NAIVE = (dt.datetime(2023, 12, 1), dt.datetime(2024, 12, 1))  # noqa: DTZ001
MONTHS_2024 = [Period.month(2024, m) for m in range(1, 13)]


def compliance_of(results) -> Fraction | None:
    met = sum(r.status == "met" for r in results)
    decided = met + sum(r.status == "breached" for r in results)
    return Fraction(met, decided) if decided else None


@given(sla_cases(), time_limits())
def test_compliance_rate_lies_between_zero_and_one(cases, limit):
    results, errors = evaluate_cases(cases, limit, as_of=AS_OF)
    assert len(results) + len(errors) == len(cases)
    for summary in summarize_compliance(
        results, MONTHS_2024, zone="UTC", rounding=RoundingPolicy("half_up", "0.0001"), unit="ratio"
    ):
        assert summary.compliance is None or 0 <= summary.compliance <= 1
        assert summary.total == summary.met + summary.breached + summary.pending


@given(sla_cases(subjects=("A",)), time_limits(), st.data())
def test_adding_a_met_case_never_lowers_compliance(cases, limit, data):
    results, _ = evaluate_cases(cases, limit, as_of=AS_OF)
    opened = data.draw(st.datetimes(NAIVE[0], NAIVE[1], timezones=st.just(dt.UTC)))
    quick = Case("A", "new", {"opened": opened, "resolved": opened})
    [extra] = evaluate_cases([quick], limit, as_of=AS_OF)[0]
    assert extra.status == "met"
    before, after = compliance_of(results), compliance_of([*results, extra])
    assert after is not None
    assert before is None or after >= before


@given(time_limits(), st.data())
def test_working_time_never_exceeds_calendar_time(limit, data):
    start = data.draw(st.datetimes(NAIVE[0], NAIVE[1], timezones=st.just(dt.UTC)))
    end = start + data.draw(st.timedeltas(dt.timedelta(0), dt.timedelta(days=20)))
    if limit.working is not None:
        worked = limit.working.elapsed(start, end)
        assert dt.timedelta(0) <= worked <= end - start


@given(sla_cases(), time_limits(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_order(cases, limit, rnd):
    results, _ = evaluate_cases(cases, limit, as_of=AS_OF)
    shuffled = list(cases)
    rnd.shuffle(shuffled)
    again, _ = evaluate_cases(shuffled, limit, as_of=AS_OF)
    assert sorted(again, key=lambda r: r.case_id) == sorted(results, key=lambda r: r.case_id)
    periods = MONTHS_2024
    assert summarize_compliance(
        again, periods, zone=SH, rounding=HALF_UP_2
    ) == summarize_compliance(results, periods, zone=SH, rounding=HALF_UP_2)


@given(sla_cases(), time_limits(), st.lists(zone_names, min_size=1))
def test_results_do_not_depend_on_the_zone_instants_are_written_in(cases, limit, zones):
    rewritten = [
        Case(
            c.subject,
            c.case_id,
            {
                k: None if v is None else v.astimezone(ZoneInfo(zones[i % len(zones)]))
                for k, v in c.events.items()
            },
        )
        for i, c in enumerate(cases)
    ]
    as_of = AS_OF.astimezone(ZoneInfo(zones[0]))
    results, errors = evaluate_cases(rewritten, limit, as_of=as_of)
    expected, expected_errors = evaluate_cases(cases, limit, as_of=AS_OF)
    assert results == expected
    assert [str(e) for e in errors] == [str(e) for e in expected_errors]


@given(
    sla_cases(max_size=30),
    time_limits(),
    st.sampled_from([AS_OF, dt.datetime(2024, 6, 1, tzinfo=dt.UTC)]),
)
def test_exact_and_array_paths_agree(cases, limit, as_of):
    exact = []
    failed = []
    for row, case in enumerate(cases):
        try:
            exact.append((row, evaluate_case(case, limit, as_of=as_of)))
        except BankKPIError as exc:
            failed.append((row, type(exc)))
    start, end = arrays_of(cases, limit)
    out = evaluate_cases_array(start, end, limit, as_of=as_of)
    assert np.flatnonzero(~out.valid).tolist() == [row for row, _ in failed]
    assert [type(e) for e in out.errors] == [kind for _, kind in failed]
    for row, result in exact:
        assert out.elapsed_us[row] == result.elapsed_us
        assert out.overrun_us[row] == result.overrun // dt.timedelta(microseconds=1)
        flags = (out.met[row], out.breached[row], out.pending[row], out.closed[row])
        expected = (
            result.status == "met",
            result.status == "breached",
            result.status == "pending",
            result.closed,
        )
        assert flags == expected
    results = [r for _, r in exact]
    subjects = [c.subject for c in cases]
    grid = summarize_compliance_array(
        subjects, start, out, MONTHS_2024, zone="America/New_York", percentiles=(50, 95)
    )
    assert grid.summaries("sla", rounding=HALF_UP_2) == summarize_compliance(
        results, MONTHS_2024, zone="America/New_York", rounding=HALF_UP_2, percentiles=(50, 95)
    )
