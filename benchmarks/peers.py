"""The scheme-A phase workload, implemented six ways.

Every implementation takes ``(scores_hundredths, regions, params)`` (int64 arrays
and a :class:`~workload.WorkloadParams`) and returns an :class:`~workload.Outcome`
of int64 arrays; all compute in integer fen and round half-up once per outlet, so
they must agree exactly. Time spent converting numpy arrays in and out of a
DataFrame is part of each peer's time.

- :func:`python_loop`: the baseline, Python ints and lists, ranks by their literal
  definition (sort, then number the positions, ties taking the first position).
- :func:`numpy_reference`: plain numpy, full competition ranks from one ``argsort``
  of the scores (province) and one of a combined (region, score) key, then masks.
- :func:`numpy_expert`: numpy tuned by hand for this one workload — cut-offs from
  a ``bincount``, each half's packed keys sorted in a thread of its own, int16
  offsets and int32 amounts assembled in place, one thread per half — as a bound on
  what numpy code can do here.
- :func:`pandas_idiomatic`: ``Series.rank(method="min")``, ``groupby().rank``,
  ``np.where``/``np.select``, ``Series.mask``, ``groupby().sum()``.
- :func:`polars_lazy`: one lazy query: ``top_k``/``bottom_k`` cut-offs for the
  province, ``rank("min").over("region")``, ``when/then``; amounts and region
  totals collected together with ``collect_all``.
- :func:`numba_fused`: ``@njit`` two passes, no sort: pass 1 builds a histogram of
  the scores over the indicator's scale plus each region's lowest, its count and
  the next-lowest score; the rank cut-offs come from the histogram; pass 2 computes
  each amount and adds it to its region's total.

A peer whose library is not installed is ``None``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from workload import I64, Outcome, WorkloadParams, region_count

Implementation = Callable[[I64, I64, WorkloadParams], Outcome]


def _optional(name: str) -> ModuleType | None:
    """The module, or ``None`` when that peer is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


pd = _optional("pandas")
pl = _optional("polars")
numba = _optional("numba")


# --- 1. pure Python -------------------------------------------------------------------


def _competition_ranks(values: list[int], *, descending: bool) -> list[int]:
    """Competition ranks ("1224"): ``1 +`` the number of values strictly better."""
    order = sorted(range(len(values)), key=values.__getitem__, reverse=descending)
    ranks = [0] * len(values)
    rank, previous = 0, None
    for position, i in enumerate(order, start=1):
        if values[i] != previous:
            rank, previous = position, values[i]
        ranks[i] = rank
    return ranks


def literal_ranks(scores: list[int], regions: list[int]) -> tuple[list[int], list[int], list[int]]:
    """``(from_top, from_bottom, in_region_from_bottom)`` by the literal definition."""
    members: dict[int, list[int]] = {}
    for i, region in enumerate(regions):
        members.setdefault(region, []).append(i)
    in_region = [0] * len(scores)
    for outlets in members.values():
        ranks = _competition_ranks([scores[i] for i in outlets], descending=False)
        for i, rank in zip(outlets, ranks, strict=True):
            in_region[i] = rank
    return (
        _competition_ranks(scores, descending=True),
        _competition_ranks(scores, descending=False),
        in_region,
    )


