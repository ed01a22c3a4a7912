import contextlib
import json
import pickle
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from bankkpi import (
    AtLeast,
    Context,
    RoundingPolicy,
    Rule,
    Shortfall,
    Text,
    Trace,
    Var,
    _expressions,
    round_fraction,
)
from bankkpi._expressions import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_LENGTH,
    MAX_NODES,
    Arithmetic,
    Comparison,
    Conditional,
    Expression,
    Logical,
    Minus,
    Negation,
    Number,
    Variable,
    parse,
    unparse,
)
from bankkpi.exceptions import (
    BankKPIError,
    ConfigError,
    ExpressionError,
    FloatMoneyError,
    InvalidValueError,
    MissingDataError,
    OverflowRiskError,
    ZeroDenominatorError,
)

from .strategies import (
    EXPRESSION_NAMES,
    MODES,
    condition_trees,
    number_trees,
    rounding_policies,
)

YUAN = RoundingPolicy("half_up", "yuan")
SCHEME_A = "if score < 95 then 1000 + (95 - score) * 200 else 0"


def value(source, names=(), **values):
    trace = Expression(source, names or list(values)).evaluate(Context("o", values))
    return trace.value


def error(source, names=("score", "a", "b")):
    with pytest.raises(ExpressionError) as info:
        parse(source, names)
    return info.value


# ------------------------------------------------------------------ worked examples


class TestSchemeA:
    rule = Rule(
        "A.P2",
        Text("二阶段考核", "phase 2 penalty"),
        "penalty",
        Expression(SCHEME_A, ["score"]),
        YUAN,
    )

    def test_missed_target_in_both_languages(self):
        trace = self.rule.evaluate(Context("outlet 7", {"score": "91.5"}))
        assert trace.amount == Decimal(1700)
        assert trace.render("en") == (
            "penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan "
            "[phase 2 penalty; score 91.5 < 95 is true]"
        )
        assert trace.render("zh") == (
            "考核 = 1000 + (95 − 91.5) × 200 = 1700 元【二阶段考核；得分91.5 < 95成立】"
        )

    def test_rounding_is_the_rules(self):
        trace = self.rule.evaluate(Context("outlet 9", {"score": "89.372"}))
        assert trace.value == Fraction("2125.6")
        assert trace.amount == Decimal(2126)
        assert "= 2,125.6 → 2,126 yuan (half_up to 1)" in trace.render("en")

    def test_met_target_pays_nothing_and_says_why(self):
        trace = self.rule.evaluate(Context("outlet 8", {"score": "96"}))
        assert trace.amount == 0
        assert trace.render("en") == "penalty = 0 yuan [phase 2 penalty; score 96 < 95 is false]"
        assert trace.render("zh") == "考核 = 0 元【二阶段考核；得分96 < 95不成立】"

    def test_same_amounts_as_the_built_in_shortfall(self):
        built_in = Rule(
            "A.P2", Text("x", "x"), "penalty", Shortfall(AtLeast(95), base=1000, rate=200), YUAN
        )
        for score in ("0", "91.5", "94.99", "95", "100", "89.372"):
            context = Context("o", {"score": score})
            assert self.rule.evaluate(context).amount == built_in.evaluate(context).amount

    def test_trace_round_trips_through_json(self):
        trace = self.rule.evaluate(Context("outlet 7", {"score": "91.5"}))
        data = json.loads(json.dumps(trace.to_dict()))
        assert data["formula"]["en"] == "1000 + (95 − 91.5) × 200"
        assert data["inputs"] == [{"name": {"zh": "得分", "en": "score"}, "value": "91.5"}]
        assert Trace.from_dict(data) == trace


