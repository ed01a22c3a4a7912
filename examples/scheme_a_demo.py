"""Scheme A, phase 2: each outlet's penalty with its explanation, in Chinese and English.

Phase 2 (May–Aug) target: a mystery-shopper score of at least 95. An outlet that
misses it pays ``1000 + (95 − score) × 200`` yuan, rounded half-up to whole yuan.

    python examples/scheme_a_demo.py [examples/data/scheme_a_phase2.csv]
"""

from __future__ import annotations

import csv
import sys
from decimal import Decimal
from pathlib import Path

from bankkpi import (
    AtLeast,
    Context,
    Indicator,
    Measurement,
    MeasurementSet,
    Period,
    RoundingPolicy,
    Rule,
    Shortfall,
    Text,
)

DATA = Path(__file__).parent / "data" / "scheme_a_phase2.csv"
PHASE_2 = Period.months(2024, 5, 8)
SCORE = Indicator(
    "score",
    "神秘人检查得分",
    "points",
    "higher_is_better",
    scale_min=0,
    scale_max=100,
    precision="0.01",
)
RULE = Rule(
    "A.phase2",
    Text("第二阶段考核", "phase 2 assessment"),
    "penalty",
    Shortfall(AtLeast(95), "score", rate=200, base=1000),
    RoundingPolicy("half_up", "yuan"),
)


def main(path: Path) -> int:
    """Print every outlet's penalty and the total; return 1 if any row was bad."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    measurements, errors = MeasurementSet.collect(
        (Measurement(r["outlet"], "score", PHASE_2, r["score"]) for r in rows), {"score": SCORE}
    )
    total = Decimal(0)
    for outlet in measurements.subjects():
        score = measurements.value(outlet, "score", PHASE_2)
        trace = RULE.evaluate(Context(outlet, {"score": score}))
        total += trace.amount
        print(f"{outlet}  {trace.render('zh')}")
        print(f"{' ' * len(outlet)}  {trace.render('en')}")
    print(f"合计 total: {total} 元 yuan over {len(measurements)} outlets")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA))
