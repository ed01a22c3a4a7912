import typing
from decimal import Decimal
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankkpi import Fixed, SubjectRow, evaluate, load_scheme
from bankkpi import vector as vector_module
from bankkpi._schemefile import SchemeFileError
from bankkpi.exceptions import (
    ConfigError,
    FloatMoneyError,
    InvalidValueError,
    ValidationErrorGroup,
)
from bankkpi.vector import (
    evaluate_arrays,
    grid,
    monte_carlo,
    override,
    seek_parameter,
    what_if,
)

SCHEME_A = load_scheme(
    (Path(__file__).parent.parent / "examples" / "scheme_a.toml").read_text(encoding="utf-8"),
    format="toml",
)
N = 600
K = np.arange(N)
COLUMNS = {"score": 9000 + (K * 7919) % 1001, "complaints": (K % 5 == 0).astype(np.int64)}
REGIONS = np.array([f"R{j:02d}" for j in K % 12])
ATTRIBUTES = {"region": REGIONS, "head": REGIONS}


def exact_penalty(scheme):
    rows = [
        SubjectRow(
            f"o{i:03d}",
            {"region": str(REGIONS[i]), "head": str(REGIONS[i])},
            {
                "score": Decimal(int(COLUMNS["score"][i])).scaleb(-2),
                "complaints": int(COLUMNS["complaints"][i]),
            },
        )
        for i in range(N)
    ]
    return sum(t.penalty for t in evaluate(scheme, rows).totals)


class TestOverride:
    def test_by_id_wildcards_and_index(self):
        changed = override(
            SCHEME_A, {"rules[A.P3].**.threshold": 97, "rules[2].formula.then.amount": 250}
        )
        text = repr(changed.rules[0].formula)
        assert "threshold=Decimal('97')" in text
        assert "threshold=Decimal('98')" not in text
        assert changed.rules[2].formula.then.amount == 250
        assert changed.rules[1] == SCHEME_A.rules[1]

    def test_a_path_that_matches_nothing_is_refused(self):
        with pytest.raises(ConfigError, match="matches nothing"):
            override(SCHEME_A, {"rules[A.P9].**.rate": 1})

    def test_an_invalid_value_is_refused_like_a_file_mistake(self):
        with pytest.raises(SchemeFileError) as info:
            override(SCHEME_A, {"rules[A.P3].**.rate": -5})
        assert "'rate' must be >= 0" in str(info.value)

    def test_a_list_or_dict_given_is_copied_before_later_paths_write_into_it(self):
        from bankkpi import dump_scheme  # noqa: PLC0415

        rules = dump_scheme(SCHEME_A)["rules"]
        before = repr(rules)
        changed = override(SCHEME_A, {"rules": rules, "rules[A.P3].rounding.place": "fen"})
        assert repr(rules) == before
        assert changed.rules[0].rounding.place == Decimal("0.01")
        assert changed.rules[1:] == SCHEME_A.rules[1:]

    def test_floats_are_refused(self):
        with pytest.raises(InvalidValueError, match="not a float"):
            override(SCHEME_A, {"rules[A.P3].**.rate": 150.5})


def test_grid_is_the_cartesian_product():
    assert len(grid({"a": [1, 2, 3], "b": [4, 5]})) == 6
    with pytest.raises(InvalidValueError):
        grid({"a": []})


def test_what_if_totals_equal_the_exact_path_per_scenario():
    scenarios = grid({"rules[A.P3].**.threshold": [97, 98], "rules[A.P3].**.rate": [150, 200]})
    table = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    assert len(table) == 4
    for scenario, result in zip(scenarios, table.results, strict=True):
        assert result.penalty == exact_penalty(override(SCHEME_A, scenario))
    by_region = table.group_records("region")
    assert len(by_region) == 4 * 12
    first = [r["penalty"] for r in by_region[:12]]
    assert sum(first) == table.results[0].penalty


def test_group_totals_are_built_when_read_and_compare_as_mappings():
    scenarios = grid({"rules[A.P3].**.rate": [150, 200]})
    first, again = (what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios) for _ in range(2))
    result = first.results[0]
    assert repr(result.groups) == "{'region': ...}"  # nothing built yet
    assert list(result.groups) == ["region"]
    assert "region" in result.groups
    assert "branch" not in result.groups
    assert repr(result.groups) == "{'region': ...}"  # `in` built nothing
    out = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios[:1]).results[0]
    region = result.groups["region"]
    assert region is result.groups["region"]  # built once
    assert sum(p for p, _w in region.values()) == result.penalty_fen
    assert sum(w for _p, w in region.values()) == result.reward_fen
    assert all(isinstance(k, str) and type(p) is int for k, (p, _w) in region.items())
    assert first == again  # equal as mappings, whether built or not
    assert out == result
    with pytest.raises(KeyError):
        result.groups["branch"]


