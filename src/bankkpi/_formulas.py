"""Reward and penalty formulas (奖励 / 考核), evaluated exactly with a trace.

A formula is a frozen value. ``formula.evaluate(context)`` returns a
:class:`~bankkpi.Trace` whose exact ``value`` is computed from the expression it
shows; nothing is rounded until a :class:`Rule` (or a :class:`Sum` that rounds each
part) says so, once, by a stated :class:`~bankkpi.RoundingPolicy`.

Scheme A's phase-2 penalty, 1000 + (95 − score) × 200:

>>> from bankkpi import AtLeast, RoundingPolicy
>>> rule = Rule("A.P2", Text("二阶段考核", "phase 2 penalty"), "penalty",
...             Shortfall(AtLeast(95), "score", rate=200, base=1000),
...             RoundingPolicy("half_up", "yuan"))
>>> trace = rule.evaluate(Context("outlet 7", {"score": "91.5"}))
>>> print(trace.render("zh"))
考核 = 1000 + (95 − 91.5) × 200 = 1700 元【二阶段考核；得分91.5未达到目标95(含)以上】
>>> print(trace.render("en"))
penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan [phase 2 penalty; score 91.5 misses target ≥ 95]
>>> trace.amount
Decimal('1700')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, Literal, Protocol, TypeAlias, runtime_checkable

import attrs

from bankkpi._bands import BandSet
from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Call, Expr, Lang, Num, Text, Trace, num
from bankkpi._money import DecimalLike, RoundingPolicy, to_decimal
from bankkpi._targets import AtLeast, AtMost, Within
from bankkpi.exceptions import (
    BankKPIError,
    InvalidValueError,
    MissingDataError,
    OutOfRangeError,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "BandAmount",
    "Choose",
    "Clamp",
    "Compare",
    "Context",
    "Discretionary",
    "Escalating",
    "Fixed",
    "Formula",
    "InBand",
    "InRanks",
    "Met",
    "Multiply",
    "Not",
    "PerCount",
    "PerPeriodEarly",
    "Predicate",
    "RateTable",
    "Rule",
    "RuleKind",
    "Shortfall",
    "Sum",
    "Var",
    "When",
]

RuleKind: TypeAlias = Literal["penalty", "reward"]
"""A penalty (考核/扣罚) or a reward (奖励); both are positive amounts."""

_KIND_LABEL: Final = {"penalty": Text("考核", "penalty"), "reward": Text("奖励", "reward")}
_AMOUNT: Final = Text("金额", "amount")
_DOUBLED: Final = Text("加倍考核", "doubled")
_ZERO: Final = Decimal(0)

KNOWN_LABELS: Final[Mapping[str, Text]] = {
    "score": Text("得分", "score"),
    "points": Text("扣分", "points"),
    "offence": Text("违规次数", "offence"),
    "count": Text("次数", "count"),
    "quarters_early": Text("提前达标季度数", "quarters early"),
    "chosen": Text("认定金额", "chosen amount"),
    "complaints": Text("投诉工单数", "complaint tickets"),
}
"""Bilingual names shown for common variables when a :class:`Var` gives none."""


# --------------------------------------------------------------------------- inputs


def _decimal_values(values: Mapping[str, object]) -> dict[str, Decimal]:
    return {name: to_decimal(v, field=name) for name, v in values.items()}


def _rank_map(ranks: Mapping[str, Any]) -> dict[str, Any]:
    return dict(ranks)


@attrs.frozen
class Context:
    """What a formula sees for one subject: named values and its ranks.

    ``values`` maps variable names (``score``, ``offences``, ``quarters_early``...) to
    exact numbers; ``ranks`` maps ranking names (``province``, ``region``) to the
    subject's ranked entry. A missing name is a :class:`MissingDataError` naming the
    subject and the variable.
    """

    subject: str = attrs.field(validator=non_empty("subject"))
    values: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_decimal_values)
    ranks: Mapping[str, Any] = attrs.field(factory=dict, converter=_rank_map)

    def value(self, name: str) -> Decimal:
        """The value of variable ``name``."""
        try:
            return self.values[name]
        except KeyError:
            raise MissingDataError("value of variable", name, subject=self.subject) from None

    def rank(self, name: str) -> Any:
        """The subject's entry in ranking ``name``."""
        try:
            return self.ranks[name]
        except KeyError:
            raise MissingDataError("rank in ranking", name, subject=self.subject) from None

    def with_value(self, name: str, value: DecimalLike) -> Context:
        """A copy with variable ``name`` set to ``value`` (for what-if and goal-seek)."""
        return attrs.evolve(self, values={**self.values, name: value})


