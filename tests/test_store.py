import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import activesci
from activesci.errors import StoreError, ValidationError
from activesci.store import DB_NAME, FORMAT_VERSION, MemoryRunStore, SQLiteRunStore
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


def _env():
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def test_crash_safety(tmp_path):
    run = tmp_path / "run"
    with SQLiteRunStore(run) as store:
        store.write_metadata({"task": "crash"})
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(run)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with SQLiteRunStore.open(run, readonly=True) as reader:  # a fresh reader each time
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


HOLDER = textwrap.dedent(
    """
    import sys, time
    from activesci.store import SQLiteRunStore

    store = SQLiteRunStore.open(sys.argv[1])
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_a_second_writer_of_a_run_is_refused(tmp_path):
    run = tmp_path / "run"
    SQLiteRunStore(run).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], env=_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "holding\n"
        with pytest.raises(StoreError, match=rf"written by another process \(pid {proc.pid}\)"):
            SQLiteRunStore.open(run)
        with pytest.raises(StoreError, match="read it with readonly=True"):
            SQLiteRunStore(run)
        with SQLiteRunStore.open(run, readonly=True) as reader:  # readers take no lock
            assert reader.observations() == []
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    with SQLiteRunStore.open(run) as store:  # the lock died with its process
        store.write_metadata({"task": "gaussian"})


def _unprivileged(read, *args):
    """``read(*args)`` in a forked child that cannot write the files of this test's user."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if os.geteuid() == 0:  # root could write anyway: become nobody
                os.setgid(65534)
                os.setuid(65534)
            os.write(w, repr(read(*args)).encode())
        except BaseException as exc:
            os.write(w, f"{type(exc).__name__}: {exc}".encode())
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r) as fh:
        return fh.read()


def _counts(path):
    with SQLiteRunStore.open(path, readonly=True) as store:
        return store.metadata()["task"], len(store.observations()), len(store.rounds())


def _write_checkpoint(path):
    with SQLiteRunStore.open(path, readonly=True) as store:
        store.save_checkpoint("c", b"")


