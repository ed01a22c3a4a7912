"""Tabular input and output at the edge: CSV and JSON lines in, result files out.

This module (with :mod:`bankkpi.cli`) is the only place that touches files; the
core is pure. Output is deterministic: the same scheme and data give the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import io
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from bankkpi._competitions import Competition, CompetitionResults, EntryRow
from bankkpi._money import exact_sum
from bankkpi._schemefile import AnyScheme, load_any, scheme_hash
from bankkpi._schemes import ErrorRecord, Results, Scheme, SubjectRow
from bankkpi._sla import Case, CaseResult, ComplianceSummary
from bankkpi.exceptions import BankKPIError, ConfigError

__all__ = [
    "errors_csv",
    "failure_counts",
    "read_rows",
    "read_scheme",
    "results_csv",
    "splits_csv",
    "summary_json",
    "traces_jsonl",
    "write_results",
]


def read_scheme(path: str | Path) -> tuple[AnyScheme, str]:
    """Load a ``.toml`` or ``.json`` scheme (or competition) file, and its content hash."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"{file}: a scheme file must end in .toml or .json")
    scheme = load_any(file.read_text(encoding="utf-8"), format=suffix[1:])
    return scheme, scheme_hash(scheme)


ENTRY_COLUMNS = ("subject", "item", "count", "points", "place", "key", "value")


def read_entries(path: str | Path, *, encoding: str = "utf-8") -> Iterator[EntryRow]:
    """Rows of a competition's entries file (``.csv`` with a header, or ``.jsonl``).

    Columns: ``subject`` and ``item`` (required), ``count``, ``points`` (a ranged
    item's chosen points), ``place``, ``key`` (the person, for non-cumulative
    groups), ``value`` (a rank item's measured value). Blank cells are absent.
    """
    for record, source, problem in _records(Path(path), ("subject", "item"), encoding):
        cells = {c: "" if record.get(c) is None else str(record.get(c)) for c in ENTRY_COLUMNS}
        yield EntryRow(
            cells["subject"],
            cells["item"],
            cells["count"],
            cells["points"],
            cells["place"],
            cells["key"],
            cells["value"],
            source,
            problem or "",
        )


def _records(
    file: Path, required: tuple[str, ...], encoding: str = "utf-8"
) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    """(record, source, problem) for every row; a bad row has a problem, never vanishes.

    The header (CSV) must name every ``required`` column — a misspelt column would
    otherwise fall back to a default without a word. A CSV row with more or fewer
    cells than the header, a JSON line that is not an object or lacks a required
    key, is returned with its problem.
    """
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ConfigError(f"{file}: data must be .csv or .jsonl")
    try:
        if suffix == ".csv":
            yield from _csv_records(file, required, encoding)
        else:
            yield from _json_records(file, required, encoding)
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: not {encoding} text ({exc.reason} at byte {exc.start}); "
            "pass the file's encoding, e.g. --encoding gbk"
        ) from None
    except LookupError:
        raise ConfigError(f"unknown encoding {encoding!r}") from None


