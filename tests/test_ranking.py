import itertools
from decimal import Decimal
from fractions import Fraction

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import AtLeast
from bankkpi import _ranking as ranking_module
from bankkpi._ranking import (
    Bottom,
    Exemption,
    Percentile,
    RankArrays,
    Ranking,
    RankingRule,
    RankRange,
    RankSource,
    RankView,
    Top,
    known_range,
    rank,
    rank_arrays,
)
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

from .strategies import (
    COUNT_ROUNDINGS,
    percents,
    ranking_inputs,
    ranking_rules,
    selections,
)

COMPETITION = RankingRule("higher", "competition")

# Group codes on the array path are arbitrary integers: deliberately not in name order.
GROUP_CODES = {"north": 7, "south": -3, "east": 0, "west": 42}


def rule_for(ties, better="higher"):
    """A rule with the given ties; ordinal ties are broken by subject id ascending."""
    return RankingRule(better, ties, tie_break="subject_asc" if ties == "ordinal" else None)


def ranks(ranking, side="top"):
    return {s.subject: s.rank(side) for s in ranking}


def arrays_for(values, groups, secondary, rule, ids=None):
    """The array-path twin of ``rank(values, rule, groups=groups, ...)``, in ``ids`` order."""
    ids = list(values) if ids is None else ids
    by_id = sorted(ids)
    result = rank_arrays(
        np.array([int(values[i].scaleb(1)) for i in ids], dtype=np.int64),
        rule,
        groups=np.array([GROUP_CODES[groups[i]] for i in ids], dtype=np.int64),
        subject_codes=np.array([by_id.index(i) for i in ids], dtype=np.int64),
        secondary=(
            np.array([int(secondary[i].scaleb(1)) for i in ids], dtype=np.int64)
            if rule.uses_secondary
            else None
        ),
    )
    return ids, result


def exact_for(values, groups, secondary, rule):
    return rank(values, rule, groups=groups, secondary=secondary if rule.uses_secondary else None)


def province(n):
    """Outlets O001…On with distinct scores 100.00, 99.95, 99.90, … (O001 is the best)."""
    return {f"O{i:03}": Decimal(10000 - 5 * (i - 1)).scaleb(-2) for i in range(1, n + 1)}


# --- rules ----------------------------------------------------------------------------------


class TestRule:
    def test_ordinal_without_a_tie_break_is_refused(self):
        with pytest.raises(AmbiguousInputError, match="'tie_break' must be stated") as info:
            RankingRule("higher", "ordinal")
        assert isinstance(info.value, InvalidValueError)

    def test_tie_break_is_refused_where_it_changes_nothing(self):
        with pytest.raises(InvalidValueError, match="applies only to ties='ordinal'"):
            RankingRule("higher", "competition", tie_break="subject_asc")

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"better": "up", "ties": "dense"},
                "'better' must be 'higher' or 'lower': 'up'",
            ),
            (
                {"better": "higher", "ties": "1224"},
                "'ties' must be one of 'competition', 'dense', 'ordinal', 'average': '1224'",
            ),
            (
                {"better": "higher", "ties": "ordinal", "tie_break": "random"},
                (
                    "'tie_break' must be one of 'subject_asc', 'subject_desc', "
                    "'secondary_higher', 'secondary_lower': 'random'"
                ),
            ),
        ],
    )
    def test_closed_vocabularies_list_the_choices(self, kwargs, message):
        with pytest.raises(InvalidValueError) as info:
            RankingRule(**kwargs)
        assert str(info.value) == message

    def test_describe(self):
        rule = RankingRule("lower", "ordinal", tie_break="subject_asc")
        assert rule.describe("en") == (
            "lower is better, ordinal (1234), ties by subject id ascending"
        )
        zh = RankingRule("higher", "dense").describe("zh")
        assert zh == "越高越好，并列同名次、后续不跳号(1223)"
        with pytest.raises(InvalidValueError, match="'lang' must be 'zh' or 'en': 'fr'"):
            RankingRule("higher", "dense").describe("fr")


# --- tie policies on 10, 20, 20, 30 --------------------------------------------------------

SCORES = {"a": Decimal(10), "b": Decimal(20), "c": Decimal(20), "d": Decimal(30)}