class TestArithmetic:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("10 - 3 - 2", 5),
            ("2 * 3 + 4", 10),
            ("2 + 3 * 4", 14),
            ("(2 + 3) * 4", 20),
            ("10 / 4 / 5", Fraction(1, 2)),
            ("-2 * 3", -6),
            ("- 2 - 3", -5),
            ("2 * -3", -6),
            ("2 - -3", 5),
            ("--4", 4),
            ("-(2 - 5)", 3),
            ("1 / 3", Fraction(1, 3)),
            ("0.1 + 0.2", Fraction(3, 10)),
            ("95 − 91.5", Fraction(7, 2)),
            ("3 × 4 ÷ 8", Fraction(3, 2)),
            ("min(3, 1, 2)", 1),
            ("max(3, 1, 2)", 3),
            ("min(7)", 7),
            ("abs(2 - 5)", 3),
            ("max(0, min(100, 250 * 2))", 100),
            ("123456789012345678901234567890", 123456789012345678901234567890),
        ],
    )
    def test_values(self, source, expected):
        assert value(source) == expected

    def test_left_associative_trees(self):
        assert parse("10 - 3 - 2", []) == Arithmetic(
            "-", Arithmetic("-", Number(10), Number(3)), Number(2)
        )
        assert parse("-a * b", ["a", "b"]) == Arithmetic("*", Minus(Variable("a")), Variable("b"))

    def test_and_binds_tighter_than_or_and_not_tighter_than_and(self):
        tree = parse("if not a < 1 or a > 2 and a < 3 then 1 else 0", ["a"])
        assert isinstance(tree, Conditional)
        assert tree.condition == Logical(
            "or",
            Negation(Comparison("<", Variable("a"), Number(1))),
            Logical(
                "and",
                Comparison(">", Variable("a"), Number(2)),
                Comparison("<", Variable("a"), Number(3)),
            ),
        )

    @pytest.mark.parametrize(
        ("a", "expected"), [(-1, 10), (0, 20), (1, 20), (2, 30), (3, 30), (5, 40)]
    )
    def test_conditions(self, a, expected):
        source = (
            "if a < 0 then 10 else if a == 0 or a == 1 then 20 "
            "else if not (a >= 4) and a != 1 then 30 else 40"
        )
        assert value(source, a=a) == expected

    def test_else_branch_runs_to_the_end(self):
        assert value("if a > 0 then 1 else 2 + 3", a=0) == 5
        assert value("(if a > 0 then 1 else 2) + 3", a=0) == 5
        assert value("(if a > 0 then 1 else 2) + 3", a=1) == 4

    def test_chinese_names_and_labels(self):
        formula = Expression(
            "if 得分 < 95 then (95 − 得分) × 200 else 0", {"得分": Text("得分", "score")}
        )
        trace = formula.evaluate(Context("网点1", {"得分": "94.5"}))
        assert trace.render("zh") == "金额 = (95 − 94.5) × 200 = 100 元【得分94.5 < 95成立】"
        assert (
            trace.render("en") == "amount = (95 − 94.5) × 200 = 100 yuan [score 94.5 < 95 is true]"
        )

    def test_min_max_abs_in_the_trace(self):
        formula = Expression("max(0, min(abs(a - b) * 100, 1000))", ["a", "b"])
        trace = formula.evaluate(Context("o", {"a": "3", "b": "5.5"}))
        assert trace.value == 250
        assert trace.render("en") == "amount = max(0, min(abs(3 − 5.5) × 100, 1000)) = 250 yuan"

    def test_negative_values_and_unary_minus_render_exactly(self):
        formula = Expression("10 + -a * 2 - -3", ["a"])
        trace = formula.evaluate(Context("o", {"a": -2}))
        assert trace.value == 17
        assert trace.render("en") == "amount = 10 + (−1) × (−2) × 2 + 3 = 17 yuan"

    def test_every_evaluated_comparison_is_a_note_and_a_compound_condition_too(self):
        formula = Expression("if a < 1 and b >= 2 then 5 else 0", ["a", "b"])
        notes = formula.evaluate(Context("o", {"a": 0, "b": 3})).notes
        assert [n.en for n in notes] == [
            "a 0 < 1 is true",
            "b 3 >= 2 is true",
            "condition 'a < 1 and b >= 2' is true",
        ]
        assert notes[-1].zh == "条件“a < 1 and b >= 2”成立"
        short_circuit = formula.evaluate(Context("o", {"a": 7, "b": 3})).notes
        assert [n.en for n in short_circuit] == [
            "a 7 < 1 is false",
            "condition 'a < 1 and b >= 2' is false",
        ]

    def test_compound_sides_of_a_comparison_are_shown_substituted(self):
        formula = Expression("if a + b * 2 > max(a, 3) then 1 else 0", ["a", "b"])
        notes = formula.evaluate(Context("o", {"a": 1, "b": 2})).notes
        assert [n.en for n in notes] == ["1 + 2 × 2 > max(1, 3) is true"]

    def test_only_evaluated_variables_are_needed(self):
        formula = Expression("if a < 1 then b else 0", ["a", "b"])
        assert formula.evaluate(Context("o", {"a": 5})).value == 0
        with pytest.raises(MissingDataError, match="o: no value of variable for 'b'"):
            formula.evaluate(Context("o", {"a": 0}))

    def test_division_by_zero_is_typed_and_named_by_the_rule(self):
        rule = Rule("R1", Text("r", "r"), "reward", Expression("a / (b - 2)", ["a", "b"]), YUAN)
        with pytest.raises(ZeroDenominatorError, match="'a / \\(b - 2\\)'") as info:
            rule.evaluate(Context("outlet 3", {"a": 1, "b": 2}))
        assert "outlet 3" in str(info.value)
        assert info.value.__notes__ == ["while evaluating rule R1 for outlet 3"]

    def test_labels_and_known_labels(self):
        formula = Expression("points * 200", [Var("points", Text("扣分", "points deducted"))])
        assert formula.evaluate(Context("o", {"points": 2})).inputs == (
            (Text("扣分", "points deducted"), "2"),
        )
        assert Expression("score", ["score"]).variables == (Var("score"),)


