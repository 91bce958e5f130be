"""``validate``, ``graph`` and ``run`` from the command line: output and exit codes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_runtime.cli import cli
from swarm_runtime.cli._exit import ExitCode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "pipeline.yaml"
SALES = ROOT / "examples" / "data" / "sales.csv"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def started_line(output: str) -> str:
    """The line ``run`` prints first: ``run <RUN_ID> of <pipeline> (...)``."""
    return next(line for line in output.splitlines() if line.startswith(("run ", "resuming ")))


def small_pipeline(tmp_path: Path, *, path: Path = SALES) -> Path:
    return write(
        tmp_path / "small.yaml",
        f"""
        name: small
        agents:
          - {{name: extract, uses: builtin.csv_source}}
          - {{name: analyze, uses: builtin.analyze}}
        tasks:
          - {{name: load, agent: extract, params: {{path: "{path}"}}}}
          - name: stats
            agent: analyze
            depends_on: [load]
            params: {{metrics: [{{metric: distribution, columns: [units]}}]}}
        retry: {{max_attempts: 2, base_delay: 0, max_delay: 0}}
        """,
    )


def test_validate_ok(runner: CliRunner) -> None:
    """A valid pipeline prints OK and a short summary, exit code 0."""
    result = runner.invoke(cli, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"OK: {EXAMPLE}")
    assert "pipeline 'sales-report': 8 tasks in" in result.output


def test_validate_reports_every_problem(runner: CliRunner, tmp_path: Path) -> None:
    """Each problem is one line with file, line, field path and what was expected; exit 2,
    no traceback."""
    bad = write(
        tmp_path / "bad.yaml",
        """
        name: bad
        agents:
          - {name: a, uses: builtin.transform}
        tasks:
          - {name: x, agent: a, depends_on: [y]}
          - {name: y, agent: a, depends_on: [x]}
          - {name: z, agent: nobody}
        """,
    )
    result = runner.invoke(cli, ["validate", str(bad)])
    assert result.exit_code == ExitCode.USAGE
    lines = result.output.strip().splitlines()
    assert any("tasks[2].agent: unknown agent 'nobody'" in line for line in lines)
    assert any("dependency cycle: x -> y -> x" in line for line in lines)
    assert all(line.startswith(str(bad)) for line in lines[:-1])
    assert lines[-1].endswith("problems found")
    assert "Traceback" not in result.output


def test_validate_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    """A missing file is a one-line error with exit code 2."""
    result = runner.invoke(cli, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == ExitCode.USAGE
    assert "file not found" in result.output


@pytest.mark.parametrize(("fmt", "start"), [("mermaid", "flowchart LR"), ("dot", "digraph")])
def test_graph_formats(runner: CliRunner, fmt: str, start: str) -> None:
    """``graph`` prints the DAG in the chosen format, edges included."""
    result = runner.invoke(cli, ["graph", str(EXAMPLE), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(start)
    assert ("t0 --> t1" if fmt == "mermaid" else '"load" -> "clean";') in result.output


def test_run_prints_run_id_and_summary(runner: CliRunner, tmp_path: Path) -> None:
    """A successful run prints its id first, then the summary table; exit code 0; the JSON
    report is written."""
    report = tmp_path / "out" / "report.json"
    result = runner.invoke(
        cli,
        [
            "run",
            str(small_pipeline(tmp_path)),
            "--queue",
            f"file://{tmp_path / 'q'}",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    first = started_line(result.output)
    assert "of small (2 tasks)" in first
    for column in ("task", "agent", "status", "attempts", "duration"):
        assert column in result.output
    assert "completed: 2/2 tasks completed" in result.output
    data = json.loads(report.read_text())
    assert data["status"] == "completed"
    assert data["run_id"] == first.split()[1]
    assert [(t["name"], t["status"], t["attempts"]) for t in data["tasks"]] == [
        ("load", "completed", 1),
        ("stats", "completed", 1),
    ]
    assert data["edges"] == [["load", "stats"]]
    assert data["results"]["stats"]["distribution"]["units"]["count"] > 0


def test_run_writes_html_report(runner: CliRunner, tmp_path: Path) -> None:
    """``--report x.html`` writes a self-contained page naming the run and its tasks."""
    report = tmp_path / "report.html"
    result = runner.invoke(
        cli, ["run", str(small_pipeline(tmp_path)), "--queue", "memory://", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    run_id = started_line(result.output).split()[1]
    page = report.read_text()
    assert page.lstrip().lower().startswith("<!doctype html")
    assert run_id in page
    assert "stats" in page
    assert f"report written to {report}" in result.output


def test_run_failure_exit_code_and_reason(runner: CliRunner, tmp_path: Path) -> None:
    """A failed run exits 1 with a one-line reason naming the task and the error."""
    pipeline = small_pipeline(tmp_path, path=tmp_path / "missing.csv")
    result = runner.invoke(cli, ["run", str(pipeline), "--queue", "memory://"])
    assert result.exit_code == ExitCode.FAILED
    reason = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(reason) == 1
    # a DataError (file not found) is permanent: dead-lettered without retries
    assert "task 'load' failed after 1 attempt(s): DataError" in reason[0]
    assert "cancelled" in result.output  # stats never ran


def test_run_invalid_pipeline(runner: CliRunner, tmp_path: Path) -> None:
    """``run`` on an invalid pipeline prints the problems and exits 2 without running."""
    bad = write(tmp_path / "bad.yaml", "name: bad\ntasks: []\n")
    result = runner.invoke(cli, ["run", str(bad), "--queue", "memory://"])
    assert result.exit_code == ExitCode.USAGE
    assert "problem" in result.output


def test_run_option_errors(runner: CliRunner, tmp_path: Path) -> None:
    """Bad option combinations, report names and unknown run ids are usage errors (2)."""
    pipeline = str(small_pipeline(tmp_path))
    queue = f"file://{tmp_path / 'q'}"
    both = runner.invoke(cli, ["run", pipeline, "--resume", "x", "--new"])
    assert both.exit_code == ExitCode.USAGE
    ext = runner.invoke(cli, ["run", pipeline, "--report", "r.txt"])
    assert ext.exit_code == ExitCode.USAGE
    assert ".html or .json" in ext.output
    unknown = runner.invoke(cli, ["run", pipeline, "--queue", queue, "--resume", "nope"])
    assert unknown.exit_code == ExitCode.USAGE
    assert "no run with id 'nope'" in unknown.output


def test_run_resume_completed_run_runs_nothing(runner: CliRunner, tmp_path: Path) -> None:
    """``--resume`` of a completed run reports it as resumed with every task from the
    earlier run; ``--new`` starts another run."""
    pipeline = str(small_pipeline(tmp_path))
    queue = f"file://{tmp_path / 'q'}"
    first = runner.invoke(cli, ["run", pipeline, "--queue", queue])
    assert first.exit_code == 0, first.output
    run_id = started_line(first.output).split()[1]
    again = runner.invoke(cli, ["run", pipeline, "--queue", queue, "--resume", run_id])
    assert again.exit_code == 0, again.output
    assert f"resuming run {run_id} of small: 2 of 2 tasks already completed" in again.output
    assert "(earlier run)" in again.output
    fresh = runner.invoke(cli, ["run", pipeline, "--queue", queue, "--new"])
    assert fresh.exit_code == 0
    assert run_id not in fresh.output


def test_help_everywhere(runner: CliRunner) -> None:
    """Every pipeline command has --help."""
    for command in ("run", "validate", "graph"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "PIPELINE.yaml" in result.output


def test_run_serves_metrics(runner: CliRunner, tmp_path: Path) -> None:
    """``--metrics-port`` starts the Prometheus endpoint and prints where it is."""
    result = runner.invoke(
        cli, ["run", str(small_pipeline(tmp_path)), "--queue", "memory://", "--metrics-port", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "Prometheus metrics at http://127.0.0.1:" in result.output
