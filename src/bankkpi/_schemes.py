"""Schemes (考核方案): the rules of one assessment as a value, evaluated over a population.

A :class:`Scheme` holds everything a month-end run needs — the rounding policy (named
by the scheme, never a hidden default), indicators, the per-subject inputs, rankings,
rules, group totals and roll-ups to a responsible subject. :func:`evaluate` is a pure
function of a scheme and the input rows: ranks need everyone, so it sees the whole
population at once.

Every input row ends up in the results or in the errors, never lost: a row with a bad
value, a missing input, a duplicate subject or a rule that cannot be computed for it
becomes :class:`ErrorRecord` values naming subject, field and value, and every other
row is still computed. A subject with any error contributes no amount at all (no
partial totals); subjects are ranked among the valid rows only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, TypeAlias

import attrs

from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Text, Trace
from bankkpi._expressions import Expression
from bankkpi._formulas import Context, InRanks, Rule, RuleKind, TraceMemo, Var
from bankkpi._indicators import Indicator
from bankkpi._money import (
    CONTEXT,
    DecimalLike,
    RoundingPolicy,
    exact_add,
    exact_sum,
    round_fraction,
    to_decimal,
)
from bankkpi._periods import Period
from bankkpi._ranking import RankedSubject, Ranking, RankingRule, RankRow, rank_rows
from bankkpi.exceptions import (
    AmbiguousInputError,
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    MissingDataError,
    OutOfRangeError,
    UnknownKeyError,
    ValidationErrorGroup,
)

__all__ = [
    "ErrorRecord",
    "Input",
    "RankingSpec",
    "ResultLine",
    "Results",
    "RollUp",
    "Scheme",
    "Split",
    "SubjectRow",
    "SubjectTotal",
    "evaluate",
    "parse_members",
    "split_amount",
]

_ZERO: Final = Decimal(0)
_new: Final = object.__new__
_set: Final = object.__setattr__


def _default(value: DecimalLike | None) -> Decimal | None:
    return None if value is None else to_decimal(value, field="default")


@attrs.frozen
class Input:
    """A value the scheme reads for every subject (a column of the data file).

    ``indicator`` names one of the scheme's indicators: the value is then quantized
    to its precision and checked against its scale. ``default`` is used when a row
    has no value; without one the input is required.

    A *derived* input is computed, not read: ``derive`` is an :class:`Expression`
    over inputs declared before it (the annual average of four quarterly scores is
    ``Expression("(q1 + q2 + q3 + q4) / 4", ["q1", "q2", "q3", "q4"])``). Its exact
    value is rounded once by the input's indicator, which a derived input must name.
    """

    name: str = attrs.field(validator=non_empty("name"))
    label: Text
    indicator: str | None = None
    default: Decimal | None = attrs.field(default=None, converter=_default)
    derive: Expression | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if self.derive is not None and self.indicator is None:
            raise AmbiguousInputError(
                f"inputs[{self.name}].indicator",
                "must name an indicator for a derived input (its precision rounds the value)",
                None,
            )
        if self.derive is not None and self.default is not None:
            raise InvalidValueError(
                f"inputs[{self.name}].default", "does not apply to a derived input", self.default
            )


@attrs.frozen
class RankingSpec:
    """A ranking the rules use: ``variable`` ranked by ``rule`` within ``group_by``.

    ``group_by`` names a subject attribute (``region``); ``None`` ranks the whole
    population as one group (the province).
    """

    name: str = attrs.field(validator=non_empty("name"))
    variable: str = attrs.field(validator=non_empty("variable"))
    rule: RankingRule
    group_by: str | None = None


@attrs.frozen
class RollUp:
    """Amounts of ``kind`` charged to the subject named in attribute ``to``.

    Scheme A's outlet penalties are paid by the sub-branch head: ``RollUp("head",
    "penalty")`` sums each head's outlets' penalties. The kind is always stated.
    """

    to: str = attrs.field(validator=non_empty("to"))
    kind: RuleKind = attrs.field(validator=one_of("kind", ("penalty", "reward")))


@attrs.frozen
class Split:
    """A subject's total of ``kind`` split among the members listed in attribute ``members``.

    The attribute's cell lists the members, separated by ``;``, each optionally with
    its share after ``*`` (``张三;李四`` shares equally, ``张三*2;李四*1`` two to one).
    Each subject's amount is split with :func:`split_amount` to the fen: the parts
    always add up to the amount. A cell that cannot be read is that row's error.
    """

    members: str = attrs.field(validator=non_empty("members"))
    kind: RuleKind = attrs.field(validator=one_of("kind", ("penalty", "reward")))


def parse_members(cell: str, *, subject: str, field: str = "members") -> dict[str, Decimal]:
    """``"张三*2;李四"`` → ``{"张三": Decimal(2), "李四": Decimal(1)}``, refusing bad cells.

    >>> parse_members("张三*2; 李四", subject="A")
    {'张三': Decimal('2'), '李四': Decimal('1')}
    """
    shares: dict[str, Decimal] = {}
    for part in cell.split(";"):
        name, _, share_text = part.partition("*")
        name = name.strip()
        if not name:
            raise InvalidValueError(
                field, "must list members as 'name;name' or 'name*2;name*1'", cell, subject=subject
            )
        share = to_decimal(share_text.strip() or "1", field=f"{field}[{name}]", subject=subject)
        if share <= 0:
            raise InvalidValueError(
                f"{field}[{name}]", "must have a share > 0", share, subject=subject
            )
        if name in shares:
            raise DuplicateError(field, "must name each member once", name, subject=subject)
        shares[name] = share
    return shares


def _tuple(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen
class Scheme:
    """One assessment scheme: a validated value; see the module documentation.

    Every :class:`Rule` carries its own rounding; ``rounding`` is the scheme's named
    policy, which a scheme file applies to every rule that does not state one.
    """

    id: str = attrs.field(validator=non_empty("id"))
    version: str = attrs.field(validator=non_empty("version"))
    name: Text
    effective: Period
    rounding: RoundingPolicy
    rules: tuple[Rule, ...] = attrs.field(converter=_tuple)
    inputs: tuple[Input, ...] = attrs.field(converter=_tuple)
    indicators: tuple[Indicator, ...] = attrs.field(default=(), converter=_tuple)
    attributes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    rankings: tuple[RankingSpec, ...] = attrs.field(default=(), converter=_tuple)
    group_by: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    rollups: tuple[RollUp, ...] = attrs.field(default=(), converter=_tuple)
    splits: tuple[Split, ...] = attrs.field(default=(), converter=_tuple)

    def __attrs_post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValidationErrorGroup(f"invalid scheme {self.id}", problems)

    def _problems(self) -> Iterator[BankKPIError]:
        yield from self._duplicates()
        if not self.rules:
            yield InvalidValueError("rules", "must hold at least one rule", ())
        yield from self._dangling_names()
        inputs = {i.name for i in self.inputs}
        rankings = {r.name for r in self.rankings}
        for rule in self.rules:
            used_vars, used_ranks = references(rule.formula)
            for name in sorted(used_vars - inputs):
                yield UnknownKeyError(f"input for variable used by rule {rule.id}", name)
            for name in sorted(used_ranks - rankings):
                yield UnknownKeyError(f"ranking used by rule {rule.id}", name)

    def _duplicates(self) -> Iterator[BankKPIError]:
        for field, names in (
            ("rules", [r.id for r in self.rules]),
            ("inputs", [i.name for i in self.inputs]),
            ("indicators", [i.code for i in self.indicators]),
            ("rankings", [r.name for r in self.rankings]),
            ("attributes", list(self.attributes)),
        ):
            for name in sorted({n for n in names if names.count(n) > 1}):
                yield DuplicateError(field, "must be unique", name)

    def _input_problems(self, codes: set[str]) -> Iterator[BankKPIError]:
        declared: set[str] = set()
        for item in self.inputs:
            if item.indicator is not None and item.indicator not in codes:
                yield UnknownKeyError(f"indicator for input {item.name}", item.indicator)
            reads = item.derive.names if item.derive is not None else ()
            for name in reads:
                if name not in declared:
                    yield UnknownKeyError(f"input declared before derived input {item.name}", name)
            declared.add(item.name)

    def _dangling_names(self) -> Iterator[BankKPIError]:
        codes = {i.code for i in self.indicators}
        inputs = {i.name for i in self.inputs}
        attributes = set(self.attributes)
        yield from self._input_problems(codes)
        for spec in self.rankings:
            if spec.variable not in inputs:
                yield UnknownKeyError(f"input for ranking {spec.name}", spec.variable)
            if spec.group_by is not None and spec.group_by not in attributes:
                yield UnknownKeyError(f"attribute for ranking {spec.name}", spec.group_by)
        for name in self.group_by:
            if name not in attributes:
                yield UnknownKeyError("attribute for group totals", name)
        for rollup in self.rollups:
            if rollup.to not in attributes:
                yield UnknownKeyError("attribute for roll-up", rollup.to)
        yield from self._split_problems(attributes)

    def _split_problems(self, attributes: set[str]) -> Iterator[BankKPIError]:
        for split in self.splits:
            if split.members not in attributes:
                yield UnknownKeyError("attribute for split", split.members)
        if self.splits:
            for rule in self.rules:
                if rule.rounding.place < Decimal("0.01"):
                    yield InvalidValueError(
                        f"rules[{rule.id}].rounding",
                        "must round to the fen or coarser when amounts are split",
                        rule.rounding.place,
                    )

    def input(self, name: str) -> Input:
        """The input called ``name``."""
        for item in self.inputs:
            if item.name == name:
                return item
        raise UnknownKeyError("input", name)

    def indicator(self, code: str) -> Indicator:
        """The indicator with ``code``."""
        for item in self.indicators:
            if item.code == code:
                return item
        raise UnknownKeyError("indicator", code)


_PLAIN: Final = frozenset({str, int, bool, Decimal, Fraction, type(None), Text})
"""Values that refer to no variable or ranking (exact types: a subclass is walked)."""


def references(node: object) -> tuple[set[str], set[str]]:
    """The variable names and ranking names a formula tree refers to."""
    variables: set[str] = set()
    rankings: set[str] = set()
    waiting = [node]
    while waiting:  # a loop, not recursion: schemes are checked whenever one is made
        value = waiting.pop()
        kind = type(value)
        if kind in _PLAIN:
            continue
        if isinstance(value, Var):
            variables.add(value.name)
            continue
        names = getattr(value, "names", None)
        if isinstance(names, tuple) and hasattr(value, "tree"):  # an Expression
            variables.update(str(n) for n in names)
            continue
        if isinstance(value, InRanks):
            rankings.add(value.ranking)
        fields: tuple[attrs.Attribute[Any], ...] | None = getattr(kind, "__attrs_attrs__", None)
        if fields is not None:
            waiting.extend(getattr(value, field.name) for field in fields)
        elif isinstance(value, tuple | list | frozenset):
            waiting.extend(value)
    return variables, rankings


# ----------------------------------------------------------------------- evaluation


@attrs.frozen
class SubjectRow:
    """One subject's input: its attributes (region, head) and raw values.

    ``values`` hold exact numbers or decimal strings as read from a file; blanks are
    absent values. ``source`` says where the row came from (``line 7``) for reports;
    ``problem`` is set by a reader for a row it could not read (wrong number of
    cells), which :func:`evaluate` then reports.
    """

    subject: str
    attributes: Mapping[str, str] = attrs.field(factory=dict)
    values: Mapping[str, object] = attrs.field(factory=dict)
    source: str = ""
    problem: str = ""


@attrs.frozen
class ErrorRecord:
    """A row or rule that could not be computed: who, which field, what value, why."""

    subject: str
    field: str
    value: str
    message: str
    source: str = ""
    rule: str = ""


@attrs.frozen
class _SubjectState:
    """One subject's values and rank rows in a run; its :class:`Context` made once, on demand."""

    subject: str
    values: dict[str, Decimal]
    ranks: dict[str, RankRow]
    traces: TraceMemo = attrs.field(eq=False, repr=False)
    """The run's memo of traces that depend on values alone, shared by its subjects."""
    _context: Context | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def context(self) -> Context:
        """The subject's context, as :func:`evaluate` has always given it to the rules."""
        context = self._context
        if context is None:
            entries = {name: RankedSubject(*row) for name, row in self.ranks.items()}
            # every value is a finite Decimal other than −0 (to_decimal, _checked)
            context = Context._trusted(  # noqa: SLF001
                self.subject, self.values, entries, self.traces
            )
            _set(self, "_context", context)
        return context


