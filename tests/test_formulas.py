import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bankkpi import (
    AllOf,
    AnyOf,
    AtLeast,
    AtMost,
    Band,
    BandAmount,
    BandSet,
    Bottom,
    Choose,
    Clamp,
    Compare,
    Context,
    Discretionary,
    Escalating,
    Exemption,
    Fixed,
    Indicator,
    InRanks,
    Met,
    Multiply,
    Not,
    PerCount,
    PerPeriodEarly,
    RankingRule,
    RankRange,
    RateTable,
    RoundingPolicy,
    Rule,
    Shortfall,
    Sum,
    Text,
    Top,
    Trace,
    Var,
    When,
    break_even,
    crossing,
    rank,
)
from bankkpi.exceptions import InvalidValueError, MissingDataError, OutOfRangeError

from .strategies import decimals_at, scores

YUAN = RoundingPolicy("half_up", "yuan")
FEN = RoundingPolicy("half_up", "fen")
SCORE = Indicator(
    "score",
    "神秘人检查得分",
    "points",
    "higher_is_better",
    scale_min=0,
    scale_max=100,
    precision="0.01",
)


def phase_penalty(target):
    """Scheme A phases 1–2: 1000 + (target − score) × 200 when the target is missed."""
    return Rule(
        f"A.P{target}",
        Text(f"目标{target}分", f"target {target}"),
        "penalty",
        Shortfall(AtLeast(target), "score", rate=200, base=1000),
        YUAN,
    )


def ctx(**values):
    return Context("outlet 3201", values)


class TestSchemeAPenalties:
    @pytest.mark.parametrize(
        ("target", "score", "amount"),
        [
            (92, "90", 1400),  # 1000 + (92 − 90) × 200
            (95, "91.5", 1700),  # 1000 + (95 − 91.5) × 200
            (95, "94.99", 1002),  # 1000 + 0.01 × 200 = 1002
            (95, "95", 0),  # met exactly: nothing
            (95, "99", 0),
            (92, "0", 19400),  # 1000 + 92 × 200
        ],
    )
    def test_phase_1_and_2(self, target, score, amount):
        trace = phase_penalty(target).evaluate(ctx(score=score))
        assert trace.amount == amount

    def test_why_was_i_fined_1700(self):
        trace = phase_penalty(95).evaluate(ctx(score="91.5"))
        assert trace.render("zh") == (
            "考核 = 1000 + (95 − 91.5) × 200 = 1700 元【目标95分；得分91.5未达到目标95(含)以上】"
        )
        assert trace.render("en") == (
            "penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan "
            "[target 95; score 91.5 misses target ≥ 95]"
        )
        assert trace.rule == "A.P95"

    def test_met_target_explains_zero(self):
        trace = phase_penalty(95).evaluate(ctx(score="96"))
        assert trace.render("en") == "penalty = 0 yuan [target 95; score 96 meets target ≥ 95]"

    def test_repeat_offence_doubles(self):
        """Rule 5: a repeated problem is penalised double: (1000 + 1 × 200) × 2 = 2400."""
        doubled = Multiply(
            Shortfall(AtLeast(95), rate=200, base=1000),
            2,
            when=Compare("repeat", "==", 1),
            reason=Text("问题重复发生，加倍考核", "repeat offence: doubled"),
        )
        rule = Rule("A.repeat", Text("重复问题", "repeat"), "penalty", doubled, YUAN)
        first = rule.evaluate(ctx(score="94", repeat=0))
        again = rule.evaluate(ctx(score="94", repeat=1))
        assert first.amount == 1200
        assert again.amount == 2400
        assert again.render("en").startswith("penalty = (1000 + (95 − 94) × 200) × 2 = 2,400 yuan")

    def test_on_the_spot_escalating_rate(self):
        """Rule 6: 200 per point deducted the first time, 500 per point for a repeat."""
        rule = Rule(
            "A.spot", Text("现场检查", "on-the-spot"), "penalty", Escalating((200, 500)), YUAN
        )
        assert rule.evaluate(ctx(points=3, offence=1)).amount == 600
        assert rule.evaluate(ctx(points=3, offence=2)).amount == 1500
        assert rule.evaluate(ctx(points=3, offence=5)).amount == 1500
        with pytest.raises(InvalidValueError, match="outlet 3201: 'offence'"):
            rule.evaluate(ctx(points=3, offence=0))

    def test_phase_3_outside_bottom_200_both_readings(self):
        """The brief's ambiguity: below 98 outside the bottom 200 pays the per-point part
        alone, or nothing. Both are one Choose with a different ``otherwise``."""
        in_bottom = Compare("bottom_rank", "<=", 200)
        tiered = Shortfall(AtLeast(98), rate=200, base=1000)
        per_point = Choose([(in_bottom, tiered)], otherwise=Shortfall(AtLeast(98), rate=200))
        nothing = Choose([(in_bottom, tiered)], otherwise=None)
        outside = ctx(score="97", bottom_rank=450)
        assert per_point.evaluate(outside).amount == 200
        assert nothing.evaluate(outside).amount == 0
        assert per_point.evaluate(ctx(score="97", bottom_rank=150)).amount == 1200


