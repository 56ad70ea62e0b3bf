"""Reading and writing files: one place for what every file activesci touches goes through.

* :mod:`~activesci.io.files` (its names are importable from here): atomic writes
  (:func:`atomic_write`, :func:`atomic_path`), checks of paths to read and write, ``.npz``
  archives read without pickle, SHA-256 sidecars;
* :mod:`~activesci.io.records`: the recorded-observation formats (CSV and ``.npz``) that
  :class:`~activesci.experiments.RecordedExperiment` replays.
"""

from activesci.io import files
from activesci.io.files import *  # noqa: F403

__all__ = list(files.__all__)
