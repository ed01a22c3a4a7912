"""Custom formulas as a small, safe expression language.

For formulas the built-in shapes do not cover, a scheme file may write one as text:

>>> from bankkpi import Context, RoundingPolicy, Rule, Text
>>> penalty = Expression("if score < 95 then 1000 + (95 - score) * 200 else 0", ["score"])
>>> rule = Rule("A.P2", Text("二阶段考核", "phase 2 penalty"), "penalty", penalty,
...             RoundingPolicy("half_up", "yuan"))
>>> trace = rule.evaluate(Context("outlet 7", {"score": "91.5"}))
>>> print(trace.render("en"))
penalty = 1000 + (95 − 91.5) × 200 = 1,700 yuan [phase 2 penalty; score 91.5 < 95 is true]
>>> print(trace.render("zh"))
考核 = 1000 + (95 − 91.5) × 200 = 1700 元【二阶段考核；得分91.5 < 95成立】

bankkpi reads the text with its own tokenizer and parser into its own syntax tree of
frozen nodes; nothing from a file ever reaches ``eval``, ``exec``, ``compile`` or
any evaluator that can touch Python objects. The tree is evaluated exactly
(:meth:`Expression.evaluate`, with :class:`fractions.Fraction`) or over numpy
arrays (:meth:`Expression.evaluate_array`).

Grammar (EBNF; ``{ x }`` repeats, ``[ x ]`` is optional)::

    expression  = conditional | disjunction ;
    conditional = "if" disjunction "then" expression "else" expression ;
    disjunction = conjunction { "or" conjunction } ;
    conjunction = negation { "and" negation } ;
    negation    = "not" negation | comparison ;
    comparison  = sum [ ( "<" | "<=" | "==" | "!=" | ">=" | ">" ) sum ] ;
    sum         = product { ( "+" | "-" | "−" ) product } ;
    product     = unary { ( "*" | "×" | "/" | "÷" ) unary } ;
    unary       = ( "-" | "−" ) unary | primary ;
    primary     = number | name | call | "(" expression ")" ;
    call        = ( "min" | "max" ) "(" expression { "," expression } ")"
                | "abs" "(" expression ")" ;
    number      = digit { digit } [ "." digit { digit } ] ;      (* ASCII digits *)
    name        = a Unicode identifier (str.isidentifier): a letter or "_",
                  then letters, digits or "_" ;

- ``+ - * /`` are left-associative; ``*`` and ``/`` bind tighter than ``+`` and
  ``-``; unary minus binds tighter than both (``-a * b`` is ``(-a) * b``).
- Comparisons do not chain: ``a < b < c`` is refused (write ``a < b and b < c``).
- ``and`` binds tighter than ``or``; ``not`` tighter than both.
- ``if … then … else …`` is lowest: its ``else`` branch runs to the end, so
  ``if c then 1 else 2 + 3`` gives ``2 + 3`` when ``c`` is false. Inside a larger
  formula put it in parentheses: ``1000 + (if a > b then a else b)``. Chains read
  naturally: ``if a < 80 then 500 else if a < 85 then 300 else 0``.
- Keywords and function names (``if then else and or not min max abs``) are
  lower-case and reserved. Names must be declared by the expression; names
  starting with ``__`` are refused.
- Blanks (spaces, tabs, newlines) only separate tokens; a column counts characters
  from the start of the text, a newline being one character.
- Types are checked when the text is parsed: numbers and conditions (true or
  false) do not mix, so ``1 + (a < b)`` is refused; ``if`` needs a condition and
  two numbers; the whole expression must give a number.

Refused, each with an :class:`~bankkpi.exceptions.ExpressionError` naming the
problem and the 1-based column: ``**``, ``^``, ``%``, ``//``, strings, attribute
access (``a.b``), indexing, exponent notation (``1e9``), underscores in numbers,
unknown functions or variables, and anything above the limits: :data:`MAX_LENGTH`
characters of source, :data:`MAX_DEPTH` levels of nesting (each parenthesis, call,
unary operator, ``if`` and each operator of a chain counts one level),
:data:`MAX_NODES` numbers, names and operations, :data:`MAX_DIGITS` digits in a
number.

A trace shows the branch taken with its numbers substituted; every comparison
evaluated is a note. Unary minus shows as a negative number on a literal
(``-5`` → ``(−5)``) and as ``(−1) × …`` on anything else, so the value shown is
always the value computed.
"""

from __future__ import annotations

import decimal
import difflib
import functools
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypeAlias, cast

import attrs
import numpy as np
from numpy.typing import ArrayLike, NDArray

from bankkpi._checks import one_of
from bankkpi._explain import BinOp, Call, Expr, Num, Text, Trace, exact_decimal, format_number
from bankkpi._fixedpoint import (
    COMPARE_UFUNCS,
    MAX_PLACES,
    FixedArray,
    align,
    check_bound,
    constant,
    from_counts,
    reduce,
    round_counts,
)
from bankkpi._formulas import Context, Var

if TYPE_CHECKING:
    from bankkpi._formulas import Formula
from bankkpi._money import RoundingPolicy
from bankkpi.exceptions import (
    ExpressionError,
    InvalidValueError,
    MissingDataError,
    ZeroDenominatorError,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_LENGTH",
    "MAX_NODES",
    "Arithmetic",
    "Comparison",
    "Conditional",
    "Expression",
    "Function",
    "Logical",
    "Minus",
    "Negation",
    "Node",
    "Number",
    "Variable",
    "parse",
    "unparse",
]

MAX_LENGTH: Final = 2000
"""The longest source text accepted, in characters."""
MAX_DEPTH: Final = 32
"""The deepest nesting accepted (parentheses, calls, unary operators, ``if``, chains)."""
MAX_NODES: Final = 500
"""The most numbers, names and operations one expression may hold."""
MAX_DIGITS: Final = 30
"""The most digits one number literal may have."""

