"""Set up and run the project's jobs in a virtual environment of its own.

    python3 scripts/dev.py demo     # scheme A over 1,500 outlets, with explanations
    python3 scripts/dev.py test     # ruff, ruff format --check, mypy --strict, pytest
    python3 scripts/dev.py bench    # benchmarks/run.py with the peers installed (args pass on)

Only the standard library is used here, so it runs on a fresh machine that has
nothing but Python >= 3.11 and pip. The environment lives in ``.venv`` (override with
``BANKKPI_VENV``) and is reused when its installed requirements are up to date.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("BANKKPI_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def ensure_venv(extras: str) -> None:
    """Create the venv and install the package with ``extras`` if not done already."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs on whatever python3 is
        sys.exit(f"bankkpi needs Python >= 3.11; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    run([str(PY), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([str(PY), "-m", "pip", "install", "--quiet", "--editable", target])
    stamp.write_text(digest)


def run(command: list[str]) -> None:
    """Run ``command`` in the project root; stop with its exit code if it fails."""
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main(argv: list[str]) -> None:
    """Dispatch ``demo``, ``test`` or ``bench``."""
    job = argv[0] if argv else "help"
    if job == "demo":
        ensure_venv("")
        scheme = "examples/scheme_a.toml"
        data = "examples/data/scheme_a_2024.csv"
        run([str(BIN / "bankkpi"), "evaluate", scheme, data, "-o", "out/scheme_a"])
        for subject, lang in (("R001-12", "zh"), ("R001-12", "en"), ("R003-11", "en")):
            run([str(BIN / "bankkpi"), "explain", scheme, data, subject, "--lang", lang])
    elif job == "test":
        ensure_venv("dev")
        run([str(BIN / "ruff"), "check", "."])
        run([str(BIN / "ruff"), "format", "--check", "."])
        run([str(BIN / "mypy"), "--strict", "src"])
        run([str(PY), "-m", "pytest", *argv[1:]])
    elif job == "bench":
        ensure_venv("bench")
        run([str(PY), str(ROOT / "benchmarks" / "run.py"), *argv[1:]])
    else:
        print(__doc__)
        sys.exit(0 if job in ("help", "-h", "--help") else 2)


if __name__ == "__main__":
    main(sys.argv[1:])
