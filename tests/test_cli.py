import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bankkpi.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples"
SCHEME_A = str(EXAMPLES / "scheme_a.toml")
DATA_A = str(EXAMPLES / "data" / "scheme_a_2024.csv")


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def scheme_a_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("a")
    code, out, err = run("evaluate", SCHEME_A, DATA_A, "-o", str(folder / "first"))
    again = run("evaluate", SCHEME_A, DATA_A, "-o", str(folder / "second"))
    return folder, (code, out, err), again


class TestEvaluate:
    def test_scheme_a_end_to_end(self, scheme_a_run):
        folder, (code, out, err), _ = scheme_a_run
        assert code == 0, err
        assert "1500 rows; subjects: 1500 computed, 0 failed" in out
        results = (folder / "first" / "results.csv").read_text(encoding="utf-8").splitlines()
        assert results[0] == (
            "subject,region,head,A.P3,A.region_lowest,A.early,A.region_top2,A.no_complaint,"
            "penalty,reward,net"
        )
        assert len(results) == 1501
        summary = json.loads((folder / "first" / "summary.json").read_text(encoding="utf-8"))
        assert summary["computed"] == 1500
        assert summary["scheme"]["hash"].startswith("sha256:")
        penalties = sum(int(line.split(",")[-3]) for line in results[1:])
        assert str(penalties) == summary["totals"]["penalty"]
        assert sum(int(v) for v in summary["rollups"]["penalty→head"].values()) == penalties

    def test_rerun_gives_identical_bytes(self, scheme_a_run):
        folder, _, again = scheme_a_run
        assert again[0] == 0
        for name in ("results.csv", "errors.csv", "traces.jsonl", "summary.json"):
            assert (folder / "first" / name).read_bytes() == (folder / "second" / name).read_bytes()

    def test_every_amount_has_its_trace(self, scheme_a_run):
        folder, _, _ = scheme_a_run
        lines = (folder / "first" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1500 * 5
        first = json.loads(lines[0])
        assert first["amount"] == first["trace"]["amount"]

    def test_bad_rows_exit_1_and_good_rows_still_written(self, tmp_path):
        data = tmp_path / "bad.csv"
        data.write_text(
            "subject,region,head,score,complaints,quarters_early,repeat\n"
            "X1,R1,H1,97.5,0,,\n"
            "X2,R1,H1,104,0,,\n"
            "X3,R1,H1,,1,,\n"
            "X1,R1,H1,90,0,,\n"
            "X4,R2,H2,abc,0,,\n"
            "X5,R2,H2,88,2,,\n",
            encoding="utf-8",
        )
        code, out, err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "out"))
        assert code == 1
        assert "6 rows; subjects: 1 computed, 4 failed" in out  # X1 appears twice: neither row used
        errors = (tmp_path / "out" / "errors.csv").read_text(encoding="utf-8").splitlines()
        assert len(errors) == 6
        assert any("line 3" in e and "104" in e for e in errors)
        assert any("line 6" in e and "abc" in e for e in errors)
        assert "error: line 5" in err
        results = (tmp_path / "out" / "results.csv").read_text(encoding="utf-8").splitlines()
        assert [r.split(",")[0] for r in results[1:]] == ["X5"]

    def test_rows_without_a_subject_id_are_counted_apart_from_subjects(self, tmp_path):
        data = tmp_path / "blank_ids.csv"
        data.write_text(
            "subject,region,head,score,complaints,quarters_early,repeat\n"
            "X1,R1,H1,97.5,0,,\n"
            ",R1,H1,97.5,0,,\n"
            ",R1,H1,abc,0,,\n"
            "  ,R2,H2,,0,,\n",
            encoding="utf-8",
        )
        code, out, _err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "out"))
        assert code == 1
        assert "4 rows; subjects: 1 computed, 0 failed, 3 failed rows without a subject id" in out
        summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
        assert (summary["failed_subjects"], summary["failed_rows_without_subject"]) == (0, 3)
        assert summary["errors"] == 3

    def test_jsonl_input(self, tmp_path):
        data = tmp_path / "rows.jsonl"
        data.write_text(
            '{"subject": "J1", "region": "R1", "head": "H", "score": 96.5, "complaints": 0,'
            ' "quarters_early": null, "repeat": null}\n'
            "[1, 2]\n",
            encoding="utf-8",
        )
        code, out, _err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "o"))
        assert code == 1
        assert "2 rows; subjects: 1 computed, 0 failed, 1 failed row without a subject id" in out

    def test_a_misspelt_column_is_refused_not_defaulted(self, tmp_path):
        data = tmp_path / "typo.csv"
        data.write_text(
            "subject,region,head,score,complaints,quarter_early,repeats\nX1,R1,H1,97,0,2,1\n",
            encoding="utf-8",
        )
        code, _out, err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "o"))
        assert code == 2
        assert "'quarters_early' (did you mean 'quarter_early'?)" in err
        assert "'repeat' (did you mean 'repeats'?)" in err

    def test_rows_with_too_few_or_too_many_cells_are_reported(self, tmp_path):
        data = tmp_path / "short.csv"
        data.write_text(
            "subject,region,head,score,complaints,quarters_early,repeat\n"
            "X1,R1,H1,97,0\n"
            "X2,R1,H1,96,0,,,extra\n"
            "X3,R1,H1,95,0,,\n",
            encoding="utf-8",
        )
        code, out, err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "o"))
        assert code == 1
        assert "3 rows; subjects: 1 computed, 2 failed" in out
        assert "line 2 has 5 cells, the header has 7" in err
        assert "line 3 has 8 cells, the header has 7" in err

    def test_gbk_export_needs_its_encoding(self, tmp_path):
        data = tmp_path / "gbk.csv"
        data.write_bytes(
            "subject,region,head,score,complaints,quarters_early,repeat\n"
            "城东,R1,张行长,97,0,,\n".encode("gbk")
        )
        code, _out, err = run("evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "o"))
        assert code == 2
        assert "not utf-8 text" in err
        assert "--encoding gbk" in err
        code, out, _err = run(
            "evaluate", SCHEME_A, str(data), "-o", str(tmp_path / "o"), "--encoding", "gbk"
        )
        assert code == 0
        assert "1 computed" in out


class TestOtherCommands:
    def test_explain_in_both_languages(self):
        code, out, _ = run("explain", SCHEME_A, DATA_A, "R001-01", "--lang", "en")
        assert code == 0
        assert out.startswith("penalty = (98 − 97.30) × 200 = 140 yuan")
        code, out, _ = run("explain", SCHEME_A, DATA_A, "R001-01")
        assert out.startswith("考核 = (98 − 97.30) × 200 = 140 元")

    def test_explain_unknown_subject_is_a_usage_error(self):
        code, _out, err = run("explain", SCHEME_A, DATA_A, "nobody")
        assert code == 2
        assert "nobody" in err

    def test_validate_and_schema(self):
        code, out, _ = run("validate", SCHEME_A)
        assert code == 0
        assert "A-phase3 2024.1: valid, 5 rules, sha256:" in out
        code, out, _ = run("schema")
        assert code == 0
        assert json.loads(out)["title"].startswith("bankkpi scheme file")

    def test_python_dash_m_runs_the_command(self):
        done = subprocess.run(  # noqa: S603 - this interpreter, the library's own module
            [sys.executable, "-m", "bankkpi", "validate", SCHEME_A],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "A-phase3 2024.1: valid, 5 rules" in done.stdout

    def test_the_scheme_file_shown_in_the_docs_is_valid(self, tmp_path):
        """docs/scheme-files.md's "The shape": a whole file, one rule (singular)."""
        doc = (Path(SCHEME_A).parent.parent / "docs" / "scheme-files.md").read_text(
            encoding="utf-8"
        )
        shape = doc.split("## The shape", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
        path = tmp_path / "shape.toml"
        path.write_text(shape, encoding="utf-8")
        code, out, err = run("validate", str(path))
        assert (code, err) == (0, "")
        assert "A-phase3 2024.1: valid, 1 rule, sha256:" in out

    def test_bad_scheme_lists_every_problem_and_exits_2(self, tmp_path):
        text = Path(SCHEME_A).read_text(encoding="utf-8")
        broken = text.replace('ties = "competition"', 'ties = "fair"').replace(
            "rate = 200, base = 2000", "rate = -200, base = 2000"
        )
        path = tmp_path / "broken.toml"
        path.write_text(broken, encoding="utf-8")
        code, _out, err = run("validate", str(path))
        assert code == 2
        assert err.count("must be one of 'competition'") == 2
        assert "'rate' must be >= 0" in err

    def test_usage_errors(self, tmp_path):
        assert run("frobnicate")[0] == 2
        assert run("validate", str(tmp_path / "missing.toml"))[0] == 2
        assert run("validate", str(tmp_path / "scheme.yaml"))[0] == 2


class TestSla:
    CONFIG = str(EXAMPLES / "sla_complaints.toml")
    CASES = str(EXAMPLES / "data" / "complaints_2024q1.csv")

    def test_case_file_to_compliance(self, tmp_path):
        code, _out, err = run("sla", self.CONFIG, self.CASES, "-o", str(tmp_path))
        assert code == 1  # one case has an impossible timestamp
        assert "C009" in err
        cases = (tmp_path / "cases.csv").read_text(encoding="utf-8").splitlines()
        # 47:59 meets 48 h; 48:01 does not (C001 / C002)
        assert "R001-01,C001,complaint_response,met,172740,0" in cases
        assert "R001-01,C002,complaint_response,breached,172860,60" in cases
        # an open case past its limit at as_of is breached; one within it is pending
        assert "R001-02,C005,complaint_response,breached,226799,53999" in cases
        assert "R001-02,C006,complaint_resolution,pending,214200,0" in cases
        compliance = (tmp_path / "compliance.csv").read_text(encoding="utf-8").splitlines()
        assert "R001-01,complaint_response,2024-01-01..2024-03-31,2,1,0,66.67,172740,172860" in (
            compliance
        )
        errors = (tmp_path / "errors.csv").read_text(encoding="utf-8").splitlines()
        assert len(errors) == 3  # header + C009 under both limits, each named
        assert all("C009" in e for e in errors[1:])
        assert "(time limit complaint_response)" in errors[1]
        assert "(time limit complaint_resolution)" in errors[2]

    def test_bad_sla_file_lists_every_problem(self, tmp_path):
        path = tmp_path / "sla.toml"
        path.write_text(
            'year = 2024\nperiods = "weeks"\nas_of = "2024-03-31T00:00+08:00"\ncolour = 1\n'
            '[[limits]]\ncode = "r"\nstart = "a"\nend = "b"\nhours = 48\n',
            encoding="utf-8",
        )
        code, _out, err = run("sla", str(path), self.CASES, "-o", str(tmp_path / "o"))
        assert code == 2
        assert "colour: unknown key" in err
        assert "zone: is required" in err
        assert "periods: must be one of" in err
        assert "limits[0].inclusive: must be stated" in err

    def test_two_limits_with_one_code_are_refused(self, tmp_path):
        """Their verdicts and compliance lines would merge under the one code."""
        text = Path(self.CONFIG).read_text(encoding="utf-8")
        assert text.count('code = "complaint_resolution"') == 1
        path = tmp_path / "sla.toml"
        path.write_text(
            text.replace('code = "complaint_resolution"', 'code = "complaint_response"'),
            encoding="utf-8",
        )
        code, _out, err = run("sla", str(path), self.CASES, "-o", str(tmp_path / "o"))
        assert code == 2
        assert "limits[1].code: 'complaint_response' is also limits[0]'s" in err
        # beside the first one's own problems; blanks at the ends refused, and a repeat
        first_bad = text.replace("hours = 48", "hours = -1", 1)
        assert first_bad != text
        for changed, expected in (
            (
                first_bad.replace('code = "complaint_resolution"', 'code = "complaint_response"'),
                ("limits[0]", "limits[1].code: 'complaint_response' is also limits[0]'s"),
            ),
            (
                text.replace('code = "complaint_resolution"', 'code = "complaint_response "'),
                (
                    "limits[1].code: must not begin or end with blanks: 'complaint_response '",
                    "limits[1].code: 'complaint_response ' is also limits[0]'s",
                ),
            ),
        ):
            path.write_text(changed, encoding="utf-8")
            code, _out, err = run("sla", str(path), self.CASES, "-o", str(tmp_path / "o"))
            assert code == 2
            for line in expected:
                assert line in err


def test_splits_are_written_with_the_results(tmp_path):
    text = Path(SCHEME_A).read_text(encoding="utf-8")
    text = text.replace(
        'attributes = ["region", "head"]', 'attributes = ["region", "head", "team"]'
    )
    text += '\n[[splits]]\nmembers = "team"\nkind = "reward"\n'
    scheme = tmp_path / "split.toml"
    scheme.write_text(text, encoding="utf-8")
    data = tmp_path / "rows.csv"
    data.write_text(
        "subject,region,head,team,score,complaints,quarters_early,repeat\n"
        "X1,R1,H1,张三*2;李四,99,0,,\n",
        encoding="utf-8",
    )
    code, _out, err = run("evaluate", str(scheme), str(data), "-o", str(tmp_path / "o"))
    assert code == 0, err
    lines = (tmp_path / "o" / "splits.csv").read_text(encoding="utf-8").splitlines()
    assert lines == [
        "split,subject,member,amount",
        "reward÷team,X1,张三,666.67",
        "reward÷team,X1,李四,333.33",
    ]


def test_progress_is_reported_to_a_terminal_only():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = Terminal()
    code = main(["explain", SCHEME_A, DATA_A, "R001-01"], out=io.StringIO(), err=err)
    assert code == 0
    assert "100% 1500/1500" in err.getvalue()
    quiet = io.StringIO()
    main(["explain", SCHEME_A, DATA_A, "R001-01"], out=io.StringIO(), err=quiet)
    assert quiet.getvalue() == ""