class TestTiePolicies:
    @pytest.mark.parametrize(
        ("ties", "top", "bottom"),
        [
            ("competition", [1, 2, 2, 4], [4, 2, 2, 1]),
            ("dense", [1, 2, 2, 3], [3, 2, 2, 1]),
            ("ordinal", [1, 2, 3, 4], [4, 3, 2, 1]),
            (
                "average",
                [Decimal(1), Decimal("2.5"), Decimal("2.5"), Decimal(4)],
                [Decimal(4), Decimal("2.5"), Decimal("2.5"), Decimal(1)],
            ),
        ],
    )
    def test_higher_is_better(self, ties, top, bottom):
        rule = rule_for(ties)
        ranking = rank(SCORES, rule, groups="province")
        assert [s.subject for s in ranking] == ["d", "b", "c", "a"]
        assert [s.rank_from_top for s in ranking] == top
        assert [s.rank_from_bottom for s in ranking] == bottom
        assert {s.group_size for s in ranking} == {4}

    def test_lower_is_better_reverses_the_order(self):
        """Error rates: the lowest ranks first."""
        ranking = rank(SCORES, RankingRule("lower", "competition"), groups="province")
        assert ranks(ranking) == {"a": 1, "b": 2, "c": 2, "d": 4}
        assert ranks(ranking, "bottom") == {"a": 4, "b": 2, "c": 2, "d": 1}

    def test_average_ranks_are_exact_decimals(self):
        ranking = rank(SCORES, RankingRule("higher", "average"), groups="province")
        assert ranking["b"].rank_from_top == Decimal("2.5")
        assert isinstance(ranking["a"].rank_from_top, Decimal)
        assert str(ranking["a"].rank_from_top) == "4"

    def test_equal_decimals_written_differently_tie(self):
        ranking = rank({"a": Decimal(95), "b": Decimal("95.00")}, COMPETITION, groups="p")
        assert ranks(ranking) == {"a": 1, "b": 1}

    @pytest.mark.parametrize(
        ("tie_break", "order"),
        [
            ("subject_asc", ["d", "b", "c", "a"]),
            ("subject_desc", ["d", "c", "b", "a"]),
            ("secondary_higher", ["d", "c", "b", "a"]),
            ("secondary_lower", ["d", "b", "c", "a"]),
        ],
    )
    def test_ordinal_tie_breaks(self, tie_break, order):
        rule = RankingRule("higher", "ordinal", tie_break=tie_break)
        secondary = {"a": 1, "b": 5, "c": 7, "d": 0} if rule.uses_secondary else None
        ranking = rank(SCORES, rule, groups="province", secondary=secondary)
        assert [s.subject for s in ranking] == order
        assert [s.rank_from_top for s in ranking] == [1, 2, 3, 4]

    def test_secondary_ties_fall_back_to_subject_id_ascending(self):
        rule = RankingRule("higher", "ordinal", tie_break="secondary_lower")
        ranking = rank(SCORES, rule, groups="p", secondary={"a": 0, "b": 3, "c": 3, "d": 0})
        assert [s.subject for s in ranking] == ["d", "b", "c", "a"]

    def test_secondary_must_match_the_rule(self):
        with pytest.raises(AmbiguousInputError, match="'secondary' must be given"):
            rank(SCORES, RankingRule("higher", "ordinal", tie_break="secondary_higher"), groups="p")
        with pytest.raises(InvalidValueError, match="'secondary' applies only"):
            rank(SCORES, COMPETITION, groups="p", secondary=SCORES)

    def test_array_twin(self):
        values = np.array([10, 20, 20, 30])
        groups = np.zeros(4, dtype=np.int64)
        codes = np.arange(4)
        expected = {
            "competition": ([4, 2, 2, 1], [1, 2, 2, 4], 1),
            "dense": ([3, 2, 2, 1], [1, 2, 2, 3], 1),
            "ordinal": ([4, 2, 3, 1], [1, 3, 2, 4], 1),
            "average": ([8, 5, 5, 2], [2, 5, 5, 8], 2),
        }
        for ties, (top, bottom, denominator) in expected.items():
            rule = rule_for(ties)
            result = rank_arrays(values, rule, groups=groups, subject_codes=codes)
            assert result.rank_from_top.tolist() == top
            assert result.rank_from_bottom.tolist() == bottom
            assert result.denominator == denominator


# --- the domain's worked rules -------------------------------------------------------------


class TestSchemeA:
    def test_province_top_200_are_not_assessed(self):
        scores = province(350)
        ranking = rank(scores, COMPETITION, groups="province")
        exempt = Exemption(Top(200, scope="province"))
        assert exempt.describe("zh") == "省内前200名不考核"
        assert exempt.describe("en") == "top 200 in province not assessed"
        assert exempt.select(ranking) == tuple(f"O{i:03}" for i in range(1, 201))
        assert exempt.assessed(ranking) == tuple(f"O{i:03}" for i in range(201, 351))
        assert exempt.contains(ranking["O200"])
        assert not exempt.contains(ranking["O201"])

    def test_phase_3_bottom_100_and_101_to_200_tiers(self):
        """Base 2000 for the bottom 100, 1000 for bottom 101–200; the top 200 stay exempt.

        In a province of 350, O151–O200 are both in the top 200 and in the bottom
        101–200: ranks do not decide precedence, the scheme does (exemption first).
        """
        scores = province(350)
        ranking = rank(scores, COMPETITION, groups="province")
        exempt = Exemption(Top(200, scope="province"))
        tier_1 = Bottom(100, scope="province")
        tier_2 = RankRange("bottom", 101, 200, scope="province")
        assert tier_1.describe("zh") == "省内倒数后100名"
        assert tier_2.describe("zh") == "省内倒数第101–200名"
        assert tier_2.describe("en") == "bottom 101–200 in province"
        assert tier_1.select(ranking) == tuple(f"O{i:03}" for i in range(251, 351))
        assert tier_2.select(ranking) == tuple(f"O{i:03}" for i in range(151, 251))
        assert set(tier_2.select(ranking)) & set(exempt.select(ranking)) == {
            f"O{i:03}" for i in range(151, 201)
        }

        def base(subject):
            entry = ranking[subject]
            if exempt.contains(entry):
                return None
            if tier_1.contains(entry):
                return Decimal(2000)
            if tier_2.contains(entry):
                return Decimal(1000)
            return Decimal(0)

        assert base("O150") is None
        assert base("O201") == 1000
        assert base("O300") == 2000
        # 考核 = 2000 + (98 − 85.05) × 200 = 4590 元
        assert base("O300") + (98 - scores["O300"]) * 200 == Decimal("4590.00")

    def test_two_lowest_outlets_of_each_region(self):
        """The lowest pays 500, the second lowest 300; ties decide who is "second"."""
        scores = {
            "E1": Decimal("96.5"),
            "E2": Decimal("91.0"),
            "E3": Decimal("93.0"),
            "E4": Decimal("99.0"),
            "W1": Decimal("88.0"),
            "W2": Decimal("88.0"),
            "W3": Decimal("97.0"),
            "S1": Decimal("95.0"),
        }
        region = {s: {"E": "east", "W": "west", "S": "south"}[s[0]] for s in scores}
        lowest = RankRange("bottom", 1, 1, scope="region")
        second = RankRange("bottom", 2, 2, scope="region")
        assert lowest.describe("zh") == "区内倒数第1名"
        assert second.describe("en") == "bottom rank 2 in region"

        competition = rank(scores, COMPETITION, groups=region)
        assert lowest.select(competition) == ("E2", "S1", "W1", "W2")
        assert second.select(competition) == ("E3",)
        assert Bottom(2).select(competition) == ("E3", "E2", "S1", "W1", "W2")

        ordinal = rank(
            scores, RankingRule("higher", "ordinal", tie_break="subject_asc"), groups=region
        )
        # Reversed order: among the tied W1, W2 the later in the top order is lowest.
        assert lowest.select(ordinal) == ("E2", "S1", "W2")
        assert second.select(ordinal) == ("E3", "W1")

    def test_region_top_2_reward_needs_the_phase_target(self):
        scores = {"A": Decimal(99), "B": Decimal("94.5"), "C": Decimal(90)}
        ranking = rank(scores, COMPETITION, groups="region")
        target = AtLeast(95)
        rewarded = [s for s in Top(2).select(ranking) if target.met(scores[s])]
        assert rewarded == ["A"]