ArithOp: TypeAlias = Literal["+", "-", "*", "/"]
CompareOp: TypeAlias = Literal["<", "<=", "==", "!=", ">=", ">"]
FunctionName: TypeAlias = Literal["min", "max", "abs"]
Kind: TypeAlias = Literal["number", "condition"]

_ARITH_OPS: Final[tuple[ArithOp, ...]] = ("+", "-", "*", "/")
_COMPARE_OPS: Final[tuple[CompareOp, ...]] = ("<", "<=", "==", "!=", ">=", ">")
_FUNCTIONS: Final[tuple[FunctionName, ...]] = ("min", "max", "abs")
_KEYWORDS: Final = frozenset({"if", "then", "else", "and", "or", "not"})
_RESERVED: Final = _KEYWORDS | frozenset(_FUNCTIONS)
_AMOUNT: Final = Text("金额", "amount")
_DIGITS: Final = "0123456789"

# ------------------------------------------------------------------------ the tree


def _literal(value: object) -> Decimal:
    if not isinstance(value, Decimal | int | str) or isinstance(value, bool):
        raise InvalidValueError("value", "must be a Decimal, int or str", value)
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise InvalidValueError("value", "must be a finite number >= 0", value)
    digits = sum(c in _DIGITS for c in f"{number:f}")
    if digits > MAX_DIGITS:
        raise InvalidValueError("value", f"must have at most {MAX_DIGITS} digits", value)
    return number


@attrs.frozen
class Number:
    """A number literal, ``91.5`` (never negative: ``-5`` is ``Minus(Number(5))``)."""

    value: Decimal = attrs.field(converter=_literal)


@attrs.frozen
class Variable:
    """A declared variable, ``score``."""

    name: str


@attrs.frozen
class Minus:
    """Unary minus, ``-x``."""

    operand: Node


@attrs.frozen
class Arithmetic:
    """``left op right`` for ``op`` in ``+ - * /``."""

    op: ArithOp = attrs.field(validator=one_of("op", _ARITH_OPS))
    left: Node
    right: Node


def _args(values: Iterable[Node]) -> tuple[Node, ...]:
    return tuple(values)


@attrs.frozen
class Function:
    """``min(a, b, ...)``, ``max(a, b, ...)`` or ``abs(x)``."""

    fn: FunctionName = attrs.field(validator=one_of("fn", _FUNCTIONS))
    args: tuple[Node, ...] = attrs.field(converter=_args)


@attrs.frozen
class Comparison:
    """``left op right`` for ``op`` in ``< <= == != >= >``: a condition."""

    op: CompareOp = attrs.field(validator=one_of("op", _COMPARE_OPS))
    left: Node
    right: Node


@attrs.frozen
class Logical:
    """``left and right`` or ``left or right``: a condition."""

    op: Literal["and", "or"] = attrs.field(validator=one_of("op", ("and", "or")))
    left: Node
    right: Node


@attrs.frozen
class Negation:
    """``not operand``: a condition."""

    operand: Node


@attrs.frozen
class Conditional:
    """``if condition then then else otherwise``: a number."""

    condition: Node
    then: Node
    otherwise: Node


Node: TypeAlias = (
    Number
    | Variable
    | Minus
    | Arithmetic
    | Function
    | Comparison
    | Logical
    | Negation
    | Conditional
)
"""A node of the syntax tree."""


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Number | Variable):
        return ()
    if isinstance(node, Minus | Negation):
        return (node.operand,)
    if isinstance(node, Function):
        return node.args
    if isinstance(node, Conditional):
        return (node.condition, node.then, node.otherwise)
    return (node.left, node.right)