class TestExpressionValue:
    def test_equality_hash_and_canonical_form(self):
        one = Expression("(1000)+(95 − score)×200", ["score"])
        two = Expression("1000 + (95 - score) * 200", ["score"])
        assert one != two
        assert one.tree == two.tree
        assert one.canonical == two.canonical == two.source
        assert hash(two) == hash(Expression("1000 + (95 - score) * 200", ["score"]))
        assert Expression.from_tree(one.tree, ["score"]) == two

    def test_names_in_order_of_first_use(self):
        formula = Expression("if b > 0 then a + b else c", ["a", "b", "c", "d"])
        assert formula.names == ("b", "a", "c")

    def test_dict_round_trip(self):
        formula = Expression(
            SCHEME_A,
            {"score": Text("神秘人检查得分", "inspection score"), "x": None},
            label=Text("考核", "penalty"),
        )
        data = json.loads(json.dumps(formula.to_dict()))
        assert data["variables"] == {
            "score": {"zh": "神秘人检查得分", "en": "inspection score"},
            "x": None,
        }
        assert Expression.from_dict(data) == formula

    @pytest.mark.parametrize(
        ("variables", "message"),
        [
            (["if"], "variable name 'if' is reserved"),
            (["min"], "variable name 'min' is reserved"),
            (["__class__"], "variable name '__class__' is refused"),
            (["a b"], "variable name 'a b' is not a name"),
            (["1a"], "variable name '1a' is not a name"),
            ([""], "variable name '' is not a name"),
            ([3], "variable name 3 is not a name"),
            (["a", "a"], "variable 'a' is declared twice"),
            ("score", "variables must be a list of names"),
            ({"a": "label"}, "the label of variable 'a' must be a Text"),
        ],
    )
    def test_bad_declarations(self, variables, message):
        with pytest.raises(ExpressionError, match=message):
            Expression("1", variables)

    def test_source_must_be_text(self):
        with pytest.raises(ExpressionError, match="must be text, not int"):
            Expression(5, [])  # type: ignore[arg-type]


