from decimal import Decimal
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    AtMost,
    Band,
    BandSet,
    Context,
    Met,
    RelativeTarget,
    RoundingPolicy,
    Text,
)
from bankkpi._ranking import RankingRule
from bankkpi._scorecards import (
    Binary,
    ByPlace,
    ByRank,
    Entry,
    Gate,
    KpiItem,
    Linear,
    Module,
    NonCumulative,
    PerOccurrence,
    PointScorecard,
    Proportional,
    Ranged,
    Stepped,
    Veto,
    WeightedScorecard,
)
from bankkpi.exceptions import (
    AmbiguousInputError,
    InvalidValueError,
    OutOfRangeError,
    ValidationErrorGroup,
)

TWO = RoundingPolicy("half_up", "0.01")


def t(zh, en=None):
    return Text(zh, en or zh)


# ----------------------------------------------------------------- scheme C


def collective_card(**caps):
    return PointScorecard(
        "C.collective",
        t("百日竞赛集体", "100-day contest, collective"),
        [
            ByPlace("team", t("知识竞赛团体名次", "team place"), {1: 10, 2: 5, 3: 2}),
            ByRank(
                "exam",
                t("省行考试通过率排名", "exam pass rate rank"),
                {1: 5, 2: 3, 3: 1},
                RankingRule("higher", "competition"),
                qualifier=AtLeast(98),
            ),
            ByPlace("event", t("单项前三名", "single-event place"), {1: 5, 2: 3, 3: 2}),
            PerOccurrence("advanced", t("先进个人", "advanced individual"), 2),
            PerOccurrence("recommended", t("推荐省行个人", "recommended to province"), 5),
            PerOccurrence("essay_missing", t("缺交征文", "missing essay"), -5),
            PerOccurrence("essay_recommended", t("征文推荐省行", "essay to province"), 3),
            Veto("complaint", t("有效投诉", "verified complaint")),
            PerOccurrence("finding", t("不规范服务", "non-standard service"), -1),
            Ranged("deed", t("先进事迹", "exemplary deed"), 1, 3),
        ],
        groups=[
            NonCumulative(
                "person", t("个人表彰", "individual honours"), {"advanced", "recommended"}
            )
        ],
        rounding=TWO,
        **caps,
    )


COLLECTIVE_ENTRIES = {
    "城东": [
        Entry("team", place=1),
        Entry("event", place=2),
        Entry("advanced", key="张三"),
        Entry("recommended", key="张三"),
        Entry("advanced", key="李四"),
        Entry("essay_missing"),
        Entry("finding", count=3),
        Entry("deed", points=2),
    ],
    "城西": [
        Entry("team", place=2),
        Entry("event", place=1),
        Entry("event", place=3),
        Entry("essay_recommended", count=2),
        Entry("finding"),
        Entry("complaint"),
    ],
    "城南": [
        Entry("team", place=3),
        Entry("advanced", key="王五"),
        Entry("recommended", key="赵六"),
        Entry("deed", points=3),
        Entry("finding", count=2),
    ],
}
PASS_RATES = {"exam": {"城东": "99.5", "城西": "98.0", "城南": "97.5"}}


