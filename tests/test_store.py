import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import activesci
from activesci.errors import StoreError, ValidationError
from activesci.store import DB_NAME, FORMAT_VERSION, SQLiteRunStore
from activesci.typing import Observation, RunStore

REPO = Path(__file__).resolve().parents[1]


def _observations(rng: np.random.Generator) -> list[Observation]:
    x0 = rng.normal(size=(5, 2))
    x0[0, 0] = -0.0
    x0[1, 1] = np.nextafter(1.0, 2.0)
    return [
        Observation(design=[88.0, 1.5], x=x0, luminosity=1.0, meta={"seed": 3, "run": "a"}),
        Observation(design=[91.19, 0.1], x=np.empty((0, 2)), luminosity=None, meta={}),
        Observation(design=[94.0, 2.0], x=rng.normal(size=(1000, 2)), luminosity=0.5),
    ]


def _same(a: Observation, b: Observation) -> None:
    assert b.x.dtype == np.float64
    assert b.x.shape == a.x.shape
    assert b.x.tobytes() == a.x.tobytes()  # bit-identical, incl. -0.0
    assert b.design.tobytes() == a.design.tobytes()
    assert b.luminosity == a.luminosity
    assert b.meta == a.meta


def test_round_trip_and_reopen(tmp_path, rng):
    run = tmp_path / "run"
    obs = _observations(rng)
    meta = {"task": "weinberg", "seeds": [1, 2], "lr": np.float64(1e-3), "nested": {"k": 4}}
    with SQLiteRunStore(run) as store:
        assert isinstance(store, RunStore)
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store.path == run
        assert store.metadata() == {}
        assert store.observations() == [] and store.rounds() == []
        store.write_metadata(meta)
        store.write_metadata(dict(meta))  # identical rewrite is a no-op
        for k, o in enumerate(obs):
            store.append_observation(k, o)
        store.append_round(
            0,
            {
                "mean": np.float64(0.2315),
                "n": np.int64(5),
                "grid": np.linspace(0, 1, 3),
                "deep": [{"a": np.arange(2)}, np.bool_(True)],
            },
        )
        store.append_round(1, {"mean": 0.25, "round": 1})
        store.save_checkpoint("estimator", b"\x00\x01weights")
        store.save_checkpoint("estimator", bytearray(b"new"))  # replaces
        store.save_checkpoint("other", b"")
    assert store.closed
    with pytest.raises(StoreError, match="closed"):
        store.metadata()

    again = SQLiteRunStore.open(run)  # a new object sees everything
    try:
        assert again.metadata() == {
            "task": "weinberg",
            "seeds": [1, 2],
            "lr": 1e-3,
            "nested": {"k": 4},
        }
        stored = again.observations()
        assert [k for k, _ in stored] == [0, 1, 2]
        for a, (_, b) in zip(obs, stored, strict=True):
            _same(a, b)
        assert stored[1][1].x.shape == (0, 2) and stored[1][1].n == 0
        rounds = again.rounds()
        assert rounds == [
            {
                "round": 0,
                "mean": 0.2315,
                "n": 5,
                "grid": [0.0, 0.5, 1.0],
                "deep": [{"a": [0, 1]}, True],
            },
            {"round": 1, "mean": 0.25},
        ]
        assert type(rounds[0]["n"]) is int and type(rounds[0]["mean"]) is float
        assert again.load_checkpoint("estimator") == b"new"
        assert again.load_checkpoint("other") == b""
        assert again.load_checkpoint("missing") is None
        # a summary is replaced on a duplicate round (a resumed run redoes it)
        again.append_round(1, {"mean": 0.26})
        assert again.rounds()[1] == {"round": 1, "mean": 0.26}
    finally:
        again.close()

    with sqlite3.connect(run / DB_NAME) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        info = dict(raw.execute("SELECT key, value FROM info"))
    raw.close()
    assert info["format_version"] == str(FORMAT_VERSION)
    assert info["activesci_version"] == activesci.__version__
    assert info["created"]


def test_missing_store(tmp_path):
    with pytest.raises(StoreError, match="no activesci run store") as err:
        SQLiteRunStore(tmp_path / "nope", create=False)
    assert str(tmp_path / "nope") in str(err.value)
    with pytest.raises(StoreError, match="no activesci run store"):
        SQLiteRunStore.open(tmp_path)
    assert not (tmp_path / "nope").exists() and not (tmp_path / DB_NAME).exists()
    assert isinstance(err.value, ValidationError) and isinstance(err.value, ValueError)


