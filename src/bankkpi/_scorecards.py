"""Scorecards: weighted KPI cards, and base-100 point cards with bonus items and vetoes.

Both score in points (分), not yuan, and explain every item with the same bilingual
:class:`~bankkpi.Trace` as the money formulas.

**Weighted KPI scorecards** (account managers, departments): each item has a weight,
a target and a scoring rule (linear on attainment, stepped, binary, proportional
partial credit), its own minimum and maximum, and gates may zero an item or the
whole card (an NPL ratio above its cap). Weights must add up to the declared total.

**Point scorecards** (service competitions, scheme C): a base score (100) plus items
that add or deduct per occurrence, by place, by rank, or by a chosen amount in a
range; non-cumulative groups (only the highest counts for the same person); caps on
bonuses and deductions per module and overall (扣分封顶); vetoes (一票否决).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Final, Literal, TypeAlias

import attrs

from bankkpi._bands import BandSet
from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Call, Expr, Num, Text, Trace, exact_decimal, num
from bankkpi._formulas import Context, Predicate, Var
from bankkpi._money import DecimalLike, RoundingPolicy, to_decimal
from bankkpi._ranking import Ranking, RankingRule, TiePolicy, Top, rank
from bankkpi._targets import AtLeast, AtMost, AttainmentConvention, RelativeTarget, Within
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    OutOfRangeError,
    UnknownKeyError,
    ValidationErrorGroup,
)

__all__ = [
    "Binary",
    "ByPlace",
    "ByRank",
    "CardResult",
    "Entry",
    "Gate",
    "KpiItem",
    "Linear",
    "Module",
    "NonCumulative",
    "PerOccurrence",
    "PointItem",
    "PointScorecard",
    "Proportional",
    "Ranged",
    "Stepped",
    "Veto",
    "WeightedScorecard",
    "Winners",
]

POINTS: Final = Text("分", "points")
_ZERO: Final = Decimal(0)


def _points(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="points")


def _optional_points(value: DecimalLike | None) -> Decimal | None:
    return None if value is None else to_decimal(value, field="points")


def _points_map(values: Mapping[str, DecimalLike]) -> dict[str, Decimal]:
    return {label: to_decimal(v, field=f"points[{label}]") for label, v in values.items()}


def _benchmark(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="benchmark")


def _weight(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="weight")


def _total_weight(value: DecimalLike) -> Decimal:
    return to_decimal(value, field="total_weight")


def _as_var(value: str | Var) -> Var:
    return value if isinstance(value, Var) else Var(value)


def _gates(gates: Iterable[Gate]) -> tuple[Gate, ...]:
    return tuple(gates)


def _as_term(part: Trace) -> Expr:
    """A part's exact value as a named term of the total (its expression if it has one)."""
    if part.expr is not None and isinstance(part.expr, Num):
        return Num(part.expr.value, part.label)
    exact = exact_decimal(part.value)
    if exact is None:
        return part.expr if part.expr is not None else Num(part.amount, part.label)
    return Num(exact, part.label)


def _optional_ratio(value: DecimalLike | None) -> Decimal | None:
    return None if value is None else to_decimal(value, field="attainment bound")


# ------------------------------------------------------------- item scoring rules


@attrs.frozen
class Linear:
    """``weight × attainment``, attainment clamped to ``[floor, cap]`` (e.g. 0–1.2).

    For an at-most target (lower is better) the ``convention`` must be stated:
    ``inverse`` (target ÷ actual) or ``complement`` (2 − actual ÷ target).
    """

    cap: Decimal | None = attrs.field(default=None, converter=_optional_ratio)
    floor: Decimal | None = attrs.field(default=None, converter=_optional_ratio)
    convention: AttainmentConvention | None = None


@attrs.frozen
class Stepped:
    """Points by band: the band the value (or attainment) falls in gives the points."""

    bands: BandSet
    points: Mapping[str, Decimal] = attrs.field(converter=_points_map)
    on: Literal["value", "attainment"] = attrs.field(
        default="value", validator=one_of("on", ("value", "attainment"))
    )

    @points.validator
    def _check(self, _attribute: object, points: Mapping[str, Decimal]) -> None:
        missing = sorted(set(self.bands.labels()) - set(points))
        if missing:
            raise InvalidValueError("points", "must give points for every band; missing", missing)