# ------------------------------------------------------------------ refusals


class TestRefusals:
    @pytest.mark.parametrize(
        ("source", "column", "problem"),
        [
            ("score.__class__", 6, "attribute access is not allowed: '.__class__'"),
            ("(score).real", 8, "attribute access is not allowed"),
            ("pow(2, 3)", 1, "unknown function 'pow' (allowed: min, max, abs)"),
            ("1 + pow(2, 3)", 5, "unknown function 'pow'"),
            ("__import__('os')", 1, "names starting with '__' are not allowed: '__import__'"),
            ("a + __builtins__", 5, "names starting with '__' are not allowed"),
            ("'abc'", 1, "strings are not allowed"),
            ('score + "1"', 9, "strings are not allowed"),
            ("2 ** 1000", 3, "'**' (power) is not supported"),
            ("9 ^ 9", 3, "'^' is not supported"),
            ("1e999999", 1, "exponent notation is not allowed: '1e999999'"),
            ("2 * 1E-5", 5, "exponent notation is not allowed"),
            ("1_000", 1, "underscores are not allowed in numbers"),
            ("2score", 1, "a number runs into a name: '2score'"),
            ("0x1F", 1, "a number runs into a name"),
            ("1.", 2, "a decimal point must be followed by digits"),
            ("1.2.3", 4, "a number has at most one decimal point"),
            (".5", 1, "a number must start with a digit"),
            ("a[0]", 2, "indexing is not allowed"),
            ("{1}", 1, "braces are not allowed"),
            ("a % 2", 3, "'%' is not supported"),
            ("a // 2", 3, "'//' (floor division) is not supported"),
            ("a = 1", 3, "compare with '=='"),
            ("!a", 1, "use 'not' or '!='"),
            ("a && b", 3, "use 'and'"),
            ("a ≤ 1", 3, "write '<=' for '≤'"),
            ("（1）", 1, "full-width '（': write '(' instead"),
            ("lambda: 1", 1, "unknown variable 'lambda'"),
            ("a ; 1", 3, "unexpected character ';' (U+003B)"),
            ("x + 1", 1, "unknown variable 'x' (declared: a, b, score)"),
            ("scor + 1", 1, "did you mean 'score'?"),
            ("score(1)", 1, "'score' is a variable, not a function"),
            ("min + 1", 1, "'min' is a function: write min(…)"),
            ("abs(1, 2)", 1, "abs() takes exactly 1 argument, got 2"),
            ("max()", 1, "max() needs at least 1 argument"),
            ("min(1,)", 7, "expected a number, name, call or '(', found ')'"),
            ("min(1 2)", 7, "expected ',' or ')' in min(), found '2'"),
            ("min(1, 2", 1, "the '(' of min() is never closed"),
            ("1 + (a < b)", 5, "'+' needs a number, but '(a < b)' is a condition"),
            ("(a < b) * 2", 1, "'*' needs a number"),
            ("-(a < b)", 2, "unary minus needs a number"),
            ("max(1, a < b)", 8, "max() needs a number"),
            ("if a then 1 else 2", 4, "'if' needs a condition, but 'a' is a number"),
            ("if a < b then a < b else 1", 15, "the 'then' branch must give a number"),
            ("if a < b then 1 else not a < b", 22, "the 'else' branch must give a number"),
            ("if a < b 1 else 2", 10, "expected 'then' after the condition of the 'if'"),
            ("if a < b then 1", 16, "expected 'else' to complete the 'if' at column 1"),
            ("a and b", 1, "'and' needs a condition, but 'a' is a number"),
            ("if not a then 1 else 0", 8, "'not' needs a condition"),
            ("a < b < 3", 7, "comparisons cannot be chained"),
            ("a < b", 1, "the expression gives a condition (true or false), not a number"),
            ("1 + if a < b then 1 else 2", 5, "must be in parentheses"),
            ("1 + then", 5, "found keyword 'then'"),
            ("+1", 1, "unary '+' is not supported"),
            ("1 + 2 3", 7, "unexpected '3' after a complete expression"),
            ("1 + 2)", 6, "unmatched ')'"),
            ("(1 + 2", 1, "'(' is never closed"),
            ("(1 + 2 3", 8, "expected ')' to close the '(' at column 1, found '3'"),
            ("1 +", 4, "the expression ends where a number"),
            ("", 1, "the expression is empty"),
            ("  \n ", 1, "the expression is empty"),
        ],
    )
    def test_refused_with_the_column(self, source, column, problem):
        exc = error(source)
        assert exc.column == column
        assert problem in exc.problem
        assert str(exc).startswith(f"column {column}: {exc.problem}\n")

    def test_message_shows_a_caret_under_the_column(self):
        exc = error("pow(2, 3)")
        assert str(exc) == (
            "column 1: unknown function 'pow' (allowed: min, max, abs)\n  pow(2, 3)\n  ^"
        )
        assert error("1 + (a ^ 2)").args[0].splitlines()[1:] == ["  1 + (a ^ 2)", "         ^"]

    def test_caret_counts_wide_characters_twice(self):
        exc = error("得分 + x", ["得分"])
        assert str(exc).splitlines()[1:] == ["  得分 + x", "         ^"]

    def test_error_is_a_config_error(self):
        exc = error("9 ^ 9")
        assert isinstance(exc, ConfigError)
        assert isinstance(exc, BankKPIError)
        assert isinstance(exc, ValueError)

    def test_error_pickles_with_its_column(self):
        exc = pickle.loads(pickle.dumps(error("9 ^ 9")))  # noqa: S301 - our own data
        assert (exc.column, exc.problem, str(exc)) == (
            3,
            error("9 ^ 9").problem,
            str(error("9 ^ 9")),
        )

    def test_first_problem_in_reading_order_is_reported(self):
        assert error("pow(1) + 'x'").column == 1
        assert error("1 + 'x' + pow(1)").column == 5
        assert error("x'").column == 1
        assert error("(a < b) + 'x'").column == 1
        assert error("score'").column == 6


