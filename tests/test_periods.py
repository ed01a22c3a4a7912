import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bankkpi import Calendar, Period, Phase, prorate
from bankkpi.exceptions import (
    InvalidValueError,
    MissingDataError,
    UnknownKeyError,
    ValidationErrorGroup,
)

from .strategies import dates, periods


def scheme_a_phases(year=2024):
    return Calendar(
        [
            Phase("P1", Period.months(year, 1, 4), "自查整改"),
            Phase("P2", Period.months(year, 5, 8), "达标提升"),
            Phase("P3", Period.months(year, 9, 12), "巩固提高"),
        ]
    )


class TestPeriod:
    def test_both_ends_included(self):
        p = Period("2024-01-01", "2024-04-30")
        assert p.days == 121
        assert p.contains(dt.date(2024, 1, 1))
        assert p.contains(dt.date(2024, 4, 30))
        assert not p.contains(dt.date(2024, 5, 1))

    @pytest.mark.parametrize(
        ("year", "month", "days"),
        [(2024, 2, 29), (2023, 2, 28), (1900, 2, 28), (2000, 2, 29), (2024, 12, 31), (2024, 4, 30)],
    )
    def test_month_ends(self, year, month, days):
        assert Period.month(year, month).days == days

    def test_quarter_and_year(self):
        assert Period.quarter(2024, 1).days == 91
        assert Period.quarter(2023, 1).days == 90
        assert Period.year(2024).days == 366

    def test_end_before_start_is_refused(self):
        with pytest.raises(InvalidValueError, match="'end' must not be before start 2024-05-01"):
            Period("2024-05-01", "2024-04-30")

    @pytest.mark.parametrize("value", ["2024-13-01", 20240101, dt.datetime(2024, 1, 1)])  # noqa: DTZ001
    def test_bad_dates_are_refused(self, value):
        with pytest.raises(InvalidValueError):
            Period(value, "2024-12-31")

    def test_quarter_number_checked(self):
        with pytest.raises(InvalidValueError, match="'quarter' must be 1, 2, 3 or 4: 5"):
            Period.quarter(2024, 5)


class TestCalendar:
    def test_scheme_a_phases(self):
        cal = scheme_a_phases()
        assert cal.phase_of(dt.date(2024, 4, 30)).name == "P1"
        assert cal.phase_of(dt.date(2024, 5, 1)).name == "P2"
        assert cal.phase_of(dt.date(2024, 12, 31)).label == "巩固提高"
        assert cal.span == Period.year(2024)

    def test_quarters_early(self):
        """Scheme A reward: reached in Q2, due in Q4 → two quarters early."""
        cal = Calendar.quarters(2024)
        assert cal.steps_between("Q2", "Q4") == 2
        assert cal.steps_between("Q4", "Q4") == 0
        assert cal.steps_between("Q4", "Q1") == -3

    def test_all_problems_reported_at_once(self):
        with pytest.raises(ValidationErrorGroup) as info:
            Calendar(
                [
                    Phase("a", Period.month(2024, 1)),
                    Phase("b", Period.month(2024, 3)),
                    Phase("a", Period.month(2024, 2)),
                ]
            )
        messages = [str(e) for e in info.value.exceptions]
        assert len(messages) == 3
        assert any("unique names" in m for m in messages)
        assert any("contiguous" in m for m in messages)
        assert any("must start after phase b ends" in m for m in messages)

    def test_gaps_allowed_when_not_contiguous(self):
        cal = Calendar(
            [Phase("a", Period.month(2024, 1)), Phase("c", Period.month(2024, 3))],
            contiguous=False,
        )
        with pytest.raises(MissingDataError, match="2024-02-10"):
            cal.phase_of(dt.date(2024, 2, 10))

    def test_unknown_phase_lists_known(self):
        with pytest.raises(UnknownKeyError, match="known: Q1, Q2, Q3, Q4"):
            Calendar.quarters(2024).phase("Q5")

    def test_empty_calendar_refused(self):
        with pytest.raises(ValidationErrorGroup):
            Calendar([])

    def test_months_and_years(self):
        assert len(Calendar.months(2024)) == 12
        assert [p.name for p in Calendar.years(2023, 2)] == ["2023", "2024"]
        assert len(Calendar.months(2024).phases_in(Period.quarter(2024, 2))) == 3

    @given(dates)
    def test_phase_lookup_total_over_contiguous_calendar(self, day):
        cal = Calendar.months(day.year)
        found = [p for p in cal if p.period.contains(day)]
        assert len(found) == 1
        assert cal.phase_of(day) == found[0]


class TestProrate:
    def test_joined_mid_year(self):
        assert prorate(Period.year(2024), dt.date(2024, 7, 1)) == Fraction(184, 366)

    def test_left_on_last_day_of_february_in_leap_year(self):
        q1 = Period.quarter(2024, 1)
        assert prorate(q1, dt.date(2024, 1, 1), dt.date(2024, 2, 29)) == Fraction(60, 91)

    def test_outside_is_zero(self):
        assert prorate(Period.year(2024), dt.date(2025, 1, 1)) == 0
        assert prorate(Period.year(2024), dt.date(2020, 1, 1), dt.date(2023, 12, 31)) == 0

    def test_left_before_joined_refused(self):
        with pytest.raises(InvalidValueError, match="'left'"):
            prorate(Period.year(2024), dt.date(2024, 5, 1), dt.date(2024, 4, 1))

    @given(periods(), dates, st.none() | dates)
    def test_in_unit_interval(self, period, joined, left):
        assume(left is None or left >= joined)
        assert 0 <= prorate(period, joined, left) <= 1

    @given(periods(), st.integers(0, 400), dates, st.none() | dates)
    def test_additive_over_adjacent_periods(self, first, extra, joined, left):
        assume(left is None or left >= joined)
        second = Period(first.end + dt.timedelta(days=1), first.end + dt.timedelta(days=1 + extra))
        union = Period(first.start, second.end)
        member_days = [prorate(p, joined, left) * p.days for p in (first, second, union)]
        assert member_days[0] + member_days[1] == member_days[2]