_Pending: TypeAlias = tuple[Rule, _SubjectState, Decimal]
"""What a deferred :class:`ResultLine` holds in its trace slot: the rule and the subject
it builds its trace from, and the amount the trace will show."""


@attrs.frozen
class ResultLine:
    """One subject's amount under one rule, with its trace.

    :func:`evaluate` computes the amount on a lean path and builds the trace the
    first time :attr:`trace` is read, from the rule and the subject's context
    (:meth:`Rule.evaluate`, the trace the line would otherwise have held; its amount
    is the line's). From the outside nothing tells the two apart: the fields are the
    same, and equality, hashing, ``repr``, pickling, ``attrs.evolve`` and
    ``attrs.asdict`` read the trace, so each of them builds it if it is not built yet
    (:attr:`amount` does not).
    """

    subject: str
    rule: str
    kind: str
    trace: Trace

    @classmethod
    def _deferred(cls, rule: Rule, state: _SubjectState, amount: Decimal) -> ResultLine:
        """A line whose trace is ``rule.evaluate(state.context())``, built on first access.

        ``amount`` must be ``rule.lean_amount_of(state.values, state.ranks)`` (not
        ``None``): the amount the trace will show.
        """
        line = _new(cls)
        _set(line, "subject", state.subject)
        _set(line, "rule", rule.id)
        _set(line, "kind", rule.kind)
        pending: _Pending = (rule, state, amount)
        _TRACE_SLOT.__set__(line, pending)
        return line

    @property
    def amount(self) -> Decimal:
        """The rounded amount (the trace's)."""
        stored = _TRACE_SLOT.__get__(self, ResultLine)
        if type(stored) is tuple:  # _Pending
            amount: Decimal = stored[2]
            return amount
        return self.trace.amount