class TestSchemeARewards:
    def test_quarters_early(self):
        """Reward 1: Q4 ≥ 98 earns 300 for each quarter the standard was reached early."""
        rule = Rule(
            "A.early",
            Text("提前达标", "early achievement"),
            "reward",
            When(Met(AtLeast(98)), PerPeriodEarly(300)),
            YUAN,
        )
        assert rule.evaluate(ctx(score="98.5", quarters_early=2)).amount == 600
        assert rule.evaluate(ctx(score="98", quarters_early=0)).amount == 0
        assert rule.evaluate(ctx(score="97.99", quarters_early=3)).amount == 0
        with pytest.raises(InvalidValueError):
            rule.evaluate(ctx(score="99", quarters_early=-1))

    def test_no_complaint_all_year(self):
        """Reward 3: no complaint ticket all year: 500."""
        rule = Rule(
            "A.nocomplaint",
            Text("全年无投诉", "no complaint all year"),
            "reward",
            When(Compare("complaints", "==", 0), Fixed(500)),
            YUAN,
        )
        assert rule.evaluate(ctx(complaints=0)).amount == 500
        assert rule.evaluate(ctx(complaints=1)).amount == 0
        assert "complaint tickets: 1 == 0 is false" in rule.evaluate(ctx(complaints=1)).render("en")

    def test_target_met_and_region_top_2(self):
        """Reward 2: phase target met and in the region's top 2: 500 (rank as a value here)."""
        formula = When(AllOf([Met(AtLeast(95)), Compare("region_rank", "<=", 2)]), Fixed(500))
        assert formula.evaluate(ctx(score="96", region_rank=2)).amount == 500
        assert formula.evaluate(ctx(score="94", region_rank=1)).amount == 0
        assert formula.evaluate(ctx(score="96", region_rank=3)).amount == 0

    def test_discretionary_ranges(self):
        """Media praise 200–1000: a chosen amount outside the range is refused."""
        media = Discretionary(Text("媒体表扬", "media praise"), 200, 1000)
        assert media.evaluate(ctx(chosen=800)).amount == 800
        with pytest.raises(OutOfRangeError) as info:
            media.evaluate(ctx(chosen=1500))
        message = str(info.value)
        assert "media praise" in message
        assert "[200, 1000]" in message
        assert "1500" in message
        assert "outlet 3201" in message

    def test_per_time_items(self):
        """Written praise 100 per time; not raising a hand: 100 per time."""
        assert PerCount(100, "praise").evaluate(ctx(praise=3)).amount == 300


