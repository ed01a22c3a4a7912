"""Time the scheme-A phase workload: bankkpi's vector path against its peers.

    python benchmarks/run.py                       # N = 10^5, 10^6, 10^7
    python benchmarks/run.py --sizes 100000,1e6    # chosen sizes
    python benchmarks/run.py --quick               # a few-second smoke run
    python benchmarks/run.py --check               # all implementations agree?

Each implementation runs in a process of its own (``isolated.py``), once as a
warm-up, its output compared with bankkpi's (a difference stops the run with exit
status 1); then ``--repeats`` rounds each time every implementation once,
interleaved, one at a time. The table shows the median, the minimum and
the ratio ``peer median ÷ bankkpi median`` (higher: bankkpi is faster). numba's
compile time is measured apart, before any timing. The last line printed is one
JSON object (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Final

from bankkpi_workload import FRESH_LABEL, IS_STAND_IN, LABEL, ROWS, exact_rates_fresh
from check import difference, run_check
from isolated import Workers
from peers import IMPLEMENTATIONS, Implementation, numba_fused, versions
from workload import DEFAULT, Outcome, make_population

DEFAULT_SIZES: Final = (100_000, 1_000_000, 10_000_000)
QUICK_SIZES: Final = (20_000,)
RATIO_N: Final = 1_000_000
EXACT_N: Final = 20_000  # outlets for the exact-path rate (it is ~10^4 times slower)
PYTHON_MAX_N: Final = 1_000_000
"""The pure-Python loop is not run above this size (its ratio there is null)."""
SEED: Final = 20240501
ORDER: Final = (
    "bankkpi",
    "bankkpi-fresh",
    "numpy-reference",
    "numpy-expert",
    "python",
    "pandas",
    "polars",
    "numba",
)
JSON_PEERS: Final = {
    "python": "vs_python",
    "pandas": "vs_pandas",
    "polars": "vs_polars",
    "numba": "vs_numba",
    "numpy-reference": "vs_numpy_reference",
    "numpy-expert": "vs_numpy_expert",
}


def _sizes(text: str) -> tuple[int, ...]:
    """``"100000,1e6,10_000_000"`` → ``(100000, 1000000, 10000000)``."""
    sizes = []
    for item in text.split(","):
        mantissa, _, exponent = item.strip().lower().partition("e")
        size = int(mantissa) * 10 ** int(exponent or 0)
        if size < 1:
            raise argparse.ArgumentTypeError(f"sizes must be >= 1: {item!r}")
        sizes.append(size)
    return tuple(sizes)


def _warm_up_and_check(workers: Workers) -> str | None:
    """``None`` if every worker's warm-up outcome matches bankkpi's, else why not."""
    expected = workers.outcomes["bankkpi"]
    for name, outcome in workers.outcomes.items():
        if isinstance(outcome, str):
            return f"{name} failed: {outcome}"
        if isinstance(expected, Outcome) and (why := difference(expected, outcome)) is not None:
            return f"{name} differs from bankkpi: {why}"
    return None


def _time_round_robin(workers: Workers, names: list[str], repeats: int) -> dict[str, list[float]]:
    """``repeats`` rounds, each timing every implementation once, in its own process.

    Interleaving spreads any change in the machine's other load over all of them
    instead of charging it to whichever ran during it.
    """
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            seconds[name].append(workers.time_once(name))
    return seconds


def _numba_compile_seconds() -> float | None:
    """Seconds of numba's first call (compilation) on a tiny population."""
    if numba_fused is None:
        return None
    scores, regions = make_population(8, SEED)
    started = time.perf_counter()
    numba_fused(scores, regions, DEFAULT)
    return time.perf_counter() - started


def _machine() -> dict[str, object]:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "processor": platform.processor(),
        "cpu": cpu,
        "machine": platform.machine(),
        "python": platform.python_version(),
        **versions(),
    }


def _row(n: int, name: str, seconds: list[float] | None, ratio: float | None, note: str) -> None:
    label = {"bankkpi": f"bankkpi: {LABEL}", "bankkpi-fresh": f"bankkpi: {FRESH_LABEL}"}.get(
        name, name
    )
    if seconds is None:
        print(f"{n:>10}  {label:<60} {note}", flush=True)
        return
    shown = "" if ratio is None else f"{ratio:8.2f}"
    print(
        f"{n:>10}  {label:<60} {statistics.median(seconds):10.4f} {min(seconds):10.4f} "
        f"{len(seconds):>3} {shown:>8}",
        flush=True,
    )


def _processor_medians(
    n: int, processor: dict[str, list[tuple[float, float]]]
) -> dict[str, dict[str, float]]:
    """Print and return each implementation's median processor seconds per call.

    User time counts every thread's work; system time is mostly the kernel
    providing fresh memory, which on a shared virtual machine varies from call to
    call far more than the work does.
    """
    found = {
        name: {
            "user": statistics.median(u for u, _ in calls),
            "system": statistics.median(s for _, s in calls),
        }
        for name, calls in processor.items()
        if calls
    }
    shown = ", ".join(f"{name} {t['user']:.4f} + {t['system']:.4f}" for name, t in found.items())
    print(f"{n:>10}  processor s per call, medians (user + system): {shown}", flush=True)
    return found