def test_scenarios_changing_only_rules_read_the_population_once(monkeypatch):
    """Rule-only scenarios share one reading of the columns; a scenario that changes
    how the population is read (a ranking's ties, an indicator) reads it again — and
    every scenario's totals equal the exact path's."""
    from bankkpi import vector  # noqa: PLC0415

    reads = []
    prepare = vector._prepare

    def counting(*args, **kwargs):
        reads.append(args[0].rankings[0].rule.ties)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(vector, "_prepare", counting)
    scenarios = [
        {"rules[A.P3].**.rate": 150},
        {"rules[A.P3].formula.formula.cases[0].when.selection.selection.n": 50},
        {"rules[A.P3].**.rate": 150, "rankings[0].ties": "dense"},
        {"rules[A.P3].**.rate": 300, "rankings[0].ties": "dense"},
        {"rules[A.region_lowest].**.rate": 100},
    ]
    table = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    assert reads == ["competition", "dense", "competition"]
    for scenario, result in zip(scenarios, table.results, strict=True):
        assert result.penalty == exact_penalty(override(SCHEME_A, scenario))


def test_a_default_written_with_more_places_reads_the_population_again(monkeypatch):
    """Equal defaults written differently (1 and 1.000) read a column at different
    places: the population is read again, as evaluate_arrays would."""
    from bankkpi import vector  # noqa: PLC0415

    reads = []
    prepare = vector._prepare

    def counting(*args, **kwargs):
        reads.append(args[0].inputs[1].default)
        return prepare(*args, **kwargs)

    monkeypatch.setattr(vector, "_prepare", counting)
    assert SCHEME_A.inputs[1].name == "quarters_early"  # not a column: its default is read
    scenarios = [{"inputs[1].default": "0"}, {"inputs[1].default": "0.000"}]
    what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    assert [str(d) for d in reads] == ["0", "0.000"]


def evaluated_rules(monkeypatch):
    """The ids of the rules each evaluation computes (array path or plan), by call."""
    from bankkpi import vector  # noqa: PLC0415

    calls = []
    rules_of, compile_rule = vector._rules_of, vector.compile_rule

    def on_arrays(rules, env):
        calls.append(("arrays", tuple(rule.id for rule in rules)))
        return rules_of(rules, env)

    def compiled(rule, env, **options):
        calls.append(("plan", rule.id))
        return compile_rule(rule, env, **options)

    monkeypatch.setattr(vector, "_rules_of", on_arrays)
    monkeypatch.setattr(vector, "compile_rule", compiled)
    return calls


def single_results(scheme, scenarios):
    """Each scenario as ``what_if`` reports it, from an evaluation of its own.

    Its totals are checked against ``evaluate_arrays``' on the way.
    """
    results = []
    for scenario in scenarios:
        changed = override(scheme, scenario)
        result = what_if(changed, COLUMNS, ATTRIBUTES, [{}]).results[0]
        direct = evaluate_arrays(changed, COLUMNS, ATTRIBUTES)
        assert (result.penalty_fen, result.reward_fen) == (
            direct.total("penalty"),
            direct.total("reward"),
        )
        results.append(result)
    return results


def same_totals(table, expected, scenarios):
    for scenario, got, alone in zip(scenarios, table.results, expected, strict=True):
        assert got.scenario == scenario
        assert (got.penalty_fen, got.reward_fen, got.payers) == (
            alone.penalty_fen,
            alone.reward_fen,
            alone.payers,
        )
        assert dict(got.groups["region"]) == dict(alone.groups["region"])