class TestSchemeB:
    def bands(self):
        return BandSet(
            [
                Band.interval("低于80", "[0, 80)"),
                Band.interval("低于85", "[80, 85)"),
                Band.interval("合格", "[85, 100]"),
            ],
            scale=(0, 100),
        )

    @pytest.mark.parametrize(
        ("score", "amount"), [("79.99", 800), ("80", 300), ("84.99", 300), ("85", 0)]
    )
    def test_band_deductions(self, score, amount):
        """Below 85 deducts performance pay (here 300); below 80 deducts more (here 800)."""
        formula = BandAmount(self.bands(), {"低于80": 800, "低于85": 300, "合格": 0})
        assert formula.evaluate(ctx(score=score)).amount == amount

    def test_every_band_needs_an_amount(self):
        with pytest.raises(InvalidValueError, match="missing"):
            BandAmount(self.bands(), {"低于80": 800})
        with pytest.raises(InvalidValueError, match="do not exist"):
            BandAmount(self.bands(), {"低于80": 800, "低于85": 300, "合格": 0, "x": 1})

    def test_reward_top_5_and_at_least_90(self):
        formula = When(AllOf([Compare("dept_rank", "<=", 5), Met(AtLeast(90))]), Fixed(1000))
        assert formula.evaluate(ctx(dept_rank=5, score=90)).amount == 1000
        assert formula.evaluate(ctx(dept_rank=6, score=99)).amount == 0
        assert formula.evaluate(ctx(dept_rank=1, score="89.99")).amount == 0


class TestCompositionAndRounding:
    def test_sum_rounds_each_or_total(self):
        parts = [Fixed("0.4"), Fixed("0.4"), Fixed("0.4")]
        each = Rule("r", Text("r", "r"), "reward", Sum(parts, rounding=YUAN), YUAN)
        on_total = Rule("r", Text("r", "r"), "reward", Sum(parts), YUAN)
        assert each.evaluate(ctx()).amount == 0
        assert on_total.evaluate(ctx()).amount == 1

    def test_sum_trace_lists_parts(self):
        total = Sum(
            [Fixed(500, Text("区域前2", "region top 2")), Fixed(300, Text("提前达标", "early"))],
            label=Text("奖励合计", "total reward"),
        )
        lines = total.evaluate(ctx()).render("en").splitlines()
        assert lines == [
            "total reward = 500 + 300 = 800 yuan",
            "  region top 2 = 500 yuan",
            "  early = 300 yuan",
        ]

    def test_sum_of_a_non_terminating_part_is_rounded_once_by_the_rule(self):
        """(95 − 94) ÷ 3 × 200 = 66.67 (exactly 200/3) + 100 = 166.67 → 167 half-up."""
        part = Shortfall(AtLeast(95), rate=200, per=3)
        rule = Rule("r", Text("r", "r"), "penalty", Sum([part, Fixed(100)]), YUAN)
        trace = rule.evaluate(ctx(score=94))
        assert trace.value == Fraction(500, 3)
        assert trace.amount == 167
        assert "≈66.666667 yuan" in trace.render("en")
        assert trace.to_dict()["parts"][0]["amount"] is None

    def test_counts_must_be_whole_and_not_negative(self):
        with pytest.raises(InvalidValueError, match="whole count >= 0"):
            PerCount(100, "praise").evaluate(ctx(praise=-3))
        with pytest.raises(InvalidValueError, match="whole count >= 0"):
            PerCount(100, "praise").evaluate(ctx(praise="1.5"))
        with pytest.raises(InvalidValueError, match="'points' must be >= 0"):
            Escalating((200, 500)).evaluate(ctx(points=-1, offence=1))

    def test_clamp(self):
        capped = Clamp(Shortfall(AtLeast(95), rate=200, base=1000), maximum=3000)
        trace = capped.evaluate(ctx(score="80"))
        assert trace.amount == 3000
        assert "min(1000 + (95 − 80) × 200, 3000)" in trace.render("en")
        assert "capped at 3000" in trace.render("en")
        floored = Clamp(Fixed(50), minimum=100)
        assert floored.evaluate(ctx()).amount == 100
        with pytest.raises(InvalidValueError):
            Clamp(Fixed(1))
        with pytest.raises(InvalidValueError):
            Clamp(Fixed(1), minimum=10, maximum=5)

    def test_anyof_not(self):
        formula = When(AnyOf([Compare("a", ">", 1), Not(Compare("b", "==", 0))]), Fixed(1))
        assert formula.evaluate(ctx(a=0, b=0)).amount == 0
        assert formula.evaluate(ctx(a=2, b=0)).amount == 1
        assert formula.evaluate(ctx(a=0, b=1)).amount == 1

    def test_missing_variable_names_subject_and_rule(self):
        with pytest.raises(
            MissingDataError, match="outlet 3201: no value of variable for 'score'"
        ) as info:
            phase_penalty(95).evaluate(ctx())
        assert any("A.P95" in note for note in info.value.__notes__)

    def test_negative_result_refused(self):
        rule = Rule("neg", Text("n", "n"), "penalty", PerCount(-1, "count"), YUAN)
        with pytest.raises(InvalidValueError, match="non-negative penalty"):
            rule.evaluate(ctx(count=1))

    def test_shortfall_counting(self):
        def rule(counting):
            formula = Shortfall(AtLeast(98), rate=200, counting=counting)
            return formula.evaluate(ctx(score="96.5")).amount

        assert rule("exact") == 300
        assert rule("started") == 400
        assert rule("completed") == 200

    def test_shortfall_per_half_point(self):
        formula = Shortfall(AtLeast(98), rate=100, per="0.5")
        assert formula.evaluate(ctx(score="97")).amount == 200

    def test_at_most_shortfall_is_excess(self):
        """NPL ratio ≤ 2%: 1000 per percentage point above."""
        formula = Shortfall(AtMost(2), Var("npl", Text("不良率", "NPL ratio")), rate=1000)
        trace = formula.evaluate(ctx(npl="2.35"))
        assert trace.amount == 350
        assert trace.render("en").startswith("amount = (2.35 − 2) × 1000 = 350 yuan")

    def test_trace_json_round_trip_keeps_amount(self):
        trace = phase_penalty(95).evaluate(ctx(score="91.37"))
        again = Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
        assert again == trace
        assert again.amount == trace.amount == 1726


