"""A Workspace lends arrays nothing else refers to, and evaluations with one agree."""

import copy
import gc
import pickle
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import _whatif, _workspace, load_scheme
from bankkpi._money import fen_to_yuan
from bankkpi.vector import Workspace, evaluate_arrays, grid, monte_carlo, override, what_if

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def scheme_a():
    return load_scheme((EXAMPLES / "scheme_a.toml").read_text(encoding="utf-8"), format="toml")


def population(seed, n, regions=7):
    rng = np.random.default_rng(seed)
    columns = {
        "score": rng.integers(8500, 10001, n),  # 0.01-point counts: 85.00 … 100.00
        "quarters_early": rng.integers(0, 5, n),
        "complaints": rng.integers(0, 3, n),
        "repeat": rng.integers(0, 2, n),
    }
    region = rng.integers(0, regions, n)
    attributes = {"region": region, "head": np.array([f"head {r}" for r in region])}
    return columns, attributes


def outcome(out):
    """Everything an evaluation gives, as plain lists (copies)."""
    return (
        out.penalty.tolist(),
        out.reward.tolist(),
        {rule: out.amounts[rule].tolist() for rule in out.rules},
        {
            name: (t.keys.tolist(), t.penalty.tolist(), t.reward.tolist())
            for name, t in out.group_totals.items()
        },
        {name: out.ranks[name].rank_from_top.tolist() for name in out.ranks},
    )


class TestLending:
    def test_an_array_nothing_refers_to_is_lent_again(self):
        space = Workspace()
        first = space.empty(5, np.int64)
        address = first.ctypes.data
        del first
        again = space.empty(5, np.int64)
        assert again.ctypes.data == address
        assert again.flags.writeable

    def test_an_array_still_referred_to_is_never_lent(self):
        space = Workspace()
        held = space.empty(5, np.int64)
        view_at = held.ctypes.data
        view = held[1:3]  # a view refers to the array it views
        read_only = held.view()
        read_only.flags.writeable = False
        addresses = {held.ctypes.data}
        del held
        others = []
        for _ in range(3):
            others.append(space.empty(5, np.int64))  # held too
            assert others[-1].ctypes.data not in addresses
            addresses.add(others[-1].ctypes.data)
        assert view.base is not None
        assert read_only.base is view.base
        del view, read_only  # now nothing refers to the first
        assert space.empty(5, np.int64).ctypes.data == view_at

    def test_only_the_same_length_and_type_is_lent_again(self):
        space = Workspace()
        address = space.empty(5, np.int64).ctypes.data
        assert space.empty(4, np.int64).ctypes.data != address
        assert space.empty(5, np.int32).ctypes.data != address
        assert space.empty(5, np.int64).ctypes.data == address

    def test_a_read_only_array_is_lent_writeable(self):
        space = Workspace()
        array = space.empty(3, np.int64)
        array.flags.writeable = False  # as results freeze their columns
        del array
        assert space.empty(3, np.int64).flags.writeable

    def test_free_arrays_the_last_evaluation_did_not_use_are_let_go(self):
        space = Workspace()
        space.begin()
        space.empty(1000, np.int64)
        kept = space.empty(10, np.int64)
        assert space.nbytes == 8080
        space.begin()  # the next evaluation uses only the small one
        del kept
        space.empty(10, np.int64)
        assert space.nbytes == 8080
        space.begin()  # the large one, unused by the last evaluation, is let go
        assert space.nbytes == 80
        assert repr(space) == "Workspace(1 arrays, 80 bytes)"

    def test_clear_lets_go_of_free_arrays_only(self):
        space = Workspace()
        held = space.empty(10, np.int64)
        space.empty(20, np.int64)
        space.clear()
        assert space.nbytes == 80
        del held
        space.clear()
        assert space.nbytes == 0

    def test_where_references_are_not_counted_nothing_is_lent_twice(self, monkeypatch):
        monkeypatch.setattr(_workspace, "_FREE", None)
        space = Workspace()
        address = space.empty(5, np.int64).ctypes.data
        assert space.empty(5, np.int64).ctypes.data != address

    def test_threads_never_share_an_array(self):
        space = Workspace()
        seen: list[list[int]] = [[] for _ in range(4)]

        def borrow(mine):
            for _ in range(200):
                arrays = [space.empty(16, np.int64) for _ in range(3)]
                mine.append(len({a.ctypes.data for a in arrays}))
                for a in arrays:  # each writes its own marks: nobody else's array
                    a.fill(id(a))
                assert all((a == id(a)).all() for a in arrays)

        threads = [threading.Thread(target=borrow, args=(s,)) for s in seen]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(count == 3 for mine in seen for count in mine)