class TestSchemeB:
    def test_department_top_5_with_score_at_least_90(self):
        scores = {
            "D1": Decimal("97.0"),
            "D2": Decimal("95.5"),
            "D3": Decimal("93.0"),
            "D4": Decimal("90.0"),
            "D5": Decimal("89.5"),
            "D6": Decimal("88.0"),
            "D7": Decimal("70.0"),
        }
        top_5 = Top(5, scope="department")
        assert top_5.describe("zh") == "部门内前5名"
        ranking = rank(scores, COMPETITION, groups="department")
        assert top_5.select(ranking) == ("D1", "D2", "D3", "D4", "D5")
        rewarded = [s for s in top_5.select(ranking) if AtLeast(90).met(scores[s])]
        assert rewarded == ["D1", "D2", "D3", "D4"]


# --- cut-offs, small and empty groups ------------------------------------------------------


# Positions 4, 5, 6 tie: the tie straddles the cut-off of a top 5.
STRADDLE = {
    "a": Decimal(9),
    "b": Decimal(8),
    "c": Decimal(7),
    "d": Decimal(5),
    "e": Decimal(5),
    "f": Decimal(5),
    "g": Decimal(1),
}


class TestCutOffs:
    @pytest.mark.parametrize(
        ("ties", "selected"),
        [
            ("competition", ("a", "b", "c", "d", "e", "f")),  # 4, 4, 4 ≤ 5: all inside
            ("dense", ("a", "b", "c", "d", "e", "f", "g")),  # 1, 2, 3, 4, 4, 4, 5
            ("ordinal", ("a", "b", "c", "d", "e")),  # exactly 5
            ("average", ("a", "b", "c", "d", "e", "f")),  # (4 + 5 + 6) / 3 = 5 ≤ 5
        ],
    )
    def test_a_tie_straddling_the_cut_off(self, ties, selected):
        rule = rule_for(ties)
        ranking = rank(STRADDLE, rule, groups="p")
        assert Top(5).select(ranking) == selected

    def test_average_tie_just_past_the_cut_off_is_outside(self):
        scores = {"a": Decimal(3), "b": Decimal(2), "c": Decimal(2)}
        ranking = rank(scores, RankingRule("higher", "average"), groups="p")
        assert ranking["b"].rank_from_top == Decimal("2.5")
        assert Top(2).select(ranking) == ("a",)

    def test_group_smaller_than_n(self):
        """In a group of 50 everyone is in the bottom 100 and in the top 200."""
        scores = province(50)
        ranking = rank(scores, COMPETITION, groups="province")
        assert len(Bottom(100).select(ranking)) == 50
        assert len(Top(200).select(ranking)) == 50
        assert RankRange("bottom", 101, 200).select(ranking) == ()
        entry = ranking["O025"]
        assert Top(200).contains(entry)
        assert Bottom(100).contains(entry)

    def test_empty_population(self):
        ranking = rank({}, COMPETITION, groups="province")
        assert len(ranking) == 0
        assert ranking.groups() == ()
        every_kind = (Top(5), Bottom(5), RankRange("top", 1, 3), Percentile("top", 20, "floor"))
        for selection in every_kind:
            assert selection.select(ranking) == ()
        empty = np.array([], dtype=np.int64)
        arrays = rank_arrays(empty, COMPETITION, groups=empty)
        assert len(arrays) == 0
        assert Percentile("top", 20, "floor").mask(arrays).tolist() == []
        assert Exemption(Top(5)).assessed_mask(arrays).tolist() == []

    def test_cut_offs_beyond_int64(self):
        arrays = rank_arrays(
            np.array([3, 2, 2]), RankingRule("higher", "average"), groups=np.zeros(3, np.int64)
        )
        assert Top(10**30).mask(arrays).tolist() == [True, True, True]
        assert RankRange("bottom", 2**63, 10**30).mask(arrays).tolist() == [False, False, False]

    def test_empty_and_unknown_groups(self):
        ranking = rank({"A": Decimal(1)}, COMPETITION, groups={"A": "east", "B": "west"})
        assert ranking.groups() == ("east",)
        with pytest.raises(UnknownKeyError, match="no ranked group for 'west'"):
            ranking.group("west")
        assert [s.subject for s in ranking.group("east")] == ["A"]

    @pytest.mark.parametrize(
        ("size", "rounding", "count"),
        [
            (37, "ceiling", 8),  # 7.4
            (37, "floor", 7),
            (37, "half_up", 7),
            (5, "half_up", 1),  # 1.0
            (2, "floor", 0),  # 0.4: nobody
            (15, "half_even", 3),  # 3.0
            (25, "half_even", 5),
            (25, "half_down", 5),
        ],
    )
    def test_percentile_count_by_stated_rounding(self, size, rounding, count):
        assert Percentile("top", 20, rounding).count(size) == count

    def test_percentile_half_way_counts(self):
        half = Percentile("bottom", "12.5", "half_even")
        # 12.5% of 20 = 2.5, of 12 = 1.5
        assert (half.count(20), half.count(12)) == (2, 2)
        assert Percentile("bottom", "12.5", "half_up").count(20) == 3
        assert Percentile("bottom", "12.5", "half_down").count(12) == 1

    def test_percentile_selects_by_rank(self):
        scores = province(10)
        ranking = rank(scores, COMPETITION, groups="province")
        top_20 = Percentile("top", 20, "ceiling", scope="province")
        assert top_20.select(ranking) == ("O001", "O002")
        assert top_20.describe("zh") == "省内前20%(向上取整)"
        assert top_20.describe("en") == "top 20% in province (ceiling)"
        assert Percentile("bottom", 30, "floor").select(ranking) == ("O008", "O009", "O010")


