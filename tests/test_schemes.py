import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    Compare,
    Fixed,
    Period,
    RoundingPolicy,
    Rule,
    Shortfall,
    Text,
    When,
)
from bankkpi._schemefile import (
    SchemeFileError,
    canonical_json,
    dump_scheme,
    json_schema,
    load_scheme,
    parse_scheme,
    scheme_hash,
)
from bankkpi._schemes import Input, Scheme, SubjectRow, evaluate, split_amount
from bankkpi.exceptions import InvalidValueError, ValidationErrorGroup

EXAMPLES = Path(__file__).parent.parent / "examples"
YUAN = RoundingPolicy("half_up", "yuan")


def scheme_a():
    return load_scheme((EXAMPLES / "scheme_a.toml").read_text(encoding="utf-8"), format="toml")


def row(subject, score, region="R1", head="H1", complaints=0, **extra):
    values = {"score": score, "complaints": complaints, **extra}
    return SubjectRow(subject, {"region": region, "head": head}, values, f"row {subject}")


class TestSchemeFile:
    def test_example_loads_and_round_trips_with_the_same_hash(self):
        scheme = scheme_a()
        again = parse_scheme(json.loads(canonical_json(scheme), parse_float=Decimal))
        assert again == scheme
        assert scheme_hash(again) == scheme_hash(scheme)
        assert scheme_hash(scheme).startswith("sha256:")

    def test_json_and_toml_give_the_same_scheme(self):
        scheme = scheme_a()
        as_json = json.dumps(dump_scheme(scheme), ensure_ascii=False)
        assert load_scheme(as_json, format="json") == scheme

    def test_hash_ignores_how_numbers_are_written(self):
        text = (EXAMPLES / "scheme_a.toml").read_text(encoding="utf-8")
        edited = text.replace("rate = 200, base = 2000", 'rate = "200.0", base = 2000.00')
        assert edited != text
        assert scheme_hash(load_scheme(edited, format="toml")) == scheme_hash(scheme_a())

    def test_every_mistake_reported_with_its_path(self):
        data = dump_scheme(scheme_a())
        data["rules"][0]["formula"]["formula"]["otherwise"]["rate"] = "-200"
        data["rules"][2]["formula"]["then"]["amount"] = "abc"
        data["rules"][1]["colour"] = "red"
        data["inputs"][0]["indicator"] = "nope"
        data["rankings"][0]["ties"] = "fair"
        del data["version"]
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(json.loads(json.dumps(data)))
        text = "\n".join(str(p) for p in info.value.problems)
        assert "rules[0].formula.formula.otherwise: 'rate' must be >= 0: Decimal('-200')" in text
        assert "rules[2].formula.then.amount: 'amount' must be a decimal number" in text
        assert "rules[1].colour: unknown key" in text
        assert "rankings[0].ties: must be one of 'competition'" in text
        assert "version: is required" in text
        assert (
            len(info.value.problems) == 5
        )  # the unknown indicator is checked once the rest is valid

    def test_unknown_names_reported_once_structure_is_valid(self):
        data = dump_scheme(scheme_a())
        data["inputs"][0]["indicator"] = "nope"
        data["rankings"][1]["group_by"] = "district"
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(data)
        text = str(info.value)
        assert "no indicator for input score for 'nope'" in text
        assert "no attribute for ranking region for 'district'" in text

    def test_format_version_required(self):
        data = dump_scheme(scheme_a())
        data["format"] = 2
        with pytest.raises(SchemeFileError, match="invalid scheme file") as info:
            parse_scheme(data)
        assert "format: must be 1" in str(info.value)

    def test_unknown_formula_type_lists_the_known_ones(self):
        data = dump_scheme(scheme_a())
        data["rules"][4]["formula"] = {"type": "python", "code": "__import__('os')"}
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(data)
        assert "rules[4].formula.type: unknown formula type 'python' (allowed: band_amount" in str(
            info.value
        )

    def test_float_in_python_data_refused(self):
        data = dump_scheme(scheme_a())
        data["rules"][4]["formula"]["then"]["amount"] = 500.5
        with pytest.raises(SchemeFileError, match="invalid scheme file") as info:
            parse_scheme(data)
        assert "must be an exact number" in str(info.value)

    def test_toml_floats_are_read_exactly(self):
        text = (EXAMPLES / "scheme_a.toml").read_text(encoding="utf-8")
        scheme = load_scheme(text.replace("amount = 500 }", "amount = 500.10 }"), format="toml")
        assert scheme.rules[4].formula.then.amount == Decimal("500.10")

    def test_syntax_error_reported(self):
        with pytest.raises(SchemeFileError, match="invalid scheme file"):
            load_scheme("format = ", format="toml")

    def test_json_schema_is_json_and_names_every_formula(self):
        schema = json_schema()
        json.dumps(schema)
        formulas = {m["properties"]["type"]["const"] for m in schema["$defs"]["formula"]["oneOf"]}
        assert {"shortfall", "choose", "when", "sum", "rate_table", "multiply"} <= formulas
        rules = schema["$defs"]["rules_scheme"]
        assert rules["required"][:3] == ["format", "id", "version"]
        assert schema["$defs"]["point_scorecard"]["properties"]["kind"] == {
            "const": "point_scorecard"
        }


