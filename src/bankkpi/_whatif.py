"""What-if modelling: a scheme under many parameter overrides, over numpy columns.

A *scenario* is a mapping of **paths** in the scheme's canonical form to new values.
A path names keys with dots and list items with brackets — ``rules[A.P3]`` picks the
rule whose ``id`` is ``A.P3`` (``[2]`` picks by position) — and ``*`` matches any one
key or item, ``**`` any depth below. ``"rules[A.P3].**.threshold": 97`` sets every
threshold under rule A.P3 to 97. Each scenario is validated like a scheme file, so a
path that matches nothing or a value a scheme may not hold is a typed error.

:func:`what_if` evaluates the scheme over the population once per scenario with
:func:`~bankkpi.vector.evaluate_arrays` (no Python loop over subjects) and returns a
:class:`ScenarioTable`: totals per scenario, and per group.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bankkpi._goalseek import first_holding
from bankkpi._money import CONTEXT, FloatPolicy, check_float_policy, fen_to_yuan, to_decimal
from bankkpi._schemefile import dump_scheme, parse_scheme
from bankkpi._schemes import Scheme
from bankkpi._workspace import Workspace
from bankkpi.exceptions import ConfigError, InvalidValueError

if TYPE_CHECKING:  # vector imports this module at run time
    from bankkpi.vector import GroupTotals, _Kept, _Population

__all__ = [
    "ScenarioResult",
    "ScenarioTable",
    "grid",
    "monte_carlo",
    "override",
    "seek_parameter",
    "what_if",
]

Scenario = Mapping[str, object]
"""Path → new value."""

_STEP: Final = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def _steps(path: str) -> list[str]:
    """``rules[A.P3].formula.rate`` → ``["rules", "[A.P3]", "formula", "rate"]``."""
    steps: list[str] = []
    position = 0
    while position < len(path):
        if path[position] == ".":
            position += 1
            continue
        match = _STEP.match(path, position)
        if match is None:
            raise ConfigError(f"path {path!r}: cannot read it at column {position + 1}")
        steps.append(match.group(1) if match.group(1) is not None else f"[{match.group(2)}]")
        position = match.end()
    if not steps:
        raise ConfigError(f"path {path!r} is empty")
    return steps


def _children(node: object, step: str) -> list[tuple[object, object]]:
    """(container, key) pairs that ``step`` selects under ``node``."""
    if step.startswith("["):
        inner = step[1:-1]
        if not isinstance(node, list):
            return []
        if inner == "*":
            return [(node, i) for i in range(len(node))]
        if inner.isdigit():
            index = int(inner)
            return [(node, index)] if index < len(node) else []
        return [
            (node, i)
            for i, item in enumerate(node)
            if isinstance(item, dict)
            and (item.get("id") == inner or item.get("code") == inner or item.get("name") == inner)
        ]
    if isinstance(node, dict):
        if step == "*":
            return [(node, k) for k in node]
        return [(node, step)] if step in node else []
    return []


def _descendants(node: object) -> Iterable[object]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _descendants(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descendants(value)


def _targets(root: object, steps: list[str]) -> list[tuple[object, object]]:
    nodes: list[object] = [root]
    found: list[tuple[object, object]] = []
    for depth, step in enumerate(steps):
        last = depth == len(steps) - 1
        if step == "**":
            nodes = [d for n in nodes for d in _descendants(n)]
            continue
        pairs = [pair for n in nodes for pair in _children(n, step)]
        if last:
            found = pairs
        nodes = [c[k] for c, k in pairs]  # type: ignore[index]
    return found


def _plain(value: object) -> object:
    """``value`` as a scenario puts it in the scheme's data.

    A list or dict is copied: a later path of the scenario may write into it, and
    never into the caller's own.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        raise InvalidValueError("value", "must be exact (Decimal, int or str), not a float", value)
    if isinstance(value, dict | list):
        return copy.deepcopy(value)
    return value