# --- selections: parameters and words ------------------------------------------------------


class TestSelectionParameters:
    @pytest.mark.parametrize("make", [Top, Bottom])
    @pytest.mark.parametrize("n", [0, -1, True, "5", Decimal(5)])
    def test_n_must_be_a_positive_integer(self, make, n):
        with pytest.raises(InvalidValueError, match=r"'n' must be a positive integer"):
            make(n)

    def test_range_first_after_last(self):
        with pytest.raises(InvalidValueError) as info:
            RankRange("bottom", 200, 101)
        assert str(info.value) == "'last' must be >= first 200: 101"
        with pytest.raises(InvalidValueError, match="'first' must be a positive integer: 0"):
            RankRange("bottom", 0, 100)
        with pytest.raises(InvalidValueError, match="'side' must be 'top' or 'bottom': 'end'"):
            RankRange("end", 1, 2)

    @pytest.mark.parametrize("percent", [0, -5, "100.01", 101])
    def test_percent_outside_0_100(self, percent):
        with pytest.raises(InvalidValueError, match=r"'percent' must be in \(0, 100\]"):
            Percentile("top", percent, "ceiling")

    def test_percent_as_float_is_refused(self):
        with pytest.raises(FloatMoneyError, match="'percent'"):
            Percentile("top", 20.0, "ceiling")

    def test_percent_rounding_is_stated(self):
        with pytest.raises(InvalidValueError) as info:
            Percentile("top", 20, "up")
        assert str(info.value) == (
            "'rounding' must be one of 'ceiling', 'floor', 'half_up', 'half_even', "
            "'half_down': 'up'"
        )

    def test_scope_must_be_a_name(self):
        with pytest.raises(InvalidValueError, match="'scope'"):
            Top(5, scope="  ")

    def test_exemption_wraps_a_selection(self):
        with pytest.raises(InvalidValueError, match="'selection' must be a Top"):
            Exemption(Exemption(Top(5)))

    @pytest.mark.parametrize(
        ("selection", "zh", "en"),
        [
            (Top(200, scope="province"), "省内前200名", "top 200 in province"),
            (Bottom(100), "倒数后100名", "bottom 100"),
            (RankRange("top", 1, 15, scope="region"), "区内第1–15名", "top 1–15 in region"),
            (RankRange("bottom", 101, 200), "倒数第101–200名", "bottom 101–200"),
            (RankRange("top", 3, 3), "第3名", "top rank 3"),
            (
                Percentile("bottom", "12.5", "half_up"),
                "倒数后12.5%(四舍五入)",
                "bottom 12.5% (half_up)",
            ),
            (Top(3, scope="片区"), "片区内前3名", "top 3 in 片区"),
            (
                Exemption(Top(200, scope="province")),
                "省内前200名不考核",
                "top 200 in province not assessed",
            ),
        ],
    )
    def test_describe(self, selection, zh, en):
        assert selection.describe("zh") == zh
        assert selection.describe("en") == en

    def test_describe_refuses_other_languages(self):
        with pytest.raises(InvalidValueError, match="'lang' must be 'zh' or 'en'"):
            Top(5).describe("de")


# --- bad input -----------------------------------------------------------------------------


class TestExactInput:
    def test_float_value_is_refused_naming_the_subject(self):
        with pytest.raises(ValidationErrorGroup) as info:
            rank({"O1": Decimal(90), "O2": 91.5}, COMPETITION, groups="province")
        (error,) = info.value.exceptions
        assert isinstance(error, FloatMoneyError)
        assert str(error).startswith("O2: 'value' must be an exact number")

    def test_every_bad_row_is_reported_at_once(self):
        values = {"O1": "x", "O2": Decimal(1), "": Decimal(2), "O3": Decimal(3)}
        with pytest.raises(ValidationErrorGroup) as info:
            rank(values, COMPETITION, groups={"O1": "e", "O2": "e", "": "e"})
        kinds = sorted(type(e).__name__ for e in info.value.exceptions)
        assert kinds == ["InvalidValueError", "InvalidValueError", "MissingDataError"]
        assert "O3: no group for 'O3'" in str(info.value)

    def test_blank_group_key(self):
        with pytest.raises(ValidationErrorGroup) as info:
            rank({"A": 1}, COMPETITION, groups="")
        assert "'groups' must be a non-empty group key: ''" in str(info.value)
        with pytest.raises(ValidationErrorGroup) as info:
            rank({"A": 1}, COMPETITION, groups={"A": " "})
        assert "A: 'group' must be a non-empty string: ' '" in str(info.value)

    def test_missing_secondary_key(self):
        rule = RankingRule("higher", "ordinal", tie_break="secondary_higher")
        with pytest.raises(ValidationErrorGroup) as info:
            rank({"A": 1, "B": 1}, rule, groups="p", secondary={"A": 3})
        (error,) = info.value.exceptions
        assert isinstance(error, MissingDataError)
        assert str(error) == "B: no secondary for 'B'"

    def test_unknown_subject(self):
        ranking = rank({"A": 1}, COMPETITION, groups="p")
        assert "A" in ranking
        assert "Z" not in ranking
        with pytest.raises(UnknownKeyError, match="no ranked subject for 'Z'"):
            ranking["Z"]

    def test_bad_side(self):
        entry = rank({"A": 1}, COMPETITION, groups="p")["A"]
        with pytest.raises(InvalidValueError, match="'side' must be 'top' or 'bottom'"):
            entry.rank("middle")

    @given(
        st.dictionaries(
            st.text(max_size=3),
            st.one_of(
                st.decimals(allow_nan=True),
                st.floats(),
                st.integers(),
                st.text(max_size=4),
                st.none(),
                st.booleans(),
            ),
            max_size=6,
        )
    )
    def test_only_documented_errors_escape(self, values):
        errors = ()
        try:
            ranking = rank(values, COMPETITION, groups="p")
        except ValidationErrorGroup as group:
            errors = group.exceptions
        else:
            assert len(ranking) == len(values)
        assert all(isinstance(e, BankKPIError) for e in errors)