class TestSchemeCCollective:
    """Worked by hand.

    城东: 100 + team 1st 10 + exam rank 1 (99.5 ≥ 98) 5 + event 2nd 3 + 张三 recommended 5
          (his +2 as advanced is not cumulative) + 李四 advanced 2 − missing essay 5
          − 3 findings 3 + deed 2 = 119.
    城西: 100 + team 2nd 5 + exam rank 2 (98.0) 3 + events 5 + 2 + two essays 6 − finding 1
          = 120, but a verified complaint vetoes it.
    城南: 100 + team 3rd 2 + exam 97.5 < 98 not ranked 0 + 王五 advanced 2 + 赵六
          recommended 5 (different people: both count) + deed 3 − 2 findings 2 = 110.
    One collective winner: 城西 is vetoed, so 城东 wins with 119.
    """

    def results(self):
        card = collective_card()
        return card, {r.subject: r for r in card.score_all(COLLECTIVE_ENTRIES, PASS_RATES)}

    def test_totals(self):
        _card, results = self.results()
        assert results["城东"].total == Decimal("119.00")
        assert results["城西"].total == Decimal("120.00")
        assert results["城南"].total == Decimal("110.00")
        assert {s: r.vetoed for s, r in results.items()} == {
            "城东": False,
            "城西": True,
            "城南": False,
        }

    def test_winner_excludes_veto(self):
        card, results = self.results()
        winners = card.winners(results.values(), 1, "competition")
        assert winners.winners == ("城东",)
        assert winners.vetoed == ("城西",)
        assert not winners.tied_at_cutoff

    def test_trace_explains_non_cumulative_and_veto(self):
        _card, results = self.results()
        east = results["城东"].trace.render("en")
        assert "张三: not cumulative with individual honours" in east
        assert "ranked 1" in east
        west = results["城西"].trace.render("zh")
        assert "一票否决：有效投诉" in west
        south = results["城南"].trace.render("en")
        assert "97.5 misses ≥ 98: not ranked" in south

    def test_deed_outside_range_refused_naming_item_range_and_value(self):
        card = collective_card()
        with pytest.raises(ValidationErrorGroup) as info:
            card.score("城北", [Entry("deed", points=5), Entry("deed")])
        problems = info.value.problems
        assert len(problems) == 2
        assert all(isinstance(p, OutOfRangeError) for p in problems)
        assert "城北: 'deed' needs chosen points within [1, 3]" in str(problems[0])

    def test_non_cumulative_needs_a_person(self):
        with pytest.raises(ValidationErrorGroup) as info:
            collective_card().score("x", [Entry("advanced")])
        assert isinstance(info.value.problems[0], AmbiguousInputError)

    def test_unknown_item_reported(self):
        with pytest.raises(ValidationErrorGroup, match="invalid entries for x"):
            collective_card().score("x", [Entry("nope")])


class TestSchemeCIndividual:
    """Individual card; four winners, tie at the cut-off.

    甲: 100 + team 1st 3 + exam 1st 5 + event 2nd 3 = 111
    乙: 100 + team 1st 3 + essay excellent 2, recommended 3 (not cumulative: 3) = 106
    丙: 100 + team 2nd 2 + exam 2nd 3 + finding −1 = 104
    丁: 100 + team 2nd 2 + event 3rd 2 = 104
    戊: 100 + team 3rd 1 + missing essay −2 + deed 3 = 102
    己: 100 + team 3rd 1 + exam 3rd 2 + event 1st 5 + complaint → veto (108)
    Top 4 by competition ties among non-vetoed: 甲 111, 乙 106, 丙 104, 丁 104 —
    four winners; with a fifth eligible tie at 104 there would be five.
    """

    def card(self):
        return PointScorecard(
            "C.individual",
            t("百日竞赛个人", "100-day contest, individual"),
            [
                ByPlace("team", t("团体名次", "team place"), {1: 3, 2: 2, 3: 1}),
                ByPlace("exam", t("考试前三", "exam place"), {1: 5, 2: 3, 3: 2}),
                ByPlace("event", t("单项前三", "single event"), {1: 5, 2: 3, 3: 2}),
                PerOccurrence("essay_missing", t("缺交征文", "missing essay"), -2),
                PerOccurrence("essay_excellent", t("征文优秀", "excellent essay"), 2),
                PerOccurrence("essay_province", t("征文推荐省行", "essay to province"), 3),
                Veto("complaint", t("有效投诉", "verified complaint")),
                PerOccurrence("finding", t("不规范服务", "non-standard service"), -1),
                Ranged("deed", t("先进事迹", "exemplary deed"), 1, 3),
            ],
            groups=[
                NonCumulative("essay", t("征文", "essay"), {"essay_excellent", "essay_province"})
            ],
            rounding=TWO,
        )

    ENTRIES: ClassVar = {
        "甲": [Entry("team", place=1), Entry("exam", place=1), Entry("event", place=2)],
        "乙": [
            Entry("team", place=1),
            Entry("essay_excellent", key="乙"),
            Entry("essay_province", key="乙"),
        ],
        "丙": [Entry("team", place=2), Entry("exam", place=2), Entry("finding")],
        "丁": [Entry("team", place=2), Entry("event", place=3)],
        "戊": [Entry("team", place=3), Entry("essay_missing"), Entry("deed", points=3)],
        "己": [
            Entry("team", place=3),
            Entry("exam", place=3),
            Entry("event", place=1),
            Entry("complaint"),
        ],
    }

    def test_totals_and_four_winners(self):
        card = self.card()
        results = card.score_all(self.ENTRIES)
        totals = {r.subject: r.total for r in results}
        assert totals == {
            "甲": 111,
            "乙": 106,
            "丙": 104,
            "丁": 104,
            "戊": 102,
            "己": 108,
        }
        winners = card.winners(results, 4, "competition")
        assert set(winners.winners) == {"甲", "乙", "丙", "丁"}
        assert winners.vetoed == ("己",)

    def test_tie_at_cutoff_lets_more_win_under_competition(self):
        card = self.card()
        entries = dict(self.ENTRIES)
        entries["庚"] = [Entry("team", place=2), Entry("event", place=3)]  # 104, ties 丙 and 丁
        results = card.score_all(entries)
        competition = card.winners(results, 4, "competition")
        assert len(competition.winners) == 5
        assert competition.tied_at_cutoff
        ordinal = card.winners(results, 4, "ordinal")
        assert ordinal.winners == ("甲", "乙", "丁", "丙")