class TestRateTables:
    TIERS = ((0, "0.01"), (1_000_000, "0.02"), (2_000_000, "0.03"))

    def test_tiered_and_graduated(self):
        tiered = RateTable(self.TIERS, "fees", "tiered")
        graduated = RateTable(self.TIERS, "fees", "graduated")
        c = ctx(fees=2_500_000)
        assert tiered.evaluate(c).amount == 75_000  # 2.5M × 3%
        assert graduated.evaluate(c).amount == 45_000  # 10k + 20k + 15k

    def test_below_first_tier_is_zero(self):
        table = RateTable(((100, 1),), "x", "tiered")
        assert table.evaluate(ctx(x=50)).amount == 0

    def test_tiers_must_increase(self):
        with pytest.raises(InvalidValueError, match="strictly increasing"):
            RateTable(((0, 1), (0, 2)), "x", "tiered")

    def test_accelerator_on_attainment_with_scale(self):
        """A 10,000 bonus × attainment with accelerators above 100%."""
        table = RateTable(((0, 1), (1, "1.5")), "attainment", "graduated", scale=10_000)
        assert table.evaluate(ctx(attainment="1.2")).amount == 13_000

    @given(
        st.lists(decimals_at(2, 0, 10_000), min_size=1, max_size=4, unique=True),
        st.lists(decimals_at(3, 0, 1), min_size=4, max_size=4),
        decimals_at(2, 0, 20_000),
    )
    def test_agree_in_first_tier_graduated_continuous_at_bounds(self, starts, rates, value):
        starts = sorted(starts)
        tiers = tuple(zip(starts, rates, strict=False))
        tiered = RateTable(tiers, "x", "tiered")
        graduated = RateTable(tiers, "x", "graduated")

        def amount(table, x):
            return table.evaluate(ctx(x=x)).value

        in_first = len(starts) == 1 or value < starts[1]
        if in_first and starts[0] == 0:
            assert amount(tiered, value) == amount(graduated, value)
        elif in_first and value >= starts[0]:
            # a first tier starting above 0: tiered counts the whole value, graduated the slice
            assert amount(tiered, value) - amount(graduated, value) == Fraction(
                starts[0]
            ) * Fraction(rates[0])
        for bound in starts[1:]:
            eps = Decimal("0.01")
            below, at = amount(graduated, bound - eps), amount(graduated, bound)
            k = starts.index(bound)
            # graduated is continuous: the step below the bound adds one slice of the old rate
            assert at - below == Fraction(eps) * Fraction(rates[k - 1])
            # tiered jumps at the bound to the whole value at the new rate
            assert amount(tiered, bound) == Fraction(bound) * Fraction(rates[k])


