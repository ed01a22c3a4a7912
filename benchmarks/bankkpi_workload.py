"""The scheme-A phase workload as bankkpi runs it: the row the peers are compared to.

:func:`run_bankkpi` evaluates ``scheme_a_phase.toml`` — the workload written as an
ordinary bankkpi scheme file — with :func:`bankkpi.vector.evaluate_arrays`, the
generic vector engine (rankings, rules, rounding and group totals all from the
scheme), and converts its fen amounts to the runner's whole-yuan :class:`Outcome`.

:func:`exact_rates` measures the exact Decimal path (:func:`bankkpi.evaluate`, with
a full trace for every amount) in outlet-evaluations per second. ``evaluate``
computes amounts on a lean path and builds each trace when it is first read, so it
reports both the rate with every trace built and the rate with traces left to be
built on demand; :func:`exact_rates_fresh` runs it in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

import numpy as np
from workload import I64, Outcome, WorkloadParams

from bankkpi import Scheme, SubjectRow, dump_scheme, evaluate, load_scheme, parse_scheme
from bankkpi.vector import ArrayResults, Workspace, evaluate_arrays

LABEL: Final = "bankkpi.vector, one Workspace kept between calls"
"""What the runner prints, and writes to its JSON line, for the bankkpi row."""

FRESH_LABEL: Final = "bankkpi.vector, no workspace: every array new"
"""What the runner prints for the ``bankkpi-fresh`` row (:func:`run_bankkpi_fresh`)."""

IS_STAND_IN: Final = False
"""True while :func:`run_bankkpi` is not bankkpi's own code."""

SCHEME_FILE: Final = Path(__file__).with_name("scheme_a_phase.toml")


@cache
def scheme(params: WorkloadParams = WorkloadParams()) -> Scheme:  # noqa: B008 - frozen value
    """``scheme_a_phase.toml``, its numbers set from ``params`` (a cut-off of 0 drops its case)."""
    base = load_scheme(SCHEME_FILE.read_text(encoding="utf-8"), format="toml")
    data = dump_scheme(base)
    target = str(Decimal(params.target).scaleb(-2))
    data["indicators"][0]["scale_min"] = str(Decimal(params.scale_min).scaleb(-2))
    data["indicators"][0]["scale_max"] = str(Decimal(params.scale_max).scaleb(-2))
    phase, lowest = data["rules"][0]["formula"]["parts"]
    phase["otherwise"] |= {"base": params.base, "rate": params.rate}
    exempt_case, bottom_case = phase["cases"]
    exempt_case["when"]["selection"]["n"] = params.top_exempt
    bottom_case["when"]["selection"]["n"] = params.bottom_n
    bottom_case["then"] |= {"base": params.bottom_base, "rate": params.rate}
    phase["otherwise"]["target"]["threshold"] = target
    bottom_case["then"]["target"]["threshold"] = target
    lowest_exempt, first, second = lowest["cases"]
    lowest_exempt["when"]["selection"]["n"] = params.top_exempt
    for case, extra in ((first, params.region_extra[0]), (second, params.region_extra[1])):
        case["then"]["parts"][0]["amount"] = extra
        case["then"]["parts"][1] |= {"rate": params.region_rate}
        case["then"]["parts"][1]["target"]["threshold"] = target
    if params.bottom_n == 0:
        phase["cases"].remove(bottom_case)
    if params.top_exempt == 0:
        phase["cases"].remove(exempt_case)
        lowest["cases"].remove(lowest_exempt)
    if not phase["cases"]:
        data["rules"][0]["formula"]["parts"][0] = phase["otherwise"]
    return parse_scheme(data)


SPACE: Final = Workspace()
"""Memory the benchmark's calls share, as a program evaluating again and again would."""


def run_bankkpi(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """The workload through bankkpi's vector engine (amounts in whole yuan), with :data:`SPACE`."""
    out = evaluate_arrays(scheme(params), {"score": scores}, {"region": regions}, workspace=SPACE)
    return _outcome(out)


def run_bankkpi_fresh(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """:func:`run_bankkpi` without a workspace: every array new, as in a single call."""
    return _outcome(evaluate_arrays(scheme(params), {"score": scores}, {"region": regions}))


ROWS: Final = {"bankkpi": run_bankkpi, "bankkpi-fresh": run_bankkpi_fresh}
"""The runner's bankkpi rows: the one the ratios are taken against, then the other."""


def _outcome(out: ArrayResults) -> Outcome:
    """The engine's results as the runner compares them (fen to whole yuan, totals by code)."""
    amounts = out.penalty // 100  # every amount is whole yuan: the scheme rounds to yuan
    totals = out.group_totals["region"]
    keys = totals.keys.astype(np.int64)  # every region code given, once: the largest is the last
    region_totals = np.zeros(int(keys[-1]) + 1 if keys.size else 0, dtype=np.int64)
    region_totals[keys] = totals.penalty // 100
    return Outcome(amounts, region_totals)


def exact_rates(scores: I64, regions: I64) -> tuple[float, float, int]:
    """Outlet-evaluations per second of the exact path, and the rows used.

    Two rates from one run: with every trace built (``evaluate``, then every
    line's ``trace`` read, as a batch run writing ``traces.jsonl`` does), and with
    the traces left to be built on demand (``evaluate`` alone: amounts and totals).
    """
    rows = [
        SubjectRow(f"o{i}", {"region": str(int(r))}, {"score": Decimal(int(s)).scaleb(-2)})
        for i, (s, r) in enumerate(zip(scores, regions, strict=True))
    ]
    start = time.perf_counter()
    results = evaluate(scheme(), rows)
    evaluated = time.perf_counter()
    traces = [line.trace for line in results.lines]
    materialised = time.perf_counter()
    assert not results.errors, results.errors[:3]  # noqa: S101 - clean generated data
    assert len(traces) == len(rows)  # noqa: S101 - one rule: one trace per outlet
    assert all(t.to_dict() for t in traces[:10])  # noqa: S101 - traces exist
    return len(rows) / (materialised - start), len(rows) / (evaluated - start), len(rows)


def exact_rates_fresh(n: int, seed: int, rounds: int = 3) -> tuple[float, float]:
    """:func:`exact_rates` over ``n`` generated outlets in a fresh interpreter.

    The medians of ``rounds`` runs. A fresh process holds only bankkpi, as a batch
    run does: in the runner's own process the peers' modules (numba, polars,
    pandas) and what the large sizes left behind make every garbage collection
    longer, and the rate comes out lower by a third or more.
    """
    code = (
        "import json, statistics, sys\n"
        "from workload import make_population\n"
        "from bankkpi_workload import exact_rates\n"
        f"scores, regions = make_population({n}, {seed})\n"
        f"runs = [exact_rates(scores, regions)[:2] for _ in range({rounds})]\n"
        "print(json.dumps([statistics.median(r[k] for r in runs) for k in (0, 1)]))\n"
    )
    out = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", code],
        cwd=Path(__file__).parent,
        check=True,
        capture_output=True,
        text=True,
    )
    with_traces, on_demand = json.loads(out.stdout.strip().splitlines()[-1])
    return float(with_traces), float(on_demand)


def exact_rate(scores: I64, regions: I64) -> tuple[float, int]:
    """Outlet-evaluations per second of the exact path with every trace built, and the rows."""
    with_traces, _on_demand, n = exact_rates(scores, regions)
    return with_traces, n
