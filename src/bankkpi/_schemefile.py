"""Scheme files: TOML and JSON in, a typed :class:`~bankkpi.Scheme` out, and back.

A scheme file is data. It is parsed into bankkpi's own values by the table of
*specs* below — one per value type, naming each key, its kind, and whether it is
required — and nothing in it is ever evaluated as code. The same table writes the
canonical JSON form (sorted keys, normalized numbers, every field explicit) whose
SHA-256 is the scheme's content hash, and the JSON Schema of the format.

Every problem in a file is reported at once, each with its path:
``rules[2].formula.rate: 'rate' must be >= 0: Decimal('-200')``. Unknown keys are
refused. Numbers are read exactly (TOML and JSON floats become Decimals, never
binary floats). The file carries ``format = 1``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

import attrs

from bankkpi._bands import Band, BandSet
from bankkpi._competitions import Competition
from bankkpi._explain import Text
from bankkpi._expressions import Expression
from bankkpi._formulas import (
    AllOf,
    AnyOf,
    BandAmount,
    Choose,
    Clamp,
    Compare,
    Discretionary,
    Escalating,
    Fixed,
    InBand,
    InRanks,
    Met,
    Multiply,
    Not,
    PerCount,
    PerPeriodEarly,
    RateTable,
    Rule,
    Shortfall,
    Sum,
    Var,
    When,
)
from bankkpi._indicators import Indicator
from bankkpi._money import CONTEXT, RoundingPolicy, to_decimal
from bankkpi._periods import Period
from bankkpi._ranking import Bottom, Exemption, Percentile, RankingRule, RankRange, Top
from bankkpi._schemes import Input, RankingSpec, RollUp, Scheme, Split
from bankkpi._scorecards import (
    ByPlace,
    ByRank,
    Module,
    NonCumulative,
    PerOccurrence,
    PointScorecard,
    Ranged,
    Veto,
)
from bankkpi._targets import AtLeast, AtMost, Within
from bankkpi.exceptions import BankKPIError, ConfigError, ValidationErrorGroup

__all__ = [
    "FORMAT_VERSION",
    "AnyScheme",
    "SchemeFileError",
    "canonical_json",
    "dump_scheme",
    "json_schema",
    "load_any",
    "load_scheme",
    "parse_any",
    "parse_competition",
    "parse_scheme",
    "scheme_hash",
]

FORMAT_VERSION: Final = 1
"""The version of the scheme file format this library reads and writes."""

_MISSING: Final = object()


class SchemeFileError(ValidationErrorGroup):
    """Every problem found in a scheme file, each a :class:`ConfigError` with its path."""


class _Problem(Exception):  # noqa: N818 - internal control flow, never escapes
    """Raised inside a decoder to abandon one value; the problem is already recorded."""


# ------------------------------------------------------------------------- kinds
#
# A kind knows how to decode a value found at a path, encode it back to canonical
# data, and describe itself in JSON Schema.


class _Kind:
    def decode(self, data: object, path: str, ctx: _Decoder) -> Any:
        raise NotImplementedError

    def encode(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError


class _Decoder:
    def __init__(self, labels: Mapping[str, Text] | None = None) -> None:
        self.problems: list[BankKPIError] = []
        self.labels: Mapping[str, Text] = labels or {}

    def fail(self, path: str, message: str) -> _Problem:
        self.problems.append(ConfigError(f"{path or '(top)'}: {message}"))
        return _Problem()

    def build(self, path: str, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except ValidationErrorGroup as group:
            for problem in group.problems:
                self.problems.append(ConfigError(f"{path or '(top)'}: {problem}"))
            raise _Problem from None
        except BankKPIError as exc:
            raise self.fail(path, str(exc)) from None


def _normal(value: Decimal) -> str:
    text = f"{value.normalize(CONTEXT):f}"
    return "0" if text in ("-0", "0") else text


class _Decimal(_Kind):
    def decode(self, data: object, path: str, ctx: _Decoder) -> Decimal:
        if isinstance(data, float):
            raise ctx.fail(path, f"must be an exact number; write it as a string: {data!r}")
        try:
            return to_decimal(data, field=path.rsplit(".", 1)[-1])
        except BankKPIError as exc:
            raise ctx.fail(path, str(exc)) from None

    def encode(self, value: Decimal) -> str:
        return _normal(value)

    def schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "integer"},
                {"type": "number"},
                {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"},
            ]
        }


class _Int(_Kind):
    def decode(self, data: object, path: str, ctx: _Decoder) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise ctx.fail(path, f"must be a whole number: {data!r}")
        return data

    def encode(self, value: int) -> int:
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "integer"}


class _Str(_Kind):
    def __init__(self, choices: tuple[str, ...] = ()) -> None:
        self.choices = choices

    def decode(self, data: object, path: str, ctx: _Decoder) -> str:
        if not isinstance(data, str):
            raise ctx.fail(path, f"must be a string: {data!r}")
        if self.choices and data not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            raise ctx.fail(path, f"must be one of {allowed}: {data!r}")
        return data

    def encode(self, value: str) -> str:
        return value

    def schema(self) -> dict[str, Any]:
        return (
            {"type": "string", "enum": list(self.choices)} if self.choices else {"type": "string"}
        )


class _Bool(_Kind):
    def decode(self, data: object, path: str, ctx: _Decoder) -> bool:
        if not isinstance(data, bool):
            raise ctx.fail(path, f"must be true or false: {data!r}")
        return data

    def encode(self, value: bool) -> bool:
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


class _Text(_Kind):
    def decode(self, data: object, path: str, ctx: _Decoder) -> Text:
        if isinstance(data, str) and data.strip():
            return Text(data, data)
        if isinstance(data, Mapping) and set(data) == {"zh", "en"}:
            zh, en = data["zh"], data["en"]
            if isinstance(zh, str) and isinstance(en, str):
                return Text(zh, en)
        raise ctx.fail(path, f"must be a string or {{zh = ..., en = ...}}: {data!r}")

    def encode(self, value: Text) -> dict[str, str]:
        return value.to_dict()

    def schema(self) -> dict[str, Any]:
        return {
            "oneOf": [
                {"type": "string", "minLength": 1},
                {
                    "type": "object",
                    "properties": {"zh": {"type": "string"}, "en": {"type": "string"}},
                    "required": ["zh", "en"],
                    "additionalProperties": False,
                },
            ]
        }


class _Var(_Kind):
    """A variable: its name in the file; the label comes from the scheme's inputs."""

    def decode(self, data: object, path: str, ctx: _Decoder) -> Var:
        name = _Str().decode(data, path, ctx)
        return Var(name, ctx.labels.get(name))

    def encode(self, value: Var) -> str:
        return value.name

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}