_TRACE_SLOT: Final[Any] = ResultLine.__dict__["trace"]
"""The slot that holds a line's trace, or the :data:`_Pending` it is built from."""


def _line_trace(line: ResultLine) -> Trace:
    stored = _TRACE_SLOT.__get__(line, ResultLine)
    if type(stored) is tuple:  # _Pending: built once (a race builds the same trace twice)
        rule, state, _amount = stored
        stored = rule.evaluate(state.context())
        _TRACE_SLOT.__set__(line, stored)
    trace: Trace = stored
    return trace


def _set_line_trace(line: ResultLine, trace: Trace) -> None:
    _TRACE_SLOT.__set__(line, trace)  # only from __init__: the class is frozen


# ``trace`` reads through the slot, building a deferred line's trace on first access.
setattr(  # noqa: B010 - replaces the slot's descriptor on the class, keeping the slot
    ResultLine, "trace", property(_line_trace, _set_line_trace, doc="The explained amount.")
)


@attrs.frozen
class SubjectTotal:
    """A subject's penalties, rewards and net (rewards − penalties)."""

    subject: str
    attributes: Mapping[str, str]
    penalty: Decimal
    reward: Decimal

    @property
    def net(self) -> Decimal:
        """Rewards minus penalties."""
        return self.reward - self.penalty