def _names(node: Node) -> list[str]:
    """Every variable name in ``node``, in first-appearance order."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, Variable):
            found.setdefault(current.name, None)
        stack.extend(reversed(_children(current)))
    return list(found)


# ------------------------------------------------------------------------ tokens


class _Token(NamedTuple):
    kind: Literal["number", "name", "op", "end"]
    value: str  # canonical: "-" for "−", "*" for "×", "/" for "÷"
    start: int  # 0-based offsets into the source
    end: int


_CANONICAL_OPS: Final = {"−": "-", "×": "*", "÷": "/"}
_SINGLE_OPS: Final = frozenset("+-*/(),<>−×÷")
_DOUBLE_OPS: Final = frozenset({"<=", ">=", "==", "!="})
_REFUSED: Final = {
    "**": "'**' (power) is not supported; write the product out, e.g. 'a * a'",
    "//": "'//' (floor division) is not supported",
    "^": "'^' is not supported; there is no power operator",
    "%": "'%' is not supported; write a percentage as a decimal, e.g. 0.05 for 5%",
    "=": "'=' is not an operator; compare with '=='",
    "!": "'!' is not an operator; use 'not' or '!='",
    "&": "'&' is not an operator; use 'and'",
    "|": "'|' is not an operator; use 'or'",
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    "[": "indexing is not allowed",
    "]": "indexing is not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    "≤": "write '<=' for '≤'",
    "≥": "write '>=' for '≥'",
    "≠": "write '!=' for '≠'",
}


def _fail(problem: str, source: str, offset: int) -> ExpressionError:
    return ExpressionError(problem, source, offset + 1)


def _is_name_start(char: str) -> bool:
    return char.isidentifier()


def _is_name_part(char: str) -> bool:
    return f"a{char}".isidentifier()


def _unexpected_character(char: str) -> str:
    ascii_form = unicodedata.normalize("NFKC", char)
    if ascii_form != char and ascii_form.isascii() and ascii_form.isprintable():
        return f"full-width {char!r}: write {ascii_form!r} instead"
    return f"unexpected character {char!r} (U+{ord(char):04X})"


def _tokenize(source: str) -> Iterator[_Token]:
    """The tokens of ``source``, lazily: an error surfaces when the parser reaches it."""
    previous: _Token | None = None
    index, length = 0, len(source)
    while index < length:
        char = source[index]
        pair = source[index : index + 2]
        if char.isspace():
            index += 1
            continue
        if char in _DIGITS:
            end = _number_end(source, index)
            token = _Token("number", source[index:end], index, end)
        elif _is_name_start(char):
            end = index + 1
            while end < length and _is_name_part(source[end]):
                end += 1
            token = _Token("name", source[index:end], index, end)
            if token.value.startswith("__"):
                problem = f"names starting with '__' are not allowed: {token.value!r}"
                raise _fail(problem, source, index)
        elif pair in _REFUSED:
            raise _fail(_REFUSED[pair], source, index)
        elif pair in _DOUBLE_OPS:
            token = _Token("op", pair, index, index + 2)
        elif char in _SINGLE_OPS:
            token = _Token("op", _CANONICAL_OPS.get(char, char), index, index + 1)
        else:
            raise _fail(_refused(source, index, previous), source, index)
        yield token
        previous = token
        index = token.end
    yield _Token("end", "", length, length)


def _refused(source: str, index: int, previous: _Token | None) -> str:
    """Why the character at ``index`` cannot start a token."""
    char = source[index]
    if char in _REFUSED:
        return _REFUSED[char]
    if char == ".":
        problem = (
            "attribute access is not allowed"
            if previous is not None and (previous.kind == "name" or previous.value == ")")
            else "a number must start with a digit, e.g. 0.5"
        )
        return f"{problem}: {_snippet(source, index, index + 12)!r}"
    return _unexpected_character(char)


def _number_end(source: str, start: int) -> int:
    """The end of the number literal at ``start``, refusing malformed numbers."""
    length = len(source)
    end = start
    while end < length and source[end] in _DIGITS:
        end += 1
    if end < length and source[end] == ".":
        if end + 1 >= length or source[end + 1] not in _DIGITS:
            raise _fail("a decimal point must be followed by digits", source, end)
        end += 1
        while end < length and source[end] in _DIGITS:
            end += 1
        if end < length and source[end] == ".":
            raise _fail("a number has at most one decimal point", source, end)
    _check_number_end(source, start, end)
    digits = sum(c in _DIGITS for c in source[start:end])
    if digits > MAX_DIGITS:
        raise _fail(
            f"number {_snippet(source, start, end)!r} has {digits} digits; "
            f"the limit is {MAX_DIGITS}",
            source,
            start,
        )
    return end


def _check_number_end(source: str, start: int, end: int) -> None:
    """Refuse a number that runs into an exponent, an underscore or a name."""
    if end >= len(source):
        return
    follow = source[end]
    rest = source[end + 1 : end + 2]
    text = _snippet(source, start, end + 12)
    if follow in "eE" and (rest in {"+", "-"} or (rest and rest in _DIGITS)):
        raise _fail(f"exponent notation is not allowed: {text!r}", source, start)
    if follow == "_":
        raise _fail(f"underscores are not allowed in numbers: {text!r}", source, start)
    if _is_name_part(follow):
        raise _fail(
            f"a number runs into a name: {text!r}; put an operator between them", source, start
        )


def _snippet(source: str, start: int, end: int, limit: int = 40) -> str:
    text = " ".join(source[start:end].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------ parser


class _Parsed(NamedTuple):
    node: Node
    kind: Kind
    start: int
    end: int
    height: int


def parse(source: str, variables: Iterable[str]) -> Node:
    """Parse ``source`` into a checked syntax tree; only ``variables`` may be named.

    Raises:
        ExpressionError: for anything the grammar, the type check or a limit refuses;
            the message gives the 1-based column and shows it under a caret.

    >>> parse("10 - 3 - 2", [])
    Arithmetic(op='-', left=Arithmetic(op='-', left=Number(value=Decimal('10')),
    right=Number(value=Decimal('3'))), right=Number(value=Decimal('2')))
    >>> parse("pow(2, 3)", [])
    Traceback (most recent call last):
    ...
    bankkpi.exceptions.ExpressionError: column 1: unknown function 'pow' (allowed: min, max, abs)
      pow(2, 3)
      ^
    """
    if not isinstance(source, str):
        raise ExpressionError(f"an expression must be text, not {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(source)} characters long; the limit is {MAX_LENGTH}",
            source,
            MAX_LENGTH + 1,
        )
    return _Parser(source, frozenset(variables)).parse()


class _Parser:
    """Recursive descent over the grammar above, checking types and limits as it goes."""

    def __init__(self, source: str, variables: frozenset[str]) -> None:
        self.source = source
        self.variables = variables
        self.stream = _tokenize(source)
        self.tokens: list[_Token] = []
        self.error: ExpressionError | None = None
        self.index = 0
        self.nesting = 0
        self.nodes = 0

    # -- helpers

    @property
    def token(self) -> _Token:
        return self.peek(0)

    def peek(self, ahead: int) -> _Token:
        """The token ``ahead`` places on (the end token repeats at the end).

        A tokenizer error is kept and raised again by every later ``peek``.
        """
        while len(self.tokens) <= self.index + ahead:
            if self.tokens and self.tokens[-1].kind == "end":
                return self.tokens[-1]
            if self.error is not None:
                raise self.error
            try:
                self.tokens.append(next(self.stream))
            except ExpressionError as exc:
                self.error = exc
                raise
        return self.tokens[self.index + ahead]

    def calls(self) -> bool:
        """Whether ``(`` follows the current token (no, if what follows is refused)."""
        try:
            return self.peek(1).value == "("
        except ExpressionError:
            return False

    def advance(self) -> _Token:
        token = self.peek(0)
        self.index += 1
        return token

    def at(self, kind: str, *values: str) -> bool:
        token = self.token
        return token.kind == kind and (not values or token.value in values)

    def fail(self, problem: str, offset: int) -> ExpressionError:
        return _fail(problem, self.source, offset)

    def shown(self, token: _Token) -> str:
        if token.kind == "end":
            return "the end of the expression"
        return repr(self.source[token.start : token.end])

    def text(self, parsed: _Parsed) -> str:
        return _snippet(self.source, parsed.start, parsed.end)

    def enter(self, token: _Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.fail(f"the expression nests deeper than {MAX_DEPTH} levels", token.start)

    def leave(self) -> None:
        self.nesting -= 1

    def make(
        self,
        node: Node,
        kind: Kind,
        start: int,
        end: int,
        *parts: _Parsed,
        at: _Token | None = None,
    ) -> _Parsed:
        """Count a new node and check the limits; ``at`` is a binary node's operator."""
        where = start if at is None else at.start
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                f"the expression has more than {MAX_NODES} numbers, names and operations",
                where,
            )
        height = 1 + max((p.height for p in parts), default=0)
        if height > MAX_DEPTH:
            hint = "; split a long chain into groups in parentheses" if at is not None else ""
            raise self.fail(f"the expression nests deeper than {MAX_DEPTH} levels{hint}", where)
        return _Parsed(node, kind, start, end, height)

    def number(self, parsed: _Parsed, role: str) -> None:
        if parsed.kind != "number":
            raise self.fail(
                f"{role} a number, but {self.text(parsed)!r} is a condition (true or false)",
                parsed.start,
            )

    def condition(self, parsed: _Parsed, role: str) -> None:
        if parsed.kind != "condition":
            text = self.text(parsed)
            raise self.fail(
                f"{role} a condition, but {text!r} is a number; compare it, e.g. '{text} > 0'",
                parsed.start,
            )

    def expect(self, value: str, why: str) -> _Token:
        if not self.at("op" if value in {")", ","} else "name", value):
            raise self.fail(
                f"expected {value!r} {why}, found {self.shown(self.token)}", self.token.start
            )
        return self.advance()

    # -- grammar

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.fail("the expression is empty", 0)
        parsed = self.expression()
        token = self.token
        if token.kind != "end":
            if token.value == ")":
                raise self.fail("unmatched ')'", token.start)
            raise self.fail(
                f"unexpected {self.shown(token)} after a complete expression; "
                "is an operator missing?",
                token.start,
            )
        if parsed.kind != "number":
            raise self.fail(
                "the expression gives a condition (true or false), not a number; "
                "use 'if … then … else …'",
                parsed.start,
            )
        return parsed.node

    def expression(self) -> _Parsed:
        if self.at("name", "if"):
            return self.conditional()
        return self.disjunction()

    def conditional(self) -> _Parsed:
        keyword = self.advance()
        self.enter(keyword)
        condition = self.disjunction()
        self.condition(condition, "'if' needs")
        self.expect("then", f"after the condition of the 'if' at column {keyword.start + 1}")
        then = self.expression()
        self.number(then, "the 'then' branch must give")
        self.expect("else", f"to complete the 'if' at column {keyword.start + 1}")
        otherwise = self.expression()
        self.number(otherwise, "the 'else' branch must give")
        self.leave()
        node = Conditional(condition.node, then.node, otherwise.node)
        return self.make(node, "number", keyword.start, otherwise.end, condition, then, otherwise)

    def disjunction(self) -> _Parsed:
        return self.logical("or", self.conjunction)

    def conjunction(self) -> _Parsed:
        return self.logical("and", self.negation)

    def logical(self, op: Literal["and", "or"], operand: Callable[[], _Parsed]) -> _Parsed:
        left = operand()
        while self.at("name", op):
            token = self.advance()
            self.condition(left, f"'{op}' needs")
            right = operand()
            self.condition(right, f"'{op}' needs")
            node = Logical(op, left.node, right.node)
            left = self.make(node, "condition", left.start, right.end, left, right, at=token)
        return left

    def negation(self) -> _Parsed:
        if not self.at("name", "not"):
            return self.comparison()
        token = self.advance()
        self.enter(token)
        operand = self.negation()
        self.leave()
        self.condition(operand, "'not' needs")
        return self.make(Negation(operand.node), "condition", token.start, operand.end, operand)

    def comparison(self) -> _Parsed:
        left = self.sum()
        if not self.at("op", *_COMPARE_OPS):
            return left
        token = self.advance()
        op = self.source[token.start : token.end]
        self.number(left, f"{op!r} compares numbers: it needs")
        right = self.sum()
        self.number(right, f"{op!r} compares numbers: it needs")
        if self.at("op", *_COMPARE_OPS):
            raise self.fail(
                "comparisons cannot be chained; join two comparisons with 'and', "
                "e.g. 'a < b and b < c'",
                self.token.start,
            )
        node = Comparison(cast("CompareOp", token.value), left.node, right.node)
        return self.make(node, "condition", left.start, right.end, left, right, at=token)

    def sum(self) -> _Parsed:
        return self.arithmetic(("+", "-"), self.product)

    def product(self) -> _Parsed:
        return self.arithmetic(("*", "/"), self.unary)

    def arithmetic(self, ops: tuple[str, ...], operand: Callable[[], _Parsed]) -> _Parsed:
        left = operand()
        while self.at("op", *ops):
            token = self.advance()
            op = self.source[token.start : token.end]
            self.number(left, f"{op!r} needs")
            right = operand()
            self.number(right, f"{op!r} needs")
            node = Arithmetic(cast("ArithOp", token.value), left.node, right.node)
            left = self.make(node, "number", left.start, right.end, left, right, at=token)
        return left

    def unary(self) -> _Parsed:
        token = self.token
        if token.kind == "op" and token.value == "-":
            self.advance()
            self.enter(token)
            operand = self.unary()
            self.leave()
            self.number(operand, "unary minus needs")
            return self.make(Minus(operand.node), "number", token.start, operand.end, operand)
        if token.kind == "op" and token.value == "+":
            raise self.fail("unary '+' is not supported; leave it out", token.start)
        return self.primary()

    def primary(self) -> _Parsed:
        token = self.token
        if token.kind == "number":
            self.advance()
            return self.make(Number(Decimal(token.value)), "number", token.start, token.end)
        if token.kind == "name":
            return self.name()
        if token.kind == "op" and token.value == "(":
            self.advance()
            self.enter(token)
            inner = self.expression()
            if not self.at("op", ")"):
                if self.token.kind == "end":
                    raise self.fail("'(' is never closed", token.start)
                raise self.fail(
                    f"expected ')' to close the '(' at column {token.start + 1}, "
                    f"found {self.shown(self.token)}",
                    self.token.start,
                )
            close = self.advance()
            self.leave()
            if inner.height + 1 > MAX_DEPTH:
                raise self.fail(f"the expression nests deeper than {MAX_DEPTH} levels", token.start)
            return inner._replace(start=token.start, end=close.end, height=inner.height + 1)
        if token.kind == "end":
            problem = "the expression ends where a number, name, call or '(' is expected"
        else:
            problem = f"expected a number, name, call or '(', found {self.shown(token)}"
        raise self.fail(problem, token.start)

    def name(self) -> _Parsed:
        token = self.token
        name = token.value
        if name == "if":
            raise self.fail(
                "'if … then … else …' inside a larger formula must be in parentheses",
                token.start,
            )
        if name in _KEYWORDS:
            raise self.fail(
                f"expected a number, name, call or '(', found keyword {name!r}", token.start
            )
        if name in _FUNCTIONS:
            return self.call()
        if self.calls():
            if name in self.variables:
                raise self.fail(f"{name!r} is a variable, not a function", token.start)
            raise self.fail(
                f"unknown function {name!r} (allowed: {', '.join(_FUNCTIONS)})", token.start
            )
        if name not in self.variables:
            raise self.fail(_unknown_variable(name, self.variables), token.start)
        self.advance()
        return self.make(Variable(name), "number", token.start, token.end)

    def call(self) -> _Parsed:
        token = self.advance()
        fn = token.value
        if not self.at("op", "("):
            raise self.fail(f"{fn!r} is a function: write {fn}(…)", token.start)
        self.advance()
        self.enter(token)
        args: list[_Parsed] = []
        if not self.at("op", ")"):
            while True:
                arg = self.expression()
                self.number(arg, f"{fn}() needs")
                args.append(arg)
                if not self.at("op", ","):
                    break
                self.advance()
        if not self.at("op", ")"):
            if self.token.kind == "end":
                raise self.fail(f"the '(' of {fn}() is never closed", token.start)
            raise self.fail(
                f"expected ',' or ')' in {fn}(), found {self.shown(self.token)}",
                self.token.start,
            )
        close = self.advance()
        self.leave()
        if fn == "abs" and len(args) != 1:
            raise self.fail(f"abs() takes exactly 1 argument, got {len(args)}", token.start)
        if not args:
            raise self.fail(f"{fn}() needs at least 1 argument", token.start)
        node = Function(cast("FunctionName", fn), tuple(a.node for a in args))
        return self.make(node, "number", token.start, close.end, *args)


