"""Measurements (得分 / 实际值) and the aggregations schemes need."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs

from bankkpi._checks import non_empty
from bankkpi._indicators import Indicator
from bankkpi._money import RoundingPolicy, exact_sum, to_decimal
from bankkpi._periods import Period
from bankkpi.exceptions import (
    BankKPIError,
    DuplicateError,
    MissingDataError,
    UnknownKeyError,
    ValidationErrorGroup,
    ZeroDenominatorError,
)

__all__ = ["Measurement", "MeasurementSet", "average", "rate", "total"]

Key = tuple[str, str, Period]


def _value(value: object, measurement: Any) -> Decimal:
    return to_decimal(value, field=measurement.indicator, subject=measurement.subject)


@attrs.frozen
class Measurement:
    """One measured value: ``subject`` scored ``value`` on ``indicator`` over ``period``.

    ``indicator`` is the indicator's code. ``value`` is coerced to Decimal (a float is
    refused); it is quantized and range-checked when the measurement joins a
    :class:`MeasurementSet`.
    """

    subject: str = attrs.field(validator=non_empty("subject"))
    indicator: str = attrs.field(validator=non_empty("indicator"))
    period: Period = attrs.field(validator=attrs.validators.instance_of(Period))
    value: Decimal = attrs.field(
        converter=attrs.Converter(_value, takes_self=True)  # type: ignore[misc]
    )

    @property
    def key(self) -> Key:
        """The identity of a measurement: (subject, indicator, period)."""
        return (self.subject, self.indicator, self.period)


def _copy_indicators(mapping: Mapping[str, Indicator]) -> dict[str, Indicator]:
    return dict(mapping)


@attrs.frozen
class MeasurementSet:
    """A validated collection of measurements with lookups.

    Build one with :meth:`build` (raises every problem at once) or :meth:`collect`
    (returns the good set and the errors, for batch runs). Values are quantized to
    their indicator's precision and checked against its scale.

    >>> from bankkpi import Indicator, Period
    >>> score = Indicator("score", "得分", "points", "higher_is_better",
    ...                   scale_min=0, scale_max=100, precision="0.1")
    >>> q1 = Period.quarter(2024, 1)
    >>> ms = MeasurementSet.build([Measurement("A", "score", q1, "91.46")], {"score": score})
    >>> ms.value("A", "score", q1)
    Decimal('91.5')
    """

    indicators: Mapping[str, Indicator] = attrs.field(converter=_copy_indicators)
    _by_key: Mapping[Key, Measurement] = attrs.field(alias="by_key", repr=False)

    @classmethod
    def collect(
        cls,
        measurements: Iterable[Measurement],
        indicators: Mapping[str, Indicator],
    ) -> tuple[MeasurementSet, tuple[BankKPIError, ...]]:
        """Keep every valid measurement and report every invalid one.

        A measurement is invalid when its indicator is unknown, its value is out of
        scale, or its (subject, indicator, period) was already seen; for a duplicate
        the first stays and the second is reported. Nothing is dropped silently:
        each input ends up in the set or in the errors.
        """
        by_key: dict[Key, Measurement] = {}
        errors: list[BankKPIError] = []
        for item in measurements:
            indicator = indicators.get(item.indicator)
            if indicator is None:
                errors.append(UnknownKeyError("indicator", item.indicator, subject=item.subject))
                continue
            try:
                value = indicator.check(item.value, subject=item.subject)
            except BankKPIError as exc:
                errors.append(exc)
                continue
            if item.key in by_key:
                errors.append(
                    DuplicateError(
                        item.indicator,
                        f"is measured twice for period {item.period}",
                        str(item.value),
                        subject=item.subject,
                    )
                )
                continue
            by_key[item.key] = attrs.evolve(item, value=value)
        return cls(indicators, by_key), tuple(errors)

    @classmethod
    def build(
        cls,
        measurements: Iterable[Measurement],
        indicators: Mapping[str, Indicator],
    ) -> MeasurementSet:
        """Like :meth:`collect`, but raise a :class:`ValidationErrorGroup` of every error."""
        result, errors = cls.collect(measurements, indicators)
        if errors:
            raise ValidationErrorGroup("invalid measurements", list(errors))
        return result

    def __iter__(self) -> Iterator[Measurement]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, subject: str, indicator: str, period: Period) -> Measurement | None:
        """The measurement for the key, or ``None``."""
        return self._by_key.get((subject, indicator, period))

    def value(self, subject: str, indicator: str, period: Period) -> Decimal:
        """The quantized value; :class:`MissingDataError` names what is missing."""
        found = self._by_key.get((subject, indicator, period))
        if found is None:
            raise MissingDataError(
                f"measurement of {indicator} in {period}", subject, subject=subject
            )
        return found.value

    def subjects(self) -> tuple[str, ...]:
        """Every subject measured, sorted."""
        return tuple(sorted({key[0] for key in self._by_key}))

    def for_subject(self, subject: str) -> tuple[Measurement, ...]:
        """The subject's measurements, in insertion order."""
        return tuple(m for m in self._by_key.values() if m.subject == subject)

    def for_indicator(self, indicator: str, period: Period) -> dict[str, Decimal]:
        """``subject → value`` for one indicator and period: the input of a ranking."""
        return {
            m.subject: m.value
            for m in self._by_key.values()
            if m.indicator == indicator and m.period == period
        }

    def average(
        self,
        subject: str,
        indicator: str,
        periods: Iterable[Period],
        rounding: RoundingPolicy,
    ) -> Decimal:
        """Mean over ``periods`` (e.g. the annual average of quarterly scores), rounded once."""
        return average([self.value(subject, indicator, p) for p in periods], rounding)


def total(values: Iterable[Decimal]) -> Decimal:
    """Exact sum of Decimals, whatever the caller's decimal context (see :func:`exact_sum`)."""
    return exact_sum(values)


def average(values: Iterable[Decimal], rounding: RoundingPolicy) -> Decimal:
    """The arithmetic mean, computed exactly and rounded once by ``rounding``.

    >>> average([Decimal("91"), Decimal("92"), Decimal("92")], RoundingPolicy("half_up", "0.01"))
    Decimal('91.67')
    """
    items = list(values)
    if not items:
        raise MissingDataError("values to average", "an empty list")
    exact = sum((Fraction(v) for v in items), Fraction(0)) / len(items)
    return rounding.apply_fraction(exact)


def rate(
    numerator: object,
    denominator: object,
    rounding: RoundingPolicy,
    *,
    field: str = "rate",
    subject: str | None = None,
    percent: bool = False,
) -> Decimal:
    """``numerator ÷ denominator`` (× 100 with ``percent=True``), rounded once.

    A zero denominator raises :class:`ZeroDenominatorError`; there is no NaN.

    >>> rate(61, 100, RoundingPolicy("half_up", "0.1"), percent=True)
    Decimal('61.0')
    """
    num = to_decimal(numerator, field=f"{field}.numerator", subject=subject)
    den = to_decimal(denominator, field=f"{field}.denominator", subject=subject)
    if den == 0:
        raise ZeroDenominatorError(field, num, subject=subject)
    exact = Fraction(num) / Fraction(den) * (100 if percent else 1)
    return rounding.apply_fraction(exact)
