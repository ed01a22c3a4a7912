"""Generate the bundled synthetic data (fixed seed: the same bytes every time).

    python examples/generate_data.py

Writes ``examples/data/scheme_c_individual.csv``: the entries of 60 staff in the
100-day competition (team places, exam and event places, essays, findings, deeds,
a few complaints), one row per entry.

Writes ``examples/data/scheme_a_2024.csv``: a province of 1,500 outlets in 100
regions (15 each), four quarterly mystery-shopper scores, and the columns scheme A
reads. ``score`` is the Q4 (phase 3) score. ``quarters_early`` is derived here, as an
inspection system's export would: the number of quarters before Q4 from which the
outlet stayed at ≥ 98 through Q4 (0 when Q4 itself is below 98).
"""

from __future__ import annotations

import csv
import random
from decimal import Decimal
from pathlib import Path

OUT = Path(__file__).parent / "data" / "scheme_a_2024.csv"
OUT_C = Path(__file__).parent / "data" / "scheme_c_individual.csv"
STAFF = 60
SEED = 2024
REGIONS = 100
PER_REGION = 15


def score(rng: random.Random, mean: float) -> Decimal:
    """A score in hundredths, 60.00–100.00 (generated as an integer: no float money)."""
    hundredths = round(rng.gauss(mean, 3.2) * 100)
    return Decimal(max(6000, min(10000, hundredths))).scaleb(-2)


def early(quarters: list[Decimal]) -> int:
    """Quarters before Q4 from which every score through Q4 is ≥ 98."""
    if quarters[3] < 98:
        return 0
    count = 0
    for q in (2, 1, 0):
        if quarters[q] < 98:
            break
        count += 1
    return count


def main() -> None:
    """Write the CSV."""
    rng = random.Random(SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(
            [
                "subject",
                "region",
                "head",
                "q1",
                "q2",
                "q3",
                "q4",
                "score",
                "quarters_early",
                "complaints",
                "repeat",
            ]
        )
        for r in range(1, REGIONS + 1):
            region = f"R{r:03d}"
            skill = rng.gauss(0, 1.5)
            for o in range(1, PER_REGION + 1):
                outlet_skill = skill + rng.gauss(0, 1.2)
                quarters = [score(rng, 93.0 + 1.2 * q + outlet_skill) for q in range(4)]
                complaints = rng.choices([0, 1, 2, 3], weights=[70, 20, 7, 3])[0]
                repeat = 1 if rng.random() < 0.05 else 0
                writer.writerow(
                    [
                        f"{region}-{o:02d}",
                        region,
                        f"{region}支行长",
                        *quarters,
                        quarters[3],
                        early(quarters),
                        complaints,
                        repeat,
                    ]
                )


def competition() -> None:
    """Write the individual competition's entries."""
    rng = random.Random(SEED + 1)
    with OUT_C.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["subject", "item", "count", "points", "place", "key", "value"])
        for n in range(1, STAFF + 1):
            person = f"S{n:03d}"
            writer.writerow([person, "team", "", "", rng.randint(1, 6), "", ""])
            for item in ("exam", "event"):
                if rng.random() < 0.15:
                    writer.writerow([person, item, "", "", rng.randint(1, 3), "", ""])
            essay = rng.random()
            if essay < 0.1:
                writer.writerow([person, "essay_missing", 1, "", "", "", ""])
            elif essay < 0.3:
                writer.writerow([person, "essay_excellent", 1, "", "", person, ""])
                if rng.random() < 0.5:
                    writer.writerow([person, "essay_province", 1, "", "", person, ""])
            findings = rng.choices([0, 1, 2, 3], weights=[60, 25, 10, 5])[0]
            if findings:
                writer.writerow([person, "finding", findings, "", "", "", ""])
            if rng.random() < 0.1:
                writer.writerow([person, "deed", "", rng.randint(1, 3), "", "", ""])
            if rng.random() < 0.03:
                writer.writerow([person, "complaint", 1, "", "", "", ""])


if __name__ == "__main__":
    main()
    competition()