class TestLimits:
    def test_nesting(self):
        deep = "(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1)
        assert parse(deep, []) == Number(1)
        too_deep = "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5)
        exc = error(too_deep)
        assert exc.column == MAX_DEPTH + 1
        assert "nests deeper than 32 levels" in exc.problem

    def test_nesting_of_any_construct(self):
        for source in (
            "-" * (MAX_DEPTH + 1) + "1",
            "abs(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1),
            "if a < 1 then " * (MAX_DEPTH + 1) + "1" + " else 2" * (MAX_DEPTH + 1),
            "1" + " + 1" * MAX_DEPTH,
        ):
            assert "nests deeper" in error(source).problem
        assert value("1" + " + 1" * (MAX_DEPTH - 1)) == MAX_DEPTH
        chain = error("1" + " + 1" * 40)
        assert chain.column == 3 + 4 * (MAX_DEPTH - 1)  # the operator that goes too deep
        assert chain.problem.endswith("split a long chain into groups in parentheses")
        grouped = "(" + " + ".join(["1"] * 20) + ") + (" + " + ".join(["1"] * 20) + ")"
        assert value(grouped) == 40

    def test_many_nodes(self):
        assert len(parse("min(" + ", ".join(["1"] * (MAX_NODES - 1)) + ")", []).args) == 499
        exc = error("min(" + ", ".join(["1"] * MAX_NODES) + ")")
        assert f"more than {MAX_NODES}" in exc.problem

    def test_length(self):
        assert value(" " * (MAX_LENGTH - 1) + "1") == 1
        exc = error(" " * MAX_LENGTH + "1")
        assert exc.column == MAX_LENGTH + 1
        assert "2001 characters long; the limit is 2000" in exc.problem

    def test_digits(self):
        assert value("0." + "1" * (MAX_DIGITS - 1)) > 0
        exc = error("1" * (MAX_DIGITS + 1))
        assert (exc.column, "has 31 digits; the limit is 30") == (1, exc.problem[-30:])
        with pytest.raises(InvalidValueError, match="at most 30 digits"):
            Number(Decimal("1E+40"))