@attrs.frozen
class Binary:
    """The full weight when the target is met, else ``otherwise`` (default 0)."""

    otherwise: Decimal = attrs.field(default=_ZERO, converter=_points)


@attrs.frozen
class Proportional:
    """Partial credit: ``actual growth ÷ benchmark growth × weight``.

    Growth is the value minus the item's baseline (last year); ``benchmark`` is the
    growth that earns full marks.
    """

    benchmark: Decimal = attrs.field(converter=_benchmark)

    @benchmark.validator
    def _check(self, _attribute: object, benchmark: Decimal) -> None:
        if benchmark == 0:
            raise InvalidValueError("benchmark", "must not be 0", benchmark)


ItemScoring: TypeAlias = Linear | Stepped | Binary | Proportional
"""How a KPI item turns its value into points."""


@attrs.frozen
class KpiItem:
    """One line of a weighted scorecard.

    ``variable`` names the measured value in the context; ``baseline`` names last
    year's value when the target is relative or the scoring proportional. Points are
    held within ``[minimum, maximum]``: ``minimum`` defaults to 0, ``maximum`` to no
    bound beyond the scoring's own (a linear cap of 1.2 on a weight of 60 allows 72;
    an uncapped linear or proportional item is unbounded above: state ``maximum``).
    """

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    variable: Var = attrs.field(converter=_as_var)
    weight: Decimal = attrs.field(converter=_weight)
    target: AtLeast | AtMost | Within | RelativeTarget
    scoring: ItemScoring
    baseline: str | None = None
    minimum: Decimal = attrs.field(default=_ZERO, converter=_points, kw_only=True)
    maximum: Decimal | None = attrs.field(default=None, converter=_optional_points, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.weight <= 0:
            raise InvalidValueError(f"{self.code}.weight", "must be > 0", self.weight)
        needs_baseline = isinstance(self.target, RelativeTarget) or isinstance(
            self.scoring, Proportional
        )
        if needs_baseline and self.baseline is None:
            raise AmbiguousInputError(
                f"{self.code}.baseline",
                "must name the variable holding last year's value "
                "(a relative target or proportional scoring needs it)",
                None,
            )
        if (
            isinstance(self.scoring, Linear)
            and isinstance(self.target, AtMost | RelativeTarget)
            and self.scoring.convention not in ("inverse", "complement")
            and _is_at_most(self.target)
        ):
            raise AmbiguousInputError(
                f"{self.code}.scoring.convention",
                "must be stated for a lower-is-better target: 'inverse' or 'complement'",
                self.scoring.convention,
            )

    def evaluate(self, context: Context) -> Trace:
        """The item's points, unrounded, with the formula shown."""
        var = self.variable
        target = self._target(context)
        value = var.get(context)
        scoring = self.scoring
        notes: list[Text] = []
        if isinstance(scoring, Binary):
            met = target.met(value)
            expr: Expr = num(self.weight) if met else num(scoring.otherwise)
            notes.append(_met_text(var, value, target, met))
        elif isinstance(scoring, Stepped):
            basis = value if scoring.on == "value" else _to_decimal_ratio(target, value, None)
            band = scoring.bands.classify(basis)
            expr = num(scoring.points[band.label])
            notes.append(
                Text(f"{band.label} {band.describe('zh')}", f"{band.label} {band.describe('en')}")
            )
        elif isinstance(scoring, Proportional):
            assert self.baseline is not None  # noqa: S101 - checked at construction
            base = Var(self.baseline, Text("基期值", "baseline")).num(context)
            expr = (
                (var.num(context) - base)
                / Num(scoring.benchmark, Text("基准增长", "benchmark growth"))
                * num(self.weight)
            )
        else:
            expr = self._linear(scoring, target, var.num(context))
        expr = _bounded(expr, self.minimum, self.maximum)
        return Trace.of(self.code, self.name, expr, unit=POINTS, notes=notes)

    def _target(self, context: Context) -> AtLeast | AtMost | Within:
        if isinstance(self.target, RelativeTarget):
            assert self.baseline is not None  # noqa: S101 - checked at construction
            return self.target.resolve(context.value(self.baseline))
        return self.target

    def _linear(self, scoring: Linear, target: AtLeast | AtMost | Within, value: Num) -> Expr:
        if isinstance(target, Within):
            raise InvalidValueError(
                f"{self.code}.scoring",
                "linear scoring needs an at-least or at-most target",
                "within",
            )
        threshold = Num(target.threshold, Text("目标", "target"))
        if isinstance(target, AtLeast):
            ratio: Expr = value / threshold
        elif scoring.convention == "inverse":
            ratio = threshold / value
        else:
            ratio = num(2) - value / threshold
        if scoring.cap is not None:
            ratio = Call("min", (ratio, Num(scoring.cap, Text("封顶", "cap"))))
        if scoring.floor is not None:
            ratio = Call("max", (Num(scoring.floor, Text("保底", "floor")), ratio))
        return num(self.weight) * ratio


def _is_at_most(target: AtLeast | AtMost | Within | RelativeTarget) -> bool:
    return isinstance(target, AtMost) or (
        isinstance(target, RelativeTarget) and target.bound == "at_most"
    )


def _to_decimal_ratio(
    target: AtLeast | AtMost | Within, value: Decimal, convention: AttainmentConvention | None
) -> Decimal:
    ratio = (
        target.attainment(value)
        if isinstance(target, AtLeast | Within)
        else target.attainment(value, convention=convention or "inverse")
    )
    return RoundingPolicy("half_up", "0.0001").apply_fraction(ratio)


def _met_text(var: Var, value: Decimal, target: AtLeast | AtMost | Within, met: bool) -> Text:
    return Text(
        f"{var.text.zh}{value:f}{'达到' if met else '未达到'}目标{target.describe('zh')}",
        f"{var.text.en} {value:f} {'meets' if met else 'misses'} target {target.describe('en')}",
    )


def _bounded(expr: Expr, minimum: Decimal, maximum: Decimal | None) -> Expr:
    value = expr.exact()
    if maximum is not None and value > maximum:
        return Call("min", (expr, Num(maximum, Text("上限", "max"))))
    if value < minimum:
        return Call("max", (Num(minimum, Text("下限", "min")), expr))
    return expr


@attrs.frozen
class Gate:
    """A condition the card requires; when it fails, an item or the whole card scores 0.

    ``Gate(Text("不良率超限", "NPL over cap"), Met(AtMost(2), "npl"), "zero_card")``
    """

    name: Text
    requires: Predicate
    effect: Literal["zero_item", "zero_card"] = attrs.field(
        validator=one_of("effect", ("zero_item", "zero_card"))
    )
    item: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.effect == "zero_item") != (self.item is not None):
            raise InvalidValueError(
                "item", "must name the item exactly when effect='zero_item'", self.item
            )