def _var(value: str | Var) -> Var:
    return value if isinstance(value, Var) else Var(value)


@attrs.frozen
class Var:
    """A reference to a context variable, with the bilingual name traces show.

    Two references are equal when they name the same variable; the label is
    presentation only (a scheme file takes it from the scheme's inputs).
    """

    name: str = attrs.field(validator=non_empty("name"))
    label: Text | None = attrs.field(default=None, eq=False)

    @property
    def text(self) -> Text:
        """The label; else a known name's (``score`` is 得分), else the bare name."""
        if self.label is not None:
            return self.label
        return KNOWN_LABELS.get(self.name, Text(self.name, self.name))

    def get(self, context: Context) -> Decimal:
        """The variable's value in ``context``."""
        return context.value(self.name)

    def num(self, context: Context) -> Num:
        """The value as a named number for an expression."""
        return Num(self.get(context), self.text)


class Formula(Protocol):
    """Anything that turns a context into an explained exact amount."""

    def evaluate(self, context: Context) -> Trace:
        """The exact (unrounded unless stated) amount with its trace."""
        ...


@runtime_checkable
class RankSelection(Protocol):
    """A selection on ranks (top N, bottom 101–200, top 20%...)."""

    def contains(self, ranked: Any) -> bool:
        """Whether the ranked entry falls in the selection."""
        ...

    def describe(self, lang: Lang) -> str:
        """A short phrase: ``省内前200名`` / ``top 200``."""
        ...


# ----------------------------------------------------------------------- predicates


class Predicate(Protocol):
    """A condition on a context that explains its own outcome."""

    def test(self, context: Context) -> tuple[bool, Text]:
        """Whether it holds, and a phrase saying why."""
        ...


def _fmt(value: Decimal) -> str:
    return f"{value:f}"


@attrs.frozen
class Met:
    """Holds when ``variable`` meets ``target`` (by the target's inclusivity)."""

    target: AtLeast | AtMost | Within
    variable: str | Var = attrs.field(default="score", converter=_var)

    def test(self, context: Context) -> tuple[bool, Text]:
        """Met or not, with the value and the target in the reason."""
        var = _var(self.variable)
        value = var.get(context)
        ok = self.target.met(value)
        verb_zh, verb_en = ("达到", "meets") if ok else ("未达到", "misses")
        return ok, Text(
            f"{var.text.zh}{_fmt(value)}{verb_zh}目标{self.target.describe('zh')}",
            f"{var.text.en} {_fmt(value)} {verb_en} target {self.target.describe('en')}",
        )


@attrs.frozen
class InRanks:
    """Holds when the subject's entry in ranking ``ranking`` is in ``selection``."""

    ranking: str
    selection: RankSelection

    def test(self, context: Context) -> tuple[bool, Text]:
        """In the selection or not."""
        ranked = context.rank(self.ranking)
        ok = bool(self.selection.contains(ranked))
        zh, en = self.selection.describe("zh"), self.selection.describe("en")
        where_zh = where_en = ""
        top, bottom = (
            getattr(ranked, "rank_from_top", None),
            getattr(ranked, "rank_from_bottom", None),
        )
        size = getattr(ranked, "group_size", None)
        if top is not None and bottom is not None and size is not None:
            where_zh = f"（第{top}名，倒数第{bottom}名，共{size}）"
            where_en = f" (rank {top} of {size}, {bottom} from the bottom)"
        return ok, Text(
            f"{'属于' if ok else '不属于'}{zh}{where_zh}",
            f"{'in' if ok else 'not in'} {en}{where_en}",
        )


@attrs.frozen
class InBand:
    """Holds when ``variable`` falls in one of the bands named ``labels``."""

    bands: BandSet
    labels: frozenset[str] = attrs.field(converter=frozenset)
    variable: str | Var = attrs.field(default="score", converter=_var)

    def test(self, context: Context) -> tuple[bool, Text]:
        """In one of the bands or not."""
        var = _var(self.variable)
        value = var.get(context)
        band = self.bands.classify(value)
        ok = band.label in self.labels
        return ok, Text(
            f"{var.text.zh}{_fmt(value)}属于“{band.label}”{band.describe('zh')}",
            f"{var.text.en} {_fmt(value)} is in band '{band.label}' {band.describe('en')}",
        )