class TestProperties:
    @given(scores(), scores(), st.integers(0, 5000), st.integers(0, 1000))
    def test_penalty_never_rises_as_score_improves(self, target, score, base, rate):
        rule = Rule(
            "p", Text("p", "p"), "penalty", Shortfall(AtLeast(target), rate=rate, base=base), YUAN
        )
        better = min(score + Decimal("0.01"), Decimal(100))
        assert rule.evaluate(ctx(score=better)).amount <= rule.evaluate(ctx(score=score)).amount

    @given(scores(), st.integers(0, 5000), st.integers(1, 1000))
    def test_right_on_both_sides_of_the_bound(self, target, base, rate):
        assume(Decimal("0.01") <= target)
        formula = Shortfall(AtLeast(target), rate=rate, base=base)
        at = formula.evaluate(ctx(score=target)).value
        below = formula.evaluate(ctx(score=target - Decimal("0.01"))).value
        assert at == 0
        assert below == base + Fraction(rate) * Fraction("0.01")

    @given(scores(), decimals_at(2, 0, 5000), decimals_at(2, 0, 5000))
    def test_caps_and_floors_hold(self, score, a, b):
        low, high = min(a, b), max(a, b)
        formula = Clamp(Shortfall(AtLeast(95), rate=200, base=1000), minimum=low, maximum=high)
        value = formula.evaluate(ctx(score=score)).value
        assert Fraction(low) <= value <= Fraction(high)

    @given(
        scores(),
        st.integers(0, 5000),
        st.integers(1, 1000),
        st.sampled_from(["half_up", "half_even", "down"]),
    )
    def test_trace_amount_is_returned_amount(self, score, base, rate, mode):
        rule = Rule(
            "p",
            Text("p", "p"),
            "penalty",
            Shortfall(AtLeast(95), rate=rate, base=base),
            RoundingPolicy(mode, "yuan"),
        )
        trace = rule.evaluate(ctx(score=score))
        assert trace.to_dict()["amount"] == str(trace.amount)
        assert trace.amount == RoundingPolicy(mode, "yuan").apply_fraction(trace.value)

    @given(scores(), st.integers(0, 5000), st.integers(1, 1000))
    def test_break_even_is_the_lowest_score_without_penalty(self, target, base, rate):
        rule = Rule(
            "p", Text("p", "p"), "penalty", Shortfall(AtLeast(target), rate=rate, base=base), YUAN
        )
        x = break_even(rule, ctx(score=0), "score", SCORE, "avoid")
        assert x is not None
        assert rule.evaluate(ctx(score=x)).amount == 0
        if x > 0:
            assert rule.evaluate(ctx(score=x - SCORE.precision)).amount > 0

    def test_crossing(self):
        rule = phase_penalty(95)
        x = crossing(rule, ctx(score=0), "score", SCORE, 1500, kind="penalty")
        assert x == Decimal("92.50")
        assert rule.evaluate(ctx(score=x)).amount == 1500
        assert rule.evaluate(ctx(score=x - SCORE.precision)).amount > 1500

    def test_break_even_for_a_reward_and_when_unreachable(self):
        reward = When(Met(AtLeast(98)), Fixed(300))
        assert break_even(reward, ctx(score=0), "score", SCORE, "earn") == Decimal("98.00")
        impossible = When(Met(AtLeast(101)), Fixed(300))
        assert break_even(impossible, ctx(score=0), "score", SCORE, "earn") is None