class TestCaps:
    def card(self, **caps):
        return PointScorecard(
            "cap",
            t("封顶", "caps"),
            [
                PerOccurrence("finding", t("不规范", "finding"), -1, module="service"),
                PerOccurrence("praise", t("表扬", "praise"), 2, module="service"),
                PerOccurrence("innovation", t("创新", "innovation"), 3, module="growth"),
            ],
            modules=[
                Module("service", t("服务规范", "service"), max_deduction=5, max_bonus=4),
                Module("growth", t("创新", "growth")),
            ],
            rounding=TWO,
            **caps,
        )

    def test_module_deduction_cap(self):
        result = self.card().score("u", [Entry("finding", count=8)])
        assert result.total == 95
        text = result.trace.render("en")
        assert "service = max(−5, −8) = −5 points [deductions capped at 5]" in text

    def test_module_bonus_cap(self):
        assert self.card().score("u", [Entry("praise", count=3)]).total == 104

    def test_overall_bonus_cap(self):
        card = self.card(max_bonus=5)
        assert (
            card.score("u", [Entry("praise", count=2), Entry("innovation", count=2)]).total == 105
        )

    def test_unknown_module_refused(self):
        with pytest.raises(ValidationErrorGroup):
            PointScorecard(
                "x", t("x"), [PerOccurrence("a", t("a"), 1, module="nowhere")], rounding=TWO
            )


# ------------------------------------------------------------ properties


entry_lists = st.lists(
    st.one_of(
        st.builds(Entry, st.just("finding"), count=st.integers(1, 5)),
        st.builds(Entry, st.just("praise"), count=st.integers(1, 5)),
        st.builds(Entry, st.just("innovation"), count=st.integers(1, 5)),
        st.builds(Entry, st.just("advanced"), key=st.sampled_from(["a", "b"])),
        st.builds(Entry, st.just("recommended"), key=st.sampled_from(["a", "b"])),
    ),
    max_size=12,
)


def property_card(max_bonus=None, max_deduction=None):
    return PointScorecard(
        "p",
        t("p"),
        [
            PerOccurrence("finding", t("f"), -1, module="service"),
            PerOccurrence("praise", t("p"), 2, module="service"),
            PerOccurrence("innovation", t("i"), 3, module="growth"),
            PerOccurrence("advanced", t("adv"), 2, module="growth"),
            PerOccurrence("recommended", t("rec"), 5, module="growth"),
            Veto("complaint", t("c")),
        ],
        modules=[
            Module("service", t("s"), max_deduction=6, max_bonus=8),
            Module("growth", t("g"), max_bonus=12),
        ],
        groups=[NonCumulative("person", t("person"), {"advanced", "recommended"})],
        max_bonus=max_bonus,
        max_deduction=max_deduction,
        rounding=TWO,
    )