class _List(_Kind):
    def __init__(self, item: _Kind, *, non_empty: bool = False) -> None:
        self.item = item
        self.non_empty = non_empty

    def decode(self, data: object, path: str, ctx: _Decoder) -> tuple[Any, ...]:
        if not isinstance(data, list | tuple):
            raise ctx.fail(path, f"must be a list: {_short(data)}")
        if self.non_empty and not data:
            raise ctx.fail(path, "must not be empty")
        out, failed = [], False
        for index, item in enumerate(data):
            try:
                out.append(self.item.decode(item, f"{path}[{index}]", ctx))
            except _Problem:
                failed = True
        if failed:
            raise _Problem
        return tuple(out)

    def encode(self, value: tuple[Any, ...]) -> list[Any]:
        return [self.item.encode(v) for v in value]

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.item.schema()}
        if self.non_empty:
            schema["minItems"] = 1
        return schema


class _Map(_Kind):
    def __init__(self, value: _Kind, *, int_keys: bool = False) -> None:
        self.value = value
        self.int_keys = int_keys

    def decode(self, data: object, path: str, ctx: _Decoder) -> dict[Any, Any]:
        if not isinstance(data, Mapping):
            raise ctx.fail(path, f"must be a table: {_short(data)}")
        out: dict[Any, Any] = {}
        failed = False
        for key, item in data.items():
            try:
                decoded_key: object = key
                if self.int_keys:
                    if not (isinstance(key, str) and key.isdigit()):
                        raise ctx.fail(f"{path}.{key}", "must be keyed by whole numbers 1, 2, 3")
                    decoded_key = int(key)
                out[decoded_key] = self.value.decode(item, f"{path}.{key}", ctx)
            except _Problem:
                failed = True
        if failed:
            raise _Problem
        return out

    def encode(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        return {str(k): self.value.encode(v) for k, v in value.items()}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.schema()}