def _unknown_variable(name: str, variables: frozenset[str]) -> str:
    declared = sorted(variables)
    shown = ", ".join(declared[:12]) + (", …" if len(declared) > 12 else "")
    problem = f"unknown variable {name!r} (declared: {shown or 'none'})"
    close = difflib.get_close_matches(name, declared, n=1)
    return f"{problem}; did you mean {close[0]!r}?" if close else problem


# ------------------------------------------------------------------------ unparse

_LEVEL: Final = {"or": 1, "and": 2, "+": 5, "-": 5, "*": 6, "/": 6}


def _level(node: Node) -> int:
    if isinstance(node, Conditional):
        return 0
    if isinstance(node, Logical | Arithmetic):
        return _LEVEL[node.op]
    if isinstance(node, Negation):
        return 3
    if isinstance(node, Comparison):
        return 4
    if isinstance(node, Minus):
        return 7
    return 8


def _wrapped(node: Node, level: int) -> str:
    text = unparse(node)
    return f"({text})" if _level(node) < level else text


def unparse(node: Node) -> str:
    """Canonical text for ``node``: ASCII operators, only the parentheses needed.

    ``parse(unparse(tree), names) == tree`` for every tree :func:`parse` returns.

    >>> unparse(parse("(1000)+(95 − score)×200", ["score"]))
    '1000 + (95 - score) * 200'
    """
    if isinstance(node, Number):
        return f"{node.value:f}"
    if isinstance(node, Variable):
        return node.name
    if isinstance(node, Minus):
        inner = _wrapped(node.operand, 7)
        return f"- {inner}" if inner.startswith("-") else f"-{inner}"
    if isinstance(node, Function):
        return f"{node.fn}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Negation):
        return f"not {_wrapped(node.operand, 3)}"
    if isinstance(node, Conditional):
        return (
            f"if {unparse(node.condition)} then {unparse(node.then)} else {unparse(node.otherwise)}"
        )
    if isinstance(node, Comparison):
        return f"{_wrapped(node.left, 5)} {node.op} {_wrapped(node.right, 5)}"
    level = _LEVEL[node.op]
    return f"{_wrapped(node.left, level)} {node.op} {_wrapped(node.right, level + 1)}"