def test_a_rule_unchanged_since_the_last_scenario_keeps_its_amounts(monkeypatch):
    """A grid over one rule's rate evaluates the other rules once, and that rule
    once per scenario; a number written differently (98 and 98.0) is a change.
    Every scenario's totals are those of an evaluation of its own."""
    assert "rate=Decimal('200')" in repr(SCHEME_A.rules[0])  # the file's own rate
    scenarios = [
        {"rules[A.P3].**.rate": 150},
        {"rules[A.P3].**.rate": 200},
        {"rules[A.P3].**.rate": 200, "rules[A.region_lowest].**.threshold": "98.0"},
        {"rules[A.P3].**.rate": 200, "rules[A.region_lowest].**.threshold": "98.0"},
        {"rules[A.no_complaint].**.amount": 800},
    ]
    expected = single_results(SCHEME_A, scenarios)
    calls = evaluated_rules(monkeypatch)
    summed = []  # the rules of each kind summed per row: 2 penalties, 3 rewards
    column_sum = vector_module._column_sum
    monkeypatch.setattr(
        vector_module,
        "_column_sum",
        lambda columns, *args: summed.append(len(columns)) or column_sum(columns, *args),
    )
    table = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    every = tuple(rule.id for rule in SCHEME_A.rules)
    assert [ids for kind, ids in calls if kind == "arrays"] == [
        every,
        ("A.P3",),
        ("A.region_lowest",),
        # the fourth scenario is the third again: no rule to evaluate
        ("A.region_lowest", "A.no_complaint"),  # the rate is the file's 200 again
    ]
    assert summed == [2, 3, 2, 2, 2, 3]  # a kind of rules as they were: its sums as well
    same_totals(table, expected, scenarios)


def test_compiled_rules_unchanged_keep_their_amounts_and_are_added_up_with_the_others(
    monkeypatch,
):
    """Over a population evaluated block by block, a rule unchanged is not compiled
    again, and its amounts are summed with its kind's others block by block."""
    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 64)
    scenarios = grid({"rules[A.P3].**.rate": [150, 200], "rules[A.early].**.amount": [100, 300]})
    expected = single_results(SCHEME_A, scenarios)
    calls = evaluated_rules(monkeypatch)
    found = []
    real = vector_module._BlockSums.found

    def noted(self, given_back, tops):
        found.append(real(self, given_back, tops))
        return found[-1]

    monkeypatch.setattr(vector_module._BlockSums, "found", noted)
    table = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    # the penalties' rules as they were in the second and fourth: their sums too
    both, rewards = ["penalty", "reward"], ["reward"]
    assert [sorted(kinds) for kinds in found] == [both, rewards, both, rewards]
    compiled = [rule for kind, rule in calls if kind == "plan"]
    every = [rule.id for rule in SCHEME_A.rules]
    assert compiled == [*every, "A.early", "A.P3", "A.early", "A.early"]
    same_totals(table, expected, scenarios)


CHANGES = [
    {},
    {"rules[A.P3].**.rate": 150},
    {"rules[A.P3].**.rate": "150.0"},
    {"rules[A.P3].**.threshold": 97},
    {"rules[A.P3].formula.formula.cases[0].when.selection.selection.n": 50},
    {"rules[A.region_lowest].**.rate": 100},
    {"rules[A.region_lowest].**.threshold": "98.00"},
    {"rules[A.no_complaint].**.amount": 800},
    {"rules[A.early].**.amount": 300},
    {"rankings[0].ties": "dense"},
    {"inputs[1].default": "1"},
]


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(range(len(CHANGES))), max_size=3), min_size=1, max_size=6),
    st.sampled_from([64, None]),
)
def test_scenarios_in_any_order_total_as_each_alone(picked, plan_rows):
    """Any sequence of scenarios, each changing some rules, a ranking's ties or an
    input's default: what ``what_if`` reports for each (keeping what it may from
    the scenario before) is what an evaluation of that scenario alone gives, over
    one block (the array path) or blocks of 64 rows (plans)."""
    scenarios = [
        {path: value for change in changes for path, value in CHANGES[change].items()}
        for changes in picked
    ]
    with pytest.MonkeyPatch.context() as patch:
        if plan_rows is not None:
            patch.setattr("bankkpi.vector.PLAN_ROWS", plan_rows)
        expected = single_results(SCHEME_A, scenarios)
        same_totals(what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios), expected, scenarios)


def test_a_population_read_again_evaluates_every_rule_again(monkeypatch):
    """Amounts are kept for the population they were computed over only."""
    scenarios = [
        {"rules[A.P3].**.rate": 150},
        {"rules[A.P3].**.rate": 150, "rankings[0].ties": "dense"},
        {"rules[A.P3].**.rate": 200, "rankings[0].ties": "dense"},
    ]
    expected = single_results(SCHEME_A, scenarios)
    calls = evaluated_rules(monkeypatch)
    table = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, scenarios)
    every = tuple(rule.id for rule in SCHEME_A.rules)
    assert [ids for _kind, ids in calls] == [every, every, ("A.P3",)]
    same_totals(table, expected, scenarios)


