"""``--base-dir``: built-in sources and sinks confined to one directory."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_runtime.cli import cli
from swarm_runtime.cli._exit import ExitCode

SALES = Path(__file__).resolve().parents[2] / "examples" / "data" / "sales.csv"


def _pipeline(path: Path, source: str, sink: str) -> Path:
    path.write_text(
        textwrap.dedent(
            f"""
            name: confined
            queue: memory://
            agents:
              - {{name: extract, uses: builtin.csv_source}}
              - {{name: save, uses: builtin.json_sink}}
            tasks:
              - {{name: load, agent: extract, params: {{path: "{source}"}}}}
              - {{name: out, agent: save, depends_on: [load], params: {{path: "{sink}"}}}}
            """
        )
    )
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    root = tmp_path / "base"
    (root / "in").mkdir(parents=True)
    shutil.copy(SALES, root / "in" / "sales.csv")
    return root


def test_paths_inside_the_base_dir_are_taken_from_it(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths are read and written under the base directory, not the working one."""
    monkeypatch.chdir(tmp_path)
    pipeline = _pipeline(tmp_path / "p.yaml", "in/sales.csv", "out/result.json")
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--base-dir", str(base)])
    assert result.exit_code == 0, result.output
    written = json.loads((base / "out" / "result.json").read_text())
    assert written["rows"]  # the loaded table, written
    assert "units" in written["columns"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("source", "sink", "field"),
    [
        ("../secret.csv", "out.json", "tasks[0].params.path"),
        ("in/sales.csv", "/tmp/elsewhere.json", "tasks[1].params.path"),
        ("in/sales.csv", "in/../../escape.json", "tasks[1].params.path"),
    ],
)
def test_paths_outside_the_base_dir_are_config_errors(
    base: Path, tmp_path: Path, source: str, sink: str, field: str
) -> None:
    """validate and run refuse a path that leaves the base directory, naming the field."""
    pipeline = _pipeline(tmp_path / "p.yaml", source, sink)
    for command in ("validate", "run"):
        result = CliRunner().invoke(cli, [command, str(pipeline), "--base-dir", str(base)])
        assert result.exit_code == ExitCode.USAGE, result.output
        assert field in result.output
        assert "outside the base directory" in result.output
    assert not Path("/tmp/elsewhere.json").exists()


def test_a_symlink_out_of_the_base_dir_is_refused(base: Path, tmp_path: Path) -> None:
    """Symlinks are followed: a link inside the base pointing outside does not escape it."""
    (tmp_path / "outside").mkdir()
    (base / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    pipeline = _pipeline(tmp_path / "p.yaml", "in/sales.csv", "link/stolen.json")
    result = CliRunner().invoke(cli, ["validate", str(pipeline), "--base-dir", str(base)])
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "outside the base directory" in result.output


def test_the_base_dir_comes_from_the_environment_too(base: Path, tmp_path: Path) -> None:
    """SWARM_RUNTIME_BASE_DIR works like --base-dir (for wrappers and services)."""
    pipeline = _pipeline(tmp_path / "p.yaml", "../secret.csv", "out.json")
    result = CliRunner().invoke(
        cli, ["validate", str(pipeline)], env={"SWARM_RUNTIME_BASE_DIR": str(base)}
    )
    assert result.exit_code == ExitCode.USAGE
    assert "outside the base directory" in result.output
    unconfined = CliRunner().invoke(
        cli, ["validate", str(_pipeline(pipeline, str(SALES), "o.json"))]
    )
    assert unconfined.exit_code == 0, unconfined.output