# ------------------------------------------------------------------ array path


def counts(*values):
    return np.array(values, dtype=np.int64)


class TestArrays:
    def test_scheme_a(self):
        formula = Expression(SCHEME_A, ["score"])
        result = formula.evaluate_array({"score": counts(9150, 9500, 8937, 9499, 0)}, rounding=YUAN)
        assert result.tolist() == [1700, 0, 2126, 1002, 20000]
        assert result.dtype == np.int64

    def test_result_is_counts_of_the_place(self):
        formula = Expression("a / 3", ["a"])
        fen = formula.evaluate_array({"a": counts(100)}, rounding=RoundingPolicy("half_up", "fen"))
        tens = formula.evaluate_array({"a": counts(10000)}, rounding=RoundingPolicy("up", "10"))
        assert (fen.tolist(), tens.tolist()) == ([33], [4])  # 33.333… up to tens: 40

    def test_zero_divided_by_a_tiny_constant_is_zero(self):
        """0 ÷ 10^-29: the divisor's denominator leaves int64, but every row is 0, and so
        is the quotient (a reviewer found a raw OverflowError here)."""
        formula = Expression("score * 0 / 0.00000000000000000000000000001 + 1", ["score"])
        result = formula.evaluate_array({"score": counts(9150, 0)}, rounding=YUAN)
        assert result.tolist() == [1, 1]
        assert formula.evaluate(Context("o", {"score": "91.5"})).amount == 1

    def test_places_per_variable_and_broadcasting(self):
        formula = Expression("count * rate", ["count", "rate"])
        result = formula.evaluate_array(
            {"count": counts(1, 2, 3), "rate": np.int64(15050)},
            rounding=RoundingPolicy("half_up", "fen"),
            places={"count": 0},
        )
        assert result.tolist() == [15050, 30100, 45150]
        grid = formula.evaluate_array(
            {"count": counts(1, 2)[:, None], "rate": counts(100, 200)},
            rounding=YUAN,
            places={"count": 0},
        )
        assert grid.tolist() == [[1, 2], [2, 4]]

    def test_constant_and_empty(self):
        assert (
            Expression("1 / 8")
            .evaluate_array({}, rounding=RoundingPolicy("half_even", "fen"))
            .tolist()
            == 12
        )
        empty = Expression("a * 2", ["a"]).evaluate_array({"a": counts()}, rounding=YUAN)
        assert empty.shape == (0,)

    def test_division_by_a_variable_is_refused(self):
        with pytest.raises(ExpressionError, match="division by 'b - 1', which is not a constant"):
            Expression("a / (b - 1)", ["a", "b"]).evaluate_array(
                {"a": counts(1), "b": counts(1)}, rounding=YUAN
            )

    def test_division_by_a_constant_expression(self):
        formula = Expression("a / (3 - 1) / -(0.5)", ["a"])
        assert formula.evaluate_array({"a": counts(700)}, rounding=YUAN).tolist() == [-7]
        with pytest.raises(ZeroDenominatorError):
            Expression("a / (1 - 1)", ["a"]).evaluate_array({"a": counts(1)}, rounding=YUAN)

    def test_inputs_are_checked(self):
        formula = Expression("a + b", ["a", "b"])
        with pytest.raises(MissingDataError, match="no array for variable for 'b'"):
            formula.evaluate_array({"a": counts(1)}, rounding=YUAN)
        with pytest.raises(FloatMoneyError, match="'a' must hold integer counts of 1e-2"):
            formula.evaluate_array({"a": np.array([1.5]), "b": counts(1)}, rounding=YUAN)
        with pytest.raises(InvalidValueError, match="integer counts"):
            formula.evaluate_array({"a": np.array([True]), "b": counts(1)}, rounding=YUAN)
        with pytest.raises(InvalidValueError, match="integer counts"):
            formula.evaluate_array({"a": np.array([Decimal(1)]), "b": counts(1)}, rounding=YUAN)
        with pytest.raises(InvalidValueError, match="broadcast"):
            formula.evaluate_array({"a": counts(1, 2), "b": counts(1, 2, 3)}, rounding=YUAN)
        with pytest.raises(InvalidValueError, match="places"):
            formula.evaluate_array({"a": counts(1), "b": counts(1)}, rounding=YUAN, places=19)
        with pytest.raises(OverflowRiskError, match="beyond the int64 range"):
            formula.evaluate_array(
                {"a": np.array([2**64 - 1], dtype=np.uint64), "b": counts(1)}, rounding=YUAN
            )

    def test_overflow_is_refused_not_wrapped(self):
        formula = Expression("a * a * a", ["a"])
        with pytest.raises(OverflowRiskError, match="'a \\* a \\* a' could reach"):
            formula.evaluate_array({"a": counts(10**9)}, rounding=YUAN)
        assert formula.evaluate(Context("o", {"a": "10000000"})).value == 10**21
        assert Expression("a * 1000000", ["a"]).evaluate_array(
            {"a": counts(9 * 10**12)}, rounding=YUAN, places=0
        ).tolist() == [9 * 10**18]
        with pytest.raises(OverflowRiskError):
            Expression("a * 10000000", ["a"]).evaluate_array(
                {"a": counts(10**12)}, rounding=YUAN, places=0
            )

    @pytest.mark.parametrize("mode", MODES)
    def test_ties_in_every_mode(self, mode):
        formula = Expression("a / 2", ["a"])
        amounts = counts(-5, -3, -1, 1, 3, 5, 4, -4)  # x.5 fen and whole fen
        policy = RoundingPolicy(mode, "fen")
        got = formula.evaluate_array({"a": amounts}, rounding=policy, places=2).tolist()
        expected = [int(round_fraction(Fraction(int(n), 200), policy).scaleb(2)) for n in amounts]
        assert got == expected