def override(scheme: Scheme, scenario: Scenario) -> Scheme:
    """A new scheme with the values at ``scenario``'s paths replaced (validated).

    >>> from pathlib import Path
    >>> from bankkpi import load_scheme
    >>> a = load_scheme(Path("examples/scheme_a.toml").read_text(encoding="utf-8"), format="toml")
    >>> b = override(a, {"rules[A.P3].**.threshold": 97, "rules[A.P3].**.rate": 150})
    >>> b.rules[0].formula.formula.otherwise.rate, b.rules[0].formula.formula.otherwise.target
    (Decimal('150'), AtLeast(threshold=Decimal('97'), inclusive=True))
    """
    data: Any = dump_scheme(scheme)
    for path, value in scenario.items():
        found = _targets(data, _steps(path))
        if not found:
            raise ConfigError(f"path {path!r} matches nothing in scheme {scheme.id}")
        for container, key in found:
            container[key] = _plain(value)  # type: ignore[index]
    return parse_scheme(data)


def grid(axes: Mapping[str, Sequence[object]]) -> tuple[dict[str, object], ...]:
    """Every combination of the values of each path (a cartesian product).

    >>> grid({"a": [1, 2], "b": ["x", "y"]})
    ({'a': 1, 'b': 'x'}, {'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}, {'a': 2, 'b': 'y'})
    """
    paths = list(axes)
    for path in paths:
        if not axes[path]:
            raise InvalidValueError(path, "needs at least one value", list(axes[path]))
    return tuple(
        dict(zip(paths, combo, strict=True))
        for combo in itertools.product(*(axes[p] for p in paths))
    )


class _GroupTables(Mapping[str, Mapping[str, tuple[int, int]]]):
    """Attribute → {group key: (penalty fen, reward fen)}, each built when first read.

    A scenario holds its group totals as arrays; the dict of Python ints for an
    attribute with tens of thousands of groups costs more than the scenario's
    evaluation, so it is built only for what a caller reads.
    """

    __slots__ = ("_built", "_totals")

    def __init__(self, totals: Mapping[str, GroupTotals]) -> None:
        self._totals = dict(totals)
        self._built: dict[str, dict[str, tuple[int, int]]] = {}

    def __getitem__(self, attribute: str) -> Mapping[str, tuple[int, int]]:
        if attribute not in self._built:
            g = self._totals[attribute]  # KeyError for an attribute not grouped by
            self._built[attribute] = dict(  # tolist(): Python ints in one C pass
                zip(
                    map(str, g.keys.tolist()),
                    zip(g.penalty.tolist(), g.reward.tolist(), strict=True),
                    strict=True,
                )
            )
        return self._built[attribute]

    def __contains__(self, attribute: object) -> bool:
        return attribute in self._totals  # without building the table

    def __iter__(self) -> Iterator[str]:
        return iter(self._totals)

    def __len__(self) -> int:
        return len(self._totals)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{name!r}: ...' for name in self._totals)}}}"


@attrs.frozen(eq=False)
class _Reading:
    """How the population's columns are read: :func:`~bankkpi.vector.evaluate_arrays`'s options."""

    subjects: ArrayLike | None = None
    places: Mapping[str, int] | None = None
    floats: FloatPolicy = attrs.field(default="refuse", converter=check_float_policy)
    workers: int | None = None
    threads: int = attrs.field(init=False)
    """The threads of each evaluation, from ``workers`` (checked when made)."""

    @threads.default
    def _threads_of_workers(self) -> int:
        from bankkpi.vector import _threads  # noqa: PLC0415 - vector imports this module

        return _threads(self.workers)


@attrs.frozen
class ScenarioResult:
    """One scenario's totals: in fen, for the population and per group key.

    ``groups[attribute]`` maps each group key (as text) to its ``(penalty, reward)``
    fen; it is built when first read.
    """

    scenario: Mapping[str, object]
    penalty_fen: int
    reward_fen: int
    groups: Mapping[str, Mapping[str, tuple[int, int]]]
    payers: int

    @property
    def penalty(self) -> Decimal:
        """Total penalties in yuan."""
        return fen_to_yuan(self.penalty_fen)

    @property
    def reward(self) -> Decimal:
        """Total rewards in yuan."""
        return fen_to_yuan(self.reward_fen)