class TestEvaluate:
    def test_bad_rows_reported_good_rows_computed(self):
        scheme = scheme_a()
        rows = [
            row("A", "97.5"),
            row("B", "104"),  # out of scale
            SubjectRow("C", {"region": "R1", "head": "H1"}, {"complaints": 0}, "row C"),  # no score
            row("A", "90"),  # duplicate
            row("D", "99", region=""),  # missing attribute
            row("E", "98.5", quarters_early=-1),  # a rule fails for E
            row("F", "96"),
        ]
        results = evaluate(scheme, rows)
        assert {t.subject for t in results.totals} == {"F"}  # both rows of A are rejected
        failed = {e.subject for e in results.errors}
        assert failed == {"A", "B", "C", "D", "E"}  # the second A is the duplicate
        every = {t.subject for t in results.totals} | failed
        assert every == {r.subject for r in rows}
        by_subject = {e.subject: e for e in results.errors}
        assert "104" in by_subject["B"].message
        assert by_subject["B"].field == "score"
        assert by_subject["B"].value == "104"
        assert "score" in by_subject["C"].message
        assert "appears in 2 rows; none of them is used" in by_subject["A"].message
        assert sum(e.subject == "A" for e in results.errors) == 2
        assert by_subject["E"].rule == "A.early"

    def test_totals_group_totals_and_rollups_add_up(self):
        scheme = scheme_a()
        rows = [row(f"o{i}", f"{90 + i}", region=f"R{i % 2}", head=f"H{i % 2}") for i in range(8)]
        results = evaluate(scheme, rows)
        penalty = sum(t.penalty for t in results.totals)
        assert penalty == sum(ln.amount for ln in results.lines if ln.kind == "penalty")
        regions = results.group_totals["region"]
        assert sum(p for p, _r in regions.values()) == penalty
        assert sum(results.rollups["penalty→head"].values()) == penalty

    def test_deterministic(self):
        scheme = scheme_a()
        rows = [row(f"o{i}", f"{88 + i}") for i in range(10)]
        assert evaluate(scheme, rows) == evaluate(scheme, list(reversed(rows)))

    def test_explain(self):
        results = evaluate(scheme_a(), [row("A", "97.5"), row("B", "104")])
        # alone in its province, A is in the top 200: not assessed, whatever its score
        assert "penalty = 0 yuan [phase 3 target missed" in results.explain("A", "en")
        assert "top 200 in province not assessed: yes" in results.explain("A", "en")
        assert "error:" in results.explain("B")

    def test_scheme_validation_lists_every_problem(self):
        rule = Rule("r", Text("r", "r"), "penalty", Shortfall(AtLeast(95), "speed"), YUAN)
        with pytest.raises(ValidationErrorGroup) as info:
            Scheme(
                "s",
                "1",
                Text("s", "s"),
                Period.year(2024),
                YUAN,
                [rule, rule],
                [Input("score", Text("得分", "score"))],
                group_by=["region"],
            )
        text = str(info.value)
        assert "'rules' must be unique: 'r'" in text
        assert "no input for variable used by rule r for 'speed'" in text
        assert "no attribute for group totals for 'region'" in text


class TestSplit:
    def test_parts_sum_to_the_whole(self):
        parts = split_amount("1000.00", {"甲": 1, "乙": 1, "丙": 1}, "fen")
        assert sum(parts.values()) == Decimal("1000.00")
        # equal remainders: the extra fen goes to the id that sorts first (丙 < 乙 < 甲)
        assert parts == {"甲": Decimal("333.33"), "乙": Decimal("333.33"), "丙": Decimal("333.34")}

    @given(
        st.integers(-(10**9), 10**9),
        st.dictionaries(st.text("abcdef", min_size=1, max_size=3), st.integers(0, 100), min_size=1),
    )
    def test_always_sums_exactly(self, fen, shares):
        if sum(shares.values()) == 0:
            with pytest.raises(InvalidValueError):
                split_amount(Decimal(fen).scaleb(-2), shares)
            return
        parts = split_amount(Decimal(fen).scaleb(-2), shares)
        assert sum(parts.values()) == Decimal(fen).scaleb(-2)
        assert set(parts) == set(shares)

    def test_total_must_be_whole_places(self):
        with pytest.raises(InvalidValueError):
            split_amount("1.005", {"a": 1})


