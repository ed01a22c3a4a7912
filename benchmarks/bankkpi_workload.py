"""The scheme-A phase workload as bankkpi runs it: the row the peers are compared to.

:func:`run_bankkpi` evaluates ``scheme_a_phase.toml`` — the workload written as an
ordinary bankkpi scheme file — with :func:`bankkpi.vector.evaluate_arrays`, the
generic vector engine (rankings, rules, rounding and group totals all from the
scheme), and converts its fen amounts to the runner's whole-yuan :class:`Outcome`.

:func:`exact_rate` measures the exact Decimal path (:func:`bankkpi.evaluate`, with a
full trace for every amount) in outlet-evaluations per second.
"""

from __future__ import annotations

import time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np

from bankkpi import Scheme, SubjectRow, evaluate, load_scheme
from bankkpi.vector import evaluate_arrays
from workload import I64, Outcome, WorkloadParams

LABEL: Final = "bankkpi.vector"
"""What the runner prints, and writes to its JSON line, for the bankkpi row."""

IS_STAND_IN: Final = False
"""True while :func:`run_bankkpi` is not bankkpi's own code."""

SCHEME_FILE: Final = Path(__file__).with_name("scheme_a_phase.toml")


@cache
def scheme() -> Scheme:
    """The workload's scheme, loaded once."""
    return load_scheme(SCHEME_FILE.read_text(encoding="utf-8"), format="toml")


def _check_params(params: WorkloadParams) -> None:
    if params != WorkloadParams(
        score_min=params.score_min,
        score_max=params.score_max,
        score_step=params.score_step,
        outlets_per_region=params.outlets_per_region,
    ):
        msg = "bankkpi runs the parameters of scheme_a_phase.toml; edit the file for others"
        raise ValueError(msg)


def run_bankkpi(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """The workload through bankkpi's vector engine (amounts in whole yuan)."""
    _check_params(params)
    out = evaluate_arrays(scheme(), {"score": scores}, {"region": regions})
    amounts = out.penalty // 100  # every amount is whole yuan: the scheme rounds to yuan
    totals = out.group_totals["region"]
    region_totals = np.zeros(int(regions.max()) + 1 if regions.size else 0, dtype=np.int64)
    region_totals[totals.keys.astype(np.int64)] = totals.penalty // 100
    return Outcome(amounts, region_totals)


def exact_rate(scores: I64, regions: I64) -> tuple[float, int]:
    """Outlet-evaluations per second of the exact path (with traces), and the rows used."""
    rows = [
        SubjectRow(f"o{i}", {"region": str(int(r))}, {"score": Decimal(int(s)).scaleb(-2)})
        for i, (s, r) in enumerate(zip(scores, regions, strict=True))
    ]
    start = time.perf_counter()
    results = evaluate(scheme(), rows)
    seconds = time.perf_counter() - start
    assert not results.errors, results.errors[:3]  # noqa: S101 - clean generated data
    assert all(line.trace.to_dict() for line in results.lines[:10])  # noqa: S101 - traces exist
    return len(rows) / seconds, len(rows)
