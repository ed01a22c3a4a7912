"""Goal-seek on monotone formulas: which score avoids the penalty, or earns the reward.

Values are searched on the indicator's grid (its scale at its precision), so the
answer is a value a measurement can actually take. The formula must be monotone in
the variable (penalties fall and rewards rise as the value improves); the search
uses bisection, about ``log2(grid size)`` evaluations.

Only the variable changes: ranks in the context stay as they are. A subject who
scores higher may also climb the ranking, which can change a rank-based amount; to
model that, rerun the population (``bankkpi.vector.seek_parameter`` or
:func:`bankkpi.evaluate`) rather than goal-seek one subject.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from bankkpi._formulas import Context, Formula
from bankkpi._indicators import Indicator
from bankkpi._money import CONTEXT, DecimalLike, to_decimal
from bankkpi.exceptions import InvalidValueError

__all__ = ["break_even", "crossing", "first_holding", "worst_value_where"]


def _grid(
    indicator: Indicator, low: DecimalLike | None, high: DecimalLike | None
) -> tuple[Decimal, Decimal, Decimal]:
    lo = indicator.scale_min if low is None else to_decimal(low, field="low")
    hi = indicator.scale_max if high is None else to_decimal(high, field="high")
    if lo is None or hi is None:
        raise InvalidValueError(
            "scale", f"of indicator {indicator.code} is open: pass low= and high=", (lo, hi)
        )
    if hi < lo:
        raise InvalidValueError("high", f"must not be below low {lo}", hi)
    return indicator.quantize(lo), indicator.quantize(hi), indicator.precision


def worst_value_where(
    formula: Formula,
    context: Context,
    variable: str,
    indicator: Indicator,
    condition: Callable[[Decimal], bool],
    *,
    low: DecimalLike | None = None,
    high: DecimalLike | None = None,
) -> Decimal | None:
    """The worst grid value of ``variable`` at which ``condition(amount)`` holds.

    "Worst" follows the indicator's direction: the lowest value for
    higher-is-better, the highest for lower-is-better. ``condition`` must be
    monotone: once it holds, it holds for every better value. ``None`` when it does
    not hold even at the best value.
    """
    lo, hi, step = _grid(indicator, low, high)
    count = int(CONTEXT.divide_int(hi - lo, step))
    better_up = indicator.higher_is_better

    def value_at(i: int) -> Decimal:
        # i = 0 is the worst value, i = count the best.
        offset = CONTEXT.multiply(step, Decimal(i))
        return CONTEXT.add(lo, offset) if better_up else CONTEXT.subtract(hi, offset)

    def holds(i: int) -> bool:
        trace = formula.evaluate(context.with_value(variable, value_at(i)))
        return condition(trace.amount)

    first = first_holding(count, holds)
    return None if first is None else value_at(first)


def first_holding(count: int, holds: Callable[[int], bool]) -> int | None:
    """The smallest ``i`` in ``0..count`` with ``holds(i)``, for a monotone ``holds``.

    Bisection: ``holds`` must be false up to some point and true from it on.
    ``None`` when it does not hold even at ``count``.

    >>> first_holding(100, lambda i: i * i >= 50)
    8
    """
    if not holds(count):
        return None
    first, last = 0, count
    while first < last:
        middle = (first + last) // 2
        if holds(middle):
            last = middle
        else:
            first = middle + 1
    return first


def break_even(
    formula: Formula,
    context: Context,
    variable: str,
    indicator: Indicator,
    goal: Literal["avoid", "earn"],
    *,
    low: DecimalLike | None = None,
    high: DecimalLike | None = None,
) -> Decimal | None:
    """The worst value that avoids a penalty (amount 0) or earns a reward (amount > 0).

    >>> from bankkpi import AtLeast, Indicator, RoundingPolicy, Text
    >>> from bankkpi._formulas import Rule, Shortfall
    >>> score = Indicator("score", "得分", "points", "higher_is_better",
    ...                   scale_min=0, scale_max=100, precision="0.01")
    >>> rule = Rule("A.P2", Text("二阶段", "phase 2"), "penalty",
    ...             Shortfall(AtLeast(95), rate=200, base=1000), RoundingPolicy("half_up", "yuan"))
    >>> break_even(rule, Context("o", {"score": 0}), "score", score, "avoid")
    Decimal('95.00')
    """
    if goal == "avoid":
        return worst_value_where(
            formula, context, variable, indicator, lambda a: a == 0, low=low, high=high
        )
    if goal == "earn":
        return worst_value_where(
            formula, context, variable, indicator, lambda a: a > 0, low=low, high=high
        )
    raise InvalidValueError("goal", "must be 'avoid' or 'earn'", goal)


def crossing(
    formula: Formula,
    context: Context,
    variable: str,
    indicator: Indicator,
    amount: DecimalLike,
    *,
    kind: Literal["penalty", "reward"],
    low: DecimalLike | None = None,
    high: DecimalLike | None = None,
) -> Decimal | None:
    """The worst value at which a penalty is at most ``amount`` (or a reward at least it).

    "Which score keeps the fine within 1,000 yuan?" is
    ``crossing(rule, ctx, "score", indicator, 1000, kind="penalty")``.
    """
    limit = to_decimal(amount, field="amount")
    if kind == "penalty":
        return worst_value_where(
            formula, context, variable, indicator, lambda a: a <= limit, low=low, high=high
        )
    if kind == "reward":
        return worst_value_where(
            formula, context, variable, indicator, lambda a: a >= limit, low=low, high=high
        )
    raise InvalidValueError("kind", "must be 'penalty' or 'reward'", kind)