# ---------------------------------------------------------------- round-trip property

amounts = st.integers(0, 5000).map(Decimal)
scores = st.integers(0, 10000).map(lambda n: Decimal(n).scaleb(-2))
predicates = st.one_of(
    st.builds(Compare, st.just("score"), st.sampled_from(["<", "<=", "==", ">="]), scores),
    st.builds(Compare, st.just("complaints"), st.just("=="), st.integers(0, 3).map(Decimal)),
)
leaves = st.one_of(
    st.builds(Fixed, amounts),
    st.builds(
        lambda t, r, b: Shortfall(AtLeast(t), "score", rate=r, base=b), scores, amounts, amounts
    ),
)
formulas = st.recursive(
    leaves,
    lambda inner: st.builds(When, predicates, inner, st.none() | inner),
    max_leaves=6,
)


@settings(max_examples=60)
@given(
    st.lists(formulas, min_size=1, max_size=4), st.sampled_from(["half_up", "half_even", "down"])
)
def test_file_scheme_canonical_scheme_round_trip(rule_formulas, mode):
    policy = RoundingPolicy(mode, "yuan")
    scheme = Scheme(
        "p",
        "1",
        Text("性质", "property"),
        Period.year(2024),
        policy,
        [
            Rule(f"r{i}", Text(f"规则{i}", f"rule {i}"), "penalty", f, policy)
            for i, f in enumerate(rule_formulas)
        ],
        [Input("score", Text("得分", "score")), Input("complaints", Text("投诉", "complaints"))],
    )
    text = canonical_json(scheme)
    again = load_scheme(text, format="json")
    assert again == scheme
    assert canonical_json(again) == text
    assert scheme_hash(again) == scheme_hash(scheme)


class TestExpressionsInFiles:
    def with_formula(self, formula):
        data = dump_scheme(scheme_a())
        data["rules"][4]["formula"] = formula
        return json.loads(json.dumps(data))

    def test_expression_rule_loads_round_trips_and_evaluates(self):
        data = self.with_formula(
            {
                "type": "expression",
                "source": "if complaints == 0 then 500 else 0",
                "variables": ["complaints"],
            }
        )
        scheme = parse_scheme(data)
        assert parse_scheme(json.loads(canonical_json(scheme))) == scheme
        results = evaluate(scheme, [row("A", "97", complaints=0), row("B", "97", complaints=2)])
        amounts = {ln.subject: ln.amount for ln in results.lines if ln.rule == "A.no_complaint"}
        assert amounts == {"A": 500, "B": 0}
        assert "complaint tickets 0 == 0 is true" in results.explain("A", "en")

    @pytest.mark.parametrize(
        "source",
        ["__import__('os').system('x')", "complaints.__class__", "pow(2, 3)", "2 ** 1000", "'a'"],
    )
    def test_code_in_a_file_is_refused_as_a_config_error(self, source):
        data = self.with_formula(
            {"type": "expression", "source": source, "variables": ["complaints"]}
        )
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(data)
        assert str(info.value.problems[0]).startswith("rules[4].formula: column ")

    def test_undeclared_variable_in_expression_is_reported(self):
        data = self.with_formula(
            {"type": "expression", "source": "speed * 2", "variables": ["complaints"]}
        )
        with pytest.raises(SchemeFileError, match="invalid scheme file") as info:
            parse_scheme(data)
        assert "speed" in str(info.value)


