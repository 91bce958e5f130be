"""Artifact stores: tables written once, checksummed, verified on read."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from swarm_runtime.artifacts import (
    ArtifactLocation,
    ArtifactRef,
    DirectoryArtifactStore,
    MemoryArtifactStore,
    TableInput,
    is_artifact_ref,
    open_table,
    preview_table,
    verify_artifact,
)
from swarm_runtime.backends import Backend
from swarm_runtime.errors import ArtifactError, ConfigError

FRAME = pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "ü"], "x": [0.5, None, 2.0]})


@pytest.fixture(params=["directory", "memory"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> DirectoryArtifactStore | MemoryArtifactStore:
    """Each kind of store."""
    if request.param == "directory":
        return DirectoryArtifactStore(tmp_path / "artifacts")
    return MemoryArtifactStore()


def test_round_trip_with_reference(store: DirectoryArtifactStore | MemoryArtifactStore) -> None:
    """A written table reads back equal; its reference carries rows, schema and checksum."""
    ref = store.write_table(FRAME.lazy(), run="r1", name="clean")
    assert (ref.rows, ref.columns) == (3, ["id", "name", "x"])
    assert ref.schema == (("id", "Int64"), ("name", "String"), ("x", "Float64"))
    assert ref.checksum.startswith("sha256:")
    assert ref.size > 0
    data = ref.to_json()
    assert is_artifact_ref(data)
    assert len(str(data)) < 500
    assert ArtifactRef.from_json(data) == ref
    assert_frame_equal(open_table(ref).collect(), FRAME)
    assert_frame_equal(preview_table(ref, 2), FRAME.head(2))
    assert store.runs() == ["r1"]
    assert store.run_size("r1") == ref.size


def test_each_write_gets_its_own_artifact(
    store: DirectoryArtifactStore | MemoryArtifactStore,
) -> None:
    """Writing the same task twice (a retry) never replaces the first artifact."""
    first = store.write_table(FRAME, run="r1", name="t")
    second = store.write_table(FRAME.head(1), run="r1", name="t")
    assert first.uri != second.uri
    assert open_table(first).collect().height == 3


def test_delete_run_frees_its_artifacts(
    store: DirectoryArtifactStore | MemoryArtifactStore,
) -> None:
    """delete_run removes a run's artifacts (and only those); reading one then fails clearly."""
    gone = store.write_table(FRAME, run="old", name="t")
    kept = store.write_table(FRAME, run="new", name="t")
    assert store.delete_run("old") == gone.size
    assert store.runs() == ["new"]
    with pytest.raises(ArtifactError, match="removed|gone"):
        open_table(gone)
    assert open_table(kept).collect().height == 3


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    """A flipped byte or a truncated file fails verification, naming the artifact."""
    store = DirectoryArtifactStore(tmp_path)
    ref = store.write_table(FRAME, run="r", name="t")
    path = Path(ref.uri.removeprefix("file://"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"is corrupt: expected .* with sha256:"):
        verify_artifact(ref)
    path.write_bytes(bytes(data[:10]))
    with pytest.raises(ArtifactError, match=r"expected \d+ bytes .* found 10 bytes"):
        open_table(ref)


def test_no_temp_files_left_after_a_failed_write(tmp_path: Path) -> None:
    """A table that cannot be written leaves nothing behind and raises ArtifactError."""
    store = DirectoryArtifactStore(tmp_path)
    bad = pl.LazyFrame({"a": [1, 0]}).select(pl.col("a").map_batches(_boom, return_dtype=pl.Int64))
    with pytest.raises(Exception, match="boom"):
        store.write_table(bad, run="r", name="t")
    assert [p for p in (tmp_path / "r").iterdir()] == []


def _boom(series: pl.Series) -> pl.Series:
    raise RuntimeError("boom")


def test_table_input_forms() -> None:
    """A TableInput gives Polars, Arrow, pandas, rows, and reads like the old JSON table."""
    store = MemoryArtifactStore()
    table = TableInput(store.write_table(FRAME, run="r", name="t"))
    assert table.num_rows == 3
    assert table.columns == ["id", "name", "x"]
    assert_frame_equal(table.to_polars(), FRAME)
    assert table.to_arrow().num_rows == 3
    assert table.to_pandas()["id"].tolist() == [1, 2, 3]
    assert table["rows"] == [[1, "a", 0.5], [2, None, None], [3, "ü", 2.0]]
    assert dict(table) == {"columns": ["id", "name", "x"], "rows": table.rows}
    legacy = TableInput(json={"columns": ["a"], "rows": [[1], [2]]})
    assert legacy.to_polars()["a"].to_list() == [1, 2]


def test_store_comes_from_the_backend(tmp_path: Path) -> None:
    """memory:// keeps tables in memory, file:// under the queue directory, a configured
    directory wins, and redis:// without one is a ConfigError (never a copy into Redis)."""
    memory = Backend.open("memory://")
    assert isinstance(ArtifactLocation().store_for(memory), MemoryArtifactStore)
    assert memory.artifact_store() is memory.artifact_store()
    file_store = Backend.open(f"file://{tmp_path / 'q'}").artifact_store()
    assert isinstance(file_store, DirectoryArtifactStore)
    assert file_store.root == tmp_path / "q" / "artifacts"
    configured = ArtifactLocation(str(tmp_path / "shared")).store_for(memory)
    assert isinstance(configured, DirectoryArtifactStore)
    assert configured.root == tmp_path / "shared"
    assert ArtifactLocation(f"file://{tmp_path}").store_for(memory).location == str(tmp_path)
    with pytest.raises(ConfigError, match="only a directory"):
        ArtifactLocation("s3://bucket/x")
    redis = Backend.open("redis://127.0.0.1:6379/0")
    with pytest.raises(
        ConfigError,
        match="artifact store on the redis:// backend needs a location that every worker",
    ):
        ArtifactLocation().store_for(redis)
    assert ArtifactLocation(str(tmp_path)).store_for(redis).location == str(tmp_path)