# ------------------------------------------------------------------ properties


@given(number_trees())
def test_unparse_then_parse_gives_the_same_tree(tree):
    text = unparse(tree)
    assert parse(text, EXPRESSION_NAMES) == tree
    assert unparse(parse(text, EXPRESSION_NAMES)) == text


@given(condition_trees())
def test_conditions_round_trip_inside_an_if(condition):
    tree = Conditional(condition, Number(1), Number(0))
    assert parse(unparse(tree), EXPRESSION_NAMES) == tree


@st.composite
def array_cases(draw):
    tree = draw(number_trees(3, constant_divisors=True))
    rows = draw(st.integers(1, 6))
    places = {name: draw(st.integers(0, 3)) for name in EXPRESSION_NAMES}
    arrays = {
        name: draw(st.lists(st.integers(-(10**6), 10**6), min_size=rows, max_size=rows))
        for name in EXPRESSION_NAMES
    }
    return tree, places, arrays


@given(array_cases(), rounding_policies)
def test_array_path_equals_exact_path_after_rounding(case, policy):
    tree, places, arrays = case
    formula = Expression.from_tree(tree, EXPRESSION_NAMES)
    try:
        got = formula.evaluate_array(
            {k: np.array(v, dtype=np.int64) for k, v in arrays.items()},
            rounding=policy,
            places=places,
        )
    except OverflowRiskError:
        reject()
    rows = len(arrays["a"])
    for row, amount in enumerate(np.broadcast_to(got, (rows,)).tolist()):
        values = {k: Decimal(v[row]).scaleb(-places[k]) for k, v in arrays.items()}
        exact = formula.evaluate(Context("o", values)).value
        assert Decimal(amount) * policy.place == round_fraction(exact, policy)


