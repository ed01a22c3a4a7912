import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankkpi import RoundingPolicy
from bankkpi._explain import Call, Num, Text, Trace, exact_decimal, num
from bankkpi.exceptions import InvalidValueError, ZeroDenominatorError

from .strategies import decimals_at, rounding_policies

PENALTY = Text("考核", "penalty")
YUAN = RoundingPolicy("half_up", "yuan")


def test_brief_example_in_both_languages():
    trace = Trace.of("A.P2", PENALTY, num(1000) + (num(95) - num("91.5")) * num(200), rounding=YUAN)
    assert trace.render("zh") == "考核 = 1000 + (95 − 91.5) × 200 = 1700 元"
    assert trace.render("en") == "penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan"
    assert trace.amount == Decimal(1700)


def test_rounding_shown_when_it_changes_the_value():
    trace = Trace.of(
        "A.P2", PENALTY, num(1000) + (num(95) - num("91.37")) * num(150), rounding=YUAN
    )
    assert trace.amount == Decimal(1545)
    assert trace.render("en") == (
        "penalty = 1000 + (95 − 91.37) × 150 = 1,544.5 → 1,545 yuan (half_up to 1)"
    )
    assert trace.render("zh").endswith("= 1544.5 → 1545 元（四舍五入至1）")


def test_parentheses_only_where_needed():
    a, b, c = num(1), num(2), num(3)
    assert (a - (b - c)).render("en") == "1 − (2 − 3)"
    assert ((a - b) - c).render("en") == "1 − 2 − 3"
    assert (a * (b + c)).render("en") == "1 × (2 + 3)"
    assert (a / (b * c)).render("en") == "1 ÷ (2 × 3)"
    assert (a + b * c).render("en") == "1 + 2 × 3"
    assert (num(5) + num(-2)).render("en") == "5 − 2"
    assert (num(5) - num(-2)).render("en") == "5 + 2"
    assert (num(5) * num(-2)).render("en") == "5 × (−2)"
    assert Call("max", (num(0), num(95) - num(96))).render("en") == "max(0, 95 − 96)"


def test_symbolic_rendering_uses_names():
    expr = num(1000) + (num(95, Text("目标", "target")) - num("91.5", Text("得分", "score"))) * num(
        200
    )
    assert expr.render("en", symbolic=True) == "1000 + (target − score) × 200"
    assert expr.render("zh", symbolic=True) == "1000 + (目标 − 得分) × 200"


def test_notes_and_parts_render_indented():
    exempt = Trace.fixed(
        "A.exempt",
        PENALTY,
        Decimal(0),
        notes=[Text("省内前200名，不考核", "province top 200: exempt")],
    )
    total = Trace.of(
        "A.total", Text("合计", "total"), num(0) + num(500), parts=[exempt], rounding=YUAN
    )
    assert total.render("en").splitlines() == [
        "total = 0 + 500 = 500 yuan",
        "  penalty = 0 yuan [province top 200: exempt]",
    ]
    assert "【省内前200名，不考核】" in total.render("zh")


def test_non_terminating_value_needs_rounding():
    third = Trace.of("r", PENALTY, num(1) / num(3))
    with pytest.raises(InvalidValueError, match="must be stated for rule r"):
        _ = third.amount
    rounded = Trace.of("r", PENALTY, num(100) / num(3), rounding=RoundingPolicy("half_up", "fen"))
    assert rounded.amount == Decimal("33.33")
    assert "≈33.333333 → 33.33" in rounded.render("en")


def test_division_by_zero_is_typed():
    with pytest.raises(ZeroDenominatorError):
        Trace.of("r", PENALTY, num(1) / num(0))


def test_json_round_trip():
    trace = Trace.of(
        "A.P2",
        PENALTY,
        num(1000) + (num(95) - num("91.5")) * num(200),
        rounding=YUAN,
        inputs=[(Text("得分", "score"), Decimal("91.5"))],
        notes=[Text("二阶段", "phase 2")],
        parts=[Trace.fixed("x", PENALTY, Decimal(0))],
    )
    data = json.loads(json.dumps(trace.to_dict()))
    assert data["formula"]["en"] == "1000 + (95 − 91.5) × 200"
    assert data["amount"] == "1700"
    assert Trace.from_dict(data) == trace


@given(st.lists(decimals_at(2, -10000, 10000), min_size=1, max_size=6), rounding_policies)
def test_amount_always_equals_rounded_exact_value(values, policy):
    expr = num(values[0])
    for v in values[1:]:
        expr = expr + num(v) * num(2)
    trace = Trace.of("p", PENALTY, expr, rounding=policy)
    assert trace.amount == policy.apply(exact_decimal(trace.value))
    assert Trace.from_dict(json.loads(json.dumps(trace.to_dict()))).amount == trace.amount


@given(st.integers(-(10**9), 10**9), st.integers(1, 10**6))
def test_exact_decimal(numerator, denominator):
    result = exact_decimal(Fraction(numerator, denominator))
    if result is None:
        d = Fraction(numerator, denominator).denominator
        while d % 2 == 0:
            d //= 2
        while d % 5 == 0:
            d //= 5
        assert d != 1
    else:
        assert Fraction(result) == Fraction(numerator, denominator)


def test_num_refuses_float():
    with pytest.raises(InvalidValueError):
        Num(0.5)  # type: ignore[arg-type]
