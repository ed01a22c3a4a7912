"""Explanations: every amount comes with the trace that produced it.

A :class:`Trace` is a tree of lines. Each line names the rule, shows the formula with
the numbers substituted (an :class:`Expr` tree), the exact value, the rounding and
the amount, and may hold the lines it was built from. Formulas compute their amount
*from* the expression they put in the trace, so the amount shown is the amount
returned, always.

Traces render as text in Chinese and English and serialise to plain JSON-able data:

>>> t = Trace.of("A.P2", Text("考核", "penalty"),
...              num(1000) + (num(95) - num("91.5")) * num(200),
...              rounding=RoundingPolicy("half_up", "yuan"))
>>> print(t.render("zh"))
考核 = 1000 + (95 − 91.5) × 200 = 1700 元
>>> print(t.render("en"))
penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan
>>> t.amount
Decimal('1700')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, Literal, TypeAlias

import attrs

from bankkpi._checks import one_of
from bankkpi._money import CONTEXT, EXACT_CONTEXT, RoundingPolicy, round_fraction, to_decimal
from bankkpi.exceptions import InvalidValueError, ZeroDenominatorError

__all__ = [
    "YUAN_UNIT",
    "BinOp",
    "Call",
    "Expr",
    "Lang",
    "Note",
    "Num",
    "Text",
    "Trace",
    "exact_decimal",
    "format_number",
    "num",
]

Lang: TypeAlias = Literal["zh", "en"]
"""The languages a trace renders in."""

_LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
_SYMBOL: Final = {"+": "+", "-": "−", "*": "×", "/": "÷"}
_PRECEDENCE: Final = {"+": 1, "-": 1, "*": 2, "/": 2}


@attrs.frozen
class Text:
    """A phrase in Chinese and English.

    >>> Text("考核", "penalty").render("zh")
    '考核'
    """

    zh: str
    en: str

    def render(self, lang: Lang) -> str:
        """The phrase in ``lang``."""
        if lang == "zh":
            return self.zh
        if lang == "en":
            return self.en
        raise InvalidValueError("lang", "must be 'zh' or 'en'", lang)

    def to_dict(self) -> dict[str, str]:
        """``{"zh": ..., "en": ...}``."""
        return {"zh": self.zh, "en": self.en}


YUAN_UNIT: Final = Text("元", "yuan")
"""The unit of every amount."""


class _Arithmetic:
    """Operator overloads shared by expression nodes: build, never compute."""

    __slots__ = ()

    def __add__(self, other: Expr) -> BinOp:
        return fast_binop("+", self, other)  # type: ignore[arg-type]

    def __sub__(self, other: Expr) -> BinOp:
        return fast_binop("-", self, other)  # type: ignore[arg-type]

    def __mul__(self, other: Expr) -> BinOp:
        return fast_binop("*", self, other)  # type: ignore[arg-type]

    def __truediv__(self, other: Expr) -> BinOp:
        return fast_binop("/", self, other)  # type: ignore[arg-type]


@attrs.frozen
class Num(_Arithmetic):
    """A number in a formula; ``name`` says what it stands for (``target``, ``score``)."""

    value: Decimal = attrs.field(converter=to_decimal)
    name: Text | None = None

    def exact(self) -> Fraction:
        """The value as an exact rational."""
        return Fraction(*self.value.as_integer_ratio())

    def decimal_value(self) -> Decimal | None:
        """The value as an exact Decimal (see :meth:`BinOp.decimal_value`)."""
        return self.value

    def render(self, lang: Lang, *, symbolic: bool = False) -> str:
        """The number (or its name, with ``symbolic=True``)."""
        if symbolic and self.name is not None:
            return self.name.render(lang)
        text = format_number(self.value)
        return f"({text})" if self.value < 0 else text

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out: dict[str, Any] = {"num": str(self.value)}
        if self.name is not None:
            out["name"] = self.name.to_dict()
        return out


@attrs.frozen
class BinOp(_Arithmetic):
    """``left op right`` for ``op`` in ``+ - * /``."""

    op: Literal["+", "-", "*", "/"] = attrs.field(validator=one_of("op", ("+", "-", "*", "/")))
    left: Expr
    right: Expr

    def exact(self) -> Fraction:
        """Exact rational value; division by zero is a typed error."""
        left, right = self.left.exact(), self.right.exact()
        if self.op == "+":
            return left + right
        if self.op == "-":
            return left - right
        if self.op == "*":
            return left * right
        if right == 0:
            raise ZeroDenominatorError("formula", self.render("en"))
        return left / right

    def decimal_value(self) -> Decimal | None:
        """:meth:`exact` as a Decimal, computed exactly, or ``None``.

        ``None`` when some operation has no exact 34-digit decimal result (``1 ÷ 3``)
        or divides by zero: :meth:`exact` then gives the rational (or the error).
        """
        left = self.left.decimal_value()
        if left is None:
            return None
        right = self.right.decimal_value()
        if right is None:
            return None
        op = self.op
        try:
            if op == "+":
                return EXACT_CONTEXT.add(left, right)
            if op == "-":
                return EXACT_CONTEXT.subtract(left, right)
            if op == "*":
                return EXACT_CONTEXT.multiply(left, right)
            if not right:
                return None
            return EXACT_CONTEXT.divide(left, right)
        except ArithmeticError:  # inexact, or beyond 34 digits: the rational route
            return None

    def render(self, lang: Lang, *, symbolic: bool = False) -> str:
        """Infix text with only the parentheses precedence needs."""
        mine = _PRECEDENCE[self.op]
        if (
            self.op in "+-"
            and isinstance(self.right, Num)
            and self.right.value < 0
            and not (symbolic and self.right.name is not None)
        ):
            # a + (−3) reads as a − 3; a − (−3) as a + 3
            flipped: Literal["+", "-"] = "-" if self.op == "+" else "+"
            return BinOp(flipped, self.left, Num(self.right.value.copy_negate())).render(
                lang, symbolic=symbolic
            )
        left = self.left.render(lang, symbolic=symbolic)
        right = self.right.render(lang, symbolic=symbolic)
        if isinstance(self.left, BinOp) and _PRECEDENCE[self.left.op] < mine:
            left = f"({left})"
        if isinstance(self.right, BinOp) and (
            _PRECEDENCE[self.right.op] < mine
            or (_PRECEDENCE[self.right.op] == mine and self.op in "-/")
        ):
            right = f"({right})"
        return f"{left} {_SYMBOL[self.op]} {right}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"op": self.op, "left": self.left.to_dict(), "right": self.right.to_dict()}


def _expr_tuple(args: Iterable[Expr]) -> tuple[Expr, ...]:
    return tuple(args)


@attrs.frozen
class Call(_Arithmetic):
    """``min(...)``, ``max(...)`` or ``abs(x)`` in a formula."""

    fn: Literal["min", "max", "abs"] = attrs.field(validator=one_of("fn", ("min", "max", "abs")))
    args: tuple[Expr, ...] = attrs.field(converter=_expr_tuple)

    @args.validator
    def _check_args(self, _attribute: object, args: tuple[Expr, ...]) -> None:
        if not args or (self.fn == "abs" and len(args) != 1):
            raise InvalidValueError("args", f"do not fit {self.fn}()", len(args))

    def exact(self) -> Fraction:
        """Exact rational value."""
        values = [a.exact() for a in self.args]
        if self.fn == "min":
            return min(values)
        if self.fn == "max":
            return max(values)
        return abs(values[0])

    def decimal_value(self) -> Decimal | None:
        """:meth:`exact` as a Decimal, or ``None`` (see :meth:`BinOp.decimal_value`)."""
        values = []
        for arg in self.args:
            value = arg.decimal_value()
            if value is None:
                return None
            values.append(value)
        if self.fn == "min":
            return min(values)
        if self.fn == "max":
            return max(values)
        return values[0].copy_abs()

    def render(self, lang: Lang, *, symbolic: bool = False) -> str:
        """``max(0, 95 − 96)``."""
        inner = ", ".join(
            format_number(a.value)
            if isinstance(a, Num) and not symbolic
            else a.render(lang, symbolic=symbolic)
            for a in self.args
        )
        return f"{self.fn}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"call": self.fn, "args": [a.to_dict() for a in self.args]}


Expr: TypeAlias = Num | BinOp | Call
"""A formula with its numbers substituted."""


def num(value: object, name: Text | None = None) -> Num:
    """Shorthand for a :class:`Num` (a number in a formula, optionally named)."""
    return Num(value, name)


_new: Final = object.__new__
_set: Final = object.__setattr__


def fast_num(value: Decimal, name: Text | None = None) -> Num:
    """``Num(value, name)`` for a value that is already a finite Decimal other than −0.

    The hot paths build many numbers from values :func:`to_decimal` has already
    coerced; this skips the converter (and falls back to it for anything else).
    """
    if type(value) is not Decimal or not value.is_finite() or (value.is_signed() and not value):
        return Num(value, name)
    result = _new(Num)
    _set(result, "value", value)
    _set(result, "name", name)
    return result


def fast_binop(op: Literal["+", "-", "*", "/"], left: Expr, right: Expr) -> BinOp:
    """``BinOp(op, left, right)`` for an operator known to be valid (skips the validator)."""
    result = _new(BinOp)
    _set(result, "op", op)
    _set(result, "left", left)
    _set(result, "right", right)
    return result


def expr_from_dict(data: Mapping[str, Any]) -> Expr:
    """Rebuild an expression from :meth:`to_dict` output."""
    if "num" in data:
        name = data.get("name")
        return Num(data["num"], Text(**name) if name else None)
    if "op" in data:
        return BinOp(data["op"], expr_from_dict(data["left"]), expr_from_dict(data["right"]))
    if "call" in data:
        return Call(data["call"], tuple(expr_from_dict(a) for a in data["args"]))
    raise InvalidValueError("expr", "must have a 'num', 'op' or 'call' key", dict(data))


def exact_decimal(value: Fraction) -> Decimal | None:
    """The rational as an exact Decimal, or ``None`` if it has no finite decimal form."""
    numerator, denominator = value.numerator, value.denominator
    if denominator == 1:
        return Decimal(numerator).scaleb(0, context=CONTEXT)
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return None
    places = max(twos, fives)
    scaled = numerator * 10**places // value.denominator  # exact: the denominator divides it
    return Decimal(scaled).scaleb(-places, context=CONTEXT)


def format_number(value: Decimal, *, grouping: bool = False) -> str:
    """Plain decimal text, never scientific; ``grouping`` adds thousands separators."""
    text = f"{value:,f}" if grouping else f"{value:f}"
    return text.replace("-", "−")


def _show_exact(value: Fraction, lang: Lang) -> str:
    exact = exact_decimal(value)
    if exact is not None:
        return format_number(exact, grouping=lang == "en")
    approx = round_fraction(value, RoundingPolicy("half_even", "0.000001"))
    return f"≈{format_number(approx, grouping=lang == 'en')}"


@attrs.frozen
class Note:
    """A remark on a trace line (why a rule did not apply, which tier was hit)."""

    text: Text

    def render(self, lang: Lang) -> str:
        """The remark in ``lang``."""
        return self.text.render(lang)


@attrs.frozen
class Trace:
    """One explained amount, possibly built from others (``parts``).

    ``value`` is exact (a rational). :attr:`amount` is derived from it: ``value``
    rounded once by ``rounding``, or ``value`` itself when this line does not round
    (then it must have a finite decimal form). Because the amount is computed from
    the trace, the amount a formula returns is the amount its trace shows.
    Build one with :meth:`of` or :meth:`fixed`.
    """

    rule: str
    label: Text
    expr: Expr | None
    value: Fraction
    rounding: RoundingPolicy | None = None
    unit: Text = YUAN_UNIT
    inputs: tuple[tuple[Text, str], ...] = ()
    notes: tuple[Text, ...] = ()
    parts: tuple[Trace, ...] = ()
    _amount: Decimal | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @classmethod
    def of(
        cls,
        rule: str,
        label: Text,
        expr: Expr,
        *,
        rounding: RoundingPolicy | None = None,
        unit: Text = YUAN_UNIT,
        inputs: Iterable[tuple[Text, object]] = (),
        notes: Iterable[Text] = (),
        parts: Iterable[Trace] = (),
    ) -> Trace:
        """Evaluate ``expr`` exactly, round it once by ``rounding``, and keep both."""
        exact = expr.decimal_value()
        return cls(
            rule,
            label,
            expr,
            expr.exact() if exact is None else Fraction(*exact.as_integer_ratio()),
            rounding,
            unit,
            tuple([(name, _text(v)) for name, v in inputs]) if inputs else (),
            notes if type(notes) is tuple else tuple(notes),
            parts if type(parts) is tuple else tuple(parts),
        )

    @classmethod
    def fixed(
        cls,
        rule: str,
        label: Text,
        amount: Decimal,
        *,
        unit: Text = YUAN_UNIT,
        inputs: Iterable[tuple[Text, object]] = (),
        notes: Iterable[Text] = (),
        parts: Iterable[Trace] = (),
    ) -> Trace:
        """A line with no formula: a stated amount (often 0, with a note saying why)."""
        return cls(
            rule,
            label,
            None,
            Fraction(*amount.as_integer_ratio()) if type(amount) is Decimal else Fraction(amount),
            None,
            unit,
            tuple([(name, _text(v)) for name, v in inputs]) if inputs else (),
            notes if type(notes) is tuple else tuple(notes),
            parts if type(parts) is tuple else tuple(parts),
        )

    def relabel(
        self, rule: str, label: Text, rounding: RoundingPolicy | None, notes: tuple[Text, ...]
    ) -> Trace:
        """A copy with another rule, label, rounding and notes (as ``attrs.evolve``, cheaper)."""
        return Trace(
            rule,
            label,
            self.expr,
            self.value,
            rounding,
            self.unit,
            self.inputs,
            notes,
            self.parts,
        )

    def with_notes(self, notes: tuple[Text, ...]) -> Trace:
        """A copy with ``notes`` instead of this line's notes."""
        return self.relabel(self.rule, self.label, self.rounding, notes)

    def with_rounding(self, rounding: RoundingPolicy | None) -> Trace:
        """A copy rounded by ``rounding`` (this line itself when it already is)."""
        if rounding is self.rounding:
            return self
        return self.relabel(self.rule, self.label, rounding, self.notes)

    @property
    def amount(self) -> Decimal:
        """``value`` rounded by ``rounding``; unrounded lines need a finite decimal value."""
        if self._amount is not None:  # computed once: a trace never changes
            return self._amount
        if self.rounding is not None:
            amount = round_fraction(self.value, self.rounding)
        else:
            exact = exact_decimal(self.value)
            if exact is None:
                where = f"rule {self.rule}" if self.rule else f"'{self.label.en}'"
                raise InvalidValueError(
                    "rounding",
                    f"must be stated for {where}: its value has no finite decimal form",
                    str(self.value),
                )
            amount = exact
        object.__setattr__(self, "_amount", amount)
        return amount

    @property
    def rounded(self) -> bool:
        """Whether rounding changed the value on this line."""
        return self.rounding is not None and Fraction(self.amount) != self.value

    def render(self, lang: Lang = "zh", *, indent: int = 0) -> str:
        """This line and its parts, one per line, parts indented below."""
        pad = "  " * indent
        if self.rounding is None and exact_decimal(self.value) is None:
            shown_amount = _show_exact(self.value, lang)  # an exact part like 200/3
        else:
            shown_amount = format_number(self.amount, grouping=lang == "en")
        unit = self.unit.render(lang)
        tail = f" {unit}" if unit else ""
        head = f"{pad}{self.label.render(lang)} = "
        if self.expr is not None and not (isinstance(self.expr, Num) and not self.rounded):
            head += f"{self.expr.render(lang)} = "
            if self.rounded:
                head += f"{_show_exact(self.value, lang)} → "
        line = f"{head}{shown_amount}{tail}"
        if self.rounding is not None and Fraction(self.amount) != self.value:
            line += (
                f" ({self.rounding.describe(lang)})"
                if lang == "en"
                else f"（{self.rounding.describe(lang)}）"
            )
        if self.notes:
            joined = ("; " if lang == "en" else "；").join(n.render(lang) for n in self.notes)
            line += f" [{joined}]" if lang == "en" else f"【{joined}】"
        lines = [line]
        lines.extend(part.render(lang, indent=indent + 1) for part in self.parts)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: strings, lists and dicts only."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "label": self.label.to_dict(),
            "amount": (
                None
                if self.rounding is None and exact_decimal(self.value) is None
                else str(self.amount)
            ),
            "value": _fraction_text(self.value),
            "unit": self.unit.to_dict(),
        }
        if self.expr is not None:
            out["expr"] = self.expr.to_dict()
            out["formula"] = {lang: self.expr.render(lang) for lang in _LANGS}
        if self.rounding is not None:
            out["rounding"] = {"mode": self.rounding.mode, "place": str(self.rounding.place)}
        if self.inputs:
            out["inputs"] = [{"name": n.to_dict(), "value": v} for n, v in self.inputs]
        if self.notes:
            out["notes"] = [n.to_dict() for n in self.notes]
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trace:
        """Rebuild a trace from :meth:`to_dict` output (a JSON round trip)."""
        rounding = data.get("rounding")
        return cls(
            data["rule"],
            Text(**data["label"]),
            expr_from_dict(data["expr"]) if "expr" in data else None,
            Fraction(data["value"]),
            RoundingPolicy(rounding["mode"], rounding["place"]) if rounding else None,
            Text(**data["unit"]),
            tuple((Text(**i["name"]), i["value"]) for i in data.get("inputs", ())),
            tuple(Text(**n) for n in data.get("notes", ())),
            tuple(cls.from_dict(p) for p in data.get("parts", ())),
        )


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return format_number(value)
    return str(value)


def _fraction_text(value: Fraction) -> str:
    exact = exact_decimal(value)
    return str(value) if exact is None else f"{exact:f}"