@attrs.frozen
class _Field:
    key: str
    kind: _Kind
    default: Any = _MISSING
    attr: str | None = None  # the constructor keyword, when it differs from the key


class _Object(_Kind):
    """A value built from a table of known keys; unknown keys are refused."""

    def __init__(
        self,
        cls: Callable[..., Any],
        fields: list[_Field],
        *,
        tag: str | None = None,
        build: Callable[[dict[str, Any]], Any] | None = None,
        read: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        self.cls = cls
        self.fields = fields
        self.tag = tag
        self.build_fn = build
        self.read_fn = read

    def decode(self, data: object, path: str, ctx: _Decoder) -> Any:
        if not isinstance(data, Mapping):
            raise ctx.fail(path, f"must be a table: {_short(data)}")
        failed = self._unknown_keys(data, path, ctx)
        values: dict[str, Any] = {}
        for spec in self.fields:
            where = f"{path}.{spec.key}" if path else spec.key
            if spec.key not in data:
                if spec.default is _MISSING:
                    ctx.fail(where, "is required")
                    failed = True
                elif spec.default is not None:
                    values[spec.attr or spec.key] = spec.default
                continue
            raw = data[spec.key]
            if raw is None and spec.default is None:
                continue
            try:
                values[spec.attr or spec.key] = spec.kind.decode(raw, where, ctx)
            except _Problem:
                failed = True
        if failed:
            raise _Problem
        if self.build_fn is not None:
            build_fn = self.build_fn
            return ctx.build(path, lambda: build_fn(values))
        return ctx.build(path, lambda: self.cls(**values))

    def _unknown_keys(self, data: Mapping[str, Any], path: str, ctx: _Decoder) -> bool:
        known = {f.key for f in self.fields} | ({"type"} if self.tag else set())
        unknown = [key for key in data if key not in known]
        allowed = ", ".join(sorted(known))
        for key in unknown:
            ctx.fail(f"{path}.{key}" if path else str(key), f"unknown key (allowed: {allowed})")
        return bool(unknown)

    def encode(self, value: Any) -> dict[str, Any]:
        read = self.read_fn(value) if self.read_fn is not None else None
        out: dict[str, Any] = {"type": self.tag} if self.tag else {}
        for spec in self.fields:
            item = read[spec.key] if read is not None else getattr(value, spec.attr or spec.key)
            out[spec.key] = None if item is None else spec.kind.encode(item)
        return out

    def schema(self) -> dict[str, Any]:
        properties = {f.key: f.kind.schema() for f in self.fields}
        required = [f.key for f in self.fields if f.default is _MISSING]
        if self.tag:
            properties["type"] = {"const": self.tag}
            required = ["type", *required]
        return {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }


class _Family(_Kind):
    """A tagged union: ``type = "shortfall"`` picks the member."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, _Object] = {}

    def add(self, member: _Object) -> None:
        assert member.tag is not None  # noqa: S101 - family members are tagged
        self.members[member.tag] = member

    def decode(self, data: object, path: str, ctx: _Decoder) -> Any:
        if not isinstance(data, Mapping) or "type" not in data:
            raise ctx.fail(path, f"must be a table with a 'type' naming the {self.name}")
        tag = data["type"]
        member = self.members.get(tag) if isinstance(tag, str) else None
        if member is None:
            allowed = ", ".join(sorted(self.members))
            raise ctx.fail(f"{path}.type", f"unknown {self.name} type {tag!r} (allowed: {allowed})")
        return member.decode(data, path, ctx)

    def encode(self, value: Any) -> dict[str, Any]:
        for member in self.members.values():
            if type(value) is member.cls:
                return member.encode(value)
        msg = f"no {self.name} spec for {type(value).__name__}"
        raise ConfigError(msg)

    def schema(self) -> dict[str, Any]:
        return {"$ref": f"#/$defs/{self.name}"}

    def definition(self) -> dict[str, Any]:
        return {"oneOf": [m.schema() for m in self.members.values()]}


def _short(data: object) -> str:
    text = repr(data)
    return text if len(text) <= 60 else f"{text[:57]}..."


# ------------------------------------------------------------------------- specs

DEC = _Decimal()
INT = _Int()
STR = _Str()
BOOL = _Bool()
TEXT = _Text()
VAR = _Var()
_AMOUNT = Text("金额", "amount")


def _f(key: str, kind: _Kind, default: Any = _MISSING, attr: str | None = None) -> _Field:
    return _Field(key, kind, default, attr)


ROUNDING = _Object(
    RoundingPolicy,
    [
        _f("mode", _Str(("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor"))),
        _f("place", STR),
    ],
    read=lambda r: {"mode": r.mode, "place": _normal(r.place)},
)
PERIOD = _Object(
    Period,
    [_f("start", STR), _f("end", STR)],
    read=lambda p: {"start": p.start.isoformat(), "end": p.end.isoformat()},
)
BAND = _Object(
    Band.interval,
    [_f("label", STR), _f("interval", STR)],
    build=lambda v: Band.interval(v["label"], v["interval"]),
    read=lambda b: {"label": b.label, "interval": b.notation},
)
BANDS = _Object(
    BandSet,
    [
        _f("bands", _List(BAND, non_empty=True)),
        _f("scale", _List(DEC), None),
        _f("catch_all", STR, None),
    ],
)

TARGET = _Family("target")
TARGET.add(
    _Object(AtLeast, [_f("threshold", DEC), _f("inclusive", BOOL, default=True)], tag="at_least")
)
TARGET.add(
    _Object(AtMost, [_f("threshold", DEC), _f("inclusive", BOOL, default=True)], tag="at_most")
)
TARGET.add(
    _Object(
        Within,
        [
            _f("low", DEC),
            _f("high", DEC),
            _f("low_inclusive", BOOL, default=True),
            _f("high_inclusive", BOOL, default=True),
        ],
        tag="within",
    )
)

SELECTION = _Family("selection")
SELECTION.add(_Object(Top, [_f("n", INT), _f("scope", STR, None)], tag="top"))
SELECTION.add(_Object(Bottom, [_f("n", INT), _f("scope", STR, None)], tag="bottom"))
SELECTION.add(
    _Object(
        RankRange,
        [
            _f("side", _Str(("top", "bottom"))),
            _f("first", INT),
            _f("last", INT),
            _f("scope", STR, None),
        ],
        tag="rank_range",
    )
)
SELECTION.add(
    _Object(
        Percentile,
        [
            _f("side", _Str(("top", "bottom"))),
            _f("percent", DEC),
            _f("rounding", _Str(("ceiling", "floor", "half_up", "half_even", "half_down"))),
            _f("scope", STR, None),
        ],
        tag="percentile",
    )
)
SELECTION.add(_Object(Exemption, [_f("selection", SELECTION)], tag="exemption"))

PREDICATE = _Family("predicate")
FORMULA = _Family("formula")
PREDICATE.add(_Object(Met, [_f("target", TARGET), _f("variable", VAR)], tag="met"))
PREDICATE.add(
    _Object(
        Compare,
        [_f("variable", VAR), _f("op", _Str(("<", "<=", "==", "!=", ">=", ">"))), _f("value", DEC)],
        tag="compare",
    )
)
PREDICATE.add(
    _Object(
        InBand,
        [_f("bands", BANDS), _f("labels", _List(STR, non_empty=True)), _f("variable", VAR)],
        build=lambda v: InBand(v["bands"], frozenset(v["labels"]), v["variable"]),
        read=lambda p: {
            "bands": p.bands,
            "labels": tuple(sorted(p.labels)),
            "variable": p.variable,
        },
        tag="in_band",
    )
)
PREDICATE.add(_Object(InRanks, [_f("ranking", STR), _f("selection", SELECTION)], tag="in_ranks"))
PREDICATE.add(_Object(AllOf, [_f("predicates", _List(PREDICATE, non_empty=True))], tag="all_of"))
PREDICATE.add(_Object(AnyOf, [_f("predicates", _List(PREDICATE, non_empty=True))], tag="any_of"))
PREDICATE.add(_Object(Not, [_f("predicate", PREDICATE)], tag="not"))

FORMULA.add(
    _Object(
        Fixed,
        [_f("amount", DEC), _f("label", TEXT, _AMOUNT), _f("note", TEXT, None)],
        tag="fixed",
    )
)
FORMULA.add(
    _Object(
        Shortfall,
        [
            _f("target", TARGET),
            _f("variable", VAR),
            _f("rate", DEC, Decimal(0)),
            _f("base", DEC, Decimal(0)),
            _f("per", DEC, Decimal(1)),
            _f("counting", _Str(("exact", "started", "completed")), "exact"),
            _f("label", TEXT, _AMOUNT),
        ],
        tag="shortfall",
    )
)
FORMULA.add(
    _Object(
        PerCount,
        [_f("rate", DEC), _f("variable", VAR), _f("label", TEXT, _AMOUNT)],
        tag="per_count",
    )
)
FORMULA.add(
    _Object(
        Escalating,
        [
            _f("rates", _List(DEC, non_empty=True)),
            _f("units", VAR),
            _f("offence", VAR),
            _f("label", TEXT, _AMOUNT),
        ],
        tag="escalating",
    )
)
FORMULA.add(
    _Object(
        PerPeriodEarly,
        [_f("amount", DEC), _f("variable", VAR), _f("label", TEXT, _AMOUNT)],
        tag="per_period_early",
    )
)
FORMULA.add(
    _Object(
        Discretionary,
        [_f("item", TEXT), _f("low", DEC), _f("high", DEC), _f("variable", VAR)],
        tag="discretionary",
    )
)
FORMULA.add(
    _Object(
        BandAmount,
        [
            _f("bands", BANDS),
            _f("amounts", _Map(DEC)),
            _f("variable", VAR),
            _f("label", TEXT, _AMOUNT),
        ],
        tag="band_amount",
    )
)
TIER = _Object(
    tuple,
    [_f("from", DEC), _f("rate", DEC)],
    build=lambda v: (v["from"], v["rate"]),
    read=lambda t: {"from": t[0], "rate": t[1]},
)
FORMULA.add(
    _Object(
        RateTable,
        [
            _f("tiers", _List(TIER, non_empty=True)),
            _f("variable", VAR),
            _f("mode", _Str(("tiered", "graduated"))),
            _f("scale", DEC, Decimal(1)),
            _f("label", TEXT, _AMOUNT),
        ],
        tag="rate_table",
    )
)
FORMULA.add(
    _Object(
        When,
        [
            _f("when", PREDICATE, attr="predicate"),
            _f("then", FORMULA),
            _f("otherwise", FORMULA, None),
        ],
        read=lambda w: {"when": w.predicate, "then": w.then, "otherwise": w.otherwise},
        tag="when",
    )
)
CASE = _Object(
    tuple,
    [_f("when", PREDICATE), _f("then", FORMULA)],
    build=lambda v: (v["when"], v["then"]),
    read=lambda c: {"when": c[0], "then": c[1]},
)
FORMULA.add(
    _Object(
        Choose,
        [_f("cases", _List(CASE, non_empty=True)), _f("otherwise", FORMULA, None)],
        tag="choose",
    )
)
FORMULA.add(
    _Object(
        Clamp,
        [_f("formula", FORMULA), _f("minimum", DEC, None), _f("maximum", DEC, None)],
        tag="clamp",
    )
)
FORMULA.add(
    _Object(
        Multiply,
        [
            _f("formula", FORMULA),
            _f("factor", DEC),
            _f("when", PREDICATE, None),
            _f("reason", TEXT, Text("加倍考核", "doubled")),
        ],
        tag="multiply",
    )
)
FORMULA.add(
    _Object(
        Sum,
        [
            _f("parts", _List(FORMULA, non_empty=True)),
            _f("label", TEXT, _AMOUNT),
            _f("rounding", ROUNDING, None),
        ],
        tag="sum",
    )
)

FORMULA.add(
    _Object(
        Expression,
        [_f("source", STR), _f("variables", _List(VAR)), _f("label", TEXT, _AMOUNT)],
        tag="expression",
    )
)

INDICATOR = _Object(
    Indicator,
    [
        _f("code", STR),
        _f("name", STR),
        _f(
            "unit",
            _Str(
                (
                    "points",
                    "percent",
                    "ratio",
                    "count",
                    "yuan",
                    "days",
                    "hours",
                    "minutes",
                    "seconds",
                )
            ),
        ),
        _f("direction", _Str(("higher_is_better", "lower_is_better"))),
        _f("scale_min", DEC, None),
        _f("scale_max", DEC, None),
        _f("precision", DEC),
        _f(
            "rounding",
            _Str(("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor")),
        ),
    ],
)
DERIVE = _Object(
    Expression,
    [_f("source", STR), _f("variables", _List(VAR))],
    build=lambda v: Expression(v["source"], v["variables"]),
    read=lambda e: {"source": e.source, "variables": e.variables},
)
INPUT = _Object(
    Input,
    [
        _f("name", STR),
        _f("label", TEXT),
        _f("indicator", STR, None),
        _f("default", DEC, None),
        _f("derive", DERIVE, None),
    ],
)
RANKING = _Object(
    RankingSpec,
    [
        _f("name", STR),
        _f("variable", STR),
        _f("better", _Str(("higher", "lower"))),
        _f("ties", _Str(("competition", "dense", "ordinal", "average"))),
        _f("tie_break", _Str(("subject_asc", "subject_desc")), None),
        _f("group_by", STR, None),
    ],
    build=lambda v: RankingSpec(
        v["name"],
        v["variable"],
        RankingRule(v["better"], v["ties"], tie_break=v.get("tie_break")),
        v.get("group_by"),
    ),
    read=lambda r: {
        "name": r.name,
        "variable": r.variable,
        "better": r.rule.better,
        "ties": r.rule.ties,
        "tie_break": r.rule.tie_break,
        "group_by": r.group_by,
    },
)
ROLLUP = _Object(RollUp, [_f("to", STR), _f("kind", _Str(("penalty", "reward")))])
SPLIT = _Object(Split, [_f("members", STR), _f("kind", _Str(("penalty", "reward")))])


def _rule_spec(default_rounding: RoundingPolicy | None) -> _Object:
    return _Object(
        Rule,
        [
            _f("id", STR),
            _f("name", TEXT),
            _f("kind", _Str(("penalty", "reward"))),
            _f("formula", FORMULA),
            _f("rounding", ROUNDING, _MISSING if default_rounding is None else default_rounding),
        ],
    )


def _scheme_spec(default_rounding: RoundingPolicy | None) -> _Object:
    return _Object(
        Scheme,
        [
            _f("format", INT),
            _f("kind", _Str(("rules",)), "rules"),
            _f("id", STR),
            _f("version", STR),
            _f("name", TEXT),
            _f("effective", PERIOD),
            _f("rounding", ROUNDING),
            _f("attributes", _List(STR), ()),
            _f("group_by", _List(STR), ()),
            _f("indicators", _List(INDICATOR), ()),
            _f("inputs", _List(INPUT)),
            _f("rankings", _List(RANKING), ()),
            _f("rules", _List(_rule_spec(default_rounding), non_empty=True)),
            _f("rollups", _List(ROLLUP), ()),
            _f("splits", _List(SPLIT), ()),
        ],
        build=lambda v: Scheme(**{k: val for k, val in v.items() if k not in ("format", "kind")}),
        read=lambda s: {
            "format": FORMAT_VERSION,
            "kind": "rules",
            **{f.name: getattr(s, f.name) for f in attrs.fields(Scheme)},
        },
    )


ITEM = _Family("item")
_MODULE_FIELD = _f("module", STR, "main")
ITEM.add(
    _Object(
        PerOccurrence,
        [_f("code", STR), _f("name", TEXT), _f("points", DEC), _MODULE_FIELD],
        tag="per_occurrence",
    )
)
ITEM.add(
    _Object(
        ByPlace,
        [
            _f("code", STR),
            _f("name", TEXT),
            _f("points_by_place", _Map(DEC, int_keys=True)),
            _MODULE_FIELD,
        ],
        tag="by_place",
    )
)
ITEM.add(
    _Object(
        Ranged,
        [_f("code", STR), _f("name", TEXT), _f("low", DEC), _f("high", DEC), _MODULE_FIELD],
        tag="ranged",
    )
)
ITEM.add(_Object(Veto, [_f("code", STR), _f("name", TEXT)], tag="veto"))
ITEM.add(
    _Object(
        ByRank,
        [
            _f("code", STR),
            _f("name", TEXT),
            _f("points_by_rank", _Map(DEC, int_keys=True)),
            _f("better", _Str(("higher", "lower"))),
            _f("ties", _Str(("competition", "dense", "ordinal", "average"))),
            _f("qualifier", TARGET, None),
            _MODULE_FIELD,
        ],
        build=lambda v: ByRank(
            v["code"],
            v["name"],
            v["points_by_rank"],
            RankingRule(v["better"], v["ties"]),
            v.get("qualifier"),
            v["module"],
        ),
        read=lambda i: {
            "code": i.code,
            "name": i.name,
            "points_by_rank": i.points_by_rank,
            "better": i.ranking.better,
            "ties": i.ranking.ties,
            "qualifier": i.qualifier,
            "module": i.module,
        },
        tag="by_rank",
    )
)
MODULE = _Object(
    Module,
    [_f("code", STR), _f("name", TEXT), _f("max_bonus", DEC, None), _f("max_deduction", DEC, None)],
)
GROUP = _Object(
    NonCumulative,
    [_f("code", STR), _f("name", TEXT), _f("items", _List(STR, non_empty=True))],
    build=lambda v: NonCumulative(v["code"], v["name"], frozenset(v["items"])),
    read=lambda g: {"code": g.code, "name": g.name, "items": tuple(sorted(g.items))},
)
COMPETITION = _Object(
    Competition,
    [
        _f("format", INT),
        _f("kind", _Str(("point_scorecard",))),
        _f("id", STR),
        _f("version", STR),
        _f("name", TEXT),
        _f("effective", PERIOD),
        _f("rounding", ROUNDING),
        _f("base", DEC, Decimal(100)),
        _f("items", _List(ITEM, non_empty=True)),
        _f("modules", _List(MODULE), ()),
        _f("groups", _List(GROUP), ()),
        _f("max_bonus", DEC, None),
        _f("max_deduction", DEC, None),
        _f("winners", INT),
        _f("ties", _Str(("competition", "ordinal"))),
    ],
    build=lambda v: Competition(
        v["id"],
        v["version"],
        v["name"],
        v["effective"],
        PointScorecard(
            v["id"],
            v["name"],
            v["items"],
            base=v["base"],
            modules=v["modules"],
            groups=v["groups"],
            max_bonus=v.get("max_bonus"),
            max_deduction=v.get("max_deduction"),
            rounding=v["rounding"],
        ),
        v["winners"],
        v["ties"],
    ),
    read=lambda c: {
        "format": FORMAT_VERSION,
        "kind": "point_scorecard",
        "id": c.id,
        "version": c.version,
        "name": c.name,
        "effective": c.effective,
        "rounding": c.card.rounding,
        "base": c.card.base,
        "items": c.card.items,
        "modules": c.card.modules,
        "groups": c.card.groups,
        "max_bonus": c.card.max_bonus,
        "max_deduction": c.card.max_deduction,
        "winners": c.winners,
        "ties": c.ties,
    },
)


# ---------------------------------------------------------------------- public API


AnyScheme = Scheme | Competition
"""A rules scheme (``kind = "rules"``, the default) or a point-scorecard competition."""


def _read_data(text: str, format: str) -> Any:  # noqa: A002 - the file format's name; parsed data
    import tomllib  # noqa: PLC0415 - standard library, only needed here

    try:
        if format == "toml":
            return tomllib.loads(text, parse_float=Decimal)
        if format == "json":
            return json.loads(text, parse_float=Decimal)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SchemeFileError("invalid scheme file", [ConfigError(f"(syntax): {exc}")]) from None
    raise ConfigError(f"format must be 'toml' or 'json': {format!r}")


def _decode(data: object, spec: _Object, labels: Mapping[str, Text]) -> Any:
    if not isinstance(data, Mapping):
        raise SchemeFileError("invalid scheme file", [ConfigError("(top): must be a table")])
    ctx = _Decoder(labels)
    version = data.get("format")
    if version != FORMAT_VERSION:
        ctx.fail(
            "format",
            f"must be {FORMAT_VERSION} (this library reads format {FORMAT_VERSION}): {version!r}",
        )
    try:
        value = spec.decode(data, "", ctx)
    except _Problem:
        value = None
    if ctx.problems or value is None:
        raise SchemeFileError("invalid scheme file", ctx.problems)
    return value


def parse_scheme(data: Mapping[str, Any]) -> Scheme:
    """Build a :class:`Scheme` from parsed file data (a dict from TOML or JSON).

    Raises:
        SchemeFileError: every problem, each with its path in the file.
    """
    default_rounding = None
    if isinstance(data, Mapping) and "rounding" in data:
        try:
            default_rounding = ROUNDING.decode(data["rounding"], "rounding", _Decoder())
        except _Problem:
            default_rounding = None
    labels: dict[str, Text] = {}
    inputs = data.get("inputs") if isinstance(data, Mapping) else None
    for item in inputs if isinstance(inputs, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and "label" in item:
            try:
                labels[item["name"]] = TEXT.decode(item["label"], "", _Decoder())
            except _Problem:
                continue
    scheme: Scheme = _decode(data, _scheme_spec(default_rounding), labels)
    return scheme


def parse_competition(data: Mapping[str, Any]) -> Competition:
    """Build a :class:`Competition` from parsed file data (``kind = "point_scorecard"``)."""
    competition: Competition = _decode(data, COMPETITION, {})
    return competition


def parse_any(data: Mapping[str, Any]) -> AnyScheme:
    """A scheme or a competition, as the file's ``kind`` says (default ``"rules"``)."""
    kind = data.get("kind", "rules") if isinstance(data, Mapping) else "rules"
    if kind == "point_scorecard":
        return parse_competition(data)
    return parse_scheme(data)


def load_scheme(text: str, *, format: str) -> Scheme:  # noqa: A002 - the file format's name
    """Parse scheme file text in ``format`` ``"toml"`` or ``"json"`` (numbers read exactly)."""
    return parse_scheme(_read_data(text, format))


def load_any(text: str, *, format: str) -> AnyScheme:  # noqa: A002 - the file format's name
    """Parse a scheme or competition file in ``format`` ``"toml"`` or ``"json"``."""
    return parse_any(_read_data(text, format))


def dump_scheme(scheme: AnyScheme) -> dict[str, Any]:
    """The canonical data of ``scheme``: every field explicit, numbers normalized."""
    spec = COMPETITION if isinstance(scheme, Competition) else _scheme_spec(None)
    encoded: dict[str, Any] = spec.encode(scheme)
    return encoded


def canonical_json(scheme: AnyScheme) -> str:
    """The canonical JSON text: sorted keys, no insignificant white space, UTF-8."""
    return json.dumps(
        dump_scheme(scheme), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )


def scheme_hash(scheme: AnyScheme) -> str:
    """SHA-256 of :func:`canonical_json`, as ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(canonical_json(scheme).encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the scheme file format (both kinds)."""
    rules = _scheme_spec(None).schema()
    rules["properties"]["format"] = {"const": FORMAT_VERSION}
    rules["properties"]["kind"] = {"const": "rules"}
    rules["required"] = [r for r in rules["required"] if r != "kind"]
    competition = COMPETITION.schema()
    competition["properties"]["format"] = {"const": FORMAT_VERSION}
    competition["properties"]["kind"] = {"const": "point_scorecard"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://bankkpi.invalid/scheme-format-1.json",
        "title": "bankkpi scheme file, format 1",
        "oneOf": [{"$ref": "#/$defs/rules_scheme"}, {"$ref": "#/$defs/point_scorecard"}],
        "$defs": {
            "rules_scheme": rules,
            "point_scorecard": competition,
            **{f.name: f.definition() for f in (FORMULA, PREDICATE, TARGET, SELECTION, ITEM)},
        },
    }