@attrs.frozen
class Results:
    """Everything a run produced; every input row is in ``totals`` or ``errors``."""

    scheme_id: str
    scheme_version: str
    scheme_hash: str
    library_version: str
    lines: tuple[ResultLine, ...]
    totals: tuple[SubjectTotal, ...]
    group_totals: Mapping[str, Mapping[str, tuple[Decimal, Decimal]]]
    rollups: Mapping[str, Mapping[str, Decimal]]
    errors: tuple[ErrorRecord, ...]
    rows: int
    ranked_over: int = 0
    splits: Mapping[str, Mapping[str, Mapping[str, Decimal]]] = attrs.field(factory=dict)
    """``{"reward÷members": {subject: {member: amount}}}``: one entry per :class:`Split`."""

    @property
    def provisional(self) -> bool:
        """Whether rankings were computed without some rows (they had errors).

        Ranks cover the valid rows only, so a corrected row can move others between
        rank tiers: rank-based amounts are final only when this is ``False``.
        """
        return bool(self.errors) and self.ranked_over < self.rows

    @property
    def computed(self) -> int:
        """How many subjects were computed."""
        return len(self.totals)

    def lines_for(self, subject: str) -> tuple[ResultLine, ...]:
        """The result lines of one subject, in rule order."""
        return tuple(line for line in self.lines if line.subject == subject)

    def explain(self, subject: str, lang: str = "zh") -> str:
        """Every rule's trace for ``subject`` as text (an appeal answer)."""
        lines = self.lines_for(subject)
        if not lines:
            errors = [e for e in self.errors if e.subject == subject]
            if errors:
                return "\n".join(f"error: {e.message}" for e in errors)
            raise UnknownKeyError("result for subject", subject)
        return "\n".join(line.trace.render("zh" if lang == "zh" else "en") for line in lines)