class TestPointProperties:
    @given(entry_lists, st.integers(1, 5))
    def test_adding_a_deduction_never_raises_the_total(self, entries, count):
        card = property_card()
        before = card.score("u", entries).total
        after = card.score("u", [*entries, Entry("finding", count=count)]).total
        assert after <= before

    @given(entry_lists)
    def test_veto_always_excludes(self, entries):
        card = property_card()
        vetoed = card.score("v", [*entries, Entry("complaint")])
        other = card.score("o", [])
        assert vetoed.vetoed
        winners = card.winners([vetoed, other], 1, "competition")
        assert "v" not in winners.winners
        assert winners.vetoed == ("v",)

    @given(
        st.permutations(
            [Entry("advanced", key="a"), Entry("recommended", key="a"), Entry("advanced", key="b")]
        )
    )
    def test_non_cumulative_group_contributes_its_largest_item_per_person(self, entries):
        card = property_card()
        # person a counts max(2, 5) = 5 points, person b counts 2
        assert card.score("u", entries).total == 107

    @given(entry_lists, st.integers(0, 10), st.integers(0, 10))
    def test_caps_always_hold(self, entries, max_bonus, max_deduction):
        card = property_card(max_bonus=max_bonus, max_deduction=max_deduction)
        total = card.score("u", entries).total
        assert 100 - max_deduction <= total <= 100 + max_bonus

    @given(entry_lists, st.randoms())
    def test_item_order_never_changes_a_total(self, entries, rnd):
        card = property_card()
        shuffled = list(entries)
        rnd.shuffle(shuffled)
        assert card.score("u", entries).total == card.score("u", shuffled).total


# ------------------------------------------------------- weighted scorecards


def account_manager_card():
    """Weights chosen and documented in docs/scorecards.md: deposits 30, loans 25,
    fees 15, clients 15, NPL 15 = 100."""
    fee_bands = BandSet(
        [
            Band.interval("<80%", "[0, 0.8)"),
            Band.interval("80–100%", "[0.8, 1)"),
            Band.interval("≥100%", "[1, +inf)"),
        ],
        scale=(0, 1000),
    )
    return WeightedScorecard(
        "AM",
        t("客户经理考核", "account manager"),
        [
            KpiItem(
                "deposits",
                t("新增日均存款", "new deposits"),
                "deposits",
                30,
                AtLeast(5000),
                Linear(cap="1.2"),
            ),
            KpiItem(
                "loans", t("新增贷款", "new loans"), "loans", 25, AtLeast(3000), Linear(cap="1.2")
            ),
            KpiItem(
                "fees",
                t("中间业务收入", "fee income"),
                "fees",
                15,
                AtLeast(50),
                Stepped(fee_bands, {"<80%": 0, "80–100%": 10, "≥100%": 15}, on="attainment"),
            ),
            KpiItem(
                "clients",
                t("新增有效客户", "new effective clients"),
                "clients",
                15,
                RelativeTarget("0.20", "at_least"),
                Proportional(benchmark=20),
                baseline="clients_last_year",
                maximum=15,
            ),
            KpiItem("npl", t("不良率", "NPL ratio"), "npl", 15, AtMost("1.5"), Binary()),
        ],
        gates=[
            Gate(
                t("普惠贷款占比不足", "inclusive-finance share below 30%"),
                Met(AtLeast(30), "inclusive_share"),
                "zero_item",
                item="loans",
            ),
            Gate(t("不良率超过3%", "NPL ratio above 3%"), Met(AtMost(3), "npl"), "zero_card"),
        ],
        rounding=TWO,
    )


AM_VALUES = {
    "deposits": 5600,
    "loans": 4200,
    "fees": 45,
    "clients": 118,
    "clients_last_year": 100,
    "npl": "1.2",
    "inclusive_share": 35,
}


