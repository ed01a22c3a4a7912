"""The scheme-A phase workload: its parameters and a seeded population generator.

The rule, per outlet of a province (scores in integer hundredths of a point):

- ranks by score, higher is better, ties by competition ranking ("1224"), counted
  both from the top and from the bottom, in the province and within each region;
- the province's top ``top_exempt`` (rank from top <= 200) pay nothing at all;
- below ``target`` (score < 95): ``base + rate × (target − score)`` yuan, with
  ``bottom_base`` instead of ``base`` for the province's bottom ``bottom_n``
  (rank from bottom <= 100);
- rank 1 from the bottom within the region adds ``region_extra[0]`` (500), rank 2
  adds ``region_extra[1]`` (300); either also adds
  ``region_rate × max(0, target − score)``;
- the outlet's total is rounded once, half-up, to whole yuan.

Every implementation computes this exactly in integer fen: a shortfall of ``d``
hundredths at ``rate`` yuan per point is ``rate × d`` fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


class Outcome(NamedTuple):
    """What every implementation returns.

    ``amounts[i]`` is outlet ``i``'s total in whole yuan; ``region_totals[r]`` is
    the sum over region code ``r`` for ``r`` in ``0 .. max(regions)`` (0 for a code
    no outlet has).
    """

    amounts: I64
    region_totals: I64


@dataclass(frozen=True, slots=True)
class WorkloadParams:
    """The scheme's parameters (money in whole yuan, scores in hundredths)."""

    target: int = 9500
    base: int = 1000
    bottom_base: int = 2000
    rate: int = 200
    top_exempt: int = 200
    bottom_n: int = 100
    region_extra: tuple[int, int] = (500, 300)
    region_rate: int = 200
    # The population: the indicator's scale, the draw's range and grid, region size.
    scale_min: int = 0
    scale_max: int = 10_000
    score_min: int = 6_000
    score_max: int = 10_000
    score_step: int = 1
    outlets_per_region: int = 50

    def __post_init__(self) -> None:
        """Refuse parameters outside what every implementation handles."""
        money = (self.base, self.bottom_base, self.rate, *self.region_extra, self.region_rate)
        if min(money) < 0:
            raise ValueError(f"amounts and rates must be >= 0: {money}")
        if min(self.top_exempt, self.bottom_n) < 0:
            raise ValueError(f"rank cut-offs must be >= 0: {self.top_exempt}, {self.bottom_n}")
        if not self.scale_min <= self.score_min <= self.score_max <= self.scale_max:
            raise ValueError(
                "need scale_min <= score_min <= score_max <= scale_max: "
                f"{self.scale_min}, {self.score_min}, {self.score_max}, {self.scale_max}"
            )
        if self.score_step < 1 or self.outlets_per_region < 1:
            raise ValueError(
                f"score_step and outlets_per_region must be >= 1: "
                f"{self.score_step}, {self.outlets_per_region}"
            )


DEFAULT = WorkloadParams()


def make_population(n: int, seed: int, params: WorkloadParams = DEFAULT) -> tuple[I64, I64]:
    """``(scores_hundredths, regions)`` for ``n`` outlets, both int64, from ``seed``.

    Scores are uniform on ``score_min, score_min + score_step, ..., <= score_max``
    (a coarse step gives heavy ties); region codes are uniform on
    ``0 .. max(1, n // outlets_per_region) - 1``.
    """
    rng = np.random.default_rng(seed)
    steps = (params.score_max - params.score_min) // params.score_step
    scores = params.score_min + params.score_step * rng.integers(0, steps + 1, size=n)
    n_regions = max(1, n // params.outlets_per_region)
    regions = rng.integers(0, n_regions, size=n)
    return scores.astype(np.int64, copy=False), regions.astype(np.int64, copy=False)


def region_count(regions: I64) -> int:
    """The length of ``region_totals``: ``max(regions) + 1``, or 0 for no outlets."""
    return int(regions.max()) + 1 if regions.size else 0
