"""Durable run stores: a run's settings, observations, round summaries and checkpoints.

* :class:`SQLiteRunStore` (:mod:`~activesci.store.sqlite`): one SQLite file per run folder,
  every write on disk when the call returns, one writer at a time, everything read back
  checked (:mod:`~activesci.store.values`);
* :class:`MemoryRunStore` (:mod:`~activesci.store.memory`): the same checks, nothing on disk.

Format ``1`` (:data:`FORMAT_VERSION`) has these tables:

===============  ==========================================================================
table            columns
===============  ==========================================================================
``info``         ``key TEXT PRIMARY KEY, value TEXT``: ``format_version``, ``created``
                 (UTC, ISO 8601) and ``activesci_version`` (of the code that created it)
``metadata``     one row ``(id = 0, document TEXT)``: the run's settings as JSON
``observations`` ``round INTEGER PRIMARY KEY, design TEXT`` (JSON list of floats),
                 ``x BLOB`` (``numpy.save`` of the float64 ``(n, X)`` array), ``n INTEGER``,
                 ``luminosity REAL`` (``NULL`` if none), ``meta TEXT`` (JSON), ``created TEXT``
``rounds``       ``round INTEGER PRIMARY KEY, summary TEXT`` (JSON object)
``checkpoints``  ``name TEXT PRIMARY KEY, data BLOB, created TEXT``
===============  ==========================================================================

JSON values are written by :mod:`json` after converting NumPy arrays and scalars to lists,
floats, ints and bools; NaN and infinities are written as ``NaN``/``Infinity`` as Python's
:mod:`json` does. Arrays are read back with ``allow_pickle=False``.
"""

from activesci.store.memory import MemoryRunStore
from activesci.store.sqlite import DB_NAME, FORMAT_VERSION, LOCK_NAME, SQLiteRunStore

__all__ = ["DB_NAME", "FORMAT_VERSION", "LOCK_NAME", "MemoryRunStore", "SQLiteRunStore"]