def error_record(subject: str, exc: BankKPIError, source: str, rule: str = "") -> ErrorRecord:
    field = str(getattr(exc, "field", getattr(exc, "what", "")))
    value = getattr(exc, "value", getattr(exc, "key", ""))
    message = str(exc)
    notes = getattr(exc, "__notes__", None)
    if notes:
        message = f"{message} ({'; '.join(notes)})"
    return ErrorRecord(subject, field, str(value), message, source, rule)


def _attribute_problems(scheme: Scheme, row: SubjectRow) -> list[BankKPIError]:
    """Blank attributes, and member lists a split cannot read."""
    problems: list[BankKPIError] = [
        MissingDataError(f"attribute {attribute!r}", row.subject, subject=row.subject)
        for attribute in scheme.attributes
        if not str(row.attributes.get(attribute, "")).strip()
    ]
    for split in scheme.splits:
        cell = str(row.attributes.get(split.members, "")).strip()
        if cell:
            try:
                parse_members(cell, subject=row.subject, field=split.members)
            except BankKPIError as exc:
                problems.append(exc)
    return problems


def _row_values(
    scheme: Scheme, row: SubjectRow, policies: Mapping[str, RoundingPolicy] | None = None
) -> tuple[dict[str, Decimal], list[BankKPIError]]:
    """A row's input values, and its problems; ``policies`` are the indicators' (by code)."""
    values: dict[str, Decimal] = {}
    problems = _attribute_problems(scheme, row)
    for item in scheme.inputs:
        if item.derive is not None:
            if problems:
                continue  # a derived value needs every input it reads
            try:
                exact = item.derive.evaluate(Context(row.subject, values)).value
                indicator = scheme.indicator(str(item.indicator))
                values[item.name] = indicator.check(
                    indicator.policy.apply_fraction(exact), subject=row.subject
                )
            except BankKPIError as exc:
                problems.append(exc)
            continue
        raw = row.values.get(item.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if item.default is None:
                problems.append(
                    InvalidValueError(item.name, "is required but blank", "", subject=row.subject)
                )
                continue
            raw = item.default
        try:
            if item.indicator is not None:
                indicator = scheme.indicator(item.indicator)
                policy = None if policies is None else policies.get(item.indicator)
                values[item.name] = _checked(indicator, item.name, raw, row, policy)
            else:
                values[item.name] = to_decimal(raw, field=item.name, subject=row.subject)
        except BankKPIError as exc:
            problems.append(exc)
    return values, problems


def _checked(
    indicator: Indicator,
    name: str,
    raw: object,
    row: SubjectRow,
    policy: RoundingPolicy | None = None,
) -> Decimal:
    """The value quantized and range-checked; errors name the input column and raw value.

    ``policy`` is ``indicator.policy``, when the caller has it at hand.
    """
    value = to_decimal(raw, field=name, subject=row.subject)
    if policy is None:
        quantized = indicator.quantize(value, subject=row.subject)
    else:  # indicator.quantize of a value to_decimal has coerced
        quantized = policy.apply(value)
    if not quantized and quantized.is_signed():
        quantized = quantized.copy_abs()  # −0.00 (from −0.001) is 0.00, as to_decimal makes it
    low, high = indicator.scale_min, indicator.scale_max
    if (low is not None and quantized < low) or (high is not None and quantized > high):
        shown = f"[{'-inf' if low is None else low}, {'+inf' if high is None else high}]"
        raise OutOfRangeError(
            name, f"must be within {shown} ({indicator.code})", raw, subject=row.subject
        )
    return quantized


def _valid_rows(
    scheme: Scheme, rows: list[SubjectRow]
) -> tuple[dict[str, tuple[SubjectRow, dict[str, Decimal]]], list[ErrorRecord]]:
    """The rows that can be computed, by subject, and an error for every other row."""
    errors: list[ErrorRecord] = []
    valid: dict[str, tuple[SubjectRow, dict[str, Decimal]]] = {}
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.subject] = counts.get(row.subject, 0) + 1
    policies = {indicator.code: indicator.policy for indicator in scheme.indicators}
    for row in rows:
        if row.problem:
            errors.append(
                ErrorRecord(row.subject, "row", "", f"{row.source} {row.problem}", row.source)
            )
            continue
        if not row.subject.strip():
            errors.append(
                ErrorRecord(
                    row.subject, "subject", row.subject, "the subject id is blank", row.source
                )
            )
            continue
        if counts[row.subject] > 1:
            exc = DuplicateError(
                "subject",
                f"appears in {counts[row.subject]} rows; none of them is used",
                row.subject,
                subject=row.subject,
            )
            errors.append(error_record(row.subject, exc, row.source))
            continue
        values, problems = _row_values(scheme, row, policies)
        if problems:
            errors.extend(error_record(row.subject, p, row.source) for p in problems)
            continue
        valid[row.subject] = (row, values)
    return valid, errors