# ------------------------------------------------------------------------ exact path

_COMPARE: Final = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
}


def _not_a(kind: str, node: Node) -> TypeError:
    return TypeError(f"not a {kind} node: {node!r}")  # parse() never builds such a tree


def _arith(op: str, left: Fraction, right: Fraction) -> Fraction:
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    return left / right


def _function(fn: str, values: Sequence[Fraction]) -> Fraction:
    if fn == "min":
        return min(values)
    if fn == "max":
        return max(values)
    return abs(values[0])


def _number(node: Node, env: Mapping[str, Fraction]) -> Fraction:
    """The exact value of a number node (no trace); ``env`` holds the variables."""
    if isinstance(node, Number):
        return Fraction(node.value)
    if isinstance(node, Variable):
        return env[node.name]
    if isinstance(node, Minus):
        return -_number(node.operand, env)
    if isinstance(node, Arithmetic):
        left, right = _number(node.left, env), _number(node.right, env)
        if node.op == "/" and right == 0:
            raise ZeroDenominatorError(unparse(node), f"{left} / {right}")
        return _arith(node.op, left, right)
    if isinstance(node, Function):
        return _function(node.fn, [_number(a, env) for a in node.args])
    if isinstance(node, Conditional):
        return _number(node.then if _truth(node.condition, env) else node.otherwise, env)
    raise _not_a("number", node)


