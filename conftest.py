"""Test-run settings: the float trap and the hypothesis profiles.

- ``decimal.FloatOperation`` is trapped for the whole run, so a float that leaks into
  Decimal arithmetic or comparison fails the test that let it in.
- Hypothesis profiles: ``default`` (quick, for every run and CI) and ``thorough``
  (long property runs), chosen by ``BANKKPI_HYPOTHESIS_PROFILE=thorough``.
"""

from __future__ import annotations

import decimal
import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough",
    max_examples=5_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("BANKKPI_HYPOTHESIS_PROFILE", "default"))

decimal.DefaultContext.traps[decimal.FloatOperation] = True
decimal.getcontext().traps[decimal.FloatOperation] = True


@pytest.fixture(autouse=True)
def _float_trap() -> Iterator[None]:
    """Keep FloatOperation trapped in every test, whatever ran before it."""
    context = decimal.getcontext()
    before = context.traps[decimal.FloatOperation]
    context.traps[decimal.FloatOperation] = True
    yield
    context.traps[decimal.FloatOperation] = before