def test_a_formula_of_the_callers_own_is_evaluated_every_time(monkeypatch):
    """What a formula of the caller's own reads, the library cannot know: its rule
    gets no key, and is evaluated every time. (``override`` cannot write such a
    formula to a file, so ``what_if`` never meets one: the reader is tested alone.)"""
    from bankkpi import Expression  # noqa: PLC0415
    from bankkpi._whatif import _Reader  # noqa: PLC0415
    from bankkpi.vector import _reusable  # noqa: PLC0415

    own = type("MyExpression", (Expression,), {})
    rule = attrs.evolve(SCHEME_A.rules[4], formula=own("complaints * 100", ["complaints"]))
    scheme = attrs.evolve(SCHEME_A, rules=(*SCHEME_A.rules[:4], rule))
    assert _reusable(rule) is None
    assert _reusable(SCHEME_A.rules[4]) == repr(SCHEME_A.rules[4])
    calls = evaluated_rules(monkeypatch)
    read = _Reader(COLUMNS, ATTRIBUTES)
    first, again = read(scheme, {}), read(scheme, {})
    assert [ids for _kind, ids in calls] == [
        tuple(rule.id for rule in scheme.rules),
        ("A.no_complaint",),
    ]
    assert first == again
    assert again.reward_fen == int((COLUMNS["complaints"] * 100 * 100).sum()) + (
        what_if(SCHEME_A, COLUMNS, ATTRIBUTES, [{"rules[A.no_complaint].**.amount": 0}])
        .results[0]
        .reward_fen
    )


def test_monte_carlo_is_reproducible_by_seed():
    def shift(rng, base):
        return {
            "score": np.clip(base["score"] + rng.integers(-50, 51, base["score"].size), 0, 10000)
        }

    one = monte_carlo(SCHEME_A, COLUMNS, ATTRIBUTES, draw=shift, runs=3, seed=1)
    two = monte_carlo(SCHEME_A, COLUMNS, ATTRIBUTES, draw=shift, runs=3, seed=1)
    other = monte_carlo(SCHEME_A, COLUMNS, ATTRIBUTES, draw=shift, runs=3, seed=2)
    assert one.records() == two.records()
    assert one.records() != other.records()
    with pytest.raises(InvalidValueError):
        monte_carlo(SCHEME_A, COLUMNS, ATTRIBUTES, draw=shift, runs=0, seed=1)


def test_monte_carlo_reads_the_attributes_once_and_agrees_run_by_run(monkeypatch):
    """Each run's totals are evaluate_arrays' over that run's columns; the attributes
    (the same arrays every run) are read and factorized once."""
    from bankkpi import vector  # noqa: PLC0415

    def shift(rng, base):
        return {
            "score": np.clip(base["score"] + rng.integers(-80, 81, base["score"].size), 0, 10000)
        }

    reads = []
    read = vector._attribute_array

    def counting(name, *args, **kwargs):
        reads.append(name)
        return read(name, *args, **kwargs)

    monkeypatch.setattr(vector, "_attribute_array", counting)
    table = monte_carlo(SCHEME_A, COLUMNS, ATTRIBUTES, draw=shift, runs=4, seed=7)
    assert sorted(reads) == ["head", "region"]
    rng = np.random.default_rng(7)
    base = {k: np.asarray(v) for k, v in COLUMNS.items()}
    for result in table.results:
        out = vector.evaluate_arrays(SCHEME_A, {**base, **shift(rng, base)}, ATTRIBUTES)
        assert (result.penalty_fen, result.reward_fen) == (
            out.total("penalty"),
            out.total("reward"),
        )
        assert result.groups["region"] == {
            str(k): (int(p), int(w))
            for k, p, w in zip(
                out.group_totals["region"].keys,
                out.group_totals["region"].penalty,
                out.group_totals["region"].reward,
                strict=True,
            )
        }


def test_seek_parameter_finds_the_lowest_rate_that_collects_the_budget():
    budget = Decimal(800_000)
    path = "rules[A.P3].**.rate"
    rate = seek_parameter(
        SCHEME_A,
        COLUMNS,
        ATTRIBUTES,
        path=path,
        low=100,
        high=400,
        step=10,
        kind="penalty",
        budget=budget,
    )
    assert rate is not None
    assert 100 < rate < 400
    assert exact_penalty(override(SCHEME_A, {path: rate})) >= budget
    assert exact_penalty(override(SCHEME_A, {path: rate - 10})) < budget
    unreachable = seek_parameter(
        SCHEME_A,
        COLUMNS,
        ATTRIBUTES,
        path=path,
        low=100,
        high=110,
        step=10,
        kind="penalty",
        budget=10**9,
    )
    assert unreachable is None