class TestSchemeAWithRankings:
    """Phase 3 over a province of 450 outlets scoring 60.00, 60.08, …, 95.92 (outlet i
    scores 60 + 0.08 i, so it ranks i + 1 from the bottom and 450 − i from the top).

    - the province's top 200 (i ≥ 250) are exempt;
    - bottom 100 (i < 100) below 98 pay 2000 + (98 − score) × 200;
    - bottom 101–200 (100 ≤ i < 200) pay 1000 + (98 − score) × 200;
    - others below 98 pay (98 − score) × 200, or nothing, by the scheme's reading.
    """

    def setup_method(self):
        self.scores = {f"o{i:03d}": Decimal(6000 + 8 * i).scaleb(-2) for i in range(450)}
        self.ranking = rank(self.scores, RankingRule("higher", "competition"), groups="province")

        def phase3(otherwise):
            return Rule(
                "A.P3",
                Text("第三阶段考核", "phase 3 assessment"),
                "penalty",
                Choose(
                    [
                        (
                            InRanks("province", Exemption(Top(200, scope="province"))),
                            Fixed(0, note=Text("不考核", "not assessed")),
                        ),
                        (
                            InRanks("province", Bottom(100, scope="province")),
                            Shortfall(AtLeast(98), rate=200, base=2000),
                        ),
                        (
                            InRanks("province", RankRange("bottom", 101, 200, scope="province")),
                            Shortfall(AtLeast(98), rate=200, base=1000),
                        ),
                    ],
                    otherwise=otherwise,
                ),
                YUAN,
            )

        self.per_point = phase3(Shortfall(AtLeast(98), rate=200))
        self.nothing = phase3(None)

    def amount(self, rule, outlet):
        context = Context(
            outlet, {"score": self.scores[outlet]}, ranks={"province": self.ranking[outlet]}
        )
        return rule.evaluate(context)

    def test_tiers(self):
        assert self.amount(self.per_point, "o000").amount == 9600  # 2000 + 38 × 200
        assert self.amount(self.per_point, "o099").amount == 2000 + (98 - Decimal("67.92")) * 200
        assert self.amount(self.per_point, "o150").amount == 6200  # 1000 + 26 × 200
        assert self.amount(self.per_point, "o199").amount == 1000 + (98 - Decimal("75.92")) * 200

    def test_both_readings_outside_bottom_200(self):
        assert self.amount(self.per_point, "o240").amount == 3760  # (98 − 79.2) × 200
        assert self.amount(self.nothing, "o240").amount == 0

    def test_top_200_exempt_whatever_the_score(self):
        trace = self.amount(self.per_point, "o260")
        assert trace.amount == 0
        assert "省内前200名" in trace.render("zh")
        assert "not assessed" in trace.render("en")

    def test_penalty_never_rises_with_a_better_rank_and_score(self):
        amounts = [self.amount(self.per_point, f"o{i:03d}").amount for i in range(450)]
        assert amounts == sorted(amounts, reverse=True)
        assert amounts[250:] == [0] * 200


def test_started_and_completed_units_keep_the_gap_in_the_trace():
    formula = Shortfall(AtLeast(95), rate=200, counting="started")
    trace = formula.evaluate(Context("x", {"score": "91.5"}))
    assert trace.amount == 800
    assert "95 − 91.5 counted as 4 started units" in trace.render("en")
    completed = Shortfall(AtLeast(95), rate=200, counting="completed")
    assert "counted as 3 whole units" in completed.evaluate(Context("x", {"score": "91.5"})).render(
        "en"
    )