def _ratio(medians: dict[str, float | None], name: str, ours: str = "bankkpi") -> float | None:
    """``name``'s median over ``ours``'s (the bankkpi row, or ``bankkpi-fresh``)."""
    peer, base = medians.get(name), medians.get(ours)
    return None if peer is None or not base else round(peer / base, 3)


def _select(
    n: int, impls: dict[str, Implementation | None], only: set[str]
) -> tuple[dict[str, Implementation], dict[str, str]]:
    """The implementations to time at ``n`` (bankkpi first), and why others are not."""
    runnable: dict[str, Implementation] = {}
    skipped: dict[str, str] = {}
    for name in ORDER:
        impl = impls[name]
        if name not in ROWS and name not in only:
            continue
        if impl is None:
            skipped[name] = "not installed"
        elif name == "python" and n > PYTHON_MAX_N:
            skipped[name] = f"skipped (N > {PYTHON_MAX_N})"
        else:
            runnable[name] = impl
    return runnable, skipped


def run(sizes: tuple[int, ...], repeats: int, only: set[str]) -> int:
    """Time every selected implementation at every size; print the table and JSON."""
    impls: dict[str, Implementation | None] = {**ROWS, **IMPLEMENTATIONS}
    load_start = os.getloadavg()[0]
    compile_seconds = _numba_compile_seconds() if "numba" in only else None
    print(f"bankkpi row: {LABEL}" + (" [STAND-IN, not bankkpi code]" if IS_STAND_IN else ""))
    if compile_seconds is not None:
        print(f"numba compile (first call, excluded from timings): {compile_seconds:.2f} s")
    print(
        f"{'N':>10}  {'implementation':<60} {'median s':>10} {'min s':>10} {'k':>3} "
        f"{'ratio':>8}  (ratio = median / bankkpi median)"
    )
    all_medians: dict[str, dict[str, float | None]] = {}
    all_mins: dict[str, dict[str, float]] = {}
    all_processor: dict[str, dict[str, dict[str, float]]] = {}
    for n in sizes:
        runnable, skipped = _select(n, impls, only)
        try:
            with Workers(list(runnable), n, SEED) as workers:
                if (why := _warm_up_and_check(workers)) is not None:
                    print(f"MISMATCH at N={n}: {why}", file=sys.stderr)
                    return 1
                seconds = _time_round_robin(workers, list(runnable), repeats)
                processor = dict(workers.processor)
        except RuntimeError as exc:  # a worker failed or stopped
            print(f"FAILED at N={n}: {exc}", file=sys.stderr)
            return 1
        medians = {
            name: statistics.median(seconds[name]) if name in seconds else None for name in ORDER
        }
        all_medians[str(n)] = medians
        all_mins[str(n)] = {name: min(times) for name, times in seconds.items()}
        for name in ORDER:
            if name in seconds or name in skipped:
                _row(n, name, seconds.get(name), _ratio(medians, name), skipped.get(name, ""))
        all_processor[str(n)] = _processor_medians(n, processor)
    exact_n = 2_000 if max(sizes) <= 10_000 else EXACT_N
    exact_per_second, deferred_per_second = exact_rates_fresh(exact_n, SEED)
    print(
        f"exact path (bankkpi.evaluate, Decimal, full trace per amount): "
        f"{exact_per_second:,.0f} outlet-evaluations/s over {exact_n:,} outlets with every "
        f"trace built; {deferred_per_second:,.0f}/s with traces built on demand "
        "(fresh process, median of 3)"
    )
    at_ratio_n = all_medians.get(str(RATIO_N), {})
    summary: dict[str, object] = {
        "workload": "scheme-A phase",
        "bankkpi_impl": LABEL,
        "bankkpi_is_stand_in": IS_STAND_IN,
        "seed": SEED,
        "repeats": repeats,
        "machine": _machine(),
        "loadavg_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "numba_compile_seconds": compile_seconds,
        "medians": all_medians,
        "mins": all_mins,
        "processor_medians": all_processor,
        "ratios_at_n": RATIO_N,
        "exact_outlets_per_second": round(exact_per_second),
        "exact_outlets_per_second_traces_on_demand": round(deferred_per_second),
        "exact_outlets": exact_n,
    }
    summary |= {key: _ratio(at_ratio_n, name) for name, key in JSON_PEERS.items()}
    summary["vs_bankkpi_fresh"] = _ratio(at_ratio_n, "bankkpi-fresh")
    summary["without_workspace"] = {
        key: _ratio(at_ratio_n, name, "bankkpi-fresh") for name, key in JSON_PEERS.items()
    }
    print(json.dumps(summary))
    return 0


def main(argv: list[str]) -> int:
    """Parse the arguments and run the benchmark or the check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=_sizes, help="comma-separated N, e.g. 100000,1e6")
    parser.add_argument("--quick", action="store_true", help="a few-second smoke run")
    parser.add_argument("--check", action="store_true", help="check all implementations agree")
    parser.add_argument("--cases", type=int, default=400, help="random cases for --check")
    parser.add_argument("--repeats", type=int, help="timed runs after the warm-up (default 5)")
    parser.add_argument(
        "--only",
        default=",".join(ORDER[1:]),
        help="comma-separated peers to run besides bankkpi (default: all)",
    )
    args = parser.parse_args(argv)
    if args.check:
        return run_check(args.cases)
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if unknown := only - set(ORDER):
        parser.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(ORDER[1:])}")
    sizes = args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeats = args.repeats or (3 if args.quick else 5)
    return run(sizes, repeats, only)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
