"""The run store on disk: one SQLite file per run.

:class:`SQLiteRunStore` implements :class:`activesci.typing.RunStore` with one SQLite file,
``<run directory>/run.sqlite``, in WAL mode with ``synchronous=FULL``: every write is one
transaction that is on disk when the call returns, so a killed process loses at most the
round it was working on, never a stored observation, and never leaves a half-written row.

The tables of format ``1`` (:data:`FORMAT_VERSION`) are listed in :mod:`activesci.store`.

A store file is data, possibly crafted: everything read back is checked (JSON that parses to
the documented types, rounds numbered ``0, 1, 2, ...`` without gaps, arrays whose header
matches their row count and byte size), and anything else is a
:class:`~activesci.errors.StoreError`. One process at a time may write a run: a writable store
holds an exclusive lock on ``<run directory>/run.lock`` (:data:`LOCK_NAME`) until it is closed
or its process dies; a second process gets a :class:`~activesci.errors.StoreError`. Readers
open the store with ``readonly=True``: they take no lock and work on read-only files and
folders.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import StoreError, ValidationError
from activesci.io import check_input_file
from activesci.store.values import (
    _array,
    _array_bytes,
    _check_rounds,
    _check_summary_round,
    _dumps,
    _json_value,
    _jsonable,
    _now,
    _round_number,
)
from activesci.typing import Closing, Observation

__all__ = ["DB_NAME", "FORMAT_VERSION", "LOCK_NAME", "SQLiteRunStore"]

#: Version of the on-disk format this code writes; it reads this version and older ones.
FORMAT_VERSION = 1

#: Name of the database file inside a run directory.
DB_NAME = "run.sqlite"

#: Name of the lock file a writer holds inside a run directory.
LOCK_NAME = "run.lock"

_TABLES = ("info", "metadata", "observations", "rounds", "checkpoints")

_SCHEMA = (
    "CREATE TABLE info (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE metadata (id INTEGER PRIMARY KEY CHECK (id = 0), document TEXT NOT NULL)",
    "CREATE TABLE observations ("
    " round INTEGER PRIMARY KEY CHECK (round >= 0),"
    " design TEXT NOT NULL,"
    " x BLOB NOT NULL,"
    " n INTEGER NOT NULL CHECK (n >= 0),"
    " luminosity REAL,"
    " meta TEXT NOT NULL,"
    " created TEXT NOT NULL)",
    "CREATE TABLE rounds (round INTEGER PRIMARY KEY CHECK (round >= 0), summary TEXT NOT NULL)",
    "CREATE TABLE checkpoints (name TEXT PRIMARY KEY, data BLOB NOT NULL, created TEXT NOT NULL)",
)


class SQLiteRunStore(Closing):
    """A run directory holding one SQLite database, ``run.sqlite`` (see the module docstring).

    Implements :class:`activesci.typing.RunStore`. Every write is a single transaction that is
    durable (WAL, ``synchronous=FULL``) when the method returns.

    Parameters
    ----------
    path : str or os.PathLike
        The run directory; it and ``run.sqlite`` are created if missing and ``create`` is true.
    create : bool, default True
        If false, a missing store raises :class:`~activesci.errors.StoreError`.
    readonly : bool, default False
        Open an existing store for reading only: no lock is taken, nothing is created or
        written (writes raise :class:`~activesci.errors.StoreError`), and read-only files and
        folders work. Reports and dashboards of a run read this way, even while it runs.

    Raises
    ------
    StoreError
        The store is missing (``create=False`` or ``readonly=True``), the file is not an
        activesci run store, it was written by a newer format than :data:`FORMAT_VERSION`, or
        (unless ``readonly``) another process has it open for writing.

    Notes
    -----
    Rules: metadata is written once (rewriting identical content is a no-op, anything else is
    a :class:`~activesci.errors.StoreError`); observations are appended in round order 0, 1,
    2, ... and never replaced; a round summary *replaces* an earlier one for the same round,
    because a resumed run may redo the summary of the round it was in when it stopped;
    checkpoints replace one of the same name; a summary needs the observation of its round.
    One object may be shared between threads; several processes may read (``readonly=True``)
    while one writes. The write lock belongs to the process (POSIX ``lockf``): two writable
    objects of one run in one process do not exclude each other, and closing either releases it.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from activesci.typing import Closing, Observation
    >>> tmp = tempfile.TemporaryDirectory()
    >>> with SQLiteRunStore(tmp.name) as store:
    ...     store.write_metadata({"task": "weinberg", "seed": 1})
    ...     store.append_observation(0, Observation(design=[88.0], x=np.zeros((3, 1))))
    ...     store.append_round(0, {"mean": np.float64(0.23), "n": np.int64(3)})
    >>> with SQLiteRunStore.open(tmp.name) as store:
    ...     observations, rounds = store.observations(), store.rounds()
    >>> [(k, obs.design.tolist(), obs.n) for k, obs in observations]
    [(0, [88.0], 3)]
    >>> rounds
    [{'round': 0, 'mean': 0.23, 'n': 3}]
    >>> tmp.cleanup()
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, readonly: bool = False
    ) -> None:
        self._path = Path(path)
        self._file = self._path / DB_NAME
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._readonly = bool(readonly)
        create = create and not self._readonly
        if "\0" in str(self._path):
            raise StoreError(f"{str(self._path)!r}: not a folder path (a NUL byte)")
        if self._path.exists() and not self._path.is_dir():
            raise StoreError(f"{self._path}: is a file, not a run directory")
        if os.path.lexists(self._file):
            # a FIFO or device would hang SQLite; a dangling symlink would have it create
            # the store outside the run folder
            check_input_file(self._file, StoreError, "run store (SQLite file)")
        if not self._file.exists():
            if not create:
                raise StoreError(
                    f"{self._path}: no activesci run store here ({DB_NAME} is missing)"
                )
            self._path.mkdir(parents=True, exist_ok=True)
        try:
            if not self._readonly:
                self._take_lock()
            self._db = self._connect(self._mode(create))
            self._setup(create)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, readonly: bool = False) -> SQLiteRunStore:
        """Open an existing store; a missing one is a :class:`~activesci.errors.StoreError`.

        With ``readonly=True`` it is opened for reading only (see :class:`SQLiteRunStore`).
        """
        return cls(path, create=False, readonly=readonly)

    # ------------------------------------------------------------------ lifecycle

    def _connect(self, mode: str) -> sqlite3.Connection:
        try:
            return sqlite3.connect(
                self._file.resolve().as_uri() + mode,
                uri=True,
                timeout=30.0,
                isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE ... COMMIT
                check_same_thread=False,  # guarded by self._lock
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self._file}: cannot open the run store ({exc})") from exc

    def _mode(self, create: bool) -> str:
        """The SQLite URI parameters that open this store as asked."""
        if not self._readonly:
            return "" if create else "?mode=rw"
        if os.access(self._path, os.W_OK) or self._file.with_name(DB_NAME + "-wal").exists():
            return "?mode=ro"
        # a folder that this process cannot write and no write-ahead log: no writer is at work,
        # and SQLite could not create the shared-memory file that reading a WAL store needs
        return "?mode=ro&immutable=1"

    def _take_lock(self) -> None:
        """Hold the run's write lock, or raise StoreError naming the process that holds it."""
        lock = self._path / LOCK_NAME
        try:
            self._lock_fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise StoreError(
                f"{self._path}: cannot open the write lock {LOCK_NAME} ({exc.strerror}); "
                "to read a run you cannot write, open it with readonly=True"
            ) from None
        info = os.fstat(self._lock_fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:  # the lock file is rewritten
            raise StoreError(
                f"{lock}: is not a plain lock file (a device, FIFO, socket or a hard link to "
                "another file); remove it"
            )
        try:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise StoreError(f"{lock}: cannot lock the run ({exc.strerror})") from None
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip()
            raise StoreError(
                f"{self._path}: this run is being written by another process (pid "
                f"{holder or 'unknown'}); wait for it to finish, or read it with readonly=True"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, f"{os.getpid()}\n".encode(), 0)

    def _tables(self) -> set[str]:
        assert self._db is not None
        rows = self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {row[0] for row in rows}

    def _setup(self, create: bool) -> None:
        db = self._db
        assert db is not None
        try:
            tables = self._tables()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._file}: not an activesci run store ({exc})") from exc
        if not tables and create:
            self._create_schema()
            tables = self._tables()
        if "info" in tables:
            self._check_version()
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise StoreError(
                f"{self._file}: not an activesci run store (missing tables: {', '.join(missing)})"
            )
        if self._readonly:
            return
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"{self._file}: cannot configure the run store ({exc})") from exc
        if str(mode).lower() != "wal":
            raise StoreError(f"{self._file}: cannot switch to WAL mode (journal_mode={mode})")

    def _create_schema(self) -> None:
        from activesci import __version__

        db = self._db
        assert db is not None
        db.execute("PRAGMA journal_mode=WAL")  # persistent; must be outside a transaction
        db.execute("PRAGMA synchronous=FULL")
        with db:
            db.execute("BEGIN IMMEDIATE")
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                return  # another process created it meanwhile
            for statement in _SCHEMA:
                db.execute(statement)
            db.executemany(
                "INSERT INTO info (key, value) VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("created", _now()),
                    ("activesci_version", __version__),
                ],
            )

    def _check_version(self) -> None:
        assert self._db is not None
        try:
            row = self._db.execute("SELECT value FROM info WHERE key = 'format_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self._file}: not an activesci run store ({exc})") from exc
        try:
            version = int(row[0])
        except (TypeError, ValueError):
            raise StoreError(
                f"{self._file}: not an activesci run store (format_version is "
                f"{None if row is None else row[0]!r})"
            ) from None
        if version > FORMAT_VERSION:
            raise StoreError(
                f"{self._file}: store format {version} is newer than this activesci supports "
                f"({FORMAT_VERSION}): upgrade activesci"
            )

    @property
    def path(self) -> Path:
        """The run directory."""
        return self._path

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._db is None

    @property
    def readonly(self) -> bool:
        """Whether the store was opened with ``readonly=True``."""
        return self._readonly

    def close(self) -> None:
        """Close the database and release the write lock; further use is a StoreError."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the lock
                self._lock_fd = None

    def __repr__(self) -> str:
        state = " (closed)" if self.closed else " (read-only)" if self._readonly else ""
        return f"SQLiteRunStore({str(self._path)!r}){state}"

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._db is None:
                raise StoreError(f"{self._path}: the run store is closed")
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self._file}: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed (durably) on success, rolled back on error."""
        if self._readonly:
            raise StoreError(f"{self._path}: the run store was opened with readonly=True")
        with self._read() as db, db:
            db.execute("BEGIN IMMEDIATE")
            yield db

    # ------------------------------------------------------------------ metadata

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Record the run's settings once.

        Parameters
        ----------
        metadata : dict
            JSON-serialisable settings; NumPy values are converted.

        Raises
        ------
        ValidationError
            A value is not JSON-serialisable; the message names its key.
        StoreError
            Different metadata was already written (rewriting identical content is a no-op).
        """
        if not isinstance(metadata, dict):
            raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
        document = _dumps(_jsonable(metadata, "metadata"))
        with self._write() as db:
            row = db.execute("SELECT document FROM metadata WHERE id = 0").fetchone()
            if row is None:
                db.execute("INSERT INTO metadata (id, document) VALUES (0, ?)", (document,))
            elif row[0] != document:
                old = _json_value(row[0], dict, f"{self._file}: the metadata")
                new = json.loads(document)
                changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
                raise StoreError(
                    f"{self._path}: the run's metadata is already written and differs in "
                    f"{', '.join(map(repr, changed))}; a run's settings cannot change "
                    "(start a new run directory)"
                )

    def metadata(self) -> dict[str, Any]:
        """The settings written by :meth:`write_metadata` (``{}`` if none were).

        Raises
        ------
        StoreError
            The stored document is not a JSON object.
        """
        with self._read() as db:
            row = db.execute("SELECT document FROM metadata WHERE id = 0").fetchone()
        return {} if row is None else _json_value(row[0], dict, f"{self._file}: the metadata")

    # ------------------------------------------------------------------ observations

    def append_observation(self, round: int, observation: Observation) -> None:
        """Persist the observation of ``round`` durably, in one transaction.

        Parameters
        ----------
        round : int
            Must be the next round: 0 for the first observation, then 1, 2, ...
        observation : Observation
            Its ``meta`` must be JSON-serialisable (NumPy values are converted).

        Raises
        ------
        StoreError
            ``round`` already has an observation, or is not the next round.
        ValidationError
            ``round`` is not a non-negative integer, or ``observation`` is not an
            :class:`~activesci.typing.Observation` with JSON-serialisable ``meta``.
        """
        r = _round_number(round, "observation")
        if not isinstance(observation, Observation):
            raise ValidationError(
                f"observation of round {r} must be an activesci Observation, "
                f"got {type(observation).__name__}"
            )
        x = np.ascontiguousarray(observation.x, dtype=np.float64)
        design = _dumps([float(v) for v in np.asarray(observation.design, dtype=float)])
        meta = _dumps(_jsonable(dict(observation.meta), f"observation {r} meta"))
        lum = None if observation.luminosity is None else float(observation.luminosity)
        blob = _array_bytes(x)
        with self._write() as db:
            if db.execute("SELECT 1 FROM observations WHERE round = ?", (r,)).fetchone():
                raise StoreError(f"{self._path}: round {r} already has an observation")
            last = db.execute("SELECT max(round) FROM observations").fetchone()[0]
            expected = 0 if last is None else last + 1
            if r != expected:
                raise StoreError(
                    f"{self._path}: cannot append round {r}: the next round is {expected} "
                    "(observations are appended in order without gaps)"
                )
            db.execute(
                "INSERT INTO observations (round, design, x, n, luminosity, meta, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (r, design, blob, int(x.shape[0]), lum, meta, _now()),
            )

    def observations(self) -> list[tuple[int, Observation]]:
        """All stored observations with their round numbers, in round order.

        ``x`` is float64 and bit-identical to what was appended.

        Raises
        ------
        StoreError
            A round is missing or a stored value is not of its documented type and shape.
        """
        with self._read() as db:
            rows = db.execute(
                "SELECT round, design, x, n, luminosity, meta FROM observations ORDER BY round"
            ).fetchall()
        _check_rounds([row[0] for row in rows], "observation", str(self._file))
        return [(r, self._observation(r, *row)) for r, *row in rows]

    def _observation(
        self, r: int, design: Any, blob: Any, n: Any, lum: Any, meta: Any
    ) -> Observation:
        """The Observation of one stored row, or a StoreError naming what is wrong."""
        where = f"{self._file}: round {r}"
        try:
            x = _array(blob, n)
        except ValueError as exc:
            raise StoreError(f"{where}: the x is unreadable ({exc})") from None
        point = _json_value(design, list, f"{where}: the design")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point):
            raise StoreError(f"{where}: the design {point!r:.80} is not a list of numbers")
        if lum is not None and not (isinstance(lum, int | float) and (lum > 0 or math.isnan(lum))):
            raise StoreError(f"{where}: the luminosity {lum!r:.80} is not a positive number")
        try:
            return Observation(
                design=np.asarray(point, dtype=float),
                x=x,
                luminosity=None if lum is None or math.isnan(lum) else float(lum),
                meta=_json_value(meta, dict, f"{where}: the meta"),
            )
        except ValueError as exc:
            raise StoreError(f"{where}: not a valid observation ({exc})") from None

    # ------------------------------------------------------------------ round summaries

    def append_round(self, round: int, summary: dict[str, Any]) -> None:
        """Persist the summary of a finished round, replacing an earlier one of that round.

        Replacement is deliberate: a resumed run may redo the summary of the round it was in.

        Parameters
        ----------
        round : int
            The round number (>= 0).
        summary : dict
            JSON-serialisable; NumPy arrays and scalars are converted (recursively) to lists,
            floats and ints. A ``"round"`` key, if present, must equal ``round``.

        Raises
        ------
        ValidationError
            A value is not JSON-serialisable (the message names its key), or the round is bad.
        StoreError
            ``round`` has no observation, or a summary of an earlier round is missing.
        """
        r = _round_number(round, "summary")
        if not isinstance(summary, dict):
            raise ValidationError(
                f"summary of round {r} must be a dict, got {type(summary).__name__}"
            )
        data = _jsonable(summary, f"summary of round {r}")
        if "round" in data and data.pop("round") != r:
            raise ValidationError(
                f"summary of round {r} has round={summary['round']!r}, which differs"
            )
        document = json.dumps(data)  # key order kept, for display
        with self._write() as db:
            observed = db.execute("SELECT count(*) FROM observations").fetchone()[0]
            summaries = db.execute("SELECT count(*) FROM rounds").fetchone()[0]
            _check_summary_round(r, observed, summaries, str(self._path))
            db.execute(
                "INSERT OR REPLACE INTO rounds (round, summary) VALUES (?, ?)", (r, document)
            )

    def rounds(self) -> list[dict[str, Any]]:
        """All round summaries in round order, each with its ``"round"`` key first.

        Raises
        ------
        StoreError
            A summary is missing, is not a JSON object, or has no observation.
        """
        with self._read() as db:
            rows = db.execute("SELECT round, summary FROM rounds ORDER BY round").fetchall()
            observed = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        _check_rounds([r for r, _ in rows], "summary", str(self._file))
        if len(rows) > observed:
            raise StoreError(
                f"{self._file}: round {observed} has a summary but no observation "
                f"({observed} observations); the store was altered"
            )
        return [
            {"round": r, **_json_value(s, dict, f"{self._file}: the summary of round {r}")}
            for r, s in rows
        ]

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, name: str, data: bytes) -> None:
        """Store (or replace) the binary checkpoint ``name``, e.g. a trained estimator."""
        if not isinstance(name, str) or not name:
            raise ValidationError(f"checkpoint name must be a non-empty str, got {name!r}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValidationError(
                f"checkpoint {name!r} data must be bytes, got {type(data).__name__}"
            )
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO checkpoints (name, data, created) VALUES (?, ?, ?)",
                (name, bytes(data), _now()),
            )

    def load_checkpoint(self, name: str) -> bytes | None:
        """The checkpoint stored under ``name``, or ``None`` if there is none."""
        with self._read() as db:
            row = db.execute("SELECT data FROM checkpoints WHERE name = ?", (name,)).fetchone()
        return None if row is None else bytes(row[0])
