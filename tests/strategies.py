"""Hypothesis strategies shared by the test modules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import strategies as st

from bankkpi import Band, BandSet, Period, RoundingPolicy

MODES = ("half_up", "half_even", "half_down", "up", "down", "ceiling", "floor")


def decimals_at(places: int, low: int = -(10**6), high: int = 10**6) -> st.SearchStrategy[Decimal]:
    """Decimals with exactly ``places`` fractional digits in [low, high]."""
    scale = 10**places
    return st.integers(low * scale, high * scale).map(lambda n: Decimal(n).scaleb(-places))


def scores(places: int = 2) -> st.SearchStrategy[Decimal]:
    """Inspection scores on a 0–100 scale at ``places`` decimals."""
    return decimals_at(places, 0, 100).filter(lambda d: d <= 100)


rounding_policies = st.builds(
    RoundingPolicy,
    st.sampled_from(MODES),
    st.sampled_from(["0.001", "fen", "jiao", "yuan", "10", "100"]),
)

dates = st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31))


@st.composite
def periods(draw: st.DrawFn, max_days: int = 800) -> Period:
    start = draw(dates)
    return Period(start, start + dt.timedelta(days=draw(st.integers(0, max_days))))


@st.composite
def contiguous_band_sets(draw: st.DrawFn) -> BandSet:
    """Bands that tile [0, 100] with random cut points and random inclusivity."""
    cuts = sorted(draw(st.sets(decimals_at(1, 1, 99), max_size=6)))
    edges = [Decimal(0), *cuts, Decimal(100)]
    # At each inner cut, one side includes it: True means the upper band does.
    upper_takes = [draw(st.booleans()) for _ in cuts]
    bands = []
    for i in range(len(edges) - 1):
        low_inc = True if i == 0 else upper_takes[i - 1]
        high_inc = True if i == len(edges) - 2 else not upper_takes[i]
        bands.append(
            Band(f"b{i}", edges[i], edges[i + 1], low_inclusive=low_inc, high_inclusive=high_inc)
        )
    order = draw(st.permutations(bands))
    return BandSet(order, scale=(0, 100))