def _items(items: Iterable[KpiItem]) -> tuple[KpiItem, ...]:
    return tuple(items)


@attrs.frozen
class WeightedScorecard:
    """A weighted KPI scorecard; weights must add up to ``total_weight``.

    >>> from bankkpi import AtLeast
    >>> card = WeightedScorecard("am", Text("客户经理", "account manager"), [
    ...     KpiItem("deposits", Text("新增存款", "new deposits"), "deposits", 60,
    ...             AtLeast(1000), Linear(cap="1.2")),
    ...     KpiItem("clients", Text("有效客户", "new clients"), "clients", 40,
    ...             AtLeast(20), Binary()),
    ... ], rounding=RoundingPolicy("half_up", "0.01"))
    >>> card.evaluate(Context("王", {"deposits": 1150, "clients": 18})).amount
    Decimal('69.00')
    """

    id: str = attrs.field(validator=non_empty("id"))
    name: Text
    items: tuple[KpiItem, ...] = attrs.field(converter=_items)
    total_weight: Decimal = attrs.field(default=Decimal(100), converter=_total_weight, kw_only=True)
    gates: tuple[Gate, ...] = attrs.field(default=(), converter=_gates, kw_only=True)
    rounding: RoundingPolicy = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        problems: list[BankKPIError] = []
        codes = [i.code for i in self.items]
        problems.extend(
            DuplicateError("items", "must have unique codes", c)
            for c in sorted({c for c in codes if codes.count(c) > 1})
        )
        total = sum((i.weight for i in self.items), _ZERO)
        if total != self.total_weight:
            problems.append(
                InvalidValueError(
                    "weights", f"must add up to the declared total {self.total_weight}", total
                )
            )
        problems.extend(
            UnknownKeyError("item for gate", g.item)
            for g in self.gates
            if g.item is not None and g.item not in codes
        )
        if problems:
            raise ValidationErrorGroup(f"invalid scorecard {self.id}", problems)

    def evaluate(self, context: Context) -> Trace:
        """The card's total points (rounded once), each item a part of the trace."""
        failed = [(g, why) for g in self.gates for ok, why in [g.requires.test(context)] if not ok]
        card_zeroed = [(g, why) for g, why in failed if g.effect == "zero_card"]
        zeroed_items = {g.item: (g, why) for g, why in failed if g.effect == "zero_item"}
        parts: list[Trace] = []
        for item in self.items:
            if card_zeroed or item.code in zeroed_items:
                gate, why = card_zeroed[0] if card_zeroed else zeroed_items[item.code]
                parts.append(
                    Trace.fixed(item.code, item.name, _ZERO, unit=POINTS, notes=[gate.name, why])
                )
            else:
                parts.append(item.evaluate(context))
        terms: list[Expr] = [_as_term(p) for p in parts]
        expr: Expr = terms[0]
        for term in terms[1:]:
            expr = expr + term
        notes = [gate.name for gate, _ in card_zeroed]
        return Trace.of(
            self.id, self.name, expr, rounding=self.rounding, unit=POINTS, parts=parts, notes=notes
        )