@pytest.mark.parametrize(
    ("amount", "made"),
    [
        (Decimal("500.00"), True),
        (500, True),
        (np.int64(500), False),  # a value of another library's type
        (500.0, False),
        (type("Doubled", (Decimal,), {})("500"), False),  # prints as Decimal('500')
        (type("Fixed", (Fixed,), {"__module__": "bankkpi._formulas"})(500), False),
    ],
)
def test_only_rules_of_plain_values_and_the_librarys_classes_are_kept(amount, made):
    """A key for reuse is given to a rule whose every part is a plain value or a
    class of the library's; anything else could compute from what it hides."""
    from bankkpi.vector import _reusable  # noqa: PLC0415

    rule = SCHEME_A.rules[4]
    when = rule.formula
    assert type(when.then) is Fixed
    then = attrs.evolve(when.then)
    object.__setattr__(then, "amount", amount)  # past the converter: what a caller could build
    changed = attrs.evolve(rule, formula=attrs.evolve(when, then=then))
    assert (_reusable(changed) is not None) is made
    assert _reusable(changed) in (None, repr(changed))


def test_the_amounts_of_a_rule_changed_are_lent_again_scenario_after_scenario(monkeypatch):
    """The workspace lends the memory of a rule's last amounts to its next ones:
    kept amounts are let go of as soon as the rule changes, before its evaluation.
    A reader of one run (``monte_carlo``'s) keeps nothing."""
    from bankkpi._whatif import _Reader  # noqa: PLC0415
    from bankkpi.vector import Workspace  # noqa: PLC0415

    monkeypatch.setattr("bankkpi.vector.PLAN_ROWS", 64)  # amounts from the workspace
    new = []
    empty = Workspace.empty

    def noting(self, length, dtype):
        held = len(self._arrays)
        array = empty(self, length, dtype)
        if len(self._arrays) > held and length == N and array.dtype == np.int64:
            new.append(length)  # not the array: it would stay in use
        return array

    monkeypatch.setattr(Workspace, "empty", noting)
    read = _Reader(COLUMNS, ATTRIBUTES)
    fresh = []
    for rate in range(100, 180, 10):
        scenario = {"rules[A.P3].**.rate": rate}
        read(override(SCHEME_A, scenario), scenario)
        fresh.append(len(new))
    assert fresh[0] >= len(SCHEME_A.rules)  # the first scenario's amounts
    assert fresh[1:] == [fresh[1]] * (len(fresh) - 1)  # none new after the second
    assert len(read.known.rules) == len(SCHEME_A.rules)
    assert sorted(read.known.kinds) == ["penalty", "reward"]
    once = _Reader(COLUMNS, ATTRIBUTES, keep=False)
    once(SCHEME_A, {})
    assert once.known is None