def _truth(node: Node, env: Mapping[str, Fraction]) -> bool:
    """The truth of a condition node (no trace)."""
    if isinstance(node, Comparison):
        return bool(_COMPARE[node.op](_number(node.left, env), _number(node.right, env)))
    if isinstance(node, Negation):
        return not _truth(node.operand, env)
    if isinstance(node, Logical):
        if node.op == "and":
            return _truth(node.left, env) and _truth(node.right, env)
        return _truth(node.left, env) or _truth(node.right, env)
    raise _not_a("condition", node)


class _Exact(Mapping[str, Fraction]):
    """A context's values as exact fractions, each converted when it is looked up."""

    def __init__(self, values: Mapping[str, Decimal]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> Fraction:
        return Fraction(self._values[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _Explained:
    """Exact evaluation for one context that also builds the trace's substituted formula."""

    def __init__(self, context: Context, variables: Mapping[str, Var]) -> None:
        self.context = context
        self.variables = variables
        self.notes: list[Text] = []
        self.inputs: dict[str, Decimal] = {}

    def number(self, node: Node) -> tuple[Fraction, Expr]:
        if isinstance(node, Number):
            return Fraction(node.value), Num(node.value)
        if isinstance(node, Variable):
            var = self.variables[node.name]
            given = var.get(self.context)
            self.inputs.setdefault(node.name, given)
            return Fraction(given), Num(given, var.text)
        if isinstance(node, Minus):
            value, expr = self.number(node.operand)
            if isinstance(node.operand, Number):  # negated exactly, in no context
                literal = node.operand.value
                return -value, Num(literal.copy_negate() if literal else literal)
            return -value, BinOp("*", Num(-1), expr)
        if isinstance(node, Arithmetic):
            left, left_expr = self.number(node.left)
            right, right_expr = self.number(node.right)
            expr = BinOp(node.op, left_expr, right_expr)
            if node.op == "/" and right == 0:
                raise ZeroDenominatorError(
                    unparse(node), expr.render("en"), subject=self.context.subject
                )
            return _arith(node.op, left, right), expr
        if isinstance(node, Function):
            pairs = [self.number(a) for a in node.args]
            return _function(node.fn, [v for v, _ in pairs]), Call(node.fn, [e for _, e in pairs])
        if isinstance(node, Conditional):
            taken = self.truth(node.condition, whole=True)
            return self.number(node.then if taken else node.otherwise)
        raise _not_a("number", node)

    def truth(self, node: Node, *, whole: bool = False) -> bool:
        if isinstance(node, Comparison):
            left, left_expr = self.number(node.left)
            right, right_expr = self.number(node.right)
            ok = bool(_COMPARE[node.op](left, right))
            self.notes.append(self._compared(node, (left_expr, right_expr), ok))
            return ok
        if isinstance(node, Negation):
            ok = not self.truth(node.operand)
        elif isinstance(node, Logical):
            first = self.truth(node.left)
            ok = (
                first and self.truth(node.right)
                if node.op == "and"
                else first or self.truth(node.right)
            )
        else:
            raise _not_a("condition", node)
        if whole:
            text = unparse(node)
            self.notes.append(
                Text(
                    f"条件“{text}”{'成立' if ok else '不成立'}",
                    f"condition '{text}' is {'true' if ok else 'false'}",
                )
            )
        return ok

    def _compared(self, node: Comparison, exprs: tuple[Expr, Expr], ok: bool) -> Text:
        sides = [self._side(n, e) for n, e in zip((node.left, node.right), exprs, strict=True)]
        return Text(
            f"{sides[0].zh} {node.op} {sides[1].zh}{'成立' if ok else '不成立'}",
            f"{sides[0].en} {node.op} {sides[1].en} is {'true' if ok else 'false'}",
        )

    def _side(self, node: Node, expr: Expr) -> Text:
        if isinstance(node, Variable) and isinstance(expr, Num):
            label = self.variables[node.name].text
            shown = format_number(expr.value)
            return Text(f"{label.zh}{shown}", f"{label.en} {shown}")
        return Text(expr.render("zh"), expr.render("en"))


# ------------------------------------------------------------------------ array path


def _what(node: Node) -> Callable[[], str]:
    """The node's source, quoted, for an overflow message (built only if one is raised)."""
    return lambda: repr(unparse(node))


class _Arrays:
    """Evaluates a checked tree over int64 arrays, exactly or not at all."""

    def __init__(self, inputs: Mapping[str, FixedArray]) -> None:
        self.inputs = inputs

    def guard(self, bound: int, node: Node) -> None:
        check_bound(bound, _what(node))

    def reduce(self, num: NDArray[np.int64], den: int, node: Node) -> FixedArray:
        return reduce(num, den, _what(node))

    def align(self, parts: Sequence[FixedArray], node: Node) -> tuple[list[NDArray[np.int64]], int]:
        return align(parts, _what(node))

    def constant(self, node: Node) -> FixedArray:
        return constant(_number(node, {}), _what(node))

    def number(self, node: Node) -> FixedArray:
        if not _names(node):
            return self.constant(node)
        if isinstance(node, Variable):
            return self.inputs[node.name]
        if isinstance(node, Minus):
            inner = self.number(node.operand)
            return FixedArray(-inner.num, inner.den, inner.bound)
        if isinstance(node, Arithmetic):
            return self.arithmetic(node)
        if isinstance(node, Function):
            return self.function(node)
        if isinstance(node, Conditional):
            condition = self.truth(node.condition)
            if isinstance(condition, bool):
                return self.number(node.then if condition else node.otherwise)
            (then, otherwise), den = self.align(
                [self.number(node.then), self.number(node.otherwise)], node
            )
            return self.reduce(np.where(condition, then, otherwise), den, node)
        raise _not_a("number", node)

    def arithmetic(self, node: Arithmetic) -> FixedArray:
        left = self.number(node.left)
        if node.op == "/":
            if _names(node.right):
                raise ExpressionError(
                    f"division by {unparse(node.right)!r}, which is not a constant, is not "
                    "supported on the array path; use the exact path (evaluate) instead"
                )
            divisor = _number(node.right, {})
            if divisor == 0:
                raise ZeroDenominatorError(unparse(node), unparse(node.right))
            if not left.bound:  # every row is 0, and so is its quotient: no step to take
                return FixedArray(left.num * 0, 1, 0)
            sign = 1 if divisor > 0 else -1
            self.guard(left.bound * divisor.denominator, node)  # so the multiplier fits too
            num = left.num * np.int64(sign * divisor.denominator)
            return self.reduce(num, left.den * abs(divisor.numerator), node)
        right = self.number(node.right)
        if node.op == "*":
            self.guard(left.bound * right.bound, node)
            return self.reduce(left.num * right.num, left.den * right.den, node)
        (a, b), den = self.align([left, right], node)
        factor_left, factor_right = den // left.den, den // right.den
        self.guard(left.bound * factor_left + right.bound * factor_right, node)
        return self.reduce(a + b if node.op == "+" else a - b, den, node)

    def function(self, node: Function) -> FixedArray:
        parts = [self.number(a) for a in node.args]
        if node.fn == "abs":
            return FixedArray(np.abs(parts[0].num), parts[0].den, parts[0].bound)
        nums, den = self.align(parts, node)
        pick = np.minimum if node.fn == "min" else np.maximum
        return self.reduce(functools.reduce(pick, nums), den, node)

    def truth(self, node: Node) -> NDArray[np.bool_] | bool:
        if not _names(node):
            return _truth(node, {})
        if isinstance(node, Comparison):
            (a, b), _den = self.align([self.number(node.left), self.number(node.right)], node)
            return np.asarray(COMPARE_UFUNCS[node.op](a, b), dtype=np.bool_)
        if isinstance(node, Negation):
            return np.logical_not(self.truth(node.operand))
        if isinstance(node, Logical):
            join = np.logical_and if node.op == "and" else np.logical_or
            return np.asarray(join(self.truth(node.left), self.truth(node.right)), dtype=np.bool_)
        raise _not_a("condition", node)


def _places(places: int | Mapping[str, int], name: str) -> int:
    value = places.get(name, 2) if isinstance(places, Mapping) else places
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PLACES:
        raise InvalidValueError(f"places[{name}]", f"must be an int from 0 to {MAX_PLACES}", value)
    return value


# ------------------------------------------------------------------------ Expression


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ExpressionError(
            f"variable name {name!r} is not a name: use letters, digits and '_', "
            "starting with a letter"
        )
    if name.startswith("__"):
        raise ExpressionError(f"variable name {name!r} is refused: it starts with '__'")
    if name in _RESERVED:
        raise ExpressionError(f"variable name {name!r} is reserved")
    return name


def _declare(values: Mapping[str, Text | None] | Iterable[str | Var]) -> tuple[Var, ...]:
    if isinstance(values, str):
        raise ExpressionError(
            f"variables must be a list of names or a mapping of names to labels, not {values!r}"
        )
    if isinstance(values, Mapping):
        items = [(name, label) for name, label in values.items()]
    else:
        items = [(v.name, v.label) if isinstance(v, Var) else (v, None) for v in values]
    declared: list[Var] = []
    for name, label in items:
        if label is not None and not isinstance(label, Text):
            raise ExpressionError(f"the label of variable {name!r} must be a Text: {label!r}")
        if any(v.name == name for v in declared):
            raise ExpressionError(f"variable {name!r} is declared twice")
        declared.append(Var(_check_name(name), label))
    return tuple(declared)


@attrs.frozen
class Expression:
    """A formula written in the expression language; it is a :class:`~bankkpi.Formula`.

    ``source`` is parsed when the value is built (see the module documentation for
    the grammar and limits); only the declared ``variables`` may appear in it. Give
    them as names, as :class:`~bankkpi.Var` values, or as a mapping of name to
    bilingual label (``None`` falls back to the known labels, ``score`` is 得分).

    Raises:
        ExpressionError: when the source or a declaration is refused.

    >>> cap = Expression("min(200 * points, 1000)", {"points": Text("扣分", "points")})
    >>> print(cap.evaluate(Context("o", {"points": 7})).render("en"))
    amount = min(200 × 7, 1000) = 1,000 yuan
    >>> cap.canonical, cap.names
    ('min(200 * points, 1000)', ('points',))
    """

    source: str
    variables: tuple[Var, ...] = attrs.field(default=(), converter=_declare)
    label: Text = attrs.field(default=_AMOUNT, kw_only=True)
    tree: Node = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "tree", parse(self.source, (v.name for v in self.variables)))

    @classmethod
    def from_tree(
        cls,
        tree: Node,
        variables: Mapping[str, Text | None] | Iterable[str | Var] = (),
        *,
        label: Text = _AMOUNT,
    ) -> Expression:
        """The expression whose source is ``unparse(tree)``: checked like any source."""
        return cls(unparse(tree), variables, label=label)

    @property
    def canonical(self) -> str:
        """The source in canonical form (:func:`unparse`); it parses to the same tree."""
        return unparse(self.tree)

    @property
    def names(self) -> tuple[str, ...]:
        """The declared variables the expression uses, in order of first use."""
        return tuple(_names(self.tree))

    def evaluate(self, context: Context) -> Trace:
        """The exact value with its trace: the branch taken, its numbers substituted.

        Every comparison evaluated on the way is a bilingual note
        (``score 91.5 < 95 is true`` / ``得分91.5 < 95成立``); a condition joined with
        ``and``/``or``/``not`` gets a note for the whole as well.

        Raises:
            MissingDataError: for a variable the context lacks (only those evaluated).
            ZeroDenominatorError: for a division by zero.
        """
        run = _Explained(context, {v.name: v for v in self.variables})
        _value, expr = run.number(self.tree)
        inputs = [(run.variables[name].text, value) for name, value in run.inputs.items()]
        if isinstance(expr, Num) and expr.name is None:
            return Trace.fixed("", self.label, expr.value, notes=run.notes, inputs=inputs)
        return Trace.of("", self.label, expr, notes=run.notes, inputs=inputs)

    def _lean_fn(self) -> Callable[[Mapping[str, Decimal], Mapping[str, Any]], Decimal]:
        """:meth:`evaluate`'s value without the trace, as a function (the lean path).

        The same exact evaluation (:func:`_number`, the variables looked up only when
        evaluated, ``and``/``or`` short-circuiting); a value without an exact 34-digit
        decimal form raises, and the caller builds the trace.
        """
        tree = self.tree

        def lean(values: Mapping[str, Decimal], _ranks: Mapping[str, Any]) -> Decimal:
            exact = _number(tree, _Exact(values))
            value = exact_decimal(exact)
            if value is None or value != exact:  # no finite form, or one past 34 digits
                raise decimal.Inexact(self.source)
            return value

        return lean

    def evaluate_array(
        self,
        values: Mapping[str, ArrayLike],
        *,
        rounding: RoundingPolicy,
        places: int | Mapping[str, int] = 2,
    ) -> NDArray[np.int64]:
        """Evaluate over numpy arrays; the result agrees exactly with :meth:`evaluate`.

        The contract:

        - ``values[name]`` holds integer counts of ``10**-places`` for every variable
          the expression names (both branches of every ``if``): with ``places=2``
          (the default) ``9150`` is 91.5. ``places`` may be one int or a mapping of
          variable name to int (default 2), from 0 to 18. Arrays broadcast together.
        - The result is an int64 array of counts of ``rounding.place``: element *i*
          times the place equals ``round_fraction(exact_i, rounding)``, where
          ``exact_i`` is what :meth:`evaluate` gives for row *i*. No float is used:
          every intermediate value is an exact int64 numerator over one Python-int
          denominator, and ``if`` is ``numpy.where``.
        - Division is supported only by a constant (an expression without
          variables, such as ``2`` or ``(1 + 1)``); any other division raises
          :class:`ExpressionError`; a constant zero divisor raises
          :class:`ZeroDenominatorError` even in a branch no row takes.
        - Both branches of an ``if`` are computed for every row. Before any operation
          whose result could leave int64, :class:`OverflowRiskError` is raised (the
          check uses the largest magnitude actually present, so it may refuse a
          value in a branch no row takes); values never wrap around.

        Raises:
            MissingDataError: for a variable with no array.
            FloatMoneyError: for float arrays; InvalidValueError for other non-integers.
            ExpressionError: for a division by a non-constant.
            OverflowRiskError: when an intermediate value could leave int64.

        >>> penalty = Expression("if score < 95 then 1000 + (95 - score) * 200 else 0",
        ...                      ["score"])
        >>> penalty.evaluate_array({"score": np.array([9150, 9500, 8937])},
        ...                        rounding=RoundingPolicy("half_up", "yuan"))
        array([1700,    0, 2126])
        """
        inputs: dict[str, FixedArray] = {}
        for name in self.names:
            if name not in values:
                raise MissingDataError("array for variable", name)
            inputs[name] = from_counts(name, values[name], _places(places, name))
        try:
            shape = np.broadcast_shapes(*(f.num.shape for f in inputs.values()))
        except ValueError:
            shapes = {name: f.num.shape for name, f in inputs.items()}
            raise InvalidValueError("values", "must broadcast together", shapes) from None
        result = round_counts(_Arrays(inputs).number(self.tree), rounding, _what(self.tree))
        return np.array(np.broadcast_to(result, shape), dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: the source as written, the declared variables and the label."""
        return {
            "source": self.source,
            "variables": {
                v.name: None if v.label is None else v.label.to_dict() for v in self.variables
            },
            "label": self.label.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Expression:
        """Rebuild from :meth:`to_dict` output (a scheme file's entry)."""
        variables = data.get("variables", {})
        if isinstance(variables, Mapping):
            variables = {
                name: None if label is None else Text(**label) for name, label in variables.items()
            }
        label = data.get("label")
        return cls(data["source"], variables, label=_AMOUNT if label is None else Text(**label))


if TYPE_CHECKING:

    def _is_a_formula(expression: Expression) -> Formula:
        """Mypy's proof that an :class:`Expression` plugs into ``Rule`` as a formula."""
        return expression