_COMPARE: Final[dict[str, Callable[[Decimal, Decimal], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


@attrs.frozen
class Compare:
    """Holds when ``variable op value`` (e.g. ``complaints == 0``)."""

    variable: str | Var = attrs.field(converter=_var)
    op: Literal["<", "<=", "==", "!=", ">=", ">"] = attrs.field(
        validator=one_of("op", tuple(_COMPARE))
    )
    value: Decimal = attrs.field(converter=to_decimal)

    def test(self, context: Context) -> tuple[bool, Text]:
        """The comparison, spelled out."""
        var = _var(self.variable)
        actual = var.get(context)
        ok = _COMPARE[self.op](actual, self.value)
        shown = f"{_fmt(actual)} {self.op} {_fmt(self.value)}"
        return ok, Text(
            f"{var.text.zh}：{shown}{'成立' if ok else '不成立'}",
            f"{var.text.en}: {shown} is {'true' if ok else 'false'}",
        )


def _predicates(items: Iterable[Predicate]) -> tuple[Predicate, ...]:
    result = tuple(items)
    if not result:
        raise InvalidValueError("predicates", "must hold at least one condition", result)
    return result


@attrs.frozen
class AllOf:
    """Holds when every predicate holds (the reasons are joined)."""

    predicates: tuple[Predicate, ...] = attrs.field(converter=_predicates)

    def test(self, context: Context) -> tuple[bool, Text]:
        """All of them, with every reason."""
        results = [p.test(context) for p in self.predicates]
        return all(ok for ok, _ in results), _join(t for _, t in results)


@attrs.frozen
class AnyOf:
    """Holds when at least one predicate holds."""

    predicates: tuple[Predicate, ...] = attrs.field(converter=_predicates)

    def test(self, context: Context) -> tuple[bool, Text]:
        """Any of them, with every reason."""
        results = [p.test(context) for p in self.predicates]
        return any(ok for ok, _ in results), _join(t for _, t in results)


@attrs.frozen
class Not:
    """Holds when ``predicate`` does not."""

    predicate: Predicate

    def test(self, context: Context) -> tuple[bool, Text]:
        """The negation; the reason is the inner one."""
        ok, why = self.predicate.test(context)
        return not ok, why


def _join(texts: Iterable[Text]) -> Text:
    items = list(texts)
    return Text("，".join(t.zh for t in items), "; ".join(t.en for t in items))


# ------------------------------------------------------------------------- formulas


def _amount(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="amount")


def _rate(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="rate")


def _optional_amount(value: DecimalLike | None) -> Decimal | None:
    return None if value is None else to_decimal(value, field="amount")


@attrs.frozen
class Fixed:
    """A stated amount (500 for the region's top 2; 0 for an exemption)."""

    amount: Decimal = attrs.field(converter=_amount)
    label: Text = _AMOUNT
    note: Text | None = None

    def evaluate(self, context: Context) -> Trace:  # noqa: ARG002 - same signature as every formula
        """The amount itself."""
        return Trace.fixed(
            "", self.label, self.amount, notes=() if self.note is None else [self.note]
        )


Counting: TypeAlias = Literal["exact", "started", "completed"]
"""How a shortfall becomes units: ``exact`` (3.5 points = 3.5 units, the literal
formula), ``started`` (every unit begun counts: 3.5 → 4), ``completed`` (only whole
units count: 3.5 → 3)."""


def _target(value: object) -> AtLeast | AtMost:
    if not isinstance(value, AtLeast | AtMost):
        raise InvalidValueError("target", "must be AtLeast or AtMost", value)
    return value


@attrs.frozen
class Shortfall:
    """``base + rate × units short`` when the target is missed, else 0.

    ``units = shortfall ÷ per``, counted by ``counting`` (default ``exact``: the
    literal "每差1分" formula). For an at-most target the shortfall is the excess.

    >>> Shortfall(AtLeast(95), "score", rate=200, base=1000).evaluate(
    ...     Context("o", {"score": "91.5"})).amount
    Decimal('1700')
    """

    target: AtLeast | AtMost = attrs.field(converter=_target)
    variable: str | Var = attrs.field(default="score", converter=_var)
    rate: Decimal = attrs.field(default=_ZERO, converter=_rate, kw_only=True)
    base: Decimal = attrs.field(default=_ZERO, converter=_amount, kw_only=True)
    per: Decimal = attrs.field(default=Decimal(1), converter=_rate, kw_only=True)
    counting: Counting = attrs.field(
        default="exact",
        kw_only=True,
        validator=one_of("counting", ("exact", "started", "completed")),
    )
    label: Text = attrs.field(default=_AMOUNT, kw_only=True)

    @per.validator
    def _check_per(self, _attribute: object, per: Decimal) -> None:
        if per <= 0:
            raise InvalidValueError("per", "must be > 0", per)
        for field, value in (("rate", self.rate), ("base", self.base)):
            if value < 0:
                raise InvalidValueError(field, "must be >= 0", value)

    def evaluate(self, context: Context) -> Trace:
        """Zero with a "met" note, or the shortfall formula with numbers substituted."""
        var = _var(self.variable)
        actual = var.get(context)
        met, why = Met(self.target, var).test(context)
        if met:
            return Trace.fixed("", self.label, _ZERO, notes=[why])
        threshold = Num(self.target.threshold, Text("目标", "target"))
        gap: Expr = (
            threshold - var.num(context)
            if isinstance(self.target, AtLeast)
            else var.num(context) - threshold
        )
        units: Expr = gap if self.per == 1 else gap / num(self.per)
        if self.counting != "exact":
            exact_units = units.exact()
            whole = (
                math.ceil(exact_units) if self.counting == "started" else math.floor(exact_units)
            )
            units = Num(Decimal(whole), Text("计数单位", "units"))
        expr: Expr = units * num(self.rate)
        if self.base:
            expr = num(self.base) + expr
        return Trace.of("", self.label, expr, notes=[why], inputs=[(var.text, actual)])


@attrs.frozen
class PerCount:
    """``rate × count``: 100 yuan per written praise, −1 point per finding."""

    rate: Decimal = attrs.field(converter=_rate)
    variable: str | Var = attrs.field(default="count", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The count times the rate."""
        var = _var(self.variable)
        return Trace.of("", self.label, var.num(context) * num(self.rate))


def _rates(values: Iterable[DecimalLike]) -> tuple[Decimal, ...]:
    rates = tuple(to_decimal(v, field="rates") for v in values)
    if not rates:
        raise InvalidValueError("rates", "must hold at least one rate", rates)
    return rates


@attrs.frozen
class Escalating:
    """``units × rate of the offence number``: 200/point the first time, 500 again.

    ``rates[k]`` applies to offence ``k + 1``; offences beyond the list use the last.

    >>> f = Escalating((200, 500), units="points", offence="offence")
    >>> f.evaluate(Context("o", {"points": 2, "offence": 2})).amount
    Decimal('1000')
    """

    rates: tuple[Decimal, ...] = attrs.field(converter=_rates)
    units: str | Var = attrs.field(default="points", converter=_var)
    offence: str | Var = attrs.field(default="offence", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The units at the rate of this offence."""
        offence_var = _var(self.offence)
        offence = offence_var.get(context)
        if offence < 1 or offence != offence.to_integral_value():
            raise InvalidValueError(
                offence_var.name,
                "must be a whole offence number >= 1",
                offence,
                subject=context.subject,
            )
        index = min(int(offence), len(self.rates)) - 1
        note = Text(
            f"第{offence}次，每单位{self.rates[index]}元",
            f"offence {offence}: {self.rates[index]} per unit",
        )
        return Trace.of(
            "", self.label, _var(self.units).num(context) * num(self.rates[index]), notes=[note]
        )


@attrs.frozen
class PerPeriodEarly:
    """``amount × periods early``: 300 yuan for each quarter the standard came early."""

    amount: Decimal = attrs.field(converter=_amount)
    variable: str | Var = attrs.field(default="quarters_early", converter=_var)
    label: Text = _AMOUNT

    def evaluate(self, context: Context) -> Trace:
        """The amount per period times the (non-negative) number of periods early."""
        var = _var(self.variable)
        early = var.get(context)
        if early < 0 or early != early.to_integral_value():
            raise InvalidValueError(
                var.name, "must be a whole number >= 0", early, subject=context.subject
            )
        return Trace.of("", self.label, var.num(context) * num(self.amount))


@attrs.frozen
class Discretionary:
    """An amount the committee picks from a range (media praise 200–1000).

    A chosen amount outside ``[low, high]`` is an :class:`OutOfRangeError` naming the
    item, the range and the amount.
    """

    item: Text
    low: Decimal = attrs.field(converter=_amount)
    high: Decimal = attrs.field(converter=_amount)
    variable: str | Var = attrs.field(default="chosen", converter=_var)

    @high.validator
    def _check_range(self, _attribute: object, high: Decimal) -> None:
        if high < self.low:
            raise InvalidValueError("high", f"must not be below low {self.low}", high)

    def evaluate(self, context: Context) -> Trace:
        """The chosen amount, checked against the range."""
        var = _var(self.variable)
        chosen = var.get(context)
        if not self.low <= chosen <= self.high:
            raise OutOfRangeError(
                self.item.en,
                f"must be within the range [{self.low}, {self.high}] ({self.item.zh})",
                chosen,
                subject=context.subject,
            )
        range_note = Text(
            f"{self.item.zh}，范围{self.low}–{self.high}",
            f"{self.item.en}, range {self.low}–{self.high}",
        )
        return Trace.fixed("", self.item, chosen, notes=[range_note])


def _amounts(values: Mapping[str, DecimalLike]) -> dict[str, Decimal]:
    return {label: to_decimal(v, field=f"amounts[{label}]") for label, v in values.items()}


@attrs.frozen
class BandAmount:
    """The amount of the band ``variable`` falls in (below 85 → X, below 80 → Y).

    Every band label must have an amount; a value outside every band (and no
    catch-all) is a :class:`MissingDataError`.
    """

    bands: BandSet
    amounts: Mapping[str, Decimal] = attrs.field(converter=_amounts)
    variable: str | Var = attrs.field(default="score", converter=_var)
    label: Text = _AMOUNT

    @amounts.validator
    def _check_amounts(self, _attribute: object, amounts: Mapping[str, Decimal]) -> None:
        labels = set(self.bands.labels()) | (
            {self.bands.catch_all} if self.bands.catch_all else set()
        )
        missing = sorted(labels - set(amounts))
        extra = sorted(set(amounts) - labels)
        if missing:
            raise InvalidValueError(
                "amounts", "must give an amount for every band; missing", missing
            )
        if extra:
            raise InvalidValueError("amounts", "name bands that do not exist", extra)

    def evaluate(self, context: Context) -> Trace:
        """The band's amount, with the band named in a note."""
        _ok, why = InBand(self.bands, frozenset(), self.variable).test(context)
        band = self.bands.classify(_var(self.variable).get(context))
        return Trace.fixed("", self.label, self.amounts[band.label], notes=[why])


def _tiers(
    values: Iterable[tuple[DecimalLike, DecimalLike]],
) -> tuple[tuple[Decimal, Decimal], ...]:
    tiers = tuple(
        (to_decimal(lo, field="tiers.from"), to_decimal(r, field="tiers.rate")) for lo, r in values
    )
    if not tiers:
        raise InvalidValueError("tiers", "must hold at least one tier", tiers)
    starts = [lo for lo, _ in tiers]
    if starts != sorted(set(starts)):
        raise InvalidValueError(
            "tiers", "must start at strictly increasing values", [str(s) for s in starts]
        )
    return tiers


@attrs.frozen
class RateTable:
    """A rate table on ``variable``: ``tiered`` or ``graduated``.

    ``tiers`` are ``(from, rate)`` pairs; tier *k* runs from its ``from`` (included)
    to the next tier's ``from`` (excluded); the last tier is open above. A value
    below the first ``from`` earns 0.

    - ``tiered``: the whole value at the rate of the tier it reaches:
      ``scale × value × rate(tier of value)``.
    - ``graduated``: each slice at its own rate (like tax brackets):
      ``scale × Σ (min(value, to) − from) × rate`` over the tiers reached.

    When the first tier starts at 0 the two agree inside it; graduated is
    continuous at every bound, while tiered jumps there to ``bound × new rate``.

    >>> table = RateTable(((0, "0.01"), (1_000_000, "0.02")), "fees", "graduated")
    >>> table.evaluate(Context("o", {"fees": 1_500_000})).amount
    Decimal('20000')
    """

    tiers: tuple[tuple[Decimal, Decimal], ...] = attrs.field(converter=_tiers)
    variable: str | Var = attrs.field(converter=_var)
    mode: Literal["tiered", "graduated"] = attrs.field(
        validator=one_of("mode", ("tiered", "graduated"))
    )
    scale: Decimal = attrs.field(default=Decimal(1), converter=_rate, kw_only=True)
    label: Text = attrs.field(default=_AMOUNT, kw_only=True)

    def tier_of(self, value: Decimal) -> int | None:
        """Index of the tier ``value`` falls in, or ``None`` below the first."""
        found = None
        for index, (start, _rate) in enumerate(self.tiers):
            if value >= start:
                found = index
        return found

    def evaluate(self, context: Context) -> Trace:
        """The table applied to the variable, each slice shown for graduated tables."""
        var = _var(self.variable)
        value = var.get(context)
        index = self.tier_of(value)
        if index is None:
            note = Text(f"低于首档{self.tiers[0][0]}", f"below the first tier {self.tiers[0][0]}")
            return Trace.fixed("", self.label, _ZERO, notes=[note])
        if self.mode == "tiered":
            expr: Expr = var.num(context) * num(self.tiers[index][1])
        else:
            slices: list[Expr] = []
            for k in range(index + 1):
                start, rate = self.tiers[k]
                top = var.num(context) if k == index else num(self.tiers[k + 1][0])
                slices.append((top - num(start)) * num(rate))
            expr = slices[0]
            for part in slices[1:]:
                expr = expr + part
        if self.scale != 1:
            expr = expr * num(self.scale)
        note = Text(f"第{index + 1}档", f"tier {index + 1}")
        return Trace.of("", self.label, expr, notes=[note])


@attrs.frozen
class When:
    """``then`` when ``predicate`` holds, otherwise ``otherwise`` (default 0)."""

    predicate: Predicate
    then: Formula
    otherwise: Formula | None = None

    def evaluate(self, context: Context) -> Trace:
        """The chosen branch, its trace noting why."""
        ok, why = self.predicate.test(context)
        if ok:
            return _with_note(self.then.evaluate(context), why)
        if self.otherwise is None:
            return Trace.fixed("", _AMOUNT, _ZERO, notes=[why])
        return _with_note(self.otherwise.evaluate(context), why)


def _cases(items: Iterable[tuple[Predicate, Formula]]) -> tuple[tuple[Predicate, Formula], ...]:
    cases = tuple(items)
    if not cases:
        raise InvalidValueError("cases", "must hold at least one case", cases)
    return cases


@attrs.frozen
class Choose:
    """The first case whose predicate holds; else ``otherwise`` (``None``: nothing due).

    Scheme A phase 3, with both readings of the brief's ambiguity: outside the bottom
    200 an outlet below 98 pays the per-point part alone
    (``otherwise=Shortfall(AtLeast(98), rate=200)``) or nothing (``otherwise=None``).
    """

    cases: tuple[tuple[Predicate, Formula], ...] = attrs.field(converter=_cases)
    otherwise: Formula | None = None

    def evaluate(self, context: Context) -> Trace:
        """The first matching case's trace, noting which case matched."""
        reasons: list[Text] = []
        for predicate, formula in self.cases:
            ok, why = predicate.test(context)
            if ok:
                return _with_note(formula.evaluate(context), why)
            reasons.append(why)
        if self.otherwise is None:
            return Trace.fixed("", _AMOUNT, _ZERO, notes=reasons)
        trace = self.otherwise.evaluate(context)
        return attrs.evolve(trace, notes=(*reasons, *trace.notes))


@attrs.frozen
class Clamp:
    """``formula`` held within ``[minimum, maximum]`` (a cap 封顶 and/or a floor 保底)."""

    formula: Formula
    minimum: Decimal | None = attrs.field(default=None, converter=_optional_amount, kw_only=True)
    maximum: Decimal | None = attrs.field(default=None, converter=_optional_amount, kw_only=True)

    @maximum.validator
    def _check(self, _attribute: object, maximum: Decimal | None) -> None:
        if self.minimum is None and maximum is None:
            raise InvalidValueError("maximum", "or minimum must be given", None)
        if maximum is not None and self.minimum is not None and maximum < self.minimum:
            raise InvalidValueError("maximum", f"must not be below minimum {self.minimum}", maximum)

    def evaluate(self, context: Context) -> Trace:
        """``max(minimum, min(formula, maximum))``, shown as such."""
        inner = self.formula.evaluate(context)
        expr: Expr = _as_expr(inner)
        notes = list(inner.notes)
        if self.maximum is not None:
            expr = Call("min", (expr, Num(self.maximum, Text("封顶", "cap"))))
            if inner.value > self.maximum:
                notes.append(Text(f"封顶{self.maximum}", f"capped at {self.maximum}"))
        if self.minimum is not None:
            expr = Call("max", (Num(self.minimum, Text("保底", "floor")), expr))
            if inner.value < self.minimum:
                notes.append(Text(f"保底{self.minimum}", f"floored at {self.minimum}"))
        return Trace.of("", inner.label, expr, notes=notes, inputs=inner.inputs, parts=inner.parts)


@attrs.frozen
class Multiply:
    """``formula × factor`` when ``when`` holds (double penalty for a repeat offence)."""

    formula: Formula
    factor: Decimal = attrs.field(converter=_rate)
    when: Predicate | None = None
    reason: Text = _DOUBLED

    def evaluate(self, context: Context) -> Trace:
        """The inner amount, multiplied when the condition holds."""
        inner = self.formula.evaluate(context)
        if self.when is not None:
            ok, why = self.when.test(context)
            if not ok:
                return _with_note(inner, why)
            notes = [*inner.notes, why, self.reason]
        else:
            notes = [*inner.notes, self.reason]
        return Trace.of(
            "",
            inner.label,
            _as_expr(inner) * num(self.factor),
            notes=notes,
            inputs=inner.inputs,
            parts=inner.parts,
        )


def _formulas(items: Iterable[Formula]) -> tuple[Formula, ...]:
    parts = tuple(items)
    if not parts:
        raise InvalidValueError("parts", "must hold at least one formula", parts)
    return parts


@attrs.frozen
class Sum:
    """The sum of ``parts``. With ``rounding``, each part is rounded first.

    Without it the parts stay exact and only the enclosing :class:`Rule` rounds
    (rounding on the total). Either way each amount is rounded exactly once.
    """

    parts: tuple[Formula, ...] = attrs.field(converter=_formulas)
    label: Text = _AMOUNT
    rounding: RoundingPolicy | None = None

    def evaluate(self, context: Context) -> Trace:
        """Each part's trace under this one, and their sum."""
        traces = [attrs.evolve(p.evaluate(context), rounding=self.rounding) for p in self.parts]
        terms = [Num(t.amount if self.rounding else _exact(t), t.label) for t in traces]
        expr: Expr = terms[0]
        for term in terms[1:]:
            expr = expr + term
        return Trace.of("", self.label, expr, parts=traces)


def _exact(trace: Trace) -> Decimal:
    return trace.amount


def _as_expr(trace: Trace) -> Expr:
    return trace.expr if trace.expr is not None else Num(trace.amount, trace.label)


def _with_note(trace: Trace, note: Text) -> Trace:
    return attrs.evolve(trace, notes=(note, *trace.notes))


@attrs.frozen
class Rule:
    """A named formula with its kind and the rounding applied once to its result.

    The rule's trace line is labelled 考核/penalty or 奖励/reward, carries the
    rule's id, shows the formula and names the rule in a note.
    """

    id: str = attrs.field(validator=non_empty("id"))
    name: Text
    kind: RuleKind = attrs.field(validator=one_of("kind", ("penalty", "reward")))
    formula: Formula
    rounding: RoundingPolicy

    def evaluate(self, context: Context) -> Trace:
        """The rounded amount with the whole trace."""
        try:
            inner = self.formula.evaluate(context)
        except BankKPIError as exc:
            exc.add_note(f"while evaluating rule {self.id} for {context.subject}")
            raise
        if inner.value < 0:
            raise InvalidValueError(
                self.id,
                f"must give a non-negative {self.kind}",
                str(inner.value),
                subject=context.subject,
            )
        return attrs.evolve(
            inner,
            rule=self.id,
            label=_KIND_LABEL[self.kind],
            rounding=self.rounding,
            notes=(self.name, *inner.notes),
        )