class TestSchemeB:
    def scheme(self):
        return load_scheme((EXAMPLES / "scheme_b.toml").read_text(encoding="utf-8"), format="toml")

    def b_row(self, subject, q1, q2, q3, q4, region="D1"):
        values = {"q1": q1, "q2": q2, "q3": q3, "q4": q4}
        return SubjectRow(subject, {"region": region}, values, subject)

    def test_annual_average_derived_exactly_and_rounded_once(self):
        """(90 + 90 + 90 + 90.01) / 4 = 90.0025 → 90.00 half-up; 90.02 × 4 … → 90.005 → 90.01."""
        results = evaluate(
            self.scheme(),
            [
                self.b_row("a", "90", "90", "90", "90.01"),
                self.b_row("b", "90", "90", "90", "90.02"),
            ],
        )
        assert "annual average 90 meets" not in results.explain("a", "en")
        assert "annual average 90.00 meets target ≥ 90" in results.explain("a", "en")
        assert "annual average 90.01 meets target ≥ 90" in results.explain("b", "en")

    @pytest.mark.parametrize(
        ("q4", "penalty"), [("79.99", 800), ("80", 300), ("84.99", 300), ("85", 0), ("100", 0)]
    )
    def test_band_bounds(self, q4, penalty):
        results = evaluate(self.scheme(), [self.b_row("x", "90", "90", "90", q4)])
        assert results.totals[0].penalty == penalty

    def test_top5_and_excellent(self):
        """Department of 7: top 5 by Q4 with Q4 ≥ 90 earn 1000; the top 3 by annual
        average with an average ≥ 90 earn 2000."""
        rows = [
            self.b_row(f"o{i}", "90", "90", "90", str(q4))
            for i, q4 in enumerate([99, 98, 97, 96, 95, 94, 89])
        ]
        results = {t.subject: t.reward for t in evaluate(self.scheme(), rows).totals}
        assert results == {
            "o0": 3000,
            "o1": 3000,
            "o2": 3000,
            "o3": 1000,
            "o4": 1000,
            "o5": 0,
            "o6": 0,
        }

    def test_missing_quarter_reports_the_row_and_skips_the_average(self):
        rows = [SubjectRow("x", {"region": "D1"}, {"q1": "90", "q2": "90", "q3": "90"}, "line 2")]
        results = evaluate(self.scheme(), rows)
        assert [e.message for e in results.errors] == ["x: 'q4' is required but blank: ''"]
        assert results.errors[0].field == "q4"

    def test_derived_input_needs_an_indicator_and_declared_inputs(self):
        data = dump_scheme(self.scheme())
        data["inputs"][4]["indicator"] = None
        data["inputs"][4]["derive"]["variables"] = ["q1", "q2", "q3", "q4", "q5"]
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(json.loads(json.dumps(data)))
        assert "must name an indicator for a derived input" in str(info.value)


class TestRobustness:
    def test_totals_do_not_depend_on_the_callers_decimal_context(self):
        import decimal  # noqa: PLC0415 - this test is about the module's global context

        rows = [row(f"o{i}", "97.33", complaints=0) for i in range(3)]
        expected = evaluate(scheme_a(), rows)
        with decimal.localcontext() as ctx:
            ctx.prec = 3
            got = evaluate(scheme_a(), rows)
        assert got == expected

    def test_an_amount_beyond_range_is_that_rows_error(self):
        rows = [row("big", "99", quarters_early="1" + "0" * 35), row("ok", "99")]
        results = evaluate(scheme_a(), rows)
        assert [t.subject for t in results.totals] == ["ok"]
        assert results.errors[0].subject == "big"
        assert "34 significant digits" in results.errors[0].message

    def test_a_value_beyond_exact_arithmetic_is_that_rows_error(self):
        results = evaluate(scheme_a(), [row("huge", "9e99"), row("ok", "97")])
        assert [t.subject for t in results.totals] == ["ok"]
        assert "34 significant digits" in results.errors[0].message

    def test_rank_based_results_are_marked_provisional_when_rows_failed(self):
        clean = evaluate(scheme_a(), [row("a", "97"), row("b", "96")])
        assert not clean.provisional
        assert clean.ranked_over == 2
        partial = evaluate(scheme_a(), [row("a", "97"), row("b", "104")])
        assert partial.provisional
        assert partial.ranked_over == 1


def province(n, seed=7):
    """``n`` outlets in 10 regions with scores on a coarse grid (many ties)."""
    import random  # noqa: PLC0415

    rnd = random.Random(seed)
    return [
        row(
            f"o{i:04d}",
            f"{rnd.randint(180, 200) / 2}",
            region=f"R{i % 10}",
            head=f"H{i % 10}",
            complaints=rnd.choice([0, 0, 1]),
            repeat=rnd.choice([0, 0, 0, 1]),
            quarters_early=rnd.choice([0, 1, 2]),
        )
        for i in range(n)
    ]