class TestEvaluations:
    @settings(max_examples=20, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.sampled_from([1, 2]))
    def test_the_same_results_with_a_workspace_and_without(self, seed, n, workers):
        """Over populations of one and of many compiled blocks (16 rows each)."""
        scheme = scheme_a()
        columns, attributes = population(seed, n)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("bankkpi.vector.PLAN_ROWS", 16)
            plain = outcome(evaluate_arrays(scheme, columns, attributes, workers=workers))
            space = Workspace()
            first = evaluate_arrays(scheme, columns, attributes, workers=workers, workspace=space)
            for _ in range(3):  # the first kept, the others dropped and lent again
                out = evaluate_arrays(scheme, columns, attributes, workers=workers, workspace=space)
                assert outcome(out) == plain
            assert outcome(first) == plain

    @pytest.mark.parametrize("workers", [1, 2])
    def test_results_kept_never_change_and_dropped_ones_are_reused(self, workers, monkeypatch):
        monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 16)  # compiled, in blocks, threads
        scheme = scheme_a()
        space = Workspace()
        first_columns, attributes = population(1, 400)
        second_columns, _ = population(2, 400)
        first = evaluate_arrays(scheme, first_columns, attributes, workers=workers, workspace=space)
        expected = outcome(first)
        score_view = first.penalty[10:20]  # a view alone keeps the column
        view_before = score_view.tolist()
        second = evaluate_arrays(
            scheme, second_columns, attributes, workers=workers, workspace=space
        )
        assert outcome(first) == expected  # kept results are not written over
        assert outcome(second) == outcome(
            evaluate_arrays(scheme, second_columns, attributes, workers=workers)
        )
        del first
        third = evaluate_arrays(scheme, first_columns, attributes, workers=workers, workspace=space)
        assert score_view.tolist() == view_before
        assert outcome(third) == expected
        addresses = {third.penalty.ctypes.data, third.reward.ctypes.data}
        del second, third
        fourth = evaluate_arrays(
            scheme, first_columns, attributes, workers=workers, workspace=space
        )
        assert outcome(fourth) == expected
        reused = {fourth.penalty.ctypes.data, fourth.reward.ctypes.data} | {
            a.ctypes.data for a in fourth.amounts.values()
        }
        assert reused & addresses  # the dropped results' memory was lent again
        assert not fourth.penalty.flags.writeable

    def test_what_if_gives_each_scenario_what_one_evaluation_gives(self):
        """Scenario after scenario in one workspace of its own: each as if alone."""
        scheme = scheme_a()
        columns, attributes = population(3, 200)
        scenarios = grid({"rules[A.no_complaint].**.amount": [500, 800, 1100]})
        table = what_if(scheme, columns, attributes, scenarios)
        for record, scenario in zip(table.records(), scenarios, strict=True):
            alone = evaluate_arrays(override(scheme, scenario), columns, attributes)
            assert record["penalty"] == fen_to_yuan(alone.total("penalty"))
            assert record["reward"] == fen_to_yuan(alone.total("reward"))

    def test_results_refer_to_no_workspace_and_pickle_and_copy(self, monkeypatch):
        """Kept results keep their own arrays, not the workspace (nor its memory)."""
        monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 16)
        columns, attributes = population(4, 100)
        space = Workspace()
        out = evaluate_arrays(scheme_a(), columns, attributes, workspace=space, workers=2)
        expected = outcome(out)
        gone = weakref.ref(space)
        del space
        gc.collect()
        assert gone() is None
        assert outcome(pickle.loads(pickle.dumps(out))) == expected  # noqa: S301 - our own data
        assert outcome(copy.deepcopy(out)) == expected
        assert outcome(out) == expected

    def test_a_workspace_pickles_and_copies_as_a_new_empty_one(self):
        space = Workspace()
        held = space.empty(8, np.int64)
        for other in (pickle.loads(pickle.dumps(space)), copy.copy(space), copy.deepcopy(space)):  # noqa: S301
            assert isinstance(other, Workspace)
            assert other.nbytes == 0
        assert space.nbytes == held.nbytes

    @pytest.mark.parametrize("workers", [1, 2])
    def test_integer_keys_with_gaps_are_coded_in_the_workspace(self, workers, monkeypatch):
        monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 16)
        columns, _ = population(5, 120)
        region = np.array([3, 40, 40, 7] * 30, dtype=np.uint16)  # codes 3, 7, 40: gaps
        attributes = {"region": region, "head": np.array([f"h{r}" for r in region])}
        plain = outcome(evaluate_arrays(scheme_a(), columns, attributes, workers=workers))
        space = Workspace()
        for _ in range(3):
            out = evaluate_arrays(scheme_a(), columns, attributes, workers=workers, workspace=space)
            assert outcome(out) == plain
        assert out.group_totals["region"].keys.tolist() == [3, 7, 40]

    def test_monte_carlo_shares_one_workspace_across_its_runs(self, monkeypatch):
        made = []

        class Counted(Workspace):
            def __init__(self):
                super().__init__()
                made.append(self)

        monkeypatch.setattr(_whatif, "Workspace", Counted)
        columns, attributes = population(6, 150)

        def draw(rng, base):
            return {"score": np.clip(base["score"] + rng.integers(-200, 200, 150), 0, 10000)}

        table = monte_carlo(scheme_a(), columns, attributes, draw=draw, runs=4, seed=1)
        assert len(table.records()) == 4
        assert len(made) == 1