def evaluate(
    scheme: Scheme,
    rows: Iterable[SubjectRow],
    *,
    scheme_hash: str = "",
    library_version: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Results:
    """Evaluate ``scheme`` over the population ``rows``; pure and deterministic.

    ``scheme_hash`` and ``library_version`` are recorded in the results (the batch
    command fills them from the scheme file's canonical form and the installed
    package). ``progress(done, total)``, if given, is called as subjects are
    computed (the batch command draws its progress bar with it).
    """
    rows = list(rows)
    valid, errors = _valid_rows(scheme, rows)
    rankings = _rank_rows(scheme, valid)
    report = progress or (lambda _done, _total: None)
    step = max(1, len(valid) // 100)
    lines: list[ResultLine] = []
    totals: list[SubjectTotal] = []
    ranks_of: dict[str, dict[str, RankRow]] = {subject: {} for subject in valid}
    traces = TraceMemo()  # the run's traces that depend on values alone
    for name, (_rule, ranked) in rankings.items():
        for entry in ranked:
            ranks_of[entry[0]][name] = entry
    for done, subject in enumerate(sorted(valid), start=1):
        if done % step == 0 or done == len(valid):
            report(done, len(valid))
        row, values = valid[subject]
        ranks = ranks_of[subject]
        state = _SubjectState(subject, values, ranks, traces)
        subject_lines: list[ResultLine] = []
        penalties: list[Decimal] = []
        rewards: list[Decimal] = []
        failed = False
        for rule in scheme.rules:
            try:
                amount = rule.lean_amount_of(values, ranks)
                if amount is not None:  # the trace is built when first asked for
                    line = ResultLine._deferred(rule, state, amount)  # noqa: SLF001
                else:
                    line = ResultLine(subject, rule.id, rule.kind, rule.evaluate(state.context()))
                    amount = line.amount  # computed here: an amount beyond range is an error
                subject_lines.append(line)
                (penalties if rule.kind == "penalty" else rewards).append(amount)
            except BankKPIError as exc:
                errors.append(error_record(subject, exc, row.source, rule.id))
                failed = True
        if failed:
            continue
        lines.extend(subject_lines)
        totals.append(
            SubjectTotal(subject, dict(row.attributes), exact_sum(penalties), exact_sum(rewards))
        )
    return Results(
        scheme.id,
        scheme.version,
        scheme_hash,
        library_version,
        tuple(lines),
        tuple(totals),
        _group_totals(scheme, totals),
        _rollups(scheme, totals),
        tuple(errors),
        len(rows),
        len(valid) if scheme.rankings else 0,
        _splits(scheme, totals),
    )


def _rankings(
    scheme: Scheme, valid: Mapping[str, tuple[SubjectRow, dict[str, Decimal]]]
) -> dict[str, Ranking]:
    """The scheme's rankings of the valid rows."""
    return {
        name: Ranking(rule, [RankedSubject(*row) for row in rows])
        for name, (rule, rows) in _rank_rows(scheme, valid).items()
    }


def _rank_rows(
    scheme: Scheme, valid: Mapping[str, tuple[SubjectRow, dict[str, Decimal]]]
) -> dict[str, tuple[RankingRule, list[RankRow]]]:
    """Each ranking's rule and entries (as rows), by name: :func:`rank` of the valid rows."""
    result: dict[str, tuple[RankingRule, list[RankRow]]] = {}
    for spec in scheme.rankings:
        values = {s: v[spec.variable] for s, (_row, v) in valid.items()}
        if spec.group_by is None:
            groups: Mapping[str, str] | str = "all"
        else:
            groups = {s: row.attributes[spec.group_by] for s, (row, _v) in valid.items()}
        result[spec.name] = (spec.rule, rank_rows(values, spec.rule, groups=groups))
    return result


def _group_totals(
    scheme: Scheme, totals: Iterable[SubjectTotal]
) -> dict[str, dict[str, tuple[Decimal, Decimal]]]:
    out: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    for attribute in scheme.group_by:
        groups: dict[str, tuple[Decimal, Decimal]] = {}
        fields: dict[str, tuple[str, str]] = {}  # worded once per group
        for total in totals:
            key = total.attributes[attribute]
            penalty, reward = groups.get(key, (_ZERO, _ZERO))
            names = fields.get(key)
            if names is None:
                names = fields[key] = (
                    f"penalty of {attribute} {key}",
                    f"reward of {attribute} {key}",
                )
            groups[key] = (
                exact_add(penalty, total.penalty, field=names[0]),
                exact_add(reward, total.reward, field=names[1]),
            )
        out[attribute] = dict(sorted(groups.items()))
    return out


def _rollups(scheme: Scheme, totals: Iterable[SubjectTotal]) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}
    for rollup in scheme.rollups:
        charged: dict[str, Decimal] = {}
        for total in totals:
            key = total.attributes[rollup.to]
            amount = total.penalty if rollup.kind == "penalty" else total.reward
            charged[key] = exact_add(charged.get(key, _ZERO), amount, field=f"{rollup.to} {key}")
        out[f"{rollup.kind}→{rollup.to}"] = dict(sorted(charged.items()))
    return out


def _splits(
    scheme: Scheme, totals: Iterable[SubjectTotal]
) -> dict[str, dict[str, dict[str, Decimal]]]:
    out: dict[str, dict[str, dict[str, Decimal]]] = {}
    for split in scheme.splits:
        parts: dict[str, dict[str, Decimal]] = {}
        for total in totals:
            shares = parse_members(total.attributes[split.members], subject=total.subject)
            amount = total.penalty if split.kind == "penalty" else total.reward
            parts[total.subject] = split_amount(amount, shares, "fen")
        out[f"{split.kind}÷{split.members}"] = parts
    return out


def split_amount(
    total: DecimalLike, shares: Mapping[str, DecimalLike], place: DecimalLike = "fen"
) -> dict[str, Decimal]:
    """Split ``total`` among members by ``shares``; the parts always sum to the total.

    Largest-remainder rule: each member first gets its exact share rounded *down* (toward
    zero) to ``place`` (``"fen"``, ``"yuan"`` or a power of ten); the units left over go
    one each to the members with the largest remainders, ties to the member id that
    sorts first. ``total`` must be a whole number of places (an amount already rounded).

    >>> split_amount("100.00", {"张": 1, "李": 1, "王": 1})
    {'张': Decimal('33.34'), '李': Decimal('33.33'), '王': Decimal('33.33')}
    """
    down = RoundingPolicy("down", place)
    amount = to_decimal(total, field="total")
    weights = {m: to_decimal(w, field=f"shares[{m}]") for m, w in shares.items()}
    if not weights:
        raise InvalidValueError("shares", "must name at least one member", {})
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        shown = {m: str(w) for m, w in weights.items()}
        raise InvalidValueError("shares", "must be >= 0 and add up to more than 0", shown)
    units = CONTEXT.divide(amount, down.place)
    if units != units.to_integral_value():
        raise InvalidValueError("total", f"must be a whole number of {down.place}", amount)
    whole_units = int(units)
    weight_sum = sum((Fraction(w) for w in weights.values()), Fraction(0))
    sign = -1 if whole_units < 0 else 1
    exact = {m: Fraction(abs(whole_units)) * Fraction(w) / weight_sum for m, w in weights.items()}
    base = {m: int(v) for m, v in exact.items()}
    left = abs(whole_units) - sum(base.values())
    order = sorted(weights, key=lambda m: (-(exact[m] - base[m]), m))
    for member in order[:left]:
        base[member] += 1
    return {
        m: round_fraction(Fraction(sign * base[m]) * Fraction(down.place), down) for m in weights
    }