def test_newer_format_version(tmp_path):
    SQLiteRunStore(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute("UPDATE info SET value = '2' WHERE key = 'format_version'")
    raw.close()
    with pytest.raises(StoreError, match=r"store format 2 is newer .* \(1\): upgrade activesci"):
        SQLiteRunStore.open(tmp_path)
    with pytest.raises(StoreError, match="newer"):
        SQLiteRunStore(tmp_path)


def test_not_a_database(tmp_path):
    garbage = b"this is not a database, just some text" * 100
    (tmp_path / DB_NAME).write_bytes(garbage)
    for create in (True, False):
        with pytest.raises(StoreError, match="not an activesci run store") as err:
            SQLiteRunStore(tmp_path, create=create)
        assert str(tmp_path / DB_NAME) in str(err.value)
    assert (tmp_path / DB_NAME).read_bytes() == garbage  # untouched


def test_database_without_the_tables(tmp_path):
    with sqlite3.connect(tmp_path / DB_NAME) as raw:
        raw.execute("CREATE TABLE something (a)")
    raw.close()
    with pytest.raises(StoreError, match="missing tables: info, metadata") as err:
        SQLiteRunStore(tmp_path)
    assert str(tmp_path / DB_NAME) in str(err.value)


def test_path_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="not a run directory"):
        SQLiteRunStore(tmp_path / "f")


def test_round_order(tmp_path):
    o = Observation(design=[90.0], x=np.ones((2, 1)))
    with SQLiteRunStore(tmp_path) as store:
        with pytest.raises(StoreError, match="cannot append round 1: the next round is 0"):
            store.append_observation(1, o)
        store.append_observation(0, o)
        store.append_observation(1, o)
        with pytest.raises(StoreError, match="round 1 already has an observation"):
            store.append_observation(1, o)
        with pytest.raises(StoreError, match="round 0 already has an observation"):
            store.append_observation(0, o)
        with pytest.raises(StoreError, match="cannot append round 3: the next round is 2"):
            store.append_observation(3, o)
        with pytest.raises(ValidationError, match="must be >= 0"):
            store.append_observation(-1, o)
        with pytest.raises(ValidationError, match="must be an integer"):
            store.append_observation(2.0, o)
        with pytest.raises(ValidationError, match="Observation"):
            store.append_observation(2, {"design": [1.0], "x": [[1.0]]})
        with pytest.raises(ValidationError, match=r"observation 2 meta\['when'\]"):
            store.append_observation(2, Observation([90.0], np.ones((1, 1)), meta={"when": {1}}))
        store.append_observation(np.int64(2), o)  # failed calls left nothing behind
        assert [k for k, _ in store.observations()] == [0, 1, 2]


def test_metadata_rules(tmp_path):
    with SQLiteRunStore(tmp_path) as store:
        with pytest.raises(ValidationError, match=r"metadata\['estimator'\]\['path'\]"):
            store.write_metadata({"task": "w", "estimator": {"path": Path("a.pt")}})
        with pytest.raises(ValidationError, match="key 3"):
            store.write_metadata({"task": "w", "by_int": {3: "x"}})
        assert store.metadata() == {}  # nothing written by the failures
        store.write_metadata({"task": "w", "seed": 1})
        store.write_metadata({"seed": np.int64(1), "task": "w"})  # same content
        with pytest.raises(StoreError, match="differs in 'seed'"):
            store.write_metadata({"task": "w", "seed": 2})
        with pytest.raises(StoreError, match="differs in 'extra'"):
            store.write_metadata({"task": "w", "seed": 1, "extra": True})
        assert store.metadata() == {"task": "w", "seed": 1}


def test_summary_and_checkpoint_validation(tmp_path):
    with SQLiteRunStore(tmp_path) as store:
        with pytest.raises(ValidationError, match=r"summary of round 0\['f'\]"):
            store.append_round(0, {"f": object()})
        with pytest.raises(ValidationError, match="differs"):
            store.append_round(0, {"round": 1})
        with pytest.raises(ValidationError, match="must be bytes"):
            store.save_checkpoint("c", "text")
        assert store.rounds() == [] and store.load_checkpoint("c") is None


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from activesci.store import SQLiteRunStore
    from activesci.typing import Observation

    store = SQLiteRunStore.open(sys.argv[1])
    k = 0
    while True:
        x = np.full((k + 1, 1), float(k))
        store.append_observation(k, Observation(design=[float(k)], x=x, meta={"k": k}))
        k += 1
    """
)


def test_crash_safety(tmp_path):
    run = tmp_path / "run"
    with SQLiteRunStore(run) as store:
        store.write_metadata({"task": "crash"})
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with SQLiteRunStore.open(run) as reader:  # a fresh reader each time
                n = len(reader.observations())
            if n >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"writer exited early: {proc.communicate()[1].decode()}")
            if time.monotonic() > deadline:
                pytest.fail("the writer did not append 3 rounds within 30 s")
            time.sleep(0.02)
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()[1].decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    with sqlite3.connect(run / DB_NAME) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    with SQLiteRunStore.open(run) as store:
        stored = store.observations()
        k = len(stored)
        assert k >= 3
        assert [r for r, _ in stored] == list(range(k))
        for r, obs in stored:
            assert obs.x.tobytes() == np.full((r + 1, 1), float(r)).tobytes()
            assert obs.design.tolist() == [float(r)] and obs.meta == {"k": r}
        assert store.metadata() == {"task": "crash"}
        store.append_observation(k, Observation(design=[0.0], x=np.zeros((1, 1))))
    with SQLiteRunStore.open(run) as store:
        assert [r for r, _ in store.observations()] == list(range(k + 1))
