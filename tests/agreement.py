"""The vector path agrees with the exact path: random schemes over random populations.

:func:`random_scheme` builds a scheme from every formula kind (random thresholds,
rates, bases, tiers, bands, rank selections and rounding modes) and
:func:`random_population` a population for it whose scores sit on every threshold,
band bound and tier start (and one step either side), with many ties, so that
rounding ties (``.5``), bounds and rank cut-offs are all hit. :func:`compare` runs
both :func:`bankkpi.evaluate` and :func:`bankkpi.vector.evaluate_arrays` and lists
every disagreement, to the fen, per subject and rule, per subject total and per
group total; when the exact path refuses some rows the vector path must refuse the
call, naming only rows the exact path refused.

The property tests in ``test_agreement.py`` draw schemes with hypothesis through the
same builders. For a long run, from the repository root::

    python -m tests.agreement --cases 1000000 --seed 1

prints the number of subjects compared and of disagreements (which must be 0).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeAlias, TypeVar

import attrs
import numpy as np

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
    Discretionary,
    Escalating,
    Exemption,
    Expression,
    Fixed,
    InBand,
    Indicator,
    InRanks,
    Met,
    Multiply,
    Not,
    Percentile,
    PerCount,
    Period,
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
    When,
    evaluate,
)
from bankkpi import vector as vector_module
from bankkpi._schemes import Input, RankingSpec, Results, RollUp, Scheme, SubjectRow
from bankkpi.exceptions import BankKPIError
from bankkpi.vector import ArrayResults, Workspace, evaluate_arrays

T = TypeVar("T")

MODES = ("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor")
PLACES = ("fen", "jiao", "yuan", "10")
RATES = ("200", "150", "50", "0.5", "12.5", "25", "300", "1.5", "0.05", "1000", "0", "7")
BASES = ("0", "1000", "2000", "500", "0.5", "300")
THRESHOLDS = ("98", "95", "92", "90", "85", "97.5", "99.99", "60", "96.5", "100")
FACTORS = ("2", "1.5", "0.5", "3", "0.25")
AMOUNTS = ("500", "300", "100", "0", "0.5", "1000", "12.34")
RANGES = (("100", "1000"), ("200", "500"), ("200", "1000"), ("0", "500"))
FEES_TIERS = ("0", "100000", "500000", "1000000", "1500000", "2000000")
TIER_RATES = ("0.01", "0.02", "0.005", "0.015", "0.0125", "0.03")
GROUP = Text("组", "group")


FOCUSED: dict[str, Callable[[], Any]] = {
    "offence": lambda: Escalating(["200", "500"], units="points", offence="offence"),
    "chosen": lambda: Discretionary(Text("媒体表扬", "media praise"), "200", "1000", "chosen"),
    "early": lambda: PerPeriodEarly("300", "quarters_early"),
    "missing": lambda: PerCount("100", "complaints"),
}


class Picker(Protocol):
    """Where random choices come from: hypothesis (shrinkable) or a numpy generator."""

    def integer(self, low: int, high: int) -> int:
        """An int in [low, high]."""
        ...

    def choice(self, options: Sequence[T]) -> T:
        """One of ``options``."""
        ...


@attrs.define
class RandomPicker:
    """A :class:`Picker` over a numpy generator (for the long run)."""

    rng: np.random.Generator

    def integer(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.rng.integers(len(options)))]


def _chance(pick: Picker, one_in: int) -> bool:
    return pick.integer(1, one_in) == 1


# ------------------------------------------------------------------ schemes


@attrs.define
class _Builder:
    """Builds random formulas, remembering every score it compares against."""

    pick: Picker
    precision: Decimal
    score_points: set[Decimal] = attrs.field(factory=set)
    fees_points: set[Decimal] = attrs.field(factory=set)
    uses_ranks: bool = False
    planned: bool = False
    """Only the shapes :mod:`bankkpi._plan` compiles (``Fixed``, exact ``Shortfall``,
    ``BandAmount``, ``PerCount``, ``PerPeriodEarly``, ``Escalating``, ``RateTable``,
    ``Discretionary``, unrounded ``Sum``, ``When``, ``Choose``, ``Clamp``,
    ``Multiply``)."""

    def threshold(self) -> Decimal:
        value = Decimal(self.pick.choice(THRESHOLDS))
        self.score_points.add(value)
        return value

    def target(self) -> AtLeast | AtMost:
        kind = AtLeast if self.pick.integer(0, 3) else AtMost
        return kind(self.threshold(), inclusive=bool(self.pick.integer(0, 1)))

    def bands(self) -> BandSet:
        """Bands tiling [0, 100]; at each inner cut one side, drawn, includes it.

        Planned schemes only (so that the others draw as before): one time in four
        the last band is left out for a catch-all band ``rest``; one time in eight
        it is left out of the scale too, so that scores above the others' bands
        lie in no band (both paths refuse a row that needs its band).
        """
        count = self.pick.integer(1, 3)
        cuts = sorted({Decimal(self.pick.choice(THRESHOLDS[:9])) for _ in range(count)})
        edges = [Decimal(0), *cuts, Decimal(100)]
        self.score_points.update(edges)
        upper_takes = [bool(self.pick.integer(0, 1)) for _ in cuts]
        bands = [
            Band(
                f"b{i}",
                edges[i],
                edges[i + 1],
                low_inclusive=True if i == 0 else upper_takes[i - 1],
                high_inclusive=True if i == len(edges) - 2 else not upper_takes[i],
            )
            for i in range(len(edges) - 1)
        ]
        if self.planned and len(bands) > 1:
            kind = self.pick.integer(0, 7)
            if kind <= 1:
                return BandSet(bands[:-1], catch_all="rest")
            if kind == 2:  # the scale ends with the last band kept, which takes its end
                kept = [*bands[:-2], attrs.evolve(bands[-2], high_inclusive=True)]
                return BandSet(kept, scale=(0, edges[-2]))
        return BandSet(bands, scale=(0, 100))

    def selection(self, ranking: str) -> Any:
        big = ranking == "all"
        top = 120 if big else 8
        kind = self.pick.integer(0, 4)
        side = self.pick.choice(("top", "bottom"))
        if kind == 0:
            return Top(self.pick.integer(1, top))
        if kind == 1:
            return Bottom(self.pick.integer(1, top))
        if kind == 2:
            first = self.pick.integer(1, top)
            return RankRange(side, first, first + self.pick.integer(0, top // 2))
        if kind == 3:
            percent = self.pick.choice(("20", "12.5", "33.3", "50", "10", "100", "7"))
            rounding = self.pick.choice(("ceiling", "floor", "half_up", "half_even", "half_down"))
            return Percentile(side, percent, rounding)
        return Exemption(Top(self.pick.integer(1, top)))

    def predicate(self, depth: int) -> Any:
        kind = self.pick.integer(0, 6 if depth > 0 else 3)
        if kind == 0:
            return Met(self.target(), "score")
        if kind == 1:
            variable = self.pick.choice(("complaints", "repeat", "score", "points"))
            value = self.threshold() if variable == "score" else Decimal(self.pick.integer(0, 2))
            op = self.pick.choice(("<", "<=", "==", "!=", ">=", ">"))
            return Compare(variable, op, value)
        if kind == 2:
            bands = self.bands()
            names = (*bands.labels(), *([bands.catch_all] if bands.catch_all else []))
            labels = {self.pick.choice(names) for _ in range(self.pick.integer(1, 2))}
            return InBand(bands, labels, "score")
        if kind == 3:
            self.uses_ranks = True
            ranking = self.pick.choice(("all", "region"))
            return InRanks(ranking, self.selection(ranking))
        if kind == 4:
            return AllOf([self.predicate(depth - 1) for _ in range(self.pick.integer(1, 3))])
        if kind == 5:
            return AnyOf([self.predicate(depth - 1) for _ in range(self.pick.integer(1, 3))])
        return Not(self.predicate(depth - 1))

    def rounding(self) -> RoundingPolicy:
        return RoundingPolicy(self.pick.choice(MODES), self.pick.choice(PLACES))

    def planned_leaf(self) -> Any:
        """A leaf the vector path compiles: a fixed amount, an exact shortfall, a band's
        amount, a rate per count or per period early, an escalating rate, a rate table,
        an amount chosen from a range."""
        pick = self.pick
        kind = pick.integer(0, 9)
        if kind == 0:
            return Fixed(pick.choice(AMOUNTS))
        if kind == 1:
            return self.band_amount()
        if kind == 2:  # points have tenths: a block with one not whole is given back
            return PerCount(pick.choice(RATES), pick.choice(("points", "complaints")))
        if kind == 3:
            return PerPeriodEarly(pick.choice(AMOUNTS), "quarters_early")
        if kind == 4:
            rates = [pick.choice(RATES) for _ in range(pick.integer(1, 3))]
            return Escalating(rates, units="points", offence="offence")
        if kind == 5:
            return self.rate_table()
        if kind == 6:  # chosen amounts are 200.00–500.00: 300–450 refuses some
            low, high = pick.choice((*RANGES, ("300", "450")))
            return Discretionary(Text("酌定", "discretionary"), low, high, "chosen")
        return Shortfall(self.target(), "score", rate=pick.choice(RATES), base=pick.choice(BASES))

    def band_amount(self) -> BandAmount:
        bands = self.bands()
        names = (*bands.labels(), *([bands.catch_all] if bands.catch_all else []))
        return BandAmount(bands, {label: self.pick.choice(AMOUNTS) for label in names}, "score")

    def leaf(self) -> Any:
        pick = self.pick
        if self.planned:
            return self.planned_leaf()
        kind = pick.integer(0, 8)
        if kind == 0:
            return Fixed(pick.choice(AMOUNTS))
        if kind == 1:
            return Shortfall(
                self.target(),
                "score",
                rate=pick.choice(RATES),
                base=pick.choice(BASES),
                per=pick.choice(("1", "1", "0.5", "2", "0.25", "3")),
                counting=pick.choice(("exact", "exact", "started", "completed")),
            )
        if kind == 2:
            return PerCount(pick.choice(RATES), pick.choice(("points", "complaints")))
        if kind == 3:
            rates = [pick.choice(RATES) for _ in range(pick.integer(1, 3))]
            return Escalating(rates, units="points", offence="offence")
        if kind == 4:
            return PerPeriodEarly(pick.choice(AMOUNTS), "quarters_early")
        if kind == 5:
            low, high = pick.choice(RANGES)
            return Discretionary(Text("酌定", "discretionary"), low, high, "chosen")
        if kind == 6:
            return self.band_amount()
        if kind == 7:
            return self.rate_table()
        return self.expression()

    def rate_table(self) -> RateTable:
        pick = self.pick
        if pick.integer(0, 1):
            starts = sorted({Decimal(pick.choice(FEES_TIERS)) for _ in range(pick.integer(1, 4))})
            self.fees_points.update(starts)
            tiers = [(s, pick.choice(TIER_RATES)) for s in starts]
            variable = "fees"
        else:
            starts = sorted({Decimal(pick.choice(THRESHOLDS)) for _ in range(pick.integer(1, 3))})
            self.score_points.update(starts)
            tiers = [(s, pick.choice(RATES)) for s in starts]
            variable = "score"
        scale = pick.choice(("1", "1", "0.5", "2", "0.1"))
        return RateTable(tiers, variable, pick.choice(("tiered", "graduated")), scale=scale)

    def expression(self) -> Expression:
        pick = self.pick
        t = self.threshold()
        rate, base = pick.choice(RATES), pick.choice(BASES)
        shape = pick.integer(0, 4)
        if shape == 0:
            return Expression(
                f"if score < {t} then {base} + ({t} - score) * {rate} else 0", ["score"]
            )
        if shape == 1:
            return Expression(f"min({pick.choice(AMOUNTS)}, points * {rate})", ["points"])
        if shape == 2:
            source = f"max(0, ({t} - score) * {rate}) + complaints * {pick.choice(RATES)}"
            return Expression(source, ["score", "complaints"])
        if shape == 3:
            return Expression(f"points / {pick.choice(('2', '3', '4', '8'))}", ["points"])
        return Expression(f"(score - {t}) * {rate}", ["score"])  # negative below t: refused

    def formula(self, depth: int) -> Any:
        pick = self.pick
        if depth <= 0 or pick.integer(0, 2) == 0:
            return self.leaf()
        kind = pick.integer(0, 4)
        sub = depth - 1
        if kind == 0:
            otherwise = self.formula(sub) if pick.integer(0, 1) else None
            return When(self.predicate(1), self.formula(sub), otherwise)
        if kind == 1:
            cases = [(self.predicate(1), self.formula(sub)) for _ in range(pick.integer(1, 3))]
            return Choose(cases, self.formula(sub) if pick.integer(0, 1) else None)
        if kind == 2:
            low = pick.choice((None, "0", "100", "0.5"))
            high = (
                pick.choice((None, "1000", "2500", "300.5")) if low else pick.choice(("1000", "50"))
            )
            return Clamp(self.formula(sub), minimum=low, maximum=high)
        if kind == 3:
            when = self.predicate(1) if pick.integer(0, 1) else None
            return Multiply(self.formula(sub), pick.choice(FACTORS), when)
        parts = [self.formula(sub) for _ in range(pick.integer(1, 3))]
        rounded = not self.planned and pick.integer(0, 1)
        return Sum(parts, rounding=self.rounding() if rounded else None)


def _ranking_rule(pick: Picker) -> RankingRule:
    ties = pick.choice(("competition", "dense", "ordinal", "average"))
    tie_break = pick.choice(("subject_asc", "subject_desc")) if ties == "ordinal" else None
    return RankingRule(pick.choice(("higher", "lower")), ties, tie_break=tie_break)


@attrs.frozen
class Drawn:
    """A random scheme and the score and fee values its rules compare against."""

    scheme: Scheme
    precision: Decimal
    score_points: tuple[Decimal, ...]
    fees_points: tuple[Decimal, ...]


def random_scheme(pick: Picker, focus: str | None = None, *, planned: bool = False) -> Drawn:
    """A scheme of 1–5 random rules over the inputs every population provides.

    With ``focus`` (an injection kind), one more rule uses the checked input only in
    a branch some rows do not take, so that a bad value there must be refused
    exactly when its row takes the branch. ``planned``: only shapes that
    :mod:`bankkpi._plan` compiles (but the focused rule).
    """
    precision = Decimal(pick.choice(("0.01", "0.1", "1", "0.01")))
    build = _Builder(pick, precision, planned=planned)
    rules = [
        Rule(
            f"R{k}",
            Text(f"规则{k}", f"rule {k}"),
            pick.choice(("penalty", "reward")),
            build.formula(pick.integer(0, 3)),
            build.rounding(),
        )
        for k in range(1, pick.integer(1, 5) + 1)
    ]
    if focus in FOCUSED:
        checked = FOCUSED[focus]()
        guarded = pick.choice(
            (
                lambda: When(build.predicate(1), checked, build.formula(1)),
                lambda: When(build.predicate(1), build.formula(1), checked),
                lambda: Choose(
                    [(build.predicate(1), build.formula(1)), (build.predicate(1), checked)]
                ),
                lambda: Choose([(build.predicate(1), build.formula(1))], checked),
                lambda: Multiply(checked, "2", build.predicate(1)),
                lambda: Sum([build.formula(1), When(build.predicate(0), checked)]),
            )
        )()
        rules.append(Rule("R9", GROUP, "penalty", guarded, build.rounding()))
    indicator = Indicator(
        "score",
        "得分",
        "points",
        "higher_is_better",
        scale_min=0,
        scale_max=100,
        precision=precision,
        rounding=pick.choice(MODES),
    )
    inputs = [
        Input("score", Text("得分", "score"), indicator="score"),
        Input("points", Text("扣分", "points"), default=0),
        Input("offence", Text("次数", "offence"), default=1),
        Input("quarters_early", Text("提前", "quarters early"), default=0),
        Input("complaints", Text("投诉", "complaints")),
        Input("chosen", Text("酌定", "chosen"), default=300),
        Input("repeat", Text("重复", "repeat"), default=0),
        Input("fees", Text("收入", "fees"), default=0),
    ]
    rankings = [
        RankingSpec("all", "score", _ranking_rule(pick)),
        RankingSpec("region", "score", _ranking_rule(pick), "region"),
    ]
    scheme = Scheme(
        "random",
        "1",
        Text("随机", "random"),
        Period("2024-01-01", "2024-12-31"),
        RoundingPolicy("half_up", "yuan"),
        rules,
        inputs,
        [indicator],
        ["region", "head"],
        rankings,
        ["region"],
        [RollUp("head", pick.choice(("penalty", "reward")))],
    )
    return Drawn(
        scheme, precision, tuple(sorted(build.score_points)), tuple(sorted(build.fees_points))
    )


# ------------------------------------------------------------------ populations


@attrs.frozen
class Population:
    """The same population as exact rows and as columns."""

    rows: tuple[SubjectRow, ...]
    columns: dict[str, Any]
    attributes: dict[str, Any]
    subjects: list[str]
    places: dict[str, int]


def _on_points(
    rng: np.random.Generator, points: Sequence[Decimal], step: Decimal, n: int
) -> np.ndarray:
    """``n`` values: each point and a step either side, at random, as multiples of ``step``."""
    grid = sorted({int(p / step) + d for p in points for d in (-1, 0, 1)})
    return np.array(grid, dtype=np.int64)[rng.integers(len(grid), size=n)]


def _text(counts: np.ndarray, places: int) -> list[str]:
    return [f"{Decimal(int(c)).scaleb(-places):f}" for c in counts]


def random_population(
    drawn: Drawn, seed: int, size: int, *, inject: str | None = None
) -> Population:
    """A population of ``size`` subjects for ``drawn``; ``inject`` plants 1–3 bad rows."""
    rng = np.random.default_rng(seed)
    step = drawn.precision
    places = max(0, -int(step.as_tuple().exponent))  # type: ignore[arg-type]
    top = int(Decimal(100) / step)
    special = _on_points(rng, (*drawn.score_points, Decimal(0), Decimal(100)), step, size)
    pool = rng.integers(int(Decimal(60) / step), top + 1, size=max(3, size // 4))
    common = pool[rng.integers(pool.shape[0], size=size)]
    uniform = rng.integers(int(Decimal(60) / step), top + 1, size=size)
    which = rng.integers(3, size=size)
    score = np.clip(np.where(which == 0, special, np.where(which == 1, common, uniform)), 0, top)
    regions_n = max(1, size // int(rng.integers(3, 16)))
    region = np.array([f"R{k:02d}" for k in rng.integers(regions_n, size=size)])
    head = np.array([f"H{k}" for k in rng.integers(max(1, regions_n // 2), size=size)])
    subjects = [f"{'OX'[k % 2]}{k}" for k in rng.permutation(size * 3)[:size]]
    fee_points = (*drawn.fees_points, Decimal(0), Decimal(2_500_000))
    fees = np.where(
        rng.integers(2, size=size) == 0,
        _on_points(rng, fee_points, Decimal("0.01"), size),
        rng.integers(0, 300_000_000, size=size),
    ).clip(0)
    ints: dict[str, tuple[np.ndarray, int]] = {
        "score": (score, places),
        "points": (rng.integers(0, 201, size=size), 1),
        "offence": (rng.integers(1, 5, size=size), 0),
        "quarters_early": (rng.integers(0, 4, size=size), 0),
        "complaints": (np.maximum(rng.integers(-3, 3, size=size), 0), 0),
        "chosen": (rng.integers(20000, 50001, size=size), 2),
        "repeat": (rng.integers(0, 2, size=size), 0),
        "fees": (fees, 2),
    }
    texts = {name: _text(counts, p) for name, (counts, p) in ints.items()}
    columns: dict[str, Any] = {}
    for name, (counts, _places) in ints.items():
        form = int(rng.integers(4))
        if form == 0 and name in (
            "offence",
            "quarters_early",
            "chosen",
            "repeat",
            "points",
            "fees",
        ):
            continue  # left out: the default applies (the exact rows leave it out too)
        columns[name] = (
            counts.copy()
            if form <= 1
            else (texts[name] if form == 2 else [Decimal(t) for t in texts[name]])
        )
    attributes = {"region": region, "head": head}
    values = {name: texts[name] for name in columns}
    if inject is not None:
        name, bad = {
            "scale": ("score", "104"),
            "offence": ("offence", "0"),
            "chosen": ("chosen", "5000"),
            "early": ("quarters_early", "-1"),
            "missing": ("complaints", ""),
        }[inject]
        column = list(texts[name])
        for row in rng.integers(size, size=int(rng.integers(1, 4))):
            column[int(row)] = bad
        columns[name] = column
        values[name] = column
    rows = tuple(
        SubjectRow(
            subjects[i],
            {"region": str(region[i]), "head": str(head[i])},
            {name: values[name][i] for name in values},
        )
        for i in range(size)
    )
    places_map = {name: p for name, (_c, p) in ints.items() if name != "score"}
    return Population(rows, columns, attributes, subjects, places_map)


# ------------------------------------------------------------------ comparison


@attrs.frozen
class Outcome:
    """What one comparison found."""

    subjects: int  # subjects compared (0 when both paths refused)
    lines: int  # subject × rule amounts compared
    disagreements: tuple[str, ...]


def _fen(amount: Decimal) -> int:
    fen = amount.scaleb(2)
    if fen != fen.to_integral_value():
        return -(10**30)  # a fraction of a fen cannot agree with an int64 of fen
    return int(fen)


def _refusals(exact: Results, exc: BankKPIError) -> list[str]:
    """Problems with a vector refusal: the exact path must refuse, and the same rows."""
    refused = {e.subject for e in exact.errors}
    if not refused:
        return [f"vector refused what exact computed: {exc!r}"]
    problems = []
    for error in getattr(exc, "exceptions", (exc,)):
        subject = getattr(error, "subject", None)
        if subject is not None and subject not in refused:
            problems.append(f"vector named {subject}, not refused by exact: {error}")
    return problems


def _differences(exact: Results, vector: ArrayResults, index: dict[str, int]) -> list[str]:
    """Every amount, subject total, group total and roll-up that differs, to the fen."""
    problems = [
        f"{line.subject} {line.rule}: exact {line.amount}, vector {got} fen"
        for line in exact.lines
        if (got := int(vector.amounts[line.rule][index[line.subject]])) != _fen(line.amount)
    ]
    for total in exact.totals:
        i = index[total.subject]
        mine = (int(vector.penalty[i]), int(vector.reward[i]))
        if mine != (_fen(total.penalty), _fen(total.reward)):
            problems.append(f"{total.subject} totals differ")
    problems.extend(
        f"group totals by {name} differ"
        for name, groups in exact.group_totals.items()
        if vector.group_totals[name].as_dict() != groups
    )
    for name, charged in exact.rollups.items():
        rollup = vector.rollups[name]
        column = rollup.amount("penalty" if name.startswith("penalty") else "reward")
        mine_by_key = dict(zip(map(str, rollup.keys.tolist()), column.tolist(), strict=True))
        if {k: _fen(v) for k, v in charged.items()} != mine_by_key:
            problems.append(f"roll-up {name} differs")
    return problems


Kept: TypeAlias = tuple[Results, ArrayResults, dict[str, int]]
"""Both paths' results on a population, and where each subject's row is."""


def compare(
    drawn: Drawn,
    population: Population,
    space: Workspace | None = None,
    kept: list[Kept] | None = None,
) -> Outcome:
    """Both paths on one population; every disagreement described.

    ``space``: the vector path's workspace. ``kept``: where both results go when
    they agree, to be compared again later (:func:`check_agreement`).
    """
    exact = evaluate(drawn.scheme, population.rows)
    try:
        vector = evaluate_arrays(
            drawn.scheme,
            population.columns,
            population.attributes,
            subjects=population.subjects,
            places=population.places,
            workspace=space,
        )
    except BankKPIError as exc:
        return Outcome(0, 0, tuple(_refusals(exact, exc)))
    if exact.errors:
        first = exact.errors[0]
        return Outcome(0, 0, (f"exact refused {first.subject} ({first.message}); vector did not",))
    index = {s: i for i, s in enumerate(population.subjects)}
    problems = _differences(exact, vector, index)
    if kept is not None and not problems:
        kept.append((exact, vector, index))
    return Outcome(len(exact.totals), len(exact.lines), tuple(problems))


INJECTIONS = ("scale", "offence", "chosen", "early", "missing")


def check_agreement(
    cases: int, seed: int, *, size: int = 200, planned: bool = False, workspace: bool = False
) -> list[str]:
    """Compare the paths on random schemes until ``cases`` subjects were compared.

    One population in four has bad rows planted (the exact path may refuse it;
    then the vector path must refuse too). ``planned``: schemes of the shapes the
    vector path compiles (:mod:`bankkpi._plan`). ``workspace``: every vector
    evaluation takes its arrays from one :class:`~bankkpi.vector.Workspace`, and
    the last three that agreed are kept and compared again after each new one
    (kept results must not change). Returns every disagreement found.
    """
    rng = np.random.default_rng(seed)
    pick = RandomPicker(rng)
    found: list[str] = []
    compared = populations = 0
    space = Workspace() if workspace else None
    kept: list[Kept] = []
    while compared < cases:
        populations += 1
        inject = pick.choice(INJECTIONS) if _chance(pick, 4) else None
        drawn = random_scheme(pick, inject, planned=planned)
        population = random_population(drawn, int(rng.integers(2**32)), size, inject=inject)
        outcome = compare(drawn, population, space, kept if workspace else None)
        compared += outcome.subjects
        found.extend(f"[seed {seed}, population {populations}] {d}" for d in outcome.disagreements)
        found.extend(
            f"[seed {seed}, population {populations}] kept results changed: {d}"
            for exact, vector, index in kept
            for d in _differences(exact, vector, index)
        )
        del kept[:-3]  # the others are dropped: their arrays may be lent again
    return found


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    """``python -m tests.agreement --cases N --seed S``: print the disagreement count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000, help="subjects to compare")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=200, help="subjects per population")
    parser.add_argument(
        "--planned", action="store_true", help="only rules of the shapes the vector path compiles"
    )
    parser.add_argument(
        "--workspace",
        action="store_true",
        help="evaluate with one shared Workspace; results kept must not change",
    )
    parser.add_argument(
        "--plan-rows",
        type=int,
        default=None,
        help="rows per block of a compiled rule (default: the library's; small: many blocks)",
    )
    parser.add_argument(
        "--table-rows",
        type=int,
        default=None,
        help="compiled rules look amounts up in tables of up to this many rows, whatever"
        " the population's size (default: the library's choice)",
    )
    args = parser.parse_args(argv)
    if args.plan_rows is not None:
        if args.plan_rows < 1:
            parser.error(f"--plan-rows must be >= 1: {args.plan_rows}")
        vector_module.PLAN_ROWS = args.plan_rows  # this process only: the script's own run
    if args.table_rows is not None:
        if args.table_rows < 0:
            parser.error(f"--table-rows must be >= 0: {args.table_rows}")
        vector_module.compile_rule = functools.partial(  # this process only, as above
            vector_module.compile_rule, table_rows=args.table_rows
        )
    start = time.perf_counter()
    found = check_agreement(
        args.cases, args.seed, size=args.size, planned=args.planned, workspace=args.workspace
    )
    seconds = time.perf_counter() - start
    for line in found[:20]:
        out(line)
    out(f"cases: {args.cases}+ subjects, disagreements: {len(found)}, time: {seconds:.1f} s")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
