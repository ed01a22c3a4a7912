"""Small attrs converters and validators shared by the value classes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from bankkpi._money import DecimalLike, to_decimal
from bankkpi.exceptions import InvalidValueError

__all__ = [
    "change",
    "high",
    "low",
    "non_empty",
    "one_of",
    "optional_decimal",
    "optional_high",
    "optional_low",
    "scale_max",
    "scale_min",
    "threshold",
]


def one_of(field: str, allowed: tuple[str, ...]) -> Callable[[Any, Any, Any], None]:
    """An attrs validator for a closed vocabulary whose message lists the choices."""

    def check(_instance: object, _attribute: object, value: object) -> None:
        if value not in allowed:
            quoted = [repr(a) for a in allowed]
            rule = (
                f"must be {' or '.join(quoted)}"
                if len(allowed) == 2
                else f"must be one of {', '.join(quoted)}"
            )
            raise InvalidValueError(field, rule, value)

    return check


def non_empty(field: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator for a non-blank string (codes, ids, names)."""

    def check(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise InvalidValueError(field, "must be a non-empty string", value)

    return check


def optional_decimal(value: object, field: str) -> Decimal | None:
    """:func:`~bankkpi.to_decimal`, letting ``None`` through."""
    return None if value is None else to_decimal(value, field=field)


# Named converters, one per field name, so that mypy's attrs plugin types each
# ``__init__`` argument as ``DecimalLike`` and the error names the field.


def threshold(value: DecimalLike) -> Decimal:
    """Converter for a ``threshold`` field."""
    return to_decimal(value, field="threshold")


def low(value: DecimalLike) -> Decimal:
    """Converter for a ``low`` field."""
    return to_decimal(value, field="low")


def high(value: DecimalLike) -> Decimal:
    """Converter for a ``high`` field."""
    return to_decimal(value, field="high")


def change(value: DecimalLike) -> Decimal:
    """Converter for a ``change`` field."""
    return to_decimal(value, field="change")


def optional_low(value: DecimalLike | None) -> Decimal | None:
    """Converter for an optional ``low`` field (``None`` is −∞)."""
    return optional_decimal(value, "low")


def optional_high(value: DecimalLike | None) -> Decimal | None:
    """Converter for an optional ``high`` field (``None`` is +∞)."""
    return optional_decimal(value, "high")


def scale_min(value: DecimalLike | None) -> Decimal | None:
    """Converter for ``scale_min``."""
    return optional_decimal(value, "scale_min")


def scale_max(value: DecimalLike | None) -> Decimal | None:
    """Converter for ``scale_max``."""
    return optional_decimal(value, "scale_max")
