"""Targets (目标值): at least, at most, within, relative to a baseline, staged by phase.

Every target answers three questions about a measured value:

- :meth:`met` — is the target reached, by the stated inclusivity;
- :meth:`shortfall` — how far from the threshold, in the indicator's units, never
  negative (``98 − 96.5 = 1.5`` points short; for an at-most target the excess);
- :meth:`attainment` — the exact ratio (完成率) as a :class:`~fractions.Fraction`,
  with an optional cap (封顶) and floor (保底).

For an *exclusive* bound a value exactly on the threshold is not met and has a
shortfall of zero: the shortfall is the distance to the threshold, as in "每差1分".
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Literal, TypeAlias

import attrs

from bankkpi import _checks as checks
from bankkpi._checks import one_of
from bankkpi._money import CONTEXT
from bankkpi.exceptions import (
    AmbiguousInputError,
    InvalidValueError,
    UnknownKeyError,
    ZeroDenominatorError,
)

__all__ = [
    "AtLeast",
    "AtMost",
    "AttainmentConvention",
    "RelativeTarget",
    "StagedTarget",
    "Target",
    "Within",
]

AttainmentConvention: TypeAlias = Literal["ratio", "inverse", "complement"]
"""How attainment is computed.

- ``ratio``: actual ÷ target, for higher-is-better (at-least) targets;
- ``inverse``: target ÷ actual, for lower-is-better (at-most) targets;
- ``complement``: 2 − actual ÷ target (= 1 + saving ÷ target), for lower-is-better.
"""

_ZERO = Decimal(0)


def _clamp(value: Fraction, cap: Decimal | None, floor: Decimal | None) -> Fraction:
    if cap is not None and floor is not None and floor > cap:
        raise InvalidValueError("floor", f"must not exceed cap {cap}", floor)
    if cap is not None:
        value = min(value, Fraction(cap))
    if floor is not None:
        value = max(value, Fraction(floor))
    return value


def _ratio(numerator: Decimal, denominator: Decimal, field: str) -> Fraction:
    if denominator == 0:
        raise ZeroDenominatorError(field, numerator)
    return Fraction(numerator) / Fraction(denominator)


@attrs.frozen
class AtLeast:
    """Met when the value is ≥ ``threshold`` (``inclusive=False``: strictly >).

    >>> t = AtLeast(95)
    >>> t.met(Decimal("95")), t.shortfall(Decimal("91.5")), t.shortfall(Decimal("99"))
    (True, Decimal('3.5'), Decimal('0'))
    >>> t.attainment(Decimal("114"), cap=Decimal("1.2"))
    Fraction(6, 5)
    """

    threshold: Decimal = attrs.field(converter=checks.threshold)
    inclusive: bool = True

    def met(self, value: Decimal) -> bool:
        """Whether ``value`` reaches the threshold."""
        return value >= self.threshold if self.inclusive else value > self.threshold

    def shortfall(self, value: Decimal) -> Decimal:
        """``max(0, threshold − value)`` in the indicator's units."""
        return max(_ZERO, CONTEXT.subtract(self.threshold, value))

    def attainment(
        self,
        value: Decimal,
        *,
        convention: AttainmentConvention = "ratio",
        cap: Decimal | None = None,
        floor: Decimal | None = None,
    ) -> Fraction:
        """``value ÷ threshold``, clamped to [floor, cap] when given."""
        if convention != "ratio":
            raise InvalidValueError(
                "convention", "must be 'ratio' for an at-least target", convention
            )
        return _clamp(_ratio(value, self.threshold, "attainment"), cap, floor)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """``≥ 95`` / ``95(含)以上``."""
        if lang == "zh":
            return f"{self.threshold}{'(含)' if self.inclusive else '(不含)'}以上"
        return f"{'≥' if self.inclusive else '>'} {self.threshold}"


@attrs.frozen
class AtMost:
    """Met when the value is ≤ ``threshold`` (``inclusive=False``: strictly <).

    For lower-is-better indicators: NPL ratio ≤ 2%, waiting time, error rate. The
    shortfall is the excess over the threshold. Attainment needs a stated
    convention, ``inverse`` or ``complement``.

    >>> npl = AtMost(2)
    >>> npl.met(Decimal("2.5")), npl.shortfall(Decimal("2.5"))
    (False, Decimal('0.5'))
    >>> npl.attainment(Decimal("1.6"), convention="complement")
    Fraction(6, 5)
    """

    threshold: Decimal = attrs.field(converter=checks.threshold)
    inclusive: bool = True

    def met(self, value: Decimal) -> bool:
        """Whether ``value`` stays within the threshold."""
        return value <= self.threshold if self.inclusive else value < self.threshold

    def shortfall(self, value: Decimal) -> Decimal:
        """``max(0, value − threshold)``: the excess, in the indicator's units."""
        return max(_ZERO, CONTEXT.subtract(value, self.threshold))

    def attainment(
        self,
        value: Decimal,
        *,
        convention: AttainmentConvention | None = None,
        cap: Decimal | None = None,
        floor: Decimal | None = None,
    ) -> Fraction:
        """Attainment by ``inverse`` (target ÷ actual) or ``complement`` (2 − actual ÷ target).

        ``inverse`` of a zero actual is infinite: with a ``cap`` it is the cap,
        otherwise :class:`ZeroDenominatorError`.
        """
        if convention == "inverse":
            if value == 0 and cap is not None:
                return _clamp(Fraction(cap), cap, floor)
            return _clamp(_ratio(self.threshold, value, "attainment"), cap, floor)
        if convention == "complement":
            return _clamp(2 - _ratio(value, self.threshold, "attainment"), cap, floor)
        raise AmbiguousInputError(
            "convention",
            "must be stated for a lower-is-better target: "
            "write convention='inverse' (target ÷ actual) or "
            "convention='complement' (2 − actual ÷ target)",
            convention,
        )

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:
        """``≤ 2`` / ``2(含)以下``."""
        if lang == "zh":
            return f"{self.threshold}{'(含)' if self.inclusive else '(不含)'}以下"
        return f"{'≤' if self.inclusive else '<'} {self.threshold}"