def python_loop(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """The baseline: Python ints, literal ranks, one loop over the outlets."""
    p = params
    score_list: list[int] = scores.tolist()
    region_list: list[int] = regions.tolist()
    from_top, from_bottom, in_region = literal_ranks(score_list, region_list)
    region_fen = {1: 100 * p.region_extra[0], 2: 100 * p.region_extra[1]}
    amounts = [0] * len(score_list)
    totals = [0] * region_count(regions)
    for i, score in enumerate(score_list):
        if from_top[i] <= p.top_exempt:
            continue
        short = max(0, p.target - score)
        fen = 0
        if short > 0:
            base = p.bottom_base if from_bottom[i] <= p.bottom_n else p.base
            fen = 100 * base + p.rate * short
        if in_region[i] in region_fen:
            fen += region_fen[in_region[i]] + p.region_rate * short
        yuan = (fen + 50) // 100
        amounts[i] = yuan
        totals[region_list[i]] += yuan
    return Outcome(np.array(amounts, dtype=np.int64), np.array(totals, dtype=np.int64))


# --- 2. plain numpy --------------------------------------------------------------------


def _sort_order(values: I64, groups: I64 | None) -> I64:
    """An order sorting by (group, value); among equal pairs any order will do.

    Within groups: one ``argsort`` of the int64 key ``group × span + value``, several
    times faster than ``np.lexsort((values, groups))``. Scores on a 0–10,000 scale
    and region codes below N keep the key far from overflow.
    """
    if groups is None or values.size == 0:
        return np.argsort(values)
    low, group_low = int(values.min()), int(groups.min())
    span = int(values.max()) - low + 1
    if span * (int(groups.max()) - group_low + 1) >= 2**63:
        raise ValueError("the (group, value) sort key would overflow int64")
    return np.argsort((groups - group_low) * span + (values - low))


def _sorted_ranks(values: I64, groups: I64 | None) -> tuple[I64, I64]:
    """Competition ranks within groups, ``(from_top, from_bottom)``, input-aligned.

    Group and tie-block bounds come from comparing neighbours in sorted order.
    """
    n = values.size
    order = _sort_order(values, groups)
    sorted_values = values[order]
    group_starts = np.zeros(n, dtype=bool)
    group_starts[:1] = True
    if groups is not None:
        sorted_groups = groups[order]
        group_starts[1:] = sorted_groups[1:] != sorted_groups[:-1]
    run_starts = group_starts.copy()
    run_starts[1:] |= sorted_values[1:] != sorted_values[:-1]
    group_ends = np.ones(n, dtype=bool)
    group_ends[:-1] = group_starts[1:]
    run_ends = np.ones(n, dtype=bool)
    run_ends[:-1] = run_starts[1:]
    position = np.arange(n, dtype=np.int64)
    first = np.maximum.accumulate(np.where(group_starts, position, 0))
    run_first = np.maximum.accumulate(np.where(run_starts, position, 0))
    last = np.minimum.accumulate(np.where(group_ends, position, n)[::-1])[::-1]
    run_last = np.minimum.accumulate(np.where(run_ends, position, n)[::-1])[::-1]
    from_top = np.empty(n, dtype=np.int64)
    from_bottom = np.empty(n, dtype=np.int64)
    from_top[order] = last - run_last + 1
    from_bottom[order] = run_first - first + 1
    return from_top, from_bottom


def numpy_reference(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """Plain numpy: full competition ranks by sorting, then masks; exact int64 fen."""
    p = params
    from_top, from_bottom = _sorted_ranks(scores, None)
    _, in_region = _sorted_ranks(scores, regions)
    short = np.maximum(p.target - scores, 0)
    base = np.where(from_bottom <= p.bottom_n, 100 * p.bottom_base, 100 * p.base)
    fen = np.where(short > 0, base + p.rate * short, 0)
    lowest = in_region <= 2
    extra = np.where(in_region == 1, 100 * p.region_extra[0], 100 * p.region_extra[1])
    fen += np.where(lowest, extra + p.region_rate * short, 0)
    fen[from_top <= p.top_exempt] = 0
    amounts = (fen + 50) // 100
    totals = np.zeros(region_count(regions), dtype=np.int64)
    np.add.at(totals, regions, amounts)
    return Outcome(amounts, totals)


_BIG: Final = 2**62
"""Above every offset: a region's missing lowest (fewer than two outlets)."""


def _nth_best(tally: I64, n: int, *, from_top: bool) -> int:
    """The offset of the ``n``-th best value (counted with repeats) in a histogram.

    Past the population: ``-1`` from the top (everybody is that good), ``len(tally)``
    from the bottom; ``n <= 0`` gives the opposite sentinel (nobody).
    """
    size = int(tally.shape[0])
    total = int(tally.sum())
    if n <= 0:
        return size if from_top else -1
    if n > total:
        return -1 if from_top else size
    if from_top:
        return size - 1 - int(np.searchsorted(np.cumsum(tally[::-1]), n))
    return int(np.searchsorted(np.cumsum(tally), n))


def _region_lowest_two(keys: NDArray[Any], span: int, n_regions: int) -> NDArray[Any]:
    """Each region's two lowest offsets in one share of the rows: an ``(R, 2)`` array.

    ``keys`` are the share's packed ``region × span + offset`` keys (sorted here, in
    place); a region with fewer than two outlets in the share gets ``_BIG`` for the
    missing ones.
    """
    out = np.full((n_regions, 2), _BIG, dtype=np.int64)
    if keys.shape[0] == 0:
        return out
    keys.sort()
    firsts = np.arange(n_regions + 1, dtype=keys.dtype) * keys.dtype.type(span)
    bounds = np.searchsorted(keys, firsts)
    start, stop = bounds[:-1], bounds[1:]
    last = int(keys.shape[0]) - 1
    for k in (0, 1):
        has = stop > start + k
        out[has, k] = keys[np.minimum(start + k, last)][has] - firsts[:-1][has]
    return out


def numpy_expert(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """Hand-tuned numpy for this one workload, on two threads: a bound for numpy code.

    What an expert would write with numpy alone (plus the standard library's
    threads, as numpy works outside Python's lock):

    - scores as offsets from the lowest, in int16 when they fit;
    - the province's cut-offs from one ``bincount`` of the offsets;
    - each region's two lowest without one sort of the whole population: each
      thread sorts packed ``region × span + offset`` keys (int32 when they fit)
      of its half and reads off each region's two lowest with ``searchsorted``;
      the four candidates per region are merged. Rank 1 from the bottom is the
      lowest; rank 2 exists only when the lowest is unique, and is the next one;
    - each half's amounts assembled in place in int32 while the largest fen fits,
      and its region totals with ``np.add.at``, in its own thread.
    """
    p = params
    n = int(scores.shape[0])
    n_regions = region_count(regions)
    if n == 0:
        return Outcome(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    low, high = int(scores.min()), int(scores.max())
    span = high - low + 1
    small = np.int16 if span <= 2**15 else np.int32 if span <= 2**31 else np.int64
    offsets = np.empty(n, dtype=small)
    np.subtract(scores, low, out=offsets, casting="unsafe")
    tally = np.bincount(offsets, minlength=span)
    top = _nth_best(tally, p.top_exempt, from_top=True)  # exempt: offset >= top
    bottom = _nth_best(tally, p.bottom_n, from_top=False)  # bottom tier: offset <= bottom
    key_type = np.int32 if n_regions * span < 2**31 else np.int64
    halves = [(0, n // 2), (n // 2, n)]

    def lowest(edge: tuple[int, int]) -> NDArray[Any]:
        keys = np.empty(edge[1] - edge[0], dtype=key_type)
        np.multiply(regions[edge[0] : edge[1]], span, out=keys, casting="unsafe")
        keys += offsets[edge[0] : edge[1]]
        return _region_lowest_two(keys, span, n_regions)

    most = max(0, p.target - low) * (p.rate + p.region_rate)
    most += 100 * (max(p.base, p.bottom_base) + max(p.region_extra)) + 50  # the largest fen
    shortfalls = (p.target - high, p.target - low)  # target − score, least and greatest
    fits = most < 2**31 and shortfalls[0] > -(2**31) and shortfalls[1] < 2**31
    wide = np.int32 if fits and small is not np.int64 else np.int64
    amounts = np.empty(n, dtype=np.int64)

    def assemble(edge: tuple[int, int]) -> I64:
        own, where = offsets[edge[0] : edge[1]], regions[edge[0] : edge[1]]
        short = np.subtract(wide(p.target - low), own, dtype=wide)
        np.maximum(short, 0, out=short)  # hundredths of a point short, >= 0
        fen = short * wide(p.rate)
        fen += wide(100 * p.base)
        fen += (own <= bottom) * wide(100 * (p.bottom_base - p.base))
        fen *= short > 0
        extra = short * wide(p.region_rate)
        fen += (own == first_low[where]) * (extra + wide(100 * p.region_extra[0]))
        fen += (own == second_low[where]) * (extra + wide(100 * p.region_extra[1]))
        fen *= own < top
        fen += wide(50)
        fen //= wide(100)
        amounts[edge[0] : edge[1]] = fen
        totals = np.zeros(n_regions, dtype=np.int64)
        np.add.at(totals, where, amounts[edge[0] : edge[1]])
        return totals

    with ThreadPoolExecutor(2) as pool:
        merged = np.concatenate(list(pool.map(lowest, halves)), axis=1)
        merged.sort(axis=1)
        first_low = np.where(merged[:, 0] < _BIG, merged[:, 0], -1).astype(small)
        unique = (merged[:, 1] > merged[:, 0]) & (merged[:, 1] < _BIG)
        second_low = np.where(unique, merged[:, 1], -1).astype(small)  # -1: no rank 2
        first, second = pool.map(assemble, halves)
    return Outcome(amounts, first + second)


# --- 3. pandas -------------------------------------------------------------------------


def _pandas_idiomatic(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """Idiomatic pandas: ``rank(method="min")``, ``groupby().rank``, ``np.select``."""
    assert pd is not None  # noqa: S101 - only registered when pandas imports
    p = params
    df = pd.DataFrame({"score": scores, "region": regions})
    from_top = df["score"].rank(method="min", ascending=False)
    from_bottom = df["score"].rank(method="min")
    in_region = df.groupby("region")["score"].rank(method="min")
    short = (p.target - df["score"]).clip(lower=0)
    base = np.where(from_bottom <= p.bottom_n, p.bottom_base, p.base)
    penalty = np.where(short > 0, 100 * base + p.rate * short, 0)
    extra = np.select(
        [in_region == 1, in_region == 2],
        [
            100 * p.region_extra[0] + p.region_rate * short,
            100 * p.region_extra[1] + p.region_rate * short,
        ],
        0,
    )
    fen = pd.Series(penalty + extra, index=df.index).mask(from_top <= p.top_exempt, 0)
    df["amount"] = (fen + 50) // 100
    totals = df.groupby("region")["amount"].sum()
    totals = totals.reindex(range(region_count(regions)), fill_value=0)
    return Outcome(df["amount"].to_numpy(dtype=np.int64), totals.to_numpy(dtype=np.int64))


pandas_idiomatic: Implementation | None = _pandas_idiomatic if pd is not None else None


# --- 4. polars -------------------------------------------------------------------------


def _polars_amount(params: WorkloadParams) -> Any:
    """The per-outlet amount as one polars expression.

    Province cut-offs without a full rank: competition rank from the top <= K
    exactly when the score is >= the K-th highest score, ``top_k(K).min()`` (all of
    a population of at most K; nobody when K = 0, as the null compares false).
    Measured about twice as fast here as two ``rank("min")`` columns. The region's
    two lowest come from ``rank("min").over("region")``.
    """
    assert pl is not None  # noqa: S101 - only called when polars imports
    p = params
    score = pl.col("score")
    short = (pl.lit(p.target, dtype=pl.Int64) - score).clip(lower_bound=0)
    exempt = score >= score.top_k(p.top_exempt).min()
    in_bottom = score <= score.bottom_k(p.bottom_n).max()
    in_region = score.rank("min").over("region")
    base = (
        pl.when(in_bottom)
        .then(pl.lit(100 * p.bottom_base, dtype=pl.Int64))
        .otherwise(pl.lit(100 * p.base, dtype=pl.Int64))
    )
    fen = pl.when(short > 0).then(base + p.rate * short).otherwise(0)
    extra = (
        pl.when(in_region == 1)
        .then(100 * p.region_extra[0] + p.region_rate * short)
        .when(in_region == 2)
        .then(100 * p.region_extra[1] + p.region_rate * short)
        .otherwise(0)
    )
    return pl.when(exempt).then(0).otherwise((fen + extra + 50) // 100).cast(pl.Int64)


def _polars_lazy(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """Expert polars: one lazy query; amounts and region totals collected together."""
    assert pl is not None  # noqa: S101 - only registered when polars imports
    frame = pl.LazyFrame({"score": scores, "region": regions}).with_columns(
        amount=_polars_amount(params)
    )
    amounts, totals = pl.collect_all(
        [
            frame.select("amount"),
            frame.group_by("region").agg(pl.col("amount").sum()),
        ]
    )
    region_totals = np.zeros(region_count(regions), dtype=np.int64)
    region_totals[totals["region"].to_numpy()] = totals["amount"].to_numpy()
    return Outcome(amounts["amount"].to_numpy().astype(np.int64, copy=False), region_totals)


polars_lazy: Implementation | None = _polars_lazy if pl is not None else None


# --- 5. numba --------------------------------------------------------------------------

_NONE: Final = np.iinfo(np.int64).max


def _fused_passes(  # noqa: C901, PLR0912, PLR0915, PLR0917 - one fused kernel, scalars in
    scores: I64,
    regions: I64,
    n_regions: int,
    scale_min: int,
    scale_max: int,
    target: int,
    base_fen: int,
    bottom_base_fen: int,
    rate: int,
    top_exempt: int,
    bottom_n: int,
    first_fen: int,
    second_fen: int,
    region_rate: int,
) -> tuple[I64, I64]:
    """Two passes over the outlets, no sort; compiled by numba into ``_fused_kernel``.

    Competition rank from the top <= K exactly when the score is >= the K-th highest
    score (and everyone is within the top K when there are at most K outlets); the
    same from the bottom. Within a region, rank 1 from the bottom is the lowest
    score; rank 2 exists only when the lowest is unique, and is the next score up.
    """
    n = scores.shape[0]
    counts = np.zeros(scale_max - scale_min + 1, dtype=np.int64)
    lowest = np.full(n_regions, _NONE, dtype=np.int64)
    lowest_count = np.zeros(n_regions, dtype=np.int64)
    next_lowest = np.full(n_regions, _NONE, dtype=np.int64)
    for i in range(n):
        score, region = scores[i], regions[i]
        if score < scale_min or score > scale_max:
            raise ValueError("score outside the indicator's scale")
        counts[score - scale_min] += 1
        if score < lowest[region]:
            next_lowest[region] = lowest[region]
            lowest[region] = score
            lowest_count[region] = 1
        elif score == lowest[region]:
            lowest_count[region] += 1
        elif score < next_lowest[region]:
            next_lowest[region] = score
    # Exempt when score >= top_cut; bottom tier when score <= bottom_cut.
    top_cut = scale_max + 1
    if top_exempt >= n:
        top_cut = scale_min
    elif top_exempt > 0:
        seen = 0
        for value in range(scale_max, scale_min - 1, -1):
            seen += counts[value - scale_min]
            if seen >= top_exempt:
                top_cut = value
                break
    bottom_cut = scale_min - 1
    if bottom_n >= n:
        bottom_cut = scale_max
    elif bottom_n > 0:
        seen = 0
        for value in range(scale_min, scale_max + 1):
            seen += counts[value - scale_min]
            if seen >= bottom_n:
                bottom_cut = value
                break
    amounts = np.zeros(n, dtype=np.int64)
    totals = np.zeros(n_regions, dtype=np.int64)
    for i in range(n):
        score, region = scores[i], regions[i]
        if score >= top_cut:
            continue
        short = max(target - score, 0)
        fen = 0
        if short > 0:
            fen = (bottom_base_fen if score <= bottom_cut else base_fen) + rate * short
        if score == lowest[region]:
            fen += first_fen + region_rate * short
        elif lowest_count[region] == 1 and score == next_lowest[region]:
            fen += second_fen + region_rate * short
        yuan = (fen + 50) // 100
        amounts[i] = yuan
        totals[region] += yuan
    return amounts, totals


_fused_kernel = None if numba is None else numba.njit(cache=False, nogil=True)(_fused_passes)


def _numba_fused(scores: I64, regions: I64, params: WorkloadParams) -> Outcome:
    """The fused two-pass kernel, compiled by numba."""
    assert _fused_kernel is not None  # noqa: S101 - only registered when numba imports
    p = params
    amounts, totals = _fused_kernel(
        np.ascontiguousarray(scores, dtype=np.int64),
        np.ascontiguousarray(regions, dtype=np.int64),
        region_count(regions),
        p.scale_min,
        p.scale_max,
        p.target,
        100 * p.base,
        100 * p.bottom_base,
        p.rate,
        p.top_exempt,
        p.bottom_n,
        100 * p.region_extra[0],
        100 * p.region_extra[1],
        p.region_rate,
    )
    return Outcome(amounts, totals)


numba_fused: Implementation | None = _numba_fused if _fused_kernel is not None else None


def versions() -> dict[str, str | None]:
    """The installed version of numpy and of each optional peer (``None``: missing)."""
    found: dict[str, str | None] = {"numpy": np.__version__}
    for name, module in (("pandas", pd), ("polars", pl), ("numba", numba)):
        found[name] = None if module is None else str(module.__version__)
    return found


IMPLEMENTATIONS: Final[dict[str, Implementation | None]] = {
    "python": python_loop,
    "numpy-reference": numpy_reference,
    "numpy-expert": numpy_expert,
    "pandas": pandas_idiomatic,
    "polars": polars_lazy,
    "numba": numba_fused,
}
"""Every peer by the name the runner prints; ``None`` when its library is missing."""
