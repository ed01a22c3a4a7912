"""Competitions: a point scorecard run over recorded entries, with its winners.

Scheme C (the 100-day service competition) is not a per-subject formula over
measured values but a log of events — a team place, a missing essay, a verified
complaint — scored on a base-100 card. A :class:`Competition` holds the card and how
many win; :func:`run_competition` scores every subject that appears in the entries,
reports every bad entry row (the subject it belongs to then gets no total: no
partial scores), and picks the winners among the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from bankkpi._checks import non_empty, one_of
from bankkpi._explain import Text
from bankkpi._money import to_decimal
from bankkpi._periods import Period
from bankkpi._ranking import TiePolicy
from bankkpi._schemes import ErrorRecord, error_record
from bankkpi._scorecards import ByRank, CardResult, Entry, PointScorecard, Winners
from bankkpi.exceptions import (
    BankKPIError,
    DuplicateError,
    InvalidValueError,
    UnknownKeyError,
    ValidationErrorGroup,
)

__all__ = ["Competition", "CompetitionResults", "EntryRow", "run_competition"]


@attrs.frozen
class Competition:
    """A point scorecard, its effective period, and how many subjects win."""

    id: str = attrs.field(validator=non_empty("id"))
    version: str = attrs.field(validator=non_empty("version"))
    name: Text
    effective: Period
    card: PointScorecard
    winners: int = attrs.field()
    ties: TiePolicy = attrs.field(validator=one_of("ties", ("competition", "ordinal")))

    @winners.validator
    def _check_winners(self, _attribute: object, winners: int) -> None:
        if isinstance(winners, bool) or not isinstance(winners, int) or winners < 1:
            raise InvalidValueError("winners", "must be a whole number >= 1", winners)


@attrs.frozen
class EntryRow:
    """One row of an entries file, as read: text cells, validated when scored.

    ``value`` carries a measured value for a rank item (the exam pass rate).
    """

    subject: str
    item: str
    count: str = ""
    points: str = ""
    place: str = ""
    key: str = ""
    value: str = ""
    source: str = ""
    problem: str = ""


@attrs.frozen
class CompetitionResults:
    """Every subject's card, the winners, and every bad entry."""

    competition_id: str
    competition_version: str
    scheme_hash: str
    library_version: str
    cards: tuple[CardResult, ...]
    winners: Winners | None
    errors: tuple[ErrorRecord, ...]
    rows: int

    @property
    def computed(self) -> int:
        """How many subjects were scored."""
        return len(self.cards)

    def explain(self, subject: str, lang: str = "zh") -> str:
        """The subject's card as text, with its veto and winner status (or its errors)."""
        for card in self.cards:
            if card.subject == subject:
                won = self.winners is not None and subject in self.winners.winners
                status = (
                    ("获胜", "winner")
                    if won
                    else ("一票否决", "vetoed")
                    if card.vetoed
                    else ("", "")
                )
                text = card.trace.render("zh" if lang == "zh" else "en")
                label = status[0] if lang == "zh" else status[1]
                return f"{text}\n{label}" if label else text
        errors = [e for e in self.errors if e.subject == subject]
        if errors:
            return "\n".join(f"error: {e.message}" for e in errors)
        raise UnknownKeyError("result for subject", subject)


def _whole(text: str, field: str, subject: str) -> int | None:
    if not text.strip():
        return None
    value = to_decimal(text, field=field, subject=subject)
    if value != value.to_integral_value():
        raise InvalidValueError(field, "must be a whole number", text, subject=subject)
    return int(value)


def _entry(card: PointScorecard, row: EntryRow) -> Entry | tuple[str, Decimal]:
    item = next((i for i in card.items if i.code == row.item), None)
    if item is None:
        raise UnknownKeyError("point item", row.item, subject=row.subject)
    if isinstance(item, ByRank):
        return item.code, to_decimal(row.value, field=item.code, subject=row.subject)
    count = _whole(row.count, "count", row.subject)
    return Entry(
        row.item,
        count=1 if count is None else count,
        points=to_decimal(row.points, field="points", subject=row.subject)
        if row.points.strip()
        else None,
        place=_whole(row.place, "place", row.subject),
        key=row.key.strip() or None,
    )