# ------------------------------------------------------------------ point scorecards


def _positive_int(field: str) -> Callable[[object, object, object], None]:
    def check(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidValueError(field, "must be a whole number >= 1", value)

    return check


@attrs.frozen
class Entry:
    """One recorded occurrence of a point item for a subject.

    ``count`` repeats it (three findings: ``count=3``); ``points`` is the amount the
    committee chose for a ranged item; ``place`` the place won for a placed item;
    ``key`` says whom or what it is about (a person), which non-cumulative groups
    compare.
    """

    item: str = attrs.field(validator=non_empty("item"))
    count: int = attrs.field(default=1, validator=_positive_int("count"), kw_only=True)
    points: Decimal | None = attrs.field(default=None, converter=_optional_points, kw_only=True)
    place: int | None = attrs.field(default=None, kw_only=True)
    key: str | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class PerOccurrence:
    """``points`` per occurrence: −1 per non-standard finding, +2 per advanced individual."""

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    points: Decimal = attrs.field(converter=_points)
    module: str = "main"

    def contribution(self, entry: Entry, subject: str) -> tuple[Expr, Text | None]:  # noqa: ARG002
        """``count × points``."""
        return num(Decimal(entry.count)) * num(self.points), None


def _place_points(values: Mapping[int, DecimalLike]) -> dict[int, Decimal]:
    result = {}
    for place, points in values.items():
        if not isinstance(place, int) or isinstance(place, bool) or place < 1:
            raise InvalidValueError("points_by_place", "must be keyed by places 1, 2, 3…", place)
        result[place] = to_decimal(points, field=f"points_by_place[{place}]")
    return result


@attrs.frozen
class ByPlace:
    """Points by the place won: team 1st/2nd/3rd → +10/+5/+2; other places score 0."""

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    points_by_place: Mapping[int, Decimal] = attrs.field(converter=_place_points)
    module: str = "main"

    def contribution(self, entry: Entry, subject: str) -> tuple[Expr, Text | None]:
        """The place's points (times ``count``)."""
        if entry.place is None:
            raise AmbiguousInputError(
                f"{self.code}.place", "must be given for a placed item", None, subject=subject
            )
        points = self.points_by_place.get(entry.place, _ZERO)
        note = Text(f"第{entry.place}名", f"place {entry.place}")
        return num(Decimal(entry.count)) * num(points), note


@attrs.frozen
class Ranged:
    """A chosen amount per occurrence within ``[low, high]``: an exemplary deed +1 to +3.

    A chosen amount outside the range is an :class:`OutOfRangeError` naming the item,
    the range and the amount.
    """

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    low: Decimal = attrs.field(converter=_points)
    high: Decimal = attrs.field(converter=_points)
    module: str = "main"

    def __attrs_post_init__(self) -> None:
        if self.high < self.low:
            raise InvalidValueError(
                f"{self.code}.high", f"must not be below low {self.low}", self.high
            )

    def contribution(self, entry: Entry, subject: str) -> tuple[Expr, Text | None]:
        """``count × chosen points``, the choice checked against the range."""
        if entry.points is None or not self.low <= entry.points <= self.high:
            raise OutOfRangeError(
                self.code,
                f"needs chosen points within [{self.low}, {self.high}] ({self.name.zh})",
                entry.points,
                subject=subject,
            )
        note = Text(f"认定范围{self.low}至{self.high}", f"range {self.low} to {self.high}")
        return num(Decimal(entry.count)) * num(entry.points), note


@attrs.frozen
class Veto:
    """一票否决: any occurrence disqualifies the subject whatever its total."""

    code: str = attrs.field(validator=non_empty("code"))
    name: Text


def _rank_points(values: Mapping[int, DecimalLike]) -> dict[int, Decimal]:
    return _place_points(values)


@attrs.frozen
class ByRank:
    """Points by rank on a measured value among the subjects that qualify.

    Scheme C: units whose exam pass rate is ≥ 98% are ranked by it: +5/+3/+1.
    ``ranking`` states the direction and the tie policy (no default).
    """

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    points_by_rank: Mapping[int, Decimal] = attrs.field(converter=_rank_points)
    ranking: RankingRule
    qualifier: AtLeast | AtMost | None = None
    module: str = "main"

    def __attrs_post_init__(self) -> None:
        if self.ranking.ties == "average":
            raise InvalidValueError(
                f"{self.code}.ties",
                "must give whole places for points by rank: competition, dense or ordinal",
                "average",
            )


PointItem: TypeAlias = PerOccurrence | ByPlace | Ranged | Veto | ByRank
"""Any item of a point scorecard."""


@attrs.frozen
class Module:
    """A module of a point card, with caps on its bonuses and its deductions.

    ``max_deduction=20`` means the module's deductions stop at −20 (扣分封顶 /
    扣完为止 for a module worth 20 points).
    """

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    max_bonus: Decimal | None = attrs.field(default=None, converter=_optional_points, kw_only=True)
    max_deduction: Decimal | None = attrs.field(
        default=None, converter=_optional_points, kw_only=True
    )

    def __attrs_post_init__(self) -> None:
        for field, cap in (("max_bonus", self.max_bonus), ("max_deduction", self.max_deduction)):
            if cap is not None and cap < 0:
                raise InvalidValueError(
                    f"{self.code}.{field}", "must be >= 0 (a size, not a sign)", cap
                )


@attrs.frozen
class NonCumulative:
    """不重复计加: for the same key (person), only the largest of these items counts."""

    code: str = attrs.field(validator=non_empty("code"))
    name: Text
    items: frozenset[str] = attrs.field(converter=frozenset)


@attrs.frozen
class CardResult:
    """One subject's card: total points, veto, and the trace explaining both."""

    subject: str
    trace: Trace
    vetoed: bool
    veto_reasons: tuple[Text, ...] = ()

    @property
    def total(self) -> Decimal:
        """The total points (the trace's amount)."""
        return self.trace.amount


@attrs.frozen
class Winners:
    """The winners of a competition, and who was excluded by a veto."""

    winners: tuple[str, ...]
    ranking: Ranking
    vetoed: tuple[str, ...]
    k: int

    @property
    def tied_at_cutoff(self) -> bool:
        """Whether ties at the last place let more than ``k`` subjects win."""
        return len(self.winners) > self.k


def _point_items(items: Iterable[PointItem]) -> tuple[PointItem, ...]:
    return tuple(items)


def _modules(modules: Iterable[Module]) -> tuple[Module, ...]:
    return tuple(modules)


def _groups(groups: Iterable[NonCumulative]) -> tuple[NonCumulative, ...]:
    return tuple(groups)


_MAIN: Final = Module("main", Text("主模块", "main"))


@attrs.frozen
class PointScorecard:
    """A base-score card (100 points) with items that add or deduct.

    Use :meth:`score` for one subject, :meth:`score_all` for a population (needed by
    rank items), then :meth:`winners`.

    >>> card = PointScorecard("C", Text("百日竞赛", "100-day contest"), [
    ...     ByPlace("team", Text("团体名次", "team place"), {1: 10, 2: 5, 3: 2}),
    ...     PerOccurrence("finding", Text("不规范服务", "non-standard service"), -1),
    ...     Veto("complaint", Text("有效投诉", "verified complaint")),
    ... ], rounding=RoundingPolicy("half_up", "0.01"))
    >>> r = card.score("一支行", [Entry("team", place=1), Entry("finding", count=2)])
    >>> r.total, r.vetoed
    (Decimal('108.00'), False)
    """

    id: str = attrs.field(validator=non_empty("id"))
    name: Text
    items: tuple[PointItem, ...] = attrs.field(converter=_point_items)
    base: Decimal = attrs.field(default=Decimal(100), converter=_points, kw_only=True)
    modules: tuple[Module, ...] = attrs.field(default=(), converter=_modules, kw_only=True)
    groups: tuple[NonCumulative, ...] = attrs.field(default=(), converter=_groups, kw_only=True)
    max_bonus: Decimal | None = attrs.field(default=None, converter=_optional_points, kw_only=True)
    max_deduction: Decimal | None = attrs.field(
        default=None, converter=_optional_points, kw_only=True
    )
    rounding: RoundingPolicy = attrs.field(kw_only=True)

    def __attrs_post_init__(self) -> None:
        problems: list[BankKPIError] = []
        codes = [i.code for i in self.items]
        problems.extend(
            DuplicateError("items", "must have unique codes", c)
            for c in sorted({c for c in codes if codes.count(c) > 1})
        )
        module_codes = {m.code for m in self._all_modules()}
        problems.extend(
            UnknownKeyError(f"module for item {i.code}", i.module)
            for i in self.items
            if not isinstance(i, Veto) and i.module not in module_codes
        )
        for group in self.groups:
            problems.extend(
                UnknownKeyError(f"item in non-cumulative group {group.code}", c)
                for c in sorted(group.items - set(codes))
            )
        if problems:
            raise ValidationErrorGroup(f"invalid point scorecard {self.id}", problems)

    def _all_modules(self) -> tuple[Module, ...]:
        return self.modules or (_MAIN,)

    def _item(self, code: str, subject: str) -> PointItem:
        for item in self.items:
            if item.code == code:
                return item
        raise UnknownKeyError("point item", code, subject=subject)

    def score(
        self,
        subject: str,
        entries: Iterable[Entry],
        *,
        rank_parts: Iterable[tuple[str, Trace]] = (),
    ) -> CardResult:
        """Score one subject's entries (all problems reported together).

        ``rank_parts`` are (module, trace) contributions of rank items computed by
        :meth:`score_all`.
        """
        vetoes: list[Text] = []
        lines: list[tuple[str, str | None, str, Trace]] = []  # module, key, item, trace
        problems: list[BankKPIError] = []
        for entry in entries:
            try:
                item = self._item(entry.item, subject)
                if isinstance(item, Veto):
                    vetoes.append(item.name)
                    continue
                if isinstance(item, ByRank):
                    raise InvalidValueError(
                        entry.item,
                        "is a rank item: its points come from score_all",
                        entry,
                        subject=subject,
                    )
                expr, note = item.contribution(entry, subject)
                trace = Trace.of(
                    item.code, item.name, expr, unit=POINTS, notes=[] if note is None else [note]
                )
                lines.append((item.module, entry.key, item.code, trace))
            except BankKPIError as exc:
                problems.append(exc)
        try:
            lines = self._apply_groups(lines, subject)
        except BankKPIError as exc:
            problems.append(exc)
        if problems:
            raise ValidationErrorGroup(f"invalid entries for {subject}", problems)
        lines.extend((module, None, t.rule, t) for module, t in rank_parts)
        module_traces = [
            self._module_trace(m, [t for mod, _k, _c, t in lines if mod == m.code])
            for m in self._all_modules()
        ]
        total = self._total(module_traces)
        if vetoes:
            total = attrs.evolve(
                total,
                notes=(*total.notes, *(Text(f"一票否决：{v.zh}", f"veto: {v.en}") for v in vetoes)),
            )
        return CardResult(subject, total, bool(vetoes), tuple(vetoes))

    def _apply_groups(
        self, lines: list[tuple[str, str | None, str, Trace]], subject: str
    ) -> list[tuple[str, str | None, str, Trace]]:
        result = list(lines)
        for group in self.groups:
            members = [i for i, (_m, _k, code, _t) in enumerate(result) if code in group.items]
            by_key: dict[str, list[int]] = {}
            for index in members:
                key = result[index][1]
                if key is None:
                    raise AmbiguousInputError(
                        f"{result[index][2]}.key",
                        f"must name the person for non-cumulative group {group.code}",
                        None,
                        subject=subject,
                    )
                by_key.setdefault(key, []).append(index)
            for key, indexes in by_key.items():
                best = max(indexes, key=lambda i: result[i][3].value)
                for index in indexes:
                    if index == best:
                        continue
                    module, k, code, trace = result[index]
                    dropped = Trace.fixed(
                        code,
                        trace.label,
                        _ZERO,
                        unit=POINTS,
                        notes=[
                            Text(
                                f"{key}：与{group.name.zh}不重复计加",
                                f"{key}: not cumulative with {group.name.en}",
                            )
                        ],
                    )
                    result[index] = (module, k, code, dropped)
        return result

    def _module_trace(self, module: Module, parts: list[Trace]) -> Trace:
        expr, notes = _net(parts, module.max_bonus, module.max_deduction)
        return Trace.of(module.code, module.name, expr, unit=POINTS, parts=parts, notes=notes)

    def _total(self, modules: list[Trace]) -> Trace:
        net, notes = _net(modules, self.max_bonus, self.max_deduction)
        expr = Num(self.base, Text("基础分", "base")) + net
        return Trace.of(
            self.id,
            self.name,
            expr,
            rounding=self.rounding,
            unit=POINTS,
            parts=modules,
            notes=notes,
        )

    def score_all(
        self,
        entries: Mapping[str, Iterable[Entry]],
        measured: Mapping[str, Mapping[str, DecimalLike]] | None = None,
    ) -> tuple[CardResult, ...]:
        """Score every subject; rank items use ``measured[item code][subject]``.

        Every subject in ``entries`` is scored (give an empty list for one with no
        entries). All problems of all subjects are raised together.
        """
        measured = measured or {}
        rank_parts: dict[str, list[tuple[str, Trace]]] = {s: [] for s in entries}
        problems: list[BankKPIError] = []
        for item in self.items:
            if not isinstance(item, ByRank):
                continue
            values = measured.get(item.code)
            if values is None:
                problems.append(UnknownKeyError("measured values for rank item", item.code))
                continue
            for subject, trace in self._rank_item(item, values, set(entries)):
                rank_parts[subject].append((item.module, trace))
        results: list[CardResult] = []
        for subject in sorted(entries):
            try:
                results.append(
                    self.score(subject, entries[subject], rank_parts=rank_parts[subject])
                )
            except ValidationErrorGroup as group:
                problems.extend(group.problems)
        if problems:
            raise ValidationErrorGroup(f"invalid input for scorecard {self.id}", problems)
        return tuple(results)

    def _rank_item(
        self, item: ByRank, values: Mapping[str, DecimalLike], subjects: set[str]
    ) -> Iterable[tuple[str, Trace]]:
        exact = {
            s: to_decimal(v, field=item.code, subject=s) for s, v in values.items() if s in subjects
        }
        qualified = {
            s: v for s, v in exact.items() if item.qualifier is None or item.qualifier.met(v)
        }
        ranking = rank(qualified, item.ranking, groups="all")
        for subject, value in sorted(exact.items()):
            if subject not in qualified:
                assert item.qualifier is not None  # noqa: S101 - only a qualifier excludes
                note = Text(
                    f"{value:f}未达到{item.qualifier.describe('zh')}，不参加排名",
                    f"{value:f} misses {item.qualifier.describe('en')}: not ranked",
                )
                yield subject, Trace.fixed(item.code, item.name, _ZERO, unit=POINTS, notes=[note])
                continue
            place = ranking[subject].rank_from_top
            points = self.points_for_rank(item, place)
            note = Text(f"{value:f}，排名第{place}", f"{value:f}, ranked {place}")
            yield subject, Trace.fixed(item.code, item.name, points, unit=POINTS, notes=[note])

    @staticmethod
    def points_for_rank(item: ByRank, place: Decimal | int) -> Decimal:
        """The points of a rank (0 beyond the listed ranks or for a half rank)."""
        if isinstance(place, Decimal) and place != place.to_integral_value():
            return _ZERO
        return item.points_by_rank.get(int(place), _ZERO)

    def winners(self, results: Iterable[CardResult], k: int, ties: TiePolicy) -> Winners:
        """The top ``k`` totals among subjects not vetoed, by the stated tie policy.

        With ``competition`` ties every subject tied at the cut-off wins (so more than
        ``k`` may win, see :attr:`Winners.tied_at_cutoff`); with ``ordinal`` ties exactly
        ``k`` win, ordered by subject id. ``dense`` and ``average`` are refused.
        """
        if ties not in ("competition", "ordinal"):
            raise InvalidValueError(
                "ties",
                "must be 'competition' (all tied at the cut-off win) or 'ordinal' (exactly k, "
                "by subject id) to choose winners; dense and average ranks do not count places",
                ties,
            )
        results = tuple(results)
        eligible = {r.subject: r.total for r in results if not r.vetoed}
        rule = RankingRule("higher", ties, tie_break="subject_asc" if ties == "ordinal" else None)
        ranking = rank(eligible, rule, groups="all")
        selected = tuple(e.subject for e in ranking if Top(k).contains(e))
        vetoed = tuple(sorted(r.subject for r in results if r.vetoed))
        return Winners(selected, ranking, vetoed, k)


def _sum_terms(parts: list[Trace]) -> Expr | None:
    if not parts:
        return None
    expr: Expr = _as_term(parts[0])
    for part in parts[1:]:
        expr = expr + _as_term(part)
    return expr


def _net(
    parts: list[Trace], max_bonus: Decimal | None, max_deduction: Decimal | None
) -> tuple[Expr, list[Text]]:
    """Bonuses capped at ``max_bonus`` plus deductions stopped at ``−max_deduction``."""
    bonus = _sum_terms([p for p in parts if p.value > 0])
    deduction = _sum_terms([p for p in parts if p.value < 0])
    notes: list[Text] = []
    if bonus is not None and max_bonus is not None and bonus.exact() > max_bonus:
        bonus = Call("min", (bonus, Num(max_bonus, Text("加分上限", "bonus cap"))))
        notes.append(Text(f"加分封顶{max_bonus}分", f"bonus capped at {max_bonus}"))
    if deduction is not None and max_deduction is not None and deduction.exact() < -max_deduction:
        deduction = Call("max", (Num(-max_deduction, Text("扣分封顶", "deduction cap")), deduction))
        notes.append(Text(f"扣分封顶{max_deduction}分", f"deductions capped at {max_deduction}"))
    if bonus is None and deduction is None:
        return num(0), notes
    if bonus is None:
        assert deduction is not None  # noqa: S101 - one of the two is set here
        return deduction, notes
    if deduction is None:
        return bonus, notes
    if isinstance(deduction, Call):  # capped: keep the cap visible as one term
        return bonus + deduction, notes
    flat = bonus  # 10 + 5 − 5 − 3 rather than 10 + 5 + ((−5) − 3)
    for part in parts:
        if part.value < 0:
            flat = flat + _as_term(part)
    return flat, notes