@given(
    st.sampled_from(MODES),
    st.lists(st.integers(-(10**5), 10**5), min_size=1, max_size=20),
    st.sampled_from(["a / 2", "a * 0.5 + 0.005", "-a / 8", "a / 3 - 0.001", "abs(a) / -40"]),
)
def test_ties_agree_in_every_mode(mode, amounts, source):
    formula = Expression(source, ["a"])
    policy = RoundingPolicy(mode, "fen")
    got = formula.evaluate_array(
        {"a": np.array(amounts, dtype=np.int64)}, rounding=policy, places=3
    )
    for amount, count in zip(amounts, got.tolist(), strict=True):
        exact = formula.evaluate(Context("o", {"a": Decimal(amount).scaleb(-3)})).value
        assert Decimal(count).scaleb(-2) == round_fraction(exact, policy)


def parsed(source):
    """``(tree, None)``, or ``(None, error)`` when the source is refused."""
    try:
        return parse(source, EXPRESSION_NAMES), None
    except ExpressionError as exc:
        return None, exc


TOKENS = [
    *"0123456789+-*/(),<>=!.^%'\"_ abexy",
    "−",
    "×",
    "÷",
    "**",
    "1.5",
    "1e9",
    "if ",
    " then ",
    " else ",
    " and ",
    " or ",
    "not ",
    "min(",
    "max(",
    "abs(",
    "a",
    "b",
    "得分",
    "__x__",
    "score",
    "==",
    "<=",
    "!=",
    "(",
    ")",
    "[",
    "]",
    ".real",
    "pow(",
]


@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join))
def test_fuzz_tokens_only_raise_expression_errors(source):
    tree, exc = parsed(source)
    if exc is not None:
        assert exc.column is None or 1 <= exc.column <= len(source) + 1
        return
    assert parse(unparse(tree), EXPRESSION_NAMES) == tree
    values = dict.fromkeys(EXPRESSION_NAMES, Decimal(3))
    with contextlib.suppress(ZeroDenominatorError):
        Expression(source, EXPRESSION_NAMES).evaluate(Context("o", values))


@given(st.text(max_size=60))
def test_fuzz_any_text_only_raises_expression_errors(source):
    _tree, exc = parsed(source)
    assert exc is None or exc.column is None or 1 <= exc.column <= len(source) + 1


@pytest.mark.parametrize("mode", MODES)
def test_denominators_beyond_int64_at_the_rounding_place(mode):
    divisor = 2**62 - 1  # with place 100 the rounding denominator leaves int64
    formula = Expression(f"a / {divisor}", ["a"])
    amounts = [divisor, divisor + 1, divisor - 1, -divisor, 0, 1, -1, 2**63 - 1, -(2**63 - 1)]
    policy = RoundingPolicy(mode, "100")
    got = formula.evaluate_array({"a": counts(*amounts)}, rounding=policy, places=0)
    expected = [round_fraction(Fraction(n, divisor), policy) / 100 for n in amounts]
    assert got.tolist() == expected
    with pytest.raises(OverflowRiskError, match=r"at 0\.01 needs"):
        formula.evaluate_array(
            {"a": counts(*amounts)}, rounding=RoundingPolicy(mode, "fen"), places=0
        )


def test_the_module_never_reaches_a_python_evaluator():
    source = Path(_expressions.__file__).read_text(encoding="utf-8")
    assert not re.search(r"\b(eval|exec|compile|__import__)\(|import ast\b|literal_eval", source)
