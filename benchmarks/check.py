"""``run.py --check``: every implementation against the pure-Python loop.

Three layers:

1. hand-worked cases with amounts computed on paper (ties, the half-up rounding of
   the outlet's total, both region ranks) pin down the pure-Python loop;
2. bankkpi's exact Decimal path (a :class:`bankkpi.Rule` fed the loop's ranks)
   must give the loop's amounts on the small random cases;
3. every other implementation, and ``run_bankkpi``, must give the loop's amounts
   and region totals on many seeded random cases: sizes 0 to 5,000, scores on
   grids from 0.01 to 20 points (heavy ties, all-equal populations), regions of 1
   to 50 outlets, rank cut-offs above and below the population size, and rates that
   leave half-yuan remainders.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import numpy as np
from bankkpi_workload import ROWS
from peers import IMPLEMENTATIONS, Implementation, literal_ranks, python_loop
from workload import I64, Outcome, WorkloadParams, make_population

from bankkpi import (
    AtLeast,
    Choose,
    Compare,
    Context,
    Fixed,
    RoundingPolicy,
    Rule,
    Shortfall,
    Sum,
    Text,
)

# (scores, regions, params, expected amounts, expected region totals); see the notes.
HAND_CASES: list[tuple[list[int], list[int], WorkloadParams, list[int], list[int]]] = [
    # 99.00 is the province's top 1: exempt. Region 0 from the bottom: 90.50 (1),
    # 94.00 (2). 94.00 pays 1000 + 1 × 200 + 300 + 1 × 200 = 1700; 90.50 pays
    # 1000 + 4.5 × 200 + 500 + 4.5 × 200 = 3300. Region 1: 80.00 (1, and the
    # province's bottom 1) pays 2000 + 15 × 200 + 500 + 15 × 200 = 8500; 94.00 (2)
    # pays 1700; 96.00 (3) nothing.
    (
        [9900, 9400, 9050, 9400, 8000, 9600],
        [0, 0, 0, 1, 1, 1],
        WorkloadParams(top_exempt=1, bottom_n=1),
        [0, 1700, 3300, 1700, 8500, 0],
        [5000, 10200],
    ),
    # Ties: 94.99 twice shares bottom rank 2 (so both are in the bottom 2) and
    # region rank 2. Each pays 2000 + 0.01 × 150 + 300 + 0.01 × 150 = 2303 exactly
    # (rounding the parts first would give 2002 + 302 = 2304). 93.00 pays
    # 2000 + 2 × 150 + 500 + 2 × 150 = 3100; 95.00 meets the target and is 4th.
    (
        [9499, 9499, 9300, 9500],
        [0, 0, 0, 0],
        WorkloadParams(top_exempt=0, bottom_n=2, rate=150, region_rate=150),
        [2303, 2303, 3100, 0],
        [7706],
    ),
    # Half-up, not half-even: 1000 + 0.01 × 50 = 1000.5 → 1001.
    (
        [9499],
        [0],
        WorkloadParams(top_exempt=0, bottom_n=0, rate=50, region_extra=(0, 0), region_rate=0),
        [1001],
        [1001],
    ),
    # A tie for the region's lowest: both are rank 1 and pay 1000 + 5 × 200 + 500 +
    # 5 × 200 = 3500; nobody is rank 2 (ranks 1, 1, 3), so 91.00 pays 1800 only.
    (
        [9000, 9000, 9100],
        [0, 0, 0],
        WorkloadParams(top_exempt=0, bottom_n=0),
        [3500, 3500, 1800],
        [8800],
    ),
]

SIZES = (0, 1, 2, 3, 4, 7, 10, 31, 64, 100, 250, 1_000, 5_000)
EXACT_MAX_N = 250
"""Cases up to this size are also checked against bankkpi's exact Decimal path."""