class TestAccountManagerCard:
    """Worked by hand.

    deposits 30 × min(5600 ÷ 5000, 1.2) = 30 × 1.12 = 33.6
    loans    25 × min(4200 ÷ 3000, 1.2) = 25 × 1.2 = 30   (share 35% ≥ 30%: no gate)
    fees     45 ÷ 50 = 0.9 → band 80–100% → 10
    clients  (118 − 100) ÷ 20 × 15 = 13.5
    npl      1.2 ≤ 1.5 → 15
    total    33.6 + 30 + 10 + 13.5 + 15 = 102.1
    """

    def test_total(self):
        trace = account_manager_card().evaluate(Context("王经理", AM_VALUES))
        assert trace.amount == Decimal("102.10")
        assert [p.amount for p in trace.parts] == [
            Decimal("33.6"),
            Decimal(30),
            Decimal(10),
            Decimal("13.5"),
            Decimal(15),
        ]

    def test_item_gate_zeroes_loans(self):
        values = {**AM_VALUES, "inclusive_share": 25}
        trace = account_manager_card().evaluate(Context("王经理", values))
        assert trace.amount == Decimal("72.10")
        assert "inclusive-finance share below 30%" in trace.render("en")

    def test_card_gate_zeroes_everything(self):
        values = {**AM_VALUES, "npl": "3.2"}
        trace = account_manager_card().evaluate(Context("王经理", values))
        assert trace.amount == 0
        assert "NPL ratio above 3%" in trace.render("en")

    def test_weights_must_sum_to_total(self):
        with pytest.raises(ValidationErrorGroup) as info:
            WeightedScorecard(
                "x",
                t("x"),
                [
                    KpiItem("a", t("a"), "a", 60, AtLeast(1), Binary()),
                    KpiItem("b", t("b"), "b", 30, AtLeast(1), Binary()),
                ],
                rounding=TWO,
            )
        assert "'weights' must add up to the declared total 100: Decimal('90')" in str(info.value)

    def test_lower_is_better_linear_needs_convention(self):
        with pytest.raises(AmbiguousInputError, match="'inverse' or 'complement'"):
            KpiItem("npl", t("npl"), "npl", 10, AtMost(2), Linear())

    def test_lower_is_better_linear(self):
        item = KpiItem(
            "wait",
            t("等候时间", "waiting time"),
            "wait",
            10,
            AtMost(10),
            Linear(cap="1.2", convention="complement"),
        )
        assert item.evaluate(Context("x", {"wait": 8})).amount == 12
        assert item.evaluate(Context("x", {"wait": 12})).amount == 8

    @given(
        st.lists(st.integers(1, 50), min_size=1, max_size=6),
        st.integers(-5, 5),
    )
    def test_weights_not_summing_are_refused_at_construction(self, weights, delta):
        items = [
            KpiItem(f"i{k}", t("i"), "v", w, AtLeast(1), Binary()) for k, w in enumerate(weights)
        ]
        declared = sum(weights) + delta
        if delta == 0:
            WeightedScorecard("x", t("x"), items, total_weight=declared, rounding=TWO)
        else:
            with pytest.raises(ValidationErrorGroup):
                WeightedScorecard("x", t("x"), items, total_weight=declared, rounding=TWO)


class TestWinnerTiePolicies:
    def results(self):
        card = property_card()
        return card, [
            card.score("a", [Entry("praise", count=2)]),  # 104
            card.score("b", [Entry("praise", count=2)]),  # 104
            card.score("c", [Entry("praise", count=1)]),  # 102
        ]

    def test_competition_lets_the_tie_in_and_ordinal_takes_exactly_k(self):
        card, results = self.results()
        assert card.winners(results, 1, "competition").winners == ("a", "b")
        assert card.winners(results, 1, "ordinal").winners == ("a",)

    @pytest.mark.parametrize("ties", ["dense", "average"])
    def test_dense_and_average_are_refused_for_winners(self, ties):
        card, results = self.results()
        with pytest.raises(InvalidValueError, match="'ties' must be 'competition'"):
            card.winners(results, 2, ties)

    def test_points_by_rank_need_whole_places(self):
        with pytest.raises(InvalidValueError, match="whole places"):
            ByRank("exam", t("exam"), {1: 5}, RankingRule("higher", "average"))