class TestReadingOptions:
    """what_if, monte_carlo and seek_parameter read columns as evaluate_arrays does."""

    SCENARIOS = grid({"rules[A.P3].**.rate": [150, 200]})

    def test_a_float_column_is_read_with_floats_repr_and_refused_without(self):
        floats = {**COLUMNS, "score": COLUMNS["score"] / 100}  # as pandas reads a CSV
        texts = {**COLUMNS, "score": [f"{v / 100:.2f}" for v in COLUMNS["score"]]}
        expected = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, self.SCENARIOS).records()
        assert what_if(SCHEME_A, texts, ATTRIBUTES, self.SCENARIOS).records() == expected
        read = what_if(SCHEME_A, floats, ATTRIBUTES, self.SCENARIOS, floats="repr")
        assert read.records() == expected
        with pytest.raises(ValidationErrorGroup) as info:
            what_if(SCHEME_A, floats, ATTRIBUTES, self.SCENARIOS)
        refused = [e for e in info.value.exceptions if isinstance(e, FloatMoneyError)]
        assert refused
        assert "floats='repr'" in str(refused[0])

    def test_places_count_an_input_without_an_indicator(self):
        quarters = {**COLUMNS, "quarters_early": K % 3}
        tenths = {**COLUMNS, "quarters_early": (K % 3) * 10}  # 0.0, 1.0, 2.0 at one place
        expected = what_if(SCHEME_A, quarters, ATTRIBUTES, self.SCENARIOS).records()
        table = what_if(SCHEME_A, tenths, ATTRIBUTES, self.SCENARIOS, places={"quarters_early": 1})
        assert table.records() == expected
        assert what_if(SCHEME_A, tenths, ATTRIBUTES, self.SCENARIOS).records() != expected

    def test_subjects_break_ordinal_ties_and_name_bad_rows(self):
        ordinal = override(
            SCHEME_A, {"rankings[*].ties": "ordinal", "rankings[*].tie_break": "subject_asc"}
        )
        ids = np.array([f"o{i:03d}" for i in range(N)])
        with pytest.raises(ValidationErrorGroup, match="input arrays refused"):
            what_if(ordinal, COLUMNS, ATTRIBUTES, self.SCENARIOS)
        table = what_if(ordinal, COLUMNS, ATTRIBUTES, self.SCENARIOS, subjects=ids)
        for scenario, result in zip(self.SCENARIOS, table.results, strict=True):
            alone = evaluate_arrays(override(ordinal, scenario), COLUMNS, ATTRIBUTES, subjects=ids)
            assert result.penalty_fen == alone.total("penalty")
        bad = {**COLUMNS, "score": np.where(K == 7, 10_001, COLUMNS["score"])}
        with pytest.raises(ValidationErrorGroup) as info:
            what_if(SCHEME_A, bad, ATTRIBUTES, self.SCENARIOS, subjects=ids)
        assert "o007" in str(info.value.exceptions[0])

    @pytest.mark.parametrize(
        ("option", "bad"), [("workers", 0), ("workers", True), ("floats", "bogus")]
    )
    def test_workers_and_floats_are_checked_before_any_scenario_or_draw(self, option, bad):
        drawn = []

        def draw(_rng, _base):
            drawn.append(1)
            return {}

        for call in (
            lambda: what_if(SCHEME_A, COLUMNS, ATTRIBUTES, [], **{option: bad}),
            lambda: monte_carlo(
                SCHEME_A, COLUMNS, ATTRIBUTES, draw=draw, runs=1, seed=1, **{option: bad}
            ),
            lambda: seek_parameter(
                SCHEME_A,
                COLUMNS,
                ATTRIBUTES,
                path="rules[A.P3].**.rate",
                low=100,
                high=100,
                step=10,
                kind="penalty",
                budget=1,
                **{option: bad},
            ),
        ):
            with pytest.raises(InvalidValueError, match=option):
                call()
        assert not drawn

    def test_workers_give_the_same_table(self):
        one = what_if(SCHEME_A, COLUMNS, ATTRIBUTES, self.SCENARIOS, workers=1)
        assert one.records() == what_if(SCHEME_A, COLUMNS, ATTRIBUTES, self.SCENARIOS).records()

    def test_the_type_hints_resolve(self):
        """Tools that read the signatures (autodoc, runtime type checkers) can."""
        for function in (what_if, monte_carlo, seek_parameter, evaluate_arrays):
            hints = typing.get_type_hints(function)
            assert hints["floats"] == vector_module.FloatPolicy

    def test_monte_carlo_and_seek_parameter_take_floats_too(self):
        def jitter(rng, base):  # draws scores as floats, on the 0.01 grid
            scores = base["score"] / 100 + rng.integers(-1, 2, N) / 10
            return {"score": np.clip(np.round(scores, 2), 0, 100)}

        table = monte_carlo(
            SCHEME_A, COLUMNS, ATTRIBUTES, draw=jitter, runs=2, seed=3, floats="repr"
        )
        counts = monte_carlo(
            SCHEME_A,
            COLUMNS,
            ATTRIBUTES,
            draw=lambda rng, base: {
                "score": np.round(jitter(rng, base)["score"] * 100).astype(np.int64)
            },
            runs=2,
            seed=3,
        )
        assert table.records() == counts.records()
        floats = {**COLUMNS, "score": COLUMNS["score"] / 100}
        seek = {"path": "rules[A.P3].**.rate", "low": 100, "high": 400, "step": 10}
        seek |= {"kind": "penalty", "budget": 800_000}
        found = seek_parameter(SCHEME_A, floats, ATTRIBUTES, **seek, floats="repr")
        assert found is not None
        assert found == seek_parameter(SCHEME_A, COLUMNS, ATTRIBUTES, **seek)