@attrs.frozen
class ScenarioTable:
    """Results of :func:`what_if`, one per scenario, in order."""

    results: tuple[ScenarioResult, ...]

    def records(self) -> list[dict[str, object]]:
        """One flat dict per scenario (paths, penalty, reward, payers): a DataFrame's rows."""
        return [
            {
                **{str(k): v for k, v in r.scenario.items()},
                "penalty": r.penalty,
                "reward": r.reward,
                "payers": r.payers,
            }
            for r in self.results
        ]

    def group_records(self, attribute: str) -> list[dict[str, object]]:
        """One flat dict per scenario and group key of ``attribute``."""
        return [
            {
                **{str(k): v for k, v in r.scenario.items()},
                attribute: key,
                "penalty": fen_to_yuan(p),
                "reward": fen_to_yuan(w),
            }
            for r in self.results
            for key, (p, w) in r.groups[attribute].items()
        ]

    def __len__(self) -> int:
        return len(self.results)


class _Reader:
    """Evaluates schemes over one population, read once while the schemes read it alike.

    Scenarios that change only rules (rates, bases, targets, selection sizes) share
    the columns as checked, the groups and each ranking's ordered store; a scenario
    that changes how the population is read (an indicator's scale, a ranking's ties)
    reads it again. A rule the last scenario evaluated over the same population,
    unchanged (the same :func:`~bankkpi.vector._reusable` key: every field, each
    number as written), keeps its amounts instead of being evaluated again: a grid
    over one rule's rate evaluates that rule alone scenario after scenario. A kind
    (penalty, reward) whose rules are all as they were keeps its row and group
    sums too.
    """

    def __init__(
        self,
        columns: Mapping[str, ArrayLike],
        attributes: Mapping[str, ArrayLike] | None,
        like: _Reader | None = None,
        *,
        keep: bool = True,
        reading: _Reading | None = None,
    ) -> None:
        """Evaluate over ``columns`` and ``attributes``, read as ``reading`` says.

        ``like``: a reader of other columns over the same attribute arrays, whose
        factorized attributes this one takes instead of reading them again, and
        whose workspace it shares. ``keep``: keep the rules' amounts for the next
        scenario (a reader called once has no use for them).
        """
        self.columns = columns
        self.attributes = attributes
        self.reading = _Reading() if reading is None else reading
        self.population: _Population | None = None
        self.like = like
        self.space: Workspace = Workspace() if like is None else like.space
        """Memory each scenario's evaluation takes its largest arrays from."""
        self.keep = keep
        self.known: _Kept | None = None
        """What the last scenario's evaluation kept (amounts, sums) over :attr:`population`."""

    def __call__(self, scheme: Scheme, scenario: Scenario) -> ScenarioResult:
        from bankkpi.vector import _Kept, _Population, _total  # noqa: PLC0415

        self.space.begin()
        if self.population is None or not self.population.fits(scheme):
            known = None if self.like is None else self.like.population
            factorized = known.groups if known is not None and known.fits(scheme) else None
            reading = self.reading
            self.population = _Population.of(
                scheme,
                self.columns,
                self.attributes,
                subjects=reading.subjects,
                places=reading.places,
                floats=reading.floats,
                groups=factorized,
                space=self.space,
            )
            self.known = None  # amounts over another population
        kept_before = None  # a reader that keeps nothing makes no keys
        if self.keep:
            kept_before = self.known if self.known is not None else _Kept()
        out, kept, (penalty, reward) = self.population.evaluate_knowing(
            scheme, self.reading.threads, space=self.space, known=kept_before
        )
        self.known = kept if self.keep else None
        return ScenarioResult(
            dict(scenario),
            _total(out, "penalty", penalty),  # as out.total(), without a pass for the largest
            _total(out, "reward", reward),
            _GroupTables(out.group_totals),
            int(np.count_nonzero(out.penalty)),
        )


def what_if(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None,
    scenarios: Iterable[Scenario],
    *,
    subjects: ArrayLike | None = None,
    places: Mapping[str, int] | None = None,
    floats: FloatPolicy = "refuse",
    workers: int | None = None,
) -> ScenarioTable:
    """Totals per scenario (and per group) of ``scheme`` over the population.

    ``columns``, ``attributes``, ``subjects``, ``places``, ``floats`` and
    ``workers`` as for :func:`~bankkpi.vector.evaluate_arrays` (``floats="repr"``
    for a float column, such as a pandas ``read_csv`` of scores).

    >>> from pathlib import Path
    >>> from bankkpi import load_scheme
    >>> a = load_scheme(Path("examples/scheme_a.toml").read_text(encoding="utf-8"), format="toml")
    >>> cols = {"score": np.array([9750, 9900, 9615, 9820]),
    ...         "complaints": np.array([0, 1, 0, 0])}
    >>> groups = {"region": np.array(["东", "东", "西", "西"]),
    ...           "head": np.array(["张", "张", "李", "李"])}
    >>> table = what_if(a, cols, groups, grid({"rules[A.no_complaint].**.amount": [500, 800]}))
    >>> [(r["rules[A.no_complaint].**.amount"], r["reward"]) for r in table.records()]
    [(500, Decimal('2500.00')), (800, Decimal('3400.00'))]
    """
    reading = _Reading(subjects, places, floats, workers)
    read = _Reader(columns, attributes, reading=reading)
    return ScenarioTable(tuple(read(override(scheme, s), s) for s in scenarios))


