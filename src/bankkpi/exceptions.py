"""The exceptions bankkpi raises: one root, :class:`BankKPIError`.

Every concrete error also subclasses the standard-library type it resembles, so
``except ValueError`` keeps working for callers that do not know bankkpi. Messages
name the subject (when there is one), the field, the rule and the offending value.

>>> from bankkpi.exceptions import BankKPIError, InvalidValueError
>>> issubclass(InvalidValueError, ValueError) and issubclass(InvalidValueError, BankKPIError)
True
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Self

__all__ = [
    "AmbiguousInputError",
    "BankKPIError",
    "ConfigError",
    "DuplicateError",
    "ExpressionError",
    "FloatMoneyError",
    "InvalidValueError",
    "MissingDataError",
    "OutOfRangeError",
    "OverflowRiskError",
    "UnknownKeyError",
    "ValidationErrorGroup",
    "ZeroDenominatorError",
]


def describe(
    field: str,
    rule: str,
    value: object,
    *,
    subject: str | None = None,
) -> str:
    """Build the house-style message: ``[subject] field rule: value``.

    >>> describe("score", "must be <= 100", 104, subject="outlet 3201")
    "outlet 3201: 'score' must be <= 100: 104"
    """
    prefix = f"{subject}: " if subject else ""
    return f"{prefix}'{field}' {rule}: {value!r}"


class BankKPIError(Exception):
    """Root of every error bankkpi raises on purpose."""


class InvalidValueError(BankKPIError, ValueError):
    """A value breaks a documented rule (sign, order, type, format)."""

    def __init__(
        self,
        field: str,
        rule: str,
        value: object,
        *,
        subject: str | None = None,
    ) -> None:
        self.field = field
        self.rule = rule
        self.value = value
        self.subject = subject
        super().__init__(describe(field, rule, value, subject=subject))


class OutOfRangeError(InvalidValueError):
    """A value lies outside its allowed range (scale, discretionary range, cap)."""


class FloatMoneyError(InvalidValueError, TypeError):
    """A binary float was given where an exact amount is required.

    Convert it explicitly with :func:`bankkpi.decimal_from_float` if you must.
    """


class AmbiguousInputError(InvalidValueError):
    """An input could be read two ways; the message says what to write instead."""


class ZeroDenominatorError(BankKPIError, ZeroDivisionError):
    """A rate or ratio was asked for with a zero denominator."""

    def __init__(self, field: str, numerator: object, *, subject: str | None = None) -> None:
        self.field = field
        self.numerator = numerator
        self.subject = subject
        super().__init__(describe(field, "has a zero denominator", numerator, subject=subject))


class MissingDataError(BankKPIError, LookupError):
    """A value a rule needs is absent (no measurement, no rank, no phase)."""

    def __init__(self, what: str, key: object, *, subject: str | None = None) -> None:
        self.what = what
        self.key = key
        self.subject = subject
        prefix = f"{subject}: " if subject else ""
        super().__init__(f"{prefix}no {what} for {key!r}")

    def __str__(self) -> str:  # LookupError would repr() the message otherwise
        return str(self.args[0])


class UnknownKeyError(MissingDataError, KeyError):
    """A name refers to nothing known (unknown indicator, phase, subject, key)."""


class DuplicateError(InvalidValueError):
    """The same key was given twice where it must be unique."""


class OverflowRiskError(BankKPIError, OverflowError):
    """An integer array computation would leave the safe range of its dtype."""


class ConfigError(BankKPIError, ValueError):
    """A scheme or configuration file is not valid."""


class ExpressionError(ConfigError):
    """A formula expression is malformed, ill-typed, too large or refused.

    The message names the problem and, when the error has a place in the source,
    its 1-based ``column`` with the source shown above a caret::

        column 1: unknown function 'pow' (allowed: min, max, abs)
          pow(2, 3)
          ^

    ``problem`` is the message without the column and the caret lines; ``source``
    and ``column`` are ``""`` and ``None`` when there is no place to point at.
    """

    def __init__(self, problem: str, source: str = "", column: int | None = None) -> None:
        self.problem = problem
        self.source = source
        self.column = column
        if column is None:
            message = problem
        else:
            text, caret = _caret(source, column)
            message = f"column {column}: {problem}\n  {text}\n  {caret}"
        super().__init__(message)

    def __reduce__(self) -> tuple[type[ExpressionError], tuple[str, str, int | None]]:
        return (type(self), (self.problem, self.source, self.column))


_WINDOW = 60


def _cell_width(char: str) -> int:
    return 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1


def _caret(source: str, column: int) -> tuple[str, str]:
    """A one-line window of ``source`` around ``column`` and a caret line under it."""
    index = column - 1
    start = max(0, index - _WINDOW // 2)
    end = min(len(source), start + _WINDOW)
    shown = "".join(" " if c.isspace() else c for c in source[start:end])
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(source) else ""
    pad = sum(_cell_width(c) for c in prefix + shown[: index - start])
    return f"{prefix}{shown}{suffix}", " " * pad + "^"


class ValidationErrorGroup(ExceptionGroup[BankKPIError], BankKPIError):  # noqa: N818 - a group, named as in cattrs
    """Every failure found while checking many values at once.

    Validation never stops at the first bad value: it collects them all and raises
    this group, whose ``exceptions`` hold each failure in input order.
    """

    def __new__(cls, message: str, exceptions: Sequence[BankKPIError]) -> Self:
        """Group ``exceptions`` (each a :class:`BankKPIError`) under ``message``."""
        return super().__new__(cls, message, exceptions)

    def derive(self, excs: Sequence[BankKPIError]) -> ValidationErrorGroup:  # type: ignore[override]
        """Keep the class when ``except*`` splits the group."""
        return ValidationErrorGroup(self.message, excs)

    @property
    def problems(self) -> tuple[BankKPIError, ...]:
        """Every failure, nested groups flattened, in order."""
        flat: list[BankKPIError] = []
        for exc in self.exceptions:
            if isinstance(exc, ValidationErrorGroup):
                flat.extend(exc.problems)
            elif isinstance(exc, BankKPIError):
                flat.append(exc)
        return tuple(flat)

    def __str__(self) -> str:
        lines = [f"{self.message} ({len(self.exceptions)} problems)"]
        lines.extend(f"  - {exc}" for exc in self.exceptions)
        return "\n".join(lines)
