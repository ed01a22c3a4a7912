"""The ``bankkpi`` command: month-end batch runs at the edge of the library.

Exit codes: 0 every row computed; 1 some rows failed (results for the others are
still written, the failures are in ``errors.csv``); 2 a usage, file or scheme error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TextIO

from bankkpi._competitions import Competition, CompetitionResults, run_competition
from bankkpi._schemefile import AnyScheme, json_schema
from bankkpi._schemes import Results, error_record, evaluate
from bankkpi._sla import evaluate_cases, summarize_compliance
from bankkpi._slafile import load_sla_run
from bankkpi.exceptions import BankKPIError, ValidationErrorGroup
from bankkpi.io import (
    case_results_csv,
    compliance_csv,
    errors_csv,
    failure_counts,
    read_cases,
    read_entries,
    read_rows,
    read_scheme,
    write_results,
)

__all__ = ["main"]

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2


def _library_version() -> str:
    try:
        return version("bankkpi")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bankkpi",
        description="Exact, explainable bank KPI scoring: evaluate a scheme over a data file.",
        epilog="Exit codes: 0 all rows computed; 1 some rows failed (results still written); "
        "2 usage, file or scheme error.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="evaluate a scheme over a CSV or JSON-lines file")
    run.add_argument("scheme", help="scheme file (.toml or .json)")
    run.add_argument("data", help="data file (.csv or .jsonl)")
    run.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    run.add_argument("--encoding", default="utf-8", help="data file encoding (e.g. gbk)")
    explain = commands.add_parser("explain", help="print one subject's explanation")
    explain.add_argument("scheme")
    explain.add_argument("data")
    explain.add_argument("subject")
    explain.add_argument("--lang", choices=("zh", "en"), default="zh")
    explain.add_argument("--encoding", default="utf-8", help="data file encoding (e.g. gbk)")
    check = commands.add_parser("validate", help="check a scheme file and print its hash")
    check.add_argument("scheme")
    commands.add_parser("schema", help="print the JSON Schema of the scheme file format")
    sla = commands.add_parser("sla", help="time-limit compliance from a case file")
    sla.add_argument("config", help="SLA run file (.toml or .json): limits, zone, as_of, periods")
    sla.add_argument("cases", help="case file (.csv or .jsonl): subject, case_id, event columns")
    sla.add_argument("-o", "--out", default="out", help="output folder (default: out)")
    sla.add_argument("--encoding", default="utf-8", help="case file encoding (e.g. gbk)")
    return parser


def _run(
    scheme_path: str, data_path: str, err: TextIO, encoding: str
) -> tuple[AnyScheme, Results | CompetitionResults]:
    scheme, digest = read_scheme(scheme_path)
    version = _library_version()
    if isinstance(scheme, Competition):
        entries = list(read_entries(data_path, encoding=encoding))
        return scheme, run_competition(scheme, entries, scheme_hash=digest, library_version=version)
    rows = list(read_rows(data_path, scheme, encoding=encoding))
    bar = _progress_bar(err) if err.isatty() else None
    results = evaluate(scheme, rows, scheme_hash=digest, library_version=version, progress=bar)
    if bar is not None:
        err.write("\r" + " " * 60 + "\r")
    return scheme, results


def _progress_bar(err: TextIO) -> Callable[[int, int], None]:
    """A one-line progress bar on a terminal: ``[#######.............]  35% 525/1500``."""

    def draw(done: int, total: int) -> None:
        filled = 20 * done // max(total, 1)
        percent = 100 * done // max(total, 1)
        err.write(f"\r[{'#' * filled}{'.' * (20 - filled)}] {percent:3d}% {done}/{total}")
        err.flush()

    return draw


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        return _dispatch(args, out, err)
    except ValidationErrorGroup as group:
        err.write(f"bankkpi: {group.message}\n")
        for problem in group.problems:
            err.write(f"  {problem}\n")
        return EXIT_USAGE
    except (BankKPIError, OSError) as exc:
        err.write(f"bankkpi: {exc}\n")
        return EXIT_USAGE


def _sla(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = Path(args.config)
    run = load_sla_run(config.read_text(encoding="utf-8"), format=config.suffix.lower()[1:])
    cases, errors = read_cases(args.cases, encoding=args.encoding)
    results, problems = evaluate_cases(cases, run.limits, as_of=run.as_of, zone=run.zone)
    errors.extend(
        error_record(str(getattr(p, "subject", "") or ""), p, args.cases) for p in problems
    )
    summaries = summarize_compliance(
        results, run.periods, zone=run.zone, rounding=run.rounding, unit=run.unit
    )
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "cases.csv": case_results_csv(results),
        "compliance.csv": compliance_csv(summaries),
        "errors.csv": errors_csv(errors),
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8", newline="")
    out.write(
        f"{len(cases) + sum(1 for e in errors if e.field in ('row', 'case'))} case rows, "
        f"{len(results)} verdicts, {len(summaries)} compliance lines, {len(errors)} errors\n"
    )
    out.writelines(f"  wrote {folder / name}\n" for name in files)
    err.writelines(f"error: {e.source}: {e.message}\n" for e in errors)
    return EXIT_ROWS_FAILED if errors else EXIT_OK


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "sla":
        return _sla(args, out, err)
    if args.command == "schema":
        out.write(json.dumps(json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        return EXIT_OK
    if args.command == "validate":
        scheme, digest = read_scheme(args.scheme)
        count, noun = (
            (len(scheme.card.items), "item")
            if isinstance(scheme, Competition)
            else (len(scheme.rules), "rule")
        )
        size = f"{count} {noun}{'' if count == 1 else 's'}"
        out.write(f"{scheme.id} {scheme.version}: valid, {size}, {digest}\n")
        return EXIT_OK
    scheme, results = _run(args.scheme, args.data, err, args.encoding)
    if args.command == "explain":
        out.write(results.explain(args.subject, args.lang) + "\n")
        subject_failed = any(e.subject == args.subject for e in results.errors)
        return EXIT_ROWS_FAILED if subject_failed else EXIT_OK
    written = write_results(scheme, results, args.out)
    failed, unnamed = failure_counts(results.errors)
    rows = "row" if unnamed == 1 else "rows"
    without = f", {unnamed} failed {rows} without a subject id" if unnamed else ""
    out.write(
        f"{scheme.id} {scheme.version} ({results.scheme_hash[:19]}…): {results.rows} rows; "
        f"subjects: {results.computed} computed, {failed} failed{without}\n"
    )
    out.writelines(f"  wrote {path}\n" for path in written)
    err.writelines(f"error: {error.source}: {error.message}\n" for error in results.errors)
    return EXIT_ROWS_FAILED if results.errors else EXIT_OK


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    _entry()