@attrs.frozen
class Within:
    """Met when ``low ≤ value ≤ high`` (each end's inclusivity stated).

    The shortfall is the distance to the nearer bound when outside, else 0.
    Attainment is 1 inside, ``value ÷ low`` below and ``high ÷ value`` above.
    """

    low: Decimal = attrs.field(converter=checks.low)
    high: Decimal = attrs.field(converter=checks.high)
    low_inclusive: bool = True
    high_inclusive: bool = True

    @high.validator
    def _check_order(self, _attribute: object, high: Decimal) -> None:
        if high < self.low:
            raise InvalidValueError("high", f"must not be below low {self.low}", high)

    def met(self, value: Decimal) -> bool:
        """Whether ``value`` lies in the range."""
        above_low = value >= self.low if self.low_inclusive else value > self.low
        below_high = value <= self.high if self.high_inclusive else value < self.high
        return above_low and below_high

    def shortfall(self, value: Decimal) -> Decimal:
        """Distance from ``value`` to the range, 0 inside or on a bound."""
        return max(_ZERO, CONTEXT.subtract(self.low, value), CONTEXT.subtract(value, self.high))

    def attainment(
        self,
        value: Decimal,
        *,
        convention: AttainmentConvention = "ratio",  # noqa: ARG002 - one signature for all targets
        cap: Decimal | None = None,
        floor: Decimal | None = None,
    ) -> Fraction:
        """1 inside the range, ``value ÷ low`` below it, ``high ÷ value`` above it."""
        if value < self.low:
            return _clamp(_ratio(value, self.low, "attainment"), cap, floor)
        if value > self.high:
            return _clamp(_ratio(self.high, value, "attainment"), cap, floor)
        return _clamp(Fraction(1), cap, floor)

    def describe(self, lang: Literal["zh", "en"] = "en") -> str:  # noqa: ARG002
        """Interval notation, ``[90, 100)``."""
        return (
            f"{'[' if self.low_inclusive else '('}{self.low}, "
            f"{self.high}{']' if self.high_inclusive else ')'}"
        )


Target: TypeAlias = AtLeast | AtMost | Within
"""Any absolute target."""


@attrs.frozen
class RelativeTarget:
    """A target relative to a baseline: ``threshold = baseline × (1 + change)``.

    ``change`` is a fraction: ``-0.40`` is "down at least 40%", ``0.30`` is "+30%".
    ``bound`` says which side meets it and must be stated: the complaint rate down
    40% is ``RelativeTarget("-0.40", "at_most")``; efficiency up 30% is
    ``RelativeTarget("0.30", "at_least")``.

    >>> t = RelativeTarget("-0.40", "at_most").resolve(Decimal("2.5"))
    >>> t, t.met(Decimal("1.5")), t.met(Decimal("1.51"))
    (AtMost(threshold=Decimal('1.500'), inclusive=True), True, False)
    """

    change: Decimal = attrs.field(converter=checks.change)
    bound: Literal["at_least", "at_most"] = attrs.field(
        validator=one_of("bound", ("at_least", "at_most"))
    )
    inclusive: bool = True

    @change.validator
    def _check_change(self, _attribute: object, change: Decimal) -> None:
        if change <= -1:
            raise InvalidValueError("change", "must be greater than -1 (−100%)", change)

    def threshold(self, baseline: Decimal) -> Decimal:
        """``baseline × (1 + change)``, exact."""
        return CONTEXT.multiply(baseline, CONTEXT.add(Decimal(1), self.change))

    def resolve(self, baseline: Decimal) -> AtLeast | AtMost:
        """The absolute target for this baseline (last year's value)."""
        if self.bound == "at_least":
            return AtLeast(self.threshold(baseline), inclusive=self.inclusive)
        return AtMost(self.threshold(baseline), inclusive=self.inclusive)


def _copy_stages(mapping: Mapping[str, Target]) -> dict[str, Target]:
    return dict(mapping)


@attrs.frozen
class StagedTarget:
    """One target per phase, such as scheme A's 92 / 95 / 98.

    >>> staged = StagedTarget({"P1": AtLeast(92), "P2": AtLeast(95), "P3": AtLeast(98)})
    >>> staged.for_phase("P2").threshold
    Decimal('95')
    """

    stages: Mapping[str, Target] = attrs.field(converter=_copy_stages)

    @stages.validator
    def _check_stages(self, _attribute: object, stages: Mapping[str, Target]) -> None:
        if not stages:
            raise InvalidValueError("stages", "must name at least one phase", stages)

    def for_phase(self, phase: str) -> Target:
        """The target of ``phase``; an unknown phase is an :class:`UnknownKeyError`."""
        try:
            return self.stages[phase]
        except KeyError:
            known = ", ".join(self.stages)
            raise UnknownKeyError(f"target for phase (known: {known})", phase) from None