def _csv_records(
    file: Path, required: tuple[str, ...], encoding: str
) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    with file.open(encoding=codec, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        missing = [c for c in required if c not in header]
        if missing:
            hints = [
                f"{c!r} (did you mean {close[0]!r}?)" if close else repr(c)
                for c in missing
                for close in [difflib.get_close_matches(c, header, n=1)]
            ]
            raise ConfigError(f"{file}: the header lacks column(s) {', '.join(hints)}")
        for cells in reader:
            if not cells:
                continue  # a blank line
            record = dict(zip(header, cells, strict=False))
            problem = None
            if len(cells) != len(header):
                problem = f"has {len(cells)} cells, the header has {len(header)}"
            yield record, f"line {reader.line_num}", problem


def _json_records(
    file: Path, required: tuple[str, ...], encoding: str
) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    with file.open(encoding=encoding) as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            source = f"line {number}"
            try:
                record = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield {}, source, f"is not JSON: {exc.msg}"
                continue
            if not isinstance(record, dict):
                yield {}, source, "is not a JSON object"
                continue
            missing = [c for c in required if c not in record]
            problem = f"lacks key(s) {', '.join(missing)}" if missing else None
            yield record, source, problem


def read_rows(path: str | Path, scheme: Scheme, *, encoding: str = "utf-8") -> Iterator[SubjectRow]:
    """Rows of a ``.csv`` (header row) or ``.jsonl`` file as :class:`SubjectRow` values.

    The ``subject`` column, every attribute and every (non-derived) input must be in
    the header (a JSON line must have those keys); a blank cell is an absent value,
    so an input's default applies. Other columns are ignored. A row of the wrong
    shape becomes a row whose problem :func:`~bankkpi.evaluate` reports.
    """
    required = (
        "subject",
        *scheme.attributes,
        *(i.name for i in scheme.inputs if i.derive is None),
    )
    for record, source, problem in _records(Path(path), required, encoding):
        if problem is not None:
            yield SubjectRow(str(record.get("subject") or ""), {}, {}, source, problem)
        else:
            yield _row(scheme, record, source)


def _row(scheme: Scheme, record: dict[str, Any], source: str) -> SubjectRow:
    subject = record.get("subject")
    attributes = {a: str(record.get(a) or "") for a in scheme.attributes}
    values = {
        i.name: record.get(i.name) for i in scheme.inputs if record.get(i.name) not in (None, "")
    }
    return SubjectRow("" if subject is None else str(subject), attributes, values, source)


def _csv(rows: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def results_csv(scheme: Scheme, results: Results) -> str:
    """One row per subject: attributes, each rule's amount, penalty, reward, net."""
    rule_ids = [r.id for r in scheme.rules]
    header = ["subject", *scheme.attributes, *rule_ids, "penalty", "reward", "net"]
    amounts: dict[str, dict[str, str]] = {}
    for line in results.lines:
        amounts.setdefault(line.subject, {})[line.rule] = f"{line.amount:f}"
    rows = [header]
    rows.extend(
        [
            total.subject,
            *(total.attributes[a] for a in scheme.attributes),
            *(amounts[total.subject][r] for r in rule_ids),
            f"{total.penalty:f}",
            f"{total.reward:f}",
            f"{total.net:f}",
        ]
        for total in results.totals
    )
    return _csv(rows)


def failure_counts(errors: Iterable[ErrorRecord]) -> tuple[int, int]:
    """The subjects that failed (distinct ids), and the failed rows that name none.

    A row whose subject id is blank belongs to no subject the run can name: it is
    counted apart, not as a subject (a competition may have several such rows for
    one entrant).
    """
    named: set[str] = set()
    unnamed = 0
    for error in errors:
        if error.subject.strip():
            named.add(error.subject)
        else:
            unnamed += 1
    return len(named), unnamed


def errors_csv(errors: Iterable[ErrorRecord]) -> str:
    """One row per error: subject, rule, field, value, message, source."""
    rows = [["subject", "rule", "field", "value", "message", "source"]]
    rows.extend([e.subject, e.rule, e.field, e.value, e.message, e.source] for e in errors)
    return _csv(rows)


def traces_jsonl(results: Results) -> str:
    """One JSON object per result line: subject, rule, kind, amount and the full trace.

    One encoder for every line (``json.dumps`` with options makes one per call).
    """
    encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
    return "".join(
        encode(
            {
                "subject": ln.subject,
                "rule": ln.rule,
                "kind": ln.kind,
                "amount": f"{ln.amount:f}",
                "trace": ln.trace.to_dict(),
            }
        )
        + "\n"
        for ln in results.lines
    )


def summary_json(results: Results) -> str:
    """Scheme id, version and hash, library version, counts, group totals and roll-ups."""
    failed, unnamed = failure_counts(results.errors)
    data = {
        "scheme": {
            "id": results.scheme_id,
            "version": results.scheme_version,
            "hash": results.scheme_hash,
        },
        "library_version": results.library_version,
        "rows": results.rows,
        "ranked_over": results.ranked_over,
        "provisional": results.provisional,
        "computed": len(results.totals),
        "failed_subjects": failed,
        "failed_rows_without_subject": unnamed,
        "errors": len(results.errors),
        "totals": {
            "penalty": f"{exact_sum(t.penalty for t in results.totals):f}",
            "reward": f"{exact_sum(t.reward for t in results.totals):f}",
        },
        "group_totals": {
            attribute: {
                k: {"penalty": f"{p:f}", "reward": f"{r:f}"} for k, (p, r) in groups.items()
            }
            for attribute, groups in results.group_totals.items()
        },
        "rollups": {
            name: {k: f"{v:f}" for k, v in charged.items()}
            for name, charged in results.rollups.items()
        },
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def splits_csv(results: Results) -> str:
    """One row per split, subject and member: the member's part of the subject's amount."""
    rows = [["split", "subject", "member", "amount"]]
    rows.extend(
        [name, subject, member, f"{amount:f}"]
        for name, by_subject in results.splits.items()
        for subject, parts in by_subject.items()
        for member, amount in parts.items()
    )
    return _csv(rows)


def competition_csv(results: CompetitionResults) -> str:
    """One row per scored subject: total, vetoed, winner."""
    winners = set(results.winners.winners) if results.winners else set()
    rows = [["subject", "total", "vetoed", "winner"]]
    rows.extend(
        [
            c.subject,
            f"{c.total:f}",
            "yes" if c.vetoed else "no",
            "yes" if c.subject in winners else "no",
        ]
        for c in results.cards
    )
    return _csv(rows)


def competition_summary(competition: Competition, results: CompetitionResults) -> str:
    """Id, version, hash, library version, counts, winners and vetoed subjects."""
    failed, unnamed = failure_counts(results.errors)
    data = {
        "scheme": {
            "id": results.competition_id,
            "version": results.competition_version,
            "hash": results.scheme_hash,
        },
        "library_version": results.library_version,
        "rows": results.rows,
        "scored": len(results.cards),
        "failed_subjects": failed,
        "failed_rows_without_subject": unnamed,
        "errors": len(results.errors),
        "winners_wanted": competition.winners,
        "ties": competition.ties,
        "winners": list(results.winners.winners) if results.winners else [],
        "vetoed": list(results.winners.vetoed) if results.winners else [],
    }
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=2) + "\n"


def write_results(
    scheme: AnyScheme, results: Results | CompetitionResults, out: str | Path
) -> list[Path]:
    """Write results.csv, errors.csv, traces.jsonl and summary.json into ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(scheme, Competition) and isinstance(results, CompetitionResults):
        files = {
            "results.csv": competition_csv(results),
            "errors.csv": errors_csv(results.errors),
            "traces.jsonl": "".join(
                json.dumps(
                    {
                        "subject": c.subject,
                        "total": f"{c.total:f}",
                        "vetoed": c.vetoed,
                        "trace": c.trace.to_dict(),
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
                + "\n"
                for c in results.cards
            ),
            "summary.json": competition_summary(scheme, results),
        }
    elif isinstance(scheme, Scheme) and isinstance(results, Results):
        files = {
            "results.csv": results_csv(scheme, results),
            "errors.csv": errors_csv(results.errors),
            "traces.jsonl": traces_jsonl(results),
            "summary.json": summary_json(results),
        }
        if results.splits:
            files["splits.csv"] = splits_csv(results)
    else:
        raise ConfigError("results do not belong to this kind of scheme")
    written = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="")
        written.append(path)
    return written


def read_cases(
    path: str | Path, *, encoding: str = "utf-8"
) -> tuple[list[Case], list[ErrorRecord]]:
    """Cases of a ``.csv``/``.jsonl`` file: ``subject``, ``case_id`` and one column per event.

    Every other column is an event timestamp (ISO 8601, with its offset unless the
    run states a zone); a blank cell is an event that has not happened. A row that
    cannot be a case is returned as an error, never dropped.
    """
    cases: list[Case] = []
    errors: list[ErrorRecord] = []
    for record, source, problem in _records(Path(path), ("subject", "case_id"), encoding):
        subject = str(record.get("subject") or "")
        if problem is not None:
            errors.append(ErrorRecord(subject, "row", "", f"{source} {problem}", source))
            continue
        events = {
            k: v
            for k, v in record.items()
            if k not in ("subject", "case_id") and v not in (None, "")
        }
        try:
            cases.append(Case(subject, str(record.get("case_id") or ""), events))
        except BankKPIError as exc:
            errors.append(ErrorRecord(subject, "case", "", str(exc), source))
    return cases, errors


def _seconds(delta: dt.timedelta | None) -> str:
    if delta is None:
        return ""
    micro = delta // dt.timedelta(microseconds=1)
    return f"{Decimal(micro).scaleb(-6).normalize():f}"


def case_results_csv(results: Iterable[CaseResult]) -> str:
    """One row per case and limit: status, elapsed and overrun in seconds."""
    rows = [["subject", "case_id", "limit", "status", "elapsed_seconds", "overrun_seconds"]]
    rows.extend(
        [r.subject, r.case_id, r.limit.code, r.status, _seconds(r.elapsed), _seconds(r.overrun)]
        for r in results
    )
    return _csv(rows)


def compliance_csv(summaries: Iterable[ComplianceSummary]) -> str:
    """One row per subject, limit and period: counts, compliance, p50 and p90 elapsed."""
    rows = [
        [
            "subject",
            "limit",
            "period",
            "met",
            "breached",
            "pending",
            "compliance",
            "p50_seconds",
            "p90_seconds",
        ]
    ]
    rows.extend(
        [
            s.subject,
            s.limit,
            str(s.period),
            str(s.met),
            str(s.breached),
            str(s.pending),
            "" if s.compliance is None else f"{s.compliance:f}",
            _seconds(s.percentile(50)),
            _seconds(s.percentile(90)),
        ]
        for s in summaries
    )
    return _csv(rows)