def run_competition(
    competition: Competition,
    rows: Iterable[EntryRow],
    *,
    scheme_hash: str = "",
    library_version: str = "",
) -> CompetitionResults:
    """Score every subject in ``rows`` and choose the winners; pure and deterministic."""
    rows = list(rows)
    card = competition.card
    entries: dict[str, list[Entry]] = {}
    measured: dict[str, dict[str, Decimal]] = {}
    sources: dict[str, str] = {}
    errors: list[ErrorRecord] = []
    failed: set[str] = set()
    for row in rows:
        if row.problem:
            errors.append(
                ErrorRecord(row.subject, "row", "", f"{row.source} {row.problem}", row.source)
            )
            failed.add(row.subject)
            continue
        if not row.subject.strip():
            errors.append(
                ErrorRecord(row.subject, "subject", "", "the subject id is blank", row.source)
            )
            continue
        sources.setdefault(row.subject, row.source)
        entries.setdefault(row.subject, [])
        try:
            parsed = _entry(card, row)
        except BankKPIError as exc:
            errors.append(error_record(row.subject, exc, row.source))
            failed.add(row.subject)
            continue
        if isinstance(parsed, Entry):
            entries[row.subject].append(parsed)
        elif row.subject in measured.setdefault(parsed[0], {}):
            twice = DuplicateError(
                parsed[0], "is measured twice for this subject", row.value, subject=row.subject
            )
            errors.append(error_record(row.subject, twice, row.source))
            failed.add(row.subject)
        else:
            measured[parsed[0]][row.subject] = parsed[1]
    _missing_rank_values(
        card, entries=entries, measured=measured, failed=failed, errors=errors, sources=sources
    )
    cards: list[CardResult] = []
    scorable = {s: e for s, e in entries.items() if s not in failed}
    if scorable:
        try:
            cards = list(
                card.score_all(
                    scorable,
                    {k: {s: v for s, v in m.items() if s in scorable} for k, m in measured.items()},
                )
            )
        except ValidationErrorGroup:
            cards = _score_one_by_one(card, scorable, measured, errors, sources)
    winners = card.winners(cards, competition.winners, competition.ties) if cards else None
    return CompetitionResults(
        competition.id,
        competition.version,
        scheme_hash,
        library_version,
        tuple(cards),
        winners,
        tuple(errors),
        len(rows),
    )


def _missing_rank_values(
    card: PointScorecard,
    *,
    entries: Mapping[str, list[Entry]],
    measured: dict[str, dict[str, Decimal]],
    failed: set[str],
    errors: list[ErrorRecord],
    sources: Mapping[str, str],
) -> None:
    """Report every subject without a measured value for a rank item."""
    for item in card.items:
        if not isinstance(item, ByRank):
            continue
        values = measured.setdefault(item.code, {})
        for subject in entries:
            if subject not in values and subject not in failed:
                missing = UnknownKeyError(
                    f"measured value for rank item {item.code}", subject, subject=subject
                )
                errors.append(error_record(subject, missing, sources[subject]))
                failed.add(subject)


def _score_one_by_one(
    card: PointScorecard,
    scorable: Mapping[str, list[Entry]],
    measured: Mapping[str, Mapping[str, Decimal]],
    errors: list[ErrorRecord],
    sources: Mapping[str, str],
) -> list[CardResult]:
    """Find the subjects whose entries fail, report them, and score the rest together."""
    good: dict[str, list[Entry]] = {}
    for subject, subject_entries in scorable.items():
        try:
            card.score(subject, subject_entries)
        except ValidationErrorGroup as group:
            errors.extend(error_record(subject, p, sources[subject]) for p in group.problems)
            continue
        good[subject] = subject_entries
    if not good:
        return []
    trimmed = {k: {s: v for s, v in m.items() if s in good} for k, m in measured.items()}
    return list(card.score_all(good, trimmed))