def _random_params(rng: np.random.Generator, n: int) -> WorkloadParams:
    """Scheme and population parameters chosen to hit edges and heavy ties."""
    score_min = int(rng.choice([0, 6_000, 9_000, 9_400, 9_500]))
    score_max = int(rng.choice([score_min, min(score_min + 300, 10_000), 10_000]))
    return WorkloadParams(
        target=int(rng.choice([9_500, 9_000, 9_550, 9_501, score_min, 10_000])),
        base=int(rng.choice([1_000, 0, 777])),
        bottom_base=int(rng.choice([2_000, 1_000, 1_555])),
        rate=int(rng.choice([200, 150, 50, 1, 199, 333])),
        top_exempt=int(rng.choice([0, 1, 2, 5, n // 10, n, 200])),
        bottom_n=int(rng.choice([0, 1, 2, 3, n // 5, n, 100])),
        region_extra=(int(rng.choice([500, 0, 123])), int(rng.choice([300, 0, 77]))),
        region_rate=int(rng.choice([200, 0, 150, 33])),
        score_min=score_min,
        score_max=score_max,
        score_step=int(rng.choice([1, 7, 25, 100, 500, 2_000])),
        outlets_per_region=int(rng.choice([1, 2, 3, 5, 50])),
    )


def _cases(count: int) -> Iterator[tuple[str, I64, I64, WorkloadParams]]:
    """The hand cases, then ``count`` seeded random cases."""
    for i, (hand_scores, hand_regions, hand_params, _, _) in enumerate(HAND_CASES):
        yield (
            f"hand case {i}",
            np.array(hand_scores, np.int64),
            np.array(hand_regions, np.int64),
            hand_params,
        )
    for seed in range(count):
        rng = np.random.default_rng([seed, 6])
        n = int(rng.choice(SIZES))
        params = _random_params(rng, n)
        scores, regions = make_population(n, seed, params)
        yield f"seed {seed} (n={n}, {params})", scores, regions, params


WIDE: tuple[WorkloadParams, ...] = (
    WorkloadParams(scale_max=2**15, score_min=2**15 - 300, score_max=2**15),  # int16's edge
    WorkloadParams(scale_max=2**15 + 1, score_min=9_000, score_max=2**15 + 1),  # just past it
    WorkloadParams(  # scores far above the target: target − score leaves int32
        scale_max=9_500 + 2**31 + 200, score_min=9_500 + 2**31 - 10, score_max=9_500 + 2**31 + 200
    ),
    WorkloadParams(  # far below it, at rates of 0: the largest fen alone would fit int32
        scale_min=-3 * 10**9, score_min=-3 * 10**9, score_max=-3 * 10**9 + 50, rate=0, region_rate=0
    ),
)
"""Score spans that leave int16, and distances from the target that leave int32
(not numba: its histogram spans the indicator's whole scale; the numpy peers'
histograms span the scores', so no span here is much past the workload's)."""


def _wide_cases(count: int) -> Iterator[tuple[str, I64, I64, WorkloadParams]]:
    """Seeded cases over each of :data:`WIDE`, ``count`` in all."""
    for seed in range(count):
        rng = np.random.default_rng([seed, 7])
        n = int(rng.choice(SIZES[:-1]))
        params = WIDE[seed % len(WIDE)]
        params = WorkloadParams(
            **{
                **{f: getattr(params, f) for f in params.__dataclass_fields__},
                "top_exempt": int(rng.choice([0, 1, n // 10, n + 1])),
                "bottom_n": int(rng.choice([0, 2, n // 5, n + 1])),
                "outlets_per_region": int(rng.choice([1, 3, 50])),
            }
        )
        scores, regions = make_population(n, seed, params)
        yield f"wide seed {seed} (n={n}, {params})", scores, regions, params


def _exact_rule(p: WorkloadParams) -> Rule:
    """The workload as one bankkpi exact-path rule over precomputed ranks."""
    target = AtLeast(Decimal(p.target).scaleb(-2))
    penalty = Choose(
        [
            (
                Compare("from_bottom", "<=", p.bottom_n),
                Shortfall(target, rate=p.rate, base=p.bottom_base),
            )
        ],
        otherwise=Shortfall(target, rate=p.rate, base=p.base),
    )
    region = Choose(
        [
            (
                Compare("in_region", "==", rank),
                Sum([Fixed(extra), Shortfall(target, rate=p.region_rate)]),
            )
            for rank, extra in ((1, p.region_extra[0]), (2, p.region_extra[1]))
        ]
    )
    return Rule(
        "A.bench",
        Text("阶段考核（基准测试）", "phase workload (benchmark)"),
        "penalty",
        Choose(
            [(Compare("from_top", "<=", p.top_exempt), Fixed(0))], otherwise=Sum([penalty, region])
        ),
        RoundingPolicy("half_up", "yuan"),
    )


def _exact_amounts(scores: I64, regions: I64, params: WorkloadParams) -> list[int]:
    """Each outlet's amount by bankkpi's exact path, given literal competition ranks."""
    values = scores.tolist()
    from_top, from_bottom, in_region = literal_ranks(values, regions.tolist())
    rule = _exact_rule(params)
    amounts = []
    for i, score in enumerate(values):
        context = Context(
            f"outlet {i}",
            {
                "score": Decimal(score).scaleb(-2),
                "from_top": from_top[i],
                "from_bottom": from_bottom[i],
                "in_region": in_region[i],
            },
        )
        amount = rule.evaluate(context).amount
        amounts.append(int(amount))
    return amounts


def difference(expected: Outcome, got: Outcome) -> str | None:
    """``None`` when equal (values, shapes and int64 dtype), else what differs first."""
    for field, want, have in zip(Outcome._fields, expected, got, strict=True):
        if have.dtype != np.int64 or want.shape != have.shape:
            return f"{field}: dtype {have.dtype}, shape {have.shape}; want int64, {want.shape}"
        bad = np.flatnonzero(want != have)
        if bad.size:
            i = int(bad[0])
            return f"{field}[{i}] = {have[i]}, want {want[i]} ({bad.size} differ)"
    return None


def _against(
    expected: Outcome,
    contenders: dict[str, Implementation],
    case: tuple[str, I64, I64, WorkloadParams],
    *skip: str,
) -> list[str]:
    """What each contender (but ``skip``) gives differently from ``expected``."""
    label, scores, regions, params = case
    return [
        f"{name} vs python, {label}: {why}"
        for name, impl in contenders.items()
        if name not in skip
        and (why := difference(expected, impl(scores, regions, params))) is not None
    ]


def run_check(count: int) -> int:
    """Run every check; print each failure and a summary; return the exit status."""
    started = time.perf_counter()
    contenders: dict[str, Implementation] = dict(ROWS)
    contenders |= {name: impl for name, impl in IMPLEMENTATIONS.items() if impl is not None}
    missing = [name for name, impl in IMPLEMENTATIONS.items() if impl is None]
    failures: list[str] = []
    for hand_scores, hand_regions, hand_params, amounts, totals in HAND_CASES:
        got = python_loop(
            np.array(hand_scores, np.int64), np.array(hand_regions, np.int64), hand_params
        )
        want = Outcome(np.array(amounts, np.int64), np.array(totals, np.int64))
        if (why := difference(want, got)) is not None:
            failures.append(f"python vs hand-worked {hand_scores}: {why}")
    cases = exact_cases = 0
    for label, scores, regions, params in _cases(count):
        cases += 1
        expected = python_loop(scores, regions, params)
        if scores.size <= EXACT_MAX_N:
            exact_cases += 1
            exact = _exact_amounts(scores, regions, params)
            if exact != expected.amounts.tolist():
                failures.append(f"python vs bankkpi exact path, {label}")
        failures += _against(expected, contenders, (label, scores, regions, params), "python")
    wide = 0
    for case in _wide_cases(max(len(WIDE), count // 10)):
        wide += 1
        expected = python_loop(*case[1:])
        failures += _against(expected, contenders, case, "python", "numba")
    for failure in failures:
        print(f"MISMATCH {failure}")
    print(
        f"check: {cases} cases ({len(HAND_CASES)} hand-worked, {exact_cases} also on the "
        f"exact Decimal path) and {wide} with wide scores (all but numba); "
        f"compared {', '.join(contenders)} with python; "
        f"not installed: {', '.join(missing) or 'none'}; "
        f"{len(failures)} mismatches; {time.perf_counter() - started:.1f} s"
    )
    return 1 if failures else 0