def test_read_only_runs_can_be_read(tmp_path):
    with pytest.raises(StoreError, match="no activesci run store here"):
        SQLiteRunStore(tmp_path / "missing", readonly=True)
    assert not (tmp_path / "missing").exists()
    folder = Path(tempfile.mkdtemp())  # readable by the unprivileged user below
    clean, crashed = folder / "clean", folder / "crashed"
    for run in (clean, crashed):
        with SQLiteRunStore(run) as store:
            store.write_metadata({"task": run.name})
            store.append_observation(0, Observation(design=[1.0], x=np.zeros((2, 1))))
    pid = os.fork()  # leave a write-ahead log behind, as a killed run does
    if pid == 0:
        db = sqlite3.connect(crashed / DB_NAME, isolation_level=None)
        db.execute("INSERT INTO rounds (round, summary) VALUES (0, '{}')")
        os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(pid, 0)
    assert (crashed / f"{DB_NAME}-wal").exists()
    with SQLiteRunStore.open(clean, readonly=True) as store:
        assert repr(store).endswith("(read-only)") and store.readonly
        with pytest.raises(StoreError, match="opened with readonly=True"):
            store.append_round(0, {})
    for path in sorted(folder.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    folder.chmod(0o755)
    try:
        assert _unprivileged(_counts, clean) == "('clean', 1, 0)"
        assert _unprivileged(_counts, crashed) == "('crashed', 1, 1)"
        assert "opened with readonly=True" in _unprivileged(_write_checkpoint, clean)
        assert "cannot open the write lock run.lock" in _unprivileged(SQLiteRunStore.open, clean)
    finally:
        for path in folder.rglob("*"):
            path.chmod(0o755)
        shutil.rmtree(folder)


def _store_with_rounds(run: Path, rounds: int = 3) -> None:
    with SQLiteRunStore(run) as store:
        store.write_metadata({"task": "gaussian"})
        for k in range(rounds):
            x = np.full((k + 1, 2), float(k))
            store.append_observation(k, Observation(design=[float(k)], x=x, meta={"k": k}))
            store.append_round(k, {"mean": [0.1 * k]})


def _read_all(run: Path) -> None:
    with SQLiteRunStore.open(run, readonly=True) as store:
        store.metadata(), store.observations(), store.rounds(), store.load_checkpoint("c")


def test_crafted_store_contents_are_store_errors(tmp_path):
    crafted = (
        ("UPDATE metadata SET document = '{\"task\": '", r"the metadata is not valid JSON"),
        ("UPDATE metadata SET document = '[1, 2]'", r"the metadata is a JSON list, expected"),
        ("UPDATE observations SET design = 'x' WHERE round = 1", r"round 1: the design is not"),
        ("UPDATE observations SET design = '[\"a\"]'", r"the design \['a'\] is not a list of"),
        ("UPDATE observations SET meta = 'nul' WHERE round = 2", r"round 2: the meta is not valid"),
        ("UPDATE observations SET luminosity = -1", r"the luminosity -1.0 is not a positive"),
        ("UPDATE observations SET luminosity = 'lots'", r"the luminosity 'lots' is not"),
        ("UPDATE rounds SET summary = '{' WHERE round = 0", r"the summary of round 0 is not valid"),
        ("DELETE FROM observations WHERE round = 1", r"the observation of round 1 is missing"),
        ("DELETE FROM rounds WHERE round = 0", r"the summary of round 0 is missing"),
        ("DELETE FROM observations WHERE round = 2", r"round 2 has a summary but no observation"),
        ("UPDATE observations SET x = 'text'", r"round 0: the x is unreadable"),
        ("UPDATE observations SET n = 7 WHERE round = 0", r"shape \(1, 2\), expected float64 \(7"),
    )
    for k, (sql, message) in enumerate(crafted):
        run = tmp_path / f"run{k}"
        _store_with_rounds(run)
        with sqlite3.connect(run / DB_NAME) as raw:
            raw.execute(sql)
        raw.close()
        with pytest.raises(StoreError, match=message):
            _read_all(run)


def test_an_array_header_that_declares_huge_data_is_refused_before_allocating(tmp_path):
    run = tmp_path / "run"
    _store_with_rounds(run, rounds=1)
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000000, 2), }"
    blob = b"\x93NUMPY\x01\x00" + len(header.ljust(118) + "\n").to_bytes(2, "little")
    blob += (header.ljust(118) + "\n").encode() + bytes(16)
    with sqlite3.connect(run / DB_NAME) as raw:
        raw.execute("UPDATE observations SET x = ?, n = 10000000000000", (blob,))
    raw.close()
    with pytest.raises(StoreError, match=r"round 0: the x is unreadable \(16 bytes of data"):
        _read_all(run)


def test_summaries_need_their_observation_and_come_in_order(tmp_path):
    for store in (SQLiteRunStore(tmp_path), MemoryRunStore()):
        with pytest.raises(StoreError, match="summary of round 0: it has no observation"):
            store.append_round(0, {"mean": 1.0})
        for k in range(3):
            store.append_observation(k, Observation(design=[0.0], x=np.zeros((1, 1))))
        with pytest.raises(StoreError, match="the next summary is round 0"):
            store.append_round(2, {"mean": 1.0})
        store.append_round(0, {"mean": 1.0})
        store.append_round(0, {"mean": 2.0})  # a resumed run redoes a summary
        assert store.rounds() == [{"round": 0, "mean": 2.0}]


# -- property tests: what goes in comes out; whatever a file holds, a StoreError or data ---------

_FLOAT = st.floats(allow_nan=False, allow_infinity=False)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _FLOAT | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_OBSERVATION = st.builds(
    Observation,
    design=st.lists(_FLOAT, min_size=1, max_size=3),
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, min_side=0), elements=_FLOAT),
    luminosity=st.none() | st.floats(min_value=1e-300, max_value=1e300),
    meta=st.dictionaries(st.text(max_size=8), _JSON, max_size=3),
)