class TestSchemeAOverAProvince:
    """450 outlets, so that the top 200 exemption does not cover everyone."""

    def test_totals_group_totals_and_rollups_add_up(self):
        results = evaluate(scheme_a(), province(450))
        penalty = sum(t.penalty for t in results.totals)
        assert penalty > 0
        assert penalty == sum(ln.amount for ln in results.lines if ln.kind == "penalty")
        regions = results.group_totals["region"]
        assert sum(p for p, _r in regions.values()) == penalty
        assert sum(results.rollups["penalty→head"].values()) == penalty

    def test_deterministic_and_independent_of_row_order(self):
        rows = province(450)
        assert evaluate(scheme_a(), rows) == evaluate(scheme_a(), list(reversed(rows)))

    def test_region_lowest_two_and_region_top_two(self):
        """In each region, the rank-1 (and rank-2) outlets from the bottom pay 500 (300)
        plus 200 per point short of 98 unless in the province top 200; the top 2 of a
        region meeting 98 earn 500. Recomputed here from the raw scores."""
        rows = province(450)
        results = evaluate(scheme_a(), rows)
        lines = {(ln.subject, ln.rule): ln.amount for ln in results.lines}
        scores = {r.subject: Decimal(r.values["score"]) for r in rows}
        region = {r.subject: r.attributes["region"] for r in rows}
        better_in_province = {s: sum(v > scores[s] for v in scores.values()) for s in scores}
        for subject, score in scores.items():
            peers = [scores[o] for o in scores if region[o] == region[subject]]
            from_bottom = 1 + sum(v < score for v in peers)
            from_top = 1 + sum(v > score for v in peers)
            exempt = better_in_province[subject] + 1 <= 200
            short = max(Decimal(0), 98 - score) * 200
            expected = 0 if exempt else {1: 500 + short, 2: 300 + short}.get(from_bottom, 0)
            assert lines[(subject, "A.region_lowest")] == expected, subject
            top2 = 500 if score >= 98 and from_top <= 2 else 0
            assert lines[(subject, "A.region_top2")] == top2, subject


class TestSplits:
    """Team amounts split among members: scheme A with a ``members`` attribute."""

    def scheme(self):
        data = dump_scheme(scheme_a())
        data["attributes"].append("members")
        data["splits"] = [{"members": "members", "kind": "reward"}]
        return parse_scheme(json.loads(json.dumps(data)))

    def member_row(self, subject, score, members, complaints=0):
        values = {"score": score, "complaints": complaints}
        attributes = {"region": "R1", "head": "H1", "members": members}
        return SubjectRow(subject, attributes, values, subject)

    def test_parts_add_up_to_each_subjects_amount(self):
        rows = [
            self.member_row("A", "99", "张三*2;李四;王五"),  # reward 500 + 500 → 1000
            self.member_row("B", "99.5", "赵六;钱七;孙八"),  # 1000 split three ways
            self.member_row("C", "90", "周九", complaints=2),  # no reward: 0
        ]
        results = evaluate(self.scheme(), rows)
        parts = results.splits["reward÷members"]
        rewards = {t.subject: t.reward for t in results.totals}
        for subject, split in parts.items():
            assert sum(split.values()) == rewards[subject]
        assert parts["A"] == {
            "张三": Decimal("500.00"),
            "李四": Decimal("250.00"),
            "王五": Decimal("250.00"),
        }
        # 1000 / 3: 333.33 each and the extra fen to the id that sorts first
        assert sorted(parts["B"].values()) == [
            Decimal("333.33"),
            Decimal("333.33"),
            Decimal("333.34"),
        ]
        assert parts["C"] == {"周九": Decimal("0.00")}

    def test_an_unreadable_member_list_is_that_rows_error(self):
        rows = [
            self.member_row("A", "99", "张三*0;李四"),
            self.member_row("B", "99", "赵六;;钱七"),
            self.member_row("C", "99", "孙八;孙八"),
            self.member_row("D", "99", "周九"),
        ]
        results = evaluate(self.scheme(), rows)
        assert [t.subject for t in results.totals] == ["D"]
        messages = {e.subject: e.message for e in results.errors}
        assert "share > 0" in messages["A"]
        assert "'name;name'" in messages["B"]
        assert "each member once" in messages["C"]

    def test_splits_round_trip_and_need_fen_rounding(self):
        scheme = self.scheme()
        assert parse_scheme(json.loads(canonical_json(scheme))) == scheme
        data = dump_scheme(scheme)
        data["rules"][0]["rounding"] = {"mode": "half_up", "place": "0.001"}
        with pytest.raises(SchemeFileError) as info:
            parse_scheme(json.loads(json.dumps(data)))
        assert "must round to the fen or coarser when amounts are split" in str(info.value)