def monte_carlo(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None,
    *,
    draw: Callable[[np.random.Generator, Mapping[str, NDArray[Any]]], Mapping[str, ArrayLike]],
    runs: int,
    seed: int,
    subjects: ArrayLike | None = None,
    places: Mapping[str, int] | None = None,
    floats: FloatPolicy = "refuse",
    workers: int | None = None,
) -> ScenarioTable:
    """Totals over ``runs`` simulated populations; ``draw(rng, columns)`` returns new columns.

    The generator is ``numpy.random.default_rng(seed)``: the same seed, the same table.
    Each run's scenario is ``{"run": k}``. ``subjects``, ``places``, ``floats``
    (for the drawn columns too) and ``workers`` as for
    :func:`~bankkpi.vector.evaluate_arrays`.
    """
    if runs < 1:
        raise InvalidValueError("runs", "must be >= 1", runs)
    reading = _Reading(subjects, places, floats, workers)  # checked before any draw
    from bankkpi.vector import _table  # noqa: PLC0415 - vector imports this module

    rng = np.random.default_rng(seed)
    base = {k: np.asarray(v) for k, v in _table(columns, "columns").items()}
    results = []
    first: _Reader | None = None  # the attributes are read and factorized once
    for run in range(runs):
        simulated = {**base, **draw(rng, base)}
        read = _Reader(simulated, attributes, like=first, keep=False, reading=reading)
        results.append(read(scheme, {"run": run}))
        first = first or read
    return ScenarioTable(tuple(results))


def seek_parameter(
    scheme: Scheme,
    columns: Mapping[str, ArrayLike],
    attributes: Mapping[str, ArrayLike] | None,
    *,
    path: str,
    low: object,
    high: object,
    step: object,
    kind: Literal["penalty", "reward"],
    budget: object,
    subjects: ArrayLike | None = None,
    places: Mapping[str, int] | None = None,
    floats: FloatPolicy = "refuse",
    workers: int | None = None,
) -> Decimal | None:
    """The parameter value on ``[low, high]`` (a grid of ``step``) whose total reaches ``budget``.

    The total of ``kind`` must be monotone in the parameter (a rate, a base, a
    target). Returns the value closest to ``low`` at which the total is at least
    ``budget`` when it rises with the parameter, or at most ``budget`` when it falls;
    ``None`` if no value on the grid reaches it. Bisection: ``log2(grid size)``
    evaluations of the whole population. ``subjects``, ``places``, ``floats`` and
    ``workers`` as for :func:`~bankkpi.vector.evaluate_arrays`.
    """
    lo, hi, st = (to_decimal(v, field=n) for v, n in ((low, "low"), (high, "high"), (step, "step")))
    want = to_decimal(budget, field="budget")
    if st <= 0 or hi < lo:
        raise InvalidValueError("step", "must be > 0 with low <= high", st)
    count = int(CONTEXT.divide_int(CONTEXT.subtract(hi, lo), st))

    def value_at(i: int) -> Decimal:
        return CONTEXT.add(lo, CONTEXT.multiply(st, Decimal(i)))

    read = _Reader(columns, attributes, reading=_Reading(subjects, places, floats, workers))

    def total(i: int) -> Decimal:
        value = value_at(i)
        result = read(override(scheme, {path: value}), {path: value})
        return result.penalty if kind == "penalty" else result.reward

    rising = total(count) >= total(0)

    def reached(i: int) -> bool:
        amount = total(i)
        return amount >= want if rising else amount <= want

    first = first_holding(count, reached)
    return None if first is None else value_at(first)