class TestArrayInput:
    def test_float_values_are_refused(self):
        with pytest.raises(FloatMoneyError, match="'values' must be an integer array"):
            rank_arrays(np.array([91.5, 90.0]), COMPETITION, groups=np.zeros(2, dtype=np.int64))

    @pytest.mark.parametrize(
        ("values", "groups", "message"),
        [
            ([1, 2], np.zeros(2, dtype=np.int64), "'values' must be a numpy array"),
            (np.array([1, 2]), np.zeros(3, dtype=np.int64), "'groups' must have the length"),
            (np.array([[1, 2]]), np.zeros(2, dtype=np.int64), "'values' must be one-dimensional"),
            (np.array([True, False]), np.zeros(2, dtype=np.int64), "must be an integer array"),
            (np.array(["1", "2"]), np.zeros(2, dtype=np.int64), "must be an integer array"),
        ],
    )
    def test_shapes_and_dtypes(self, values, groups, message):
        with pytest.raises(InvalidValueError, match=message):
            rank_arrays(values, COMPETITION, groups=groups)

    def test_uint64_beyond_int64(self):
        values = np.array([2**63, 1], dtype=np.uint64)
        with pytest.raises(OverflowRiskError, match="'values' holds values beyond int64"):
            rank_arrays(values, COMPETITION, groups=np.zeros(2, dtype=np.int64))

    def test_smaller_integer_dtypes_are_accepted(self):
        result = rank_arrays(
            np.array([3, 1, 3], dtype=np.int8), COMPETITION, groups=np.zeros(3, dtype=np.uint8)
        )
        assert result.rank_from_top.tolist() == [1, 3, 1]
        assert result.rank_from_top.dtype == np.int64
        assert not result.rank_from_top.flags.writeable

    def test_ordinal_needs_unique_subject_codes(self):
        rule = RankingRule("higher", "ordinal", tie_break="subject_asc")
        values, groups = np.array([1, 1]), np.zeros(2, dtype=np.int64)
        with pytest.raises(AmbiguousInputError, match="'subject_codes' must be given"):
            rank_arrays(values, rule, groups=groups)
        with pytest.raises(DuplicateError, match="'subject_codes' must be unique"):
            rank_arrays(values, rule, groups=groups, subject_codes=np.array([4, 4]))

    def test_secondary_must_match_the_rule(self):
        values, groups, codes = np.array([1, 1]), np.zeros(2, dtype=np.int64), np.arange(2)
        rule = RankingRule("higher", "ordinal", tie_break="secondary_lower")
        with pytest.raises(AmbiguousInputError, match="'secondary' must be given"):
            rank_arrays(values, rule, groups=groups, subject_codes=codes)
        with pytest.raises(InvalidValueError, match="'secondary' applies only"):
            rank_arrays(values, COMPETITION, groups=groups, secondary=values)

    def test_percentile_counts_refuse_overflow(self):
        sizes = np.array([10**12], dtype=np.int64)
        with pytest.raises(OverflowRiskError, match="'percent'"):
            Percentile("top", "33.333333333", "floor").counts(sizes)


def small_selections():
    yield from (Top(n) for n in range(1, 9))
    yield from (Bottom(n) for n in range(1, 9))
    for side in ("top", "bottom"):
        for first in range(1, 9):
            yield from (RankRange(side, first, last) for last in range(first, 9))
        for percent in ("10", "25", "50", "62.5", "100"):
            yield from (Percentile(side, percent, rounding) for rounding in COUNT_ROUNDINGS)


@pytest.mark.parametrize(
    "rule",
    [
        *(
            rule_for(ties, better)
            for ties in ("competition", "dense", "ordinal", "average")
            for better in ("higher", "lower")
        ),
        RankingRule("higher", "ordinal", tie_break="subject_desc"),
    ],
    ids=lambda rule: f"{rule.better}-{rule.ties}-{rule.tie_break}",
)
def test_masks_equal_contains_on_every_small_selection(rule):
    values = {**STRADDLE, **{f"s{k}": v for k, v in SCORES.items()}}
    groups = {s: "north" if s.startswith("s") else "south" for s in values}
    exact = exact_for(values, groups, None, rule)
    ids, arrays = arrays_for(values, groups, None, rule)
    for selection in small_selections():
        expected = [selection.contains(exact[s]) for s in ids]
        assert selection.mask(arrays).tolist() == expected, selection


# --- properties ----------------------------------------------------------------------------


def _better(rule, a, b):
    return a > b if rule.better == "higher" else a < b


