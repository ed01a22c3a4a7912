"""Time ``bankkpi.vector.what_if`` per scenario, against each scenario evaluated alone.

    python benchmarks/whatif.py                        # N = 30,000 and 10^6, 100 scenarios
    python benchmarks/whatif.py --sizes 30000 --scenarios 20

The workload is ``examples/scheme_a.toml`` (five rules: two penalties, three
rewards; totals by region, penalties rolled up to each head office) over N outlets
with scores 60.00–100.00, 0–2 complaints and N/50 text region names (N/500 head
offices), and a grid over a penalty rule's rate (20 values) and a reward rule's
amount (5 values), as an analyst's notebook would write it. Two ways, in one
process, alternating, each the median of ``--repeats`` runs:

- ``what_if``: one call over every scenario (the population read once; rules and
  sums a scenario leaves as they were kept);
- ``alone``: each scenario's scheme (``override``) evaluated by its own
  ``evaluate_arrays`` call with a workspace kept between calls, then totalled.

Both give the same totals (checked before timing). The last line printed is one
JSON object: milliseconds per scenario for each way at each N, and their ratio
(``alone`` ÷ ``what_if``: higher is better for ``what_if``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from bankkpi import Scheme, load_scheme
from bankkpi.vector import Workspace, evaluate_arrays, grid, override, what_if

SCHEME_FILE: Final = Path(__file__).parent.parent / "examples" / "scheme_a.toml"
SEED: Final = 20241129


def population(n: int) -> tuple[dict[str, NDArray[np.int64]], dict[str, NDArray[np.str_]]]:
    """Scheme A's columns and attributes over ``n`` outlets, from :data:`SEED`."""
    rng = np.random.default_rng(SEED)
    regions, heads = max(1, n // 50), max(1, n // 500)
    columns = {"score": rng.integers(6_000, 10_001, n), "complaints": rng.integers(0, 3, n)}
    region = np.array([f"R{k:05d}" for k in range(regions)])[rng.integers(0, regions, n)]
    head = np.array([f"H{k:04d}" for k in range(heads)])[rng.integers(0, heads, n)]
    return columns, {"region": region, "head": head}


def scenarios(count: int) -> tuple[dict[str, object], ...]:
    """The first ``count`` scenarios of a grid over a penalty rate and a reward amount."""
    axes = {
        "rules[A.P3].**.rate": list(range(100, 300, 10)),
        "rules[A.no_complaint].**.amount": [500, 800, 1000, 1200, 1500],
    }
    return grid(axes)[:count]


def run_alone(
    scheme: Scheme,
    columns: dict[str, NDArray[np.int64]],
    attributes: dict[str, NDArray[np.str_]],
    chosen: tuple[dict[str, object], ...],
) -> list[tuple[int, int]]:
    """Each scenario's penalty and reward totals, each from a call of its own."""
    space = Workspace()
    totals = []
    for scenario in chosen:
        out = evaluate_arrays(override(scheme, scenario), columns, attributes, workspace=space)
        totals.append((out.total("penalty"), out.total("reward")))
    return totals


def measure(n: int, count: int, repeats: int) -> dict[str, float]:
    """Milliseconds per scenario for both ways at ``n`` outlets (medians of ``repeats``)."""
    scheme = load_scheme(SCHEME_FILE.read_text(encoding="utf-8"), format="toml")
    columns, attributes = population(n)
    chosen = scenarios(count)
    table = what_if(scheme, columns, attributes, chosen)
    together = [(r.penalty_fen, r.reward_fen) for r in table.results]
    if together != run_alone(scheme, columns, attributes, chosen):
        raise SystemExit(f"what_if and the scenarios alone differ at N={n}")
    times: dict[str, list[float]] = {"what_if": [], "alone": []}
    for _ in range(repeats):
        started = time.perf_counter()
        what_if(scheme, columns, attributes, chosen)
        times["what_if"].append(time.perf_counter() - started)
        started = time.perf_counter()
        run_alone(scheme, columns, attributes, chosen)
        times["alone"].append(time.perf_counter() - started)
    per = {way: statistics.median(t) / len(chosen) * 1e3 for way, t in times.items()}
    return {**per, "ratio": per["alone"] / per["what_if"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="30000,1000000", help="outlets, comma-separated")
    parser.add_argument("--scenarios", type=int, default=100, help="scenarios (at most 100)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each way")
    args = parser.parse_args()
    sizes = [int(float(size)) for size in args.sizes.split(",")]
    found = {}
    print(f"{'N':>10}  {'what_if ms/scenario':>20}  {'alone ms/scenario':>18}  {'ratio':>6}")
    for n in sizes:
        found[str(n)] = measure(n, args.scenarios, args.repeats)
        row = found[str(n)]
        print(f"{n:>10}  {row['what_if']:>20.2f}  {row['alone']:>18.2f}  {row['ratio']:>6.2f}")
    print(json.dumps({"scenarios": min(args.scenarios, 100), "per_scenario_ms": found}))


if __name__ == "__main__":
    main()