@settings(max_examples=max(settings.default.max_examples // 4, 10))
@given(
    observations=st.lists(_OBSERVATION, max_size=3),
    metadata=st.dictionaries(st.text(max_size=8), _JSON, max_size=4),
    summary=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "round"), _JSON),
)
def test_store_contents_round_trip(tmp_path_factory, observations, metadata, summary):
    run = tmp_path_factory.mktemp("run")
    with SQLiteRunStore(run) as store:
        store.write_metadata(metadata)
        for k, obs in enumerate(observations):
            store.append_observation(k, obs)
            store.append_round(k, summary)
    with SQLiteRunStore.open(run, readonly=True) as store:
        assert store.metadata() == metadata
        stored = store.observations()
        assert [k for k, _ in stored] == list(range(len(observations)))
        for a, (_, b) in zip(observations, stored, strict=True):
            _same(a, b)
        assert store.rounds() == [{"round": k, **summary} for k in range(len(observations))]


_VALUES = (
    st.none()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=200)
    | st.builds(json.dumps, _JSON)
    | st.builds(lambda a: _array_blob(a), hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes()))
)
_COLUMNS = [
    ("metadata", "document"),
    ("observations", "round"),
    ("observations", "design"),
    ("observations", "x"),
    ("observations", "n"),
    ("observations", "luminosity"),
    ("observations", "meta"),
    ("rounds", "round"),
    ("rounds", "summary"),
    ("info", "value"),
]


def _array_blob(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    run = tmp_path_factory.mktemp("template")
    _store_with_rounds(run)
    return run / DB_NAME


@given(
    changes=st.lists(
        st.tuples(st.sampled_from(_COLUMNS), st.integers(0, 3), _VALUES), min_size=1, max_size=3
    ),
    delete=st.none() | st.sampled_from(["observations", "rounds", "metadata", "info"]),
)
def test_any_store_contents_read_as_data_or_a_store_error(
    tmp_path_factory, template, changes, delete
):
    run = tmp_path_factory.mktemp("crafted")
    shutil.copy(template, run / DB_NAME)
    with sqlite3.connect(run / DB_NAME) as raw:
        for (table, column), row, value in changes:
            key = "key" if table == "info" else "id" if table == "metadata" else "round"
            where = "format_version" if table == "info" else row
            try:
                raw.execute(f"UPDATE {table} SET {column} = ? WHERE {key} = ?", (value, where))
            except sqlite3.IntegrityError:  # the schema's own checks (NOT NULL, >= 0, unique)
                continue
        if delete:
            raw.execute(f"DELETE FROM {delete} WHERE rowid = (SELECT max(rowid) FROM {delete})")
    raw.close()
    try:
        _read_all(run)
    except StoreError:
        pass


def test_planted_store_files_are_store_errors_and_touch_nothing_outside(tmp_path):
    # a FIFO as run.sqlite hung SQLite's open (report); a FIFO as run.lock was a raw
    # "[Errno 22]"; a hard-linked run.lock had its target overwritten with the pid; a dangling
    # run.sqlite symlink had SQLite create the store outside the run folder
    victim = tmp_path / "victim"

    def store_with(name: str, plant) -> Path:
        run = tmp_path / name
        SQLiteRunStore(run).close()
        victim.write_text("keep me")
        plant(run)
        return run

    def fifo(path: Path) -> None:
        path.unlink(missing_ok=True)
        os.mkfifo(path)

    def hard_link(path: Path) -> None:
        path.unlink(missing_ok=True)
        os.link(victim, path)

    def dangling(path: Path) -> None:
        path.unlink()
        path.symlink_to(tmp_path / "elsewhere.sqlite")

    for readonly in (True, False):  # in a child: a regression blocks in SQLite's C code
        run = store_with(f"db-fifo-{readonly}", lambda r: fifo(r / DB_NAME))
        code = f"from activesci.store import SQLiteRunStore; SQLiteRunStore({str(run)!r}, "
        child = subprocess.run(
            [sys.executable, "-c", code + f"readonly={readonly})"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "StoreError" in child.stderr and "is a device, FIFO or socket" in child.stderr
    for name, plant, message in (
        ("lock-fifo", lambda r: fifo(r / "run.lock"), "not a plain lock file"),
        ("lock-link", lambda r: hard_link(r / "run.lock"), "not a plain lock file"),
        ("db-dangling", lambda r: dangling(r / DB_NAME), "no such run store"),
    ):
        run = store_with(name, plant)
        with pytest.raises(StoreError, match=message):
            SQLiteRunStore(run)
        assert victim.read_text() == "keep me"
        assert not (tmp_path / "elsewhere.sqlite").exists()