@given(ranking_inputs(), ranking_rules(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(inputs, rule, random):
    values, groups, secondary = inputs
    items = list(values.items())
    random.shuffle(items)
    shuffled = dict(items)
    assert exact_for(shuffled, groups, secondary, rule) == exact_for(
        values, groups, secondary, rule
    )
    ids_a, arrays_a = arrays_for(values, groups, secondary, rule)
    ids_b, arrays_b = arrays_for(shuffled, groups, secondary, rule)
    position = {subject: k for k, subject in enumerate(ids_b)}
    take = [position[s] for s in ids_a]
    assert arrays_a.rank_from_top.tolist() == arrays_b.rank_from_top[take].tolist()
    assert arrays_a.rank_from_bottom.tolist() == arrays_b.rank_from_bottom[take].tolist()


@given(ranking_inputs(), ranking_rules(ties="competition"))
def test_competition_is_one_plus_the_number_strictly_better(inputs, rule):
    values, groups, _ = inputs
    ranking = rank(values, rule, groups=groups)
    for entry in ranking:
        peers = [s.value for s in ranking.group(entry.group)]
        assert entry.rank_from_top == 1 + sum(_better(rule, v, entry.value) for v in peers)
        assert entry.rank_from_bottom == 1 + sum(_better(rule, entry.value, v) for v in peers)
        assert entry.group_size == len(peers)


@given(ranking_inputs(), ranking_rules(ties="dense"))
def test_dense_is_one_plus_the_distinct_better_values(inputs, rule):
    values, groups, _ = inputs
    ranking = rank(values, rule, groups=groups)
    for entry in ranking:
        distinct = {s.value for s in ranking.group(entry.group)}
        assert entry.rank_from_top == 1 + sum(_better(rule, v, entry.value) for v in distinct)
        assert entry.rank_from_bottom == 1 + sum(_better(rule, entry.value, v) for v in distinct)
        assert entry.rank_from_top + entry.rank_from_bottom == len(distinct) + 1


@given(ranking_inputs(), ranking_rules(ties="ordinal"))
def test_ordinal_is_a_permutation_ordered_by_value_then_tie_break(inputs, rule):
    values, groups, secondary = inputs
    ranking = exact_for(values, groups, secondary, rule)
    for key in ranking.groups():
        members = ranking.group(key)
        assert sorted(s.rank_from_top for s in members) == list(range(1, len(members) + 1))
        for s in members:
            assert s.rank_from_top + s.rank_from_bottom == s.group_size + 1
        for first, second in itertools.pairwise(members):
            assert first.rank_from_top + 1 == second.rank_from_top
            assert not _better(rule, second.value, first.value)
            if first.value != second.value:
                continue
            a, b = first.subject, second.subject
            if rule.tie_break == "subject_asc":
                assert a < b
            elif rule.tie_break == "subject_desc":
                assert a > b
            else:
                sa, sb = secondary[a], secondary[b]
                assert sa != sb or a < b
                if sa != sb:
                    assert (sa > sb) == (rule.tie_break == "secondary_higher")


@given(ranking_inputs(), st.sampled_from(("higher", "lower")))
def test_average_is_the_mean_of_the_tie_blocks_ordinal_positions(inputs, better):
    values, groups, _ = inputs
    average = rank(values, RankingRule(better, "average"), groups=groups)
    ordinal = rank(values, RankingRule(better, "ordinal", tie_break="subject_asc"), groups=groups)
    for entry in average:
        block = [s for s in ordinal.group(entry.group) if s.value == entry.value]
        mean = Fraction(sum(s.rank_from_top for s in block), len(block))
        assert Fraction(entry.rank_from_top) == mean
        assert entry.rank_from_top + entry.rank_from_bottom == entry.group_size + 1


@given(ranking_inputs(), st.sampled_from(("competition", "dense", "average")))
def test_rank_from_bottom_is_the_same_policy_on_the_reversed_order(inputs, ties):
    values, groups, _ = inputs
    higher = rank(values, RankingRule("higher", ties), groups=groups)
    lower = rank(values, RankingRule("lower", ties), groups=groups)
    assert ranks(higher, "bottom") == ranks(lower, "top")
    assert ranks(higher, "top") == ranks(lower, "bottom")


@given(ranking_inputs(), ranking_rules(), selections(), st.booleans())
def test_array_path_equals_exact_path(inputs, rule, selection, as_exemption):
    """Same ranks, sizes and selections on both paths, for every policy and selection kind."""
    values, groups, secondary = inputs
    exact = exact_for(values, groups, secondary, rule)
    ids, arrays = arrays_for(values, groups, secondary, rule)
    assert isinstance(arrays, RankArrays)
    assert arrays.denominator == (2 if rule.ties == "average" else 1)
    assert arrays.rule == rule
    for k, subject in enumerate(ids):
        entry = exact[subject]
        assert int(arrays.rank_from_top[k]) == entry.rank_from_top * arrays.denominator
        assert int(arrays.rank_from_bottom[k]) == entry.rank_from_bottom * arrays.denominator
        assert int(arrays.group_size[k]) == entry.group_size

    if as_exemption:
        selection = Exemption(selection)
    mask = selection.mask(arrays)
    assert mask.dtype == np.bool_
    assert mask.tolist() == [selection.contains(exact[s]) for s in ids]
    selected = selection.select(exact)
    assert set(selected) == {s for s, m in zip(ids, mask.tolist(), strict=True) if m}
    assert list(selected) == [s.subject for s in exact if s.subject in set(selected)]
    if as_exemption:
        assessed = selection.assessed(exact)
        assert set(assessed) | set(selected) == set(values)
        assert not set(assessed) & set(selected)
        assert (selection.assessed_mask(arrays) == ~mask).all()


@given(
    ranking_inputs(),
    ranking_rules(),
    selections(),
    st.sampled_from([1, 10**7]),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_rank_source_selects_as_the_full_ranks(inputs, rule, selection, stretch, one, rnd):
    """Cut-off selections (counted or sorted) equal masks of the full ranks; so do views.

    ``stretch`` spreads the values so far apart that the cut-offs come from the
    sorted packed keys instead of the (group, value) counts.
    """
    values, groups, secondary = inputs
    if one:
        groups = dict.fromkeys(groups, "north")
    ids, arrays = arrays_for(values, groups, secondary, rule)
    codes = np.array([GROUP_CODES[groups[i]] for i in ids], dtype=np.int64)
    if rnd.random() < 0.8:  # non-negative codes take the cut-off path; others the full ranks
        codes = codes + 3
    by_id = sorted(ids)
    source = RankSource(
        rule,
        np.array([int(values[i].scaleb(1)) * stretch for i in ids], dtype=np.int64),
        None if one else codes,
        subject_codes=np.array([by_id.index(i) for i in ids], dtype=np.int64),
        secondary=(
            np.array([int(secondary[i].scaleb(1)) for i in ids], dtype=np.int64)
            if rule.uses_secondary
            else None
        ),
    )
    expected = selection.mask(arrays)
    assert source.mask(selection).tolist() == expected.tolist()
    if len(source):  # told the values' range, as evaluate_arrays tells it: the same
        low, high = int(source.values.min()), int(source.values.max())
        told = known_range(attrs.evolve(source), low - rnd.randint(0, 2), high + rnd.randint(0, 2))
        assert told.mask(selection).tolist() == expected.tolist()
    assert source.arrays().rank_from_top.tolist() == arrays.rank_from_top.tolist()
    assert source.arrays().group_size.tolist() == arrays.group_size.tolist()
    rows = np.array(sorted(rnd.sample(range(len(ids)), rnd.randint(0, len(ids)))), dtype=np.intp)
    view = RankView(source, rows)
    assert view.mask(selection).tolist() == expected[rows].tolist()
    assert view.arrays().rank_from_bottom.tolist() == arrays.rank_from_bottom[rows].tolist()
    inner = np.arange(len(rows), dtype=np.intp)[::2]
    assert view.take(inner).mask(selection).tolist() == expected[rows[inner]].tolist()
    assert RankView(arrays, rows).mask(selection).tolist() == expected[rows].tolist()


@pytest.mark.parametrize("ties", ["competition", "dense"])
@pytest.mark.parametrize("better", ["higher", "lower"])
@pytest.mark.parametrize(
    ("low", "span", "n_groups"),
    [
        (0, 2**31 - 2, 1),  # the last span whose sentinel offset fits in int32
        (0, 2**31 - 1, 1),  # offsets fit in int32, the sentinel ``span`` does not
        (0, 2**31, 1),
        (-(2**31), 2**30, 2),  # two groups' cells reach 2**31 exactly
        (5, 2**61, 2),  # cells 2**62: packed keys would not leave room for sentinels
        (0, 2**62, 3),  # cells past int64: the full ranks
        (-(2**63), 2**64, 1),  # every int64 value
    ],
)
def test_rank_source_at_the_edges_of_its_int_types(low, span, n_groups, better, ties):
    """Values spanning the int32 / int64 limits select as the exact path does."""
    high = low + span - 1
    mid = low + span // 2
    values = [high, low, mid, high, low, mid + 1, mid - 1, high - 1, low + 1]
    codes = [k % n_groups for k in range(len(values))]
    ids = [f"S{k}" for k in range(len(values))]
    rule = RankingRule(better, ties)
    exact = rank(
        {i: Decimal(v) for i, v in zip(ids, values, strict=True)},
        rule,
        groups={i: f"g{c}" for i, c in zip(ids, codes, strict=True)},
    )
    source = RankSource(rule, np.array(values, dtype=np.int64), np.array(codes, dtype=np.int64))
    for selection in (
        Top(1),
        Top(2),
        Bottom(2),
        Bottom(9),
        RankRange("top", 2, 3),
        RankRange("bottom", 4, 10),
        Percentile("top", 50, "ceiling"),
    ):
        expected = [selection.contains(exact[i]) for i in ids]
        assert source.mask(selection).tolist() == expected, selection
        assert source.mask(selection, slice(1, 8, 3)).tolist() == expected[1:8:3], selection


@pytest.mark.parametrize("ties", ["competition", "average"])
def test_rank_source_takes_any_window_size(ties):
    """Windows past int64 select as on the full ranks; masks are the caller's own."""
    source = RankSource(RankingRule("higher", ties), np.array([4, 3, 3, 1]))
    for selection in (
        Top(2**63),
        RankRange("top", 2, 2**63),
        RankRange("bottom", 2**63, 2**64),
        Bottom(2**70),
    ):
        expected = selection.mask(source.arrays()).tolist()
        assert source.mask(selection).tolist() == expected, selection
        assert source.mask(selection, np.array([3, 0])).tolist() == [expected[3], expected[0]]
    mask = source.mask(Top(1), slice(0, 2))
    mask[:] = ~mask
    assert source.mask(Top(1)).tolist() == [True, False, False, False]


@pytest.mark.parametrize("ties", ["competition", "dense"])
def test_rank_source_compares_step_by_step_as_at_once(monkeypatch, ties):
    """Region cut-offs gathered a step of rows at a time select as the full ranks do."""
    rng = np.random.default_rng(5)
    values = rng.integers(0, 40, 1_000)
    codes = rng.integers(0, 13, 1_000)
    rule = RankingRule("higher", ties)
    arrays = rank_arrays(values, rule, groups=codes)
    monkeypatch.setattr(ranking_module, "_GATHER_ROWS", 64)  # 16 steps, the last one short
    for selection in (Top(3), Bottom(2), RankRange("bottom", 2, 2), RankRange("top", 5, 9)):
        assert RankSource(rule, values, codes).mask(selection).tolist() == (
            selection.mask(arrays).tolist()
        ), selection


def test_rank_source_checks_its_arrays():
    rule = RankingRule("higher", "competition")
    with pytest.raises(FloatMoneyError):
        RankSource(rule, np.array([1.5, 2.0]))
    with pytest.raises(InvalidValueError, match="'groups' must have the length of values"):
        RankSource(rule, np.array([1, 2]), np.array([0]))
    with pytest.raises(InvalidValueError, match="'group_sizes' must hold one count"):
        RankSource(rule, np.array([1, 2]), np.array([0, 1]), group_sizes=np.array([2]))
    view = RankView(RankSource(rule, np.array([5, 4, 3, 2, 1])), slice(1, 5, 2))
    assert len(view) == 2
    assert view.mask(Top(2)).tolist() == [True, False]
    assert view.take(np.array([1])).mask(Bottom(1)).tolist() == [False]
    assert view.take(np.array([1])).rows.tolist() == [3]


@pytest.mark.parametrize("rows", [slice(0, 7), slice(1, 7, 2), np.array([0, 2, 3, 6])])
def test_a_view_compares_with_a_cut_off_once_and_hands_out_masks_of_its_own(rows):
    """Selections sharing a cut-off reuse the view's comparison; masks stay independent.

    Rank 2 from the bottom is "as low as the 2nd lowest, not as low as the lowest",
    and rank 1 is "as low as the lowest": one comparison serves both, and so does
    one for two uses of the same selection. Writing into a mask changes no other.
    """
    rule = RankingRule("higher", "competition")
    values = np.array([30, 20, 20, 10, 5, 40, 5])
    groups = np.array([0, 0, 0, 0, 1, 1, 1])
    source = RankSource(rule, values, groups)
    arrays = source.arrays()
    chosen = [
        RankRange("bottom", 1, 1, scope="region"),
        RankRange("bottom", 2, 2, scope="region"),
        Top(2, scope="region"),
        RankRange("bottom", 1, 1, scope="region"),
        Top(2, scope="region"),
    ]
    view = RankView(source, rows)
    for selection in chosen:
        got = view.mask(selection)
        assert got.tolist() == selection.mask(arrays)[rows].tolist(), selection
        got[:] = ~got  # the caller's own array: nothing kept changes
    assert len(view._kept) == 3  # lowest, 2nd lowest, 2nd best: one comparison each


@given(ranking_inputs(), selections())
def test_ordinal_selections_hold_exactly_the_count(inputs, selection):
    """With ordinal ranks there are no ties: each group holds exactly the window's count."""
    values, groups, _ = inputs
    ranking = rank(values, RankingRule("lower", "ordinal", tie_break="subject_desc"), groups=groups)
    chosen = set(selection.select(ranking))
    for key in ranking.groups():
        size = len(ranking.group(key))
        held = sum(s.subject in chosen for s in ranking.group(key))
        if isinstance(selection, Top | Bottom):
            assert held == min(selection.n, size)
        elif isinstance(selection, RankRange):
            assert held == max(0, min(selection.last, size) - selection.first + 1)
        else:
            assert held == min(selection.count(size), size)


@given(ranking_inputs(), ranking_rules(ties="competition"), st.integers(1, 12))
def test_competition_top_n_holds_at_least_n_and_whole_tie_blocks(inputs, rule, n):
    values, groups, _ = inputs
    ranking = rank(values, rule, groups=groups)
    chosen = set(Top(n).select(ranking))
    for key in ranking.groups():
        members = ranking.group(key)
        inside = [s for s in members if s.subject in chosen]
        assert len(inside) >= min(n, len(members))
        cut = {s.value for s in inside}
        assert all(s.subject in chosen for s in members if s.value in cut)


@pytest.mark.parametrize("rounding", COUNT_ROUNDINGS)
@pytest.mark.parametrize("percent", ["50", "12.5", "37.5", "20", "33.3", "0.1", "100"])
def test_percentile_counts_on_every_small_group(percent, rounding):
    """Every size 0–400, so every half-way case of these percentages is met."""
    selection = Percentile("top", percent, rounding)
    sizes = list(range(401))
    assert selection.counts(np.array(sizes, dtype=np.int64)).tolist() == [
        selection.count(n) for n in sizes
    ]


@given(
    st.lists(st.one_of(st.integers(0, 50), st.integers(0, 10**6)), max_size=20),
    percents,
    st.sampled_from(COUNT_ROUNDINGS),
    st.sampled_from(("top", "bottom")),
)
def test_percentile_counts_equal_count(sizes, percent, rounding, side):
    selection = Percentile(side, percent, rounding)
    counts = selection.counts(np.array(sizes, dtype=np.int64))
    assert counts.tolist() == [selection.count(n) for n in sizes]
    exact = [Fraction(n) * Fraction(percent) / 100 for n in sizes]
    assert all(abs(c - x) <= 1 for c, x in zip(counts.tolist(), exact, strict=True))


def test_ranking_equality_ignores_the_index():
    a = rank({"A": 1, "B": 2}, COMPETITION, groups="p")
    b = Ranking(COMPETITION, list(a))
    assert a == b
    assert b["A"] == a["A"]


@given(
    ranking_inputs(),
    st.sampled_from(("competition", "dense", "average")),
    st.sampled_from((1, 10**9, 10**16)),
)
def test_every_array_strategy_gives_the_exact_ranks(inputs, ties, spread):
    """Counting (narrow values), packed sort (wide values) and lexsort (too wide to pack)
    all give the exact path's ranks; the spread of the codes picks the strategy."""
    from bankkpi._ranking import _counting_ranks, _fast_order  # noqa: PLC0415

    values, groups, _ = inputs
    rule = RankingRule("higher", ties)
    exact = rank(values, rule, groups=groups)
    ids = list(values)
    codes = np.array([int(values[i].scaleb(1)) * spread for i in ids], dtype=np.int64)
    group_codes = np.array([GROUP_CODES[groups[i]] for i in ids], dtype=np.int64)
    if codes.size and spread == 1:
        assert _counting_ranks(codes, group_codes, rule) is not None
    if codes.size and spread > 1:
        assert _counting_ranks(codes, group_codes, rule) is None or len(set(codes.tolist())) == 1
        span = int(codes.max()) - int(codes.min()) + 1
        key = (int(group_codes.max()) - int(group_codes.min()) + 1) * span - 1
        fits = key << max(len(ids) - 1, 1).bit_length() < 2**63
        assert (_fast_order(codes, group_codes, rule) is not None) == fits
    arrays = rank_arrays(codes, rule, groups=group_codes)
    scale = 2 if ties == "average" else 1
    for k, subject in enumerate(ids):
        assert int(arrays.rank_from_top[k]) == exact[subject].rank_from_top * scale
        assert int(arrays.rank_from_bottom[k]) == exact[subject].rank_from_bottom * scale
        assert int(arrays.group_size[k]) == exact[subject].group_size
