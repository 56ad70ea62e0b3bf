"""Report runs to experiment-tracking tools: nothing, memory, or MLflow.

Every tracker satisfies :class:`activesci.typing.Tracker` (``log_params``, ``log_metrics``,
``close``) and is a context manager. :func:`metrics_from_summary` turns a learner round
summary (:meth:`activesci.learner.RoundState.summary`) into the flat float metrics every
tracker is given, one step per round.

MLflow is optional (``pip install activesci[mlflow]``) and imported only when an
:class:`MLflowTracker` is made. Current MLflow refuses the plain file store (``./mlruns``),
so the tracker insists on a database (``sqlite:///...``) or a tracking server
(``http(s)://...``).
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import MissingExtraError, ValidationError
from activesci.typing import Closing, Tracker

__all__ = [
    "MLflowTracker",
    "MemoryTracker",
    "NullTracker",
    "as_tracker",
    "flatten_metrics",
    "flatten_params",
    "metrics_from_summary",
]

#: Longest parameter value sent to MLflow (older servers allow 500 characters).
MAX_PARAM_LENGTH = 500
_TRUNCATED = "...[truncated]"
#: Summary keys that are not numbers worth plotting per round.
_SUMMARY_IGNORED = frozenset({"marginals", "strategy", "hdr68", "check", "trainings", "regrids"})
_DEFAULT_URI = "sqlite:///runs/mlflow.db"


# -- flattening ------------------------------------------------------------------------------
def _as_finite(value: Any) -> float | None:
    """``value`` as a finite float, or ``None`` if it is not a finite real number."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, numbers.Real):
        out = float(value)
        return out if math.isfinite(out) else None
    return None


def flatten_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Keep the finite numbers of ``metrics``, unpacking one level of lists.

    A list (or array) of length 1 is replaced by its element (``"mean": [0.23]`` becomes
    ``"mean": 0.23``); a longer one becomes ``"mean.0"``, ``"mean.1"``, ... Everything else
    (``None``, strings, NaN, infinities, nested lists, dicts) is skipped.

    Parameters
    ----------
    metrics : mapping of str to Any
        Metric names and values.

    Returns
    -------
    dict of str to float
        Only finite floats.

    Examples
    --------
    >>> flatten_metrics({"mean": [0.23], "std": [0.1, 0.2], "n": 7, "x": None, "y": "a"})
    {'mean': 0.23, 'std.0': 0.1, 'std.1': 0.2, 'n': 7.0}
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list | tuple):
            if len(value) == 1:
                number = _as_finite(value[0])
                if number is not None:
                    out[str(key)] = number
            else:
                for i, item in enumerate(value):
                    number = _as_finite(item)
                    if number is not None:
                        out[f"{key}.{i}"] = number
            continue
        number = _as_finite(value)
        if number is not None:
            out[str(key)] = number
    return out


def _param_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    text = str(value)
    if len(text) > MAX_PARAM_LENGTH:
        text = text[: MAX_PARAM_LENGTH - len(_TRUNCATED)] + _TRUNCATED
    return text


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts as dotted keys, every value as a string of at most 500 characters.

    Longer values are cut and end in ``"...[truncated]"``. An empty nested dict is kept as
    ``"{}"`` so that the key is not lost.

    Parameters
    ----------
    params : mapping of str to Any
        A run's settings, e.g. the learner's metadata.
    prefix : str
        Put in front of every key (used for the recursion).

    Returns
    -------
    dict of str to str

    Examples
    --------
    >>> flatten_params({"task": "weinberg", "strategy": {"name": "eig", "n": 3}, "x": None})
    {'task': 'weinberg', 'strategy.name': 'eig', 'strategy.n': '3', 'x': 'None'}
    """
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_params(value, prefix=f"{name}."))
        else:
            out[name] = _param_value(value)
    return out


def _pairs(key: str, value: Any) -> Iterator[tuple[str, float]]:
    """Per-parameter rows of ``interval68``: ``key.lo``/``key.hi`` (``key.j.lo`` if several)."""
    rows = np.asarray(value, dtype=object)
    if rows.ndim == 1 and len(rows) == 2:
        rows = rows[None, :]
    if rows.ndim != 2 or rows.shape[1] != 2:
        return
    for j, (lo, hi) in enumerate(rows):
        stem = key if len(rows) == 1 else f"{key}.{j}"
        for end, v in (("lo", lo), ("hi", hi)):
            number = _as_finite(v)
            if number is not None:
                yield f"{stem}.{end}", number


def metrics_from_summary(summary: Mapping[str, Any]) -> dict[str, float]:
    """The flat float metrics of one learner round.

    ``mean``, ``std`` and ``design`` (one value per parameter or design dimension) become
    ``"mean"`` if there is one value and ``"mean.0"``, ``"mean.1"``, ... otherwise;
    ``interval68`` becomes ``"interval68.lo"``/``"interval68.hi"`` (``"interval68.0.lo"``, ...
    with several parameters); scalars (``n``, ``n_events``, ``entropy``, ``seconds``,
    ``luminosity``) are kept as floats. ``marginals``, ``hdr68`` and ``strategy`` are not
    metrics and are skipped, except the strategy's ``chosen_eig`` (expected information gain
    of the chosen design), reported as ``"chosen_eig"`` when it is a finite number. The
    self-check (``check``) becomes ``"check.ok"`` (1 or 0) and its numbers
    (``"check.calibration_shift"``, ...); ``trainings`` and ``regrids`` are counted. ``None``
    and non-finite values are dropped.

    Parameters
    ----------
    summary : mapping
        A round summary, as :meth:`activesci.learner.RoundState.summary` returns.

    Returns
    -------
    dict of str to float

    Examples
    --------
    >>> metrics_from_summary({"mean": [0.2312], "std": [0.004], "interval68": [[0.227, 0.235]],
    ...                       "n": 1621, "luminosity": None, "design": [88.0], "hdr68": [[]]})
    {'mean': 0.2312, 'std': 0.004, 'interval68.lo': 0.227, 'interval68.hi': 0.235, 'n': 1621.0, 'design': 88.0}
    """  # noqa: E501
    out: dict[str, float] = {}
    for key, value in summary.items():
        if key in _SUMMARY_IGNORED:
            continue
        if key == "interval68" and value is not None:
            out.update(_pairs(key, value))
        else:
            out.update(flatten_metrics({key: value}))
    check = summary.get("check")
    if isinstance(check, Mapping):
        out["check.ok"] = 1.0 if check.get("ok") else 0.0
        out.update(flatten_metrics({f"check.{k}": v for k, v in check.items() if k != "ok"}))
    for key in ("trainings", "regrids"):
        if isinstance(summary.get(key), list):
            out[key] = float(len(summary[key]))
    strategy = summary.get("strategy")
    if isinstance(strategy, Mapping):
        eig = _as_finite(strategy.get("chosen_eig"))
        if eig is not None:
            out["chosen_eig"] = eig
    return out


# -- trackers --------------------------------------------------------------------------------
class NullTracker(Closing):
    """A tracker that records nothing (the default).

    Examples
    --------
    >>> with NullTracker() as t:
    ...     t.log_metrics({"mean": 0.23}, step=0)
    """

    def log_params(self, params: dict[str, Any]) -> None:
        """Ignore ``params``."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Ignore ``metrics``."""

    def close(self) -> None:
        """Do nothing."""

    def __repr__(self) -> str:
        return "NullTracker()"


class MemoryTracker(Closing):
    """Keeps what it is told in lists, for tests and notebooks.

    Attributes
    ----------
    params : list of dict
        Every ``log_params`` call's argument (copied), in order.
    metrics : list of (int, dict)
        Every ``log_metrics`` call as ``(step, metrics)`` (copied), in order.
    closed : bool
        Whether :meth:`close` was called.

    Examples
    --------
    >>> with MemoryTracker() as t:
    ...     t.log_params({"task": "weinberg", "seed": 1})
    ...     t.log_metrics({"mean": 0.231, "std": 0.004}, step=0)
    ...     t.log_metrics({"mean": 0.2312, "std": 0.003}, step=1)
    >>> t.params
    [{'task': 'weinberg', 'seed': 1}]
    >>> t.history("std")
    [(0, 0.004), (1, 0.003)]
    >>> t.latest()
    {'mean': 0.2312, 'std': 0.003}
    >>> t.closed
    True
    """

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self.closed = False

    def log_params(self, params: dict[str, Any]) -> None:
        """Append a copy of ``params``."""
        self.params.append(dict(params))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Append ``(step, metrics)`` (a copy)."""
        self.metrics.append((int(step), dict(metrics)))

    def close(self) -> None:
        """Mark the tracker closed (it keeps what it holds)."""
        self.closed = True

    def history(self, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every logged value of metric ``key``, in order."""
        return [(step, m[key]) for step, m in self.metrics if key in m]

    def latest(self) -> dict[str, float]:
        """The metrics of the last ``log_metrics`` call (empty if none)."""
        return dict(self.metrics[-1][1]) if self.metrics else {}

    def __repr__(self) -> str:
        return (
            f"MemoryTracker(params={len(self.params)}, metrics={len(self.metrics)}, "
            f"closed={self.closed})"
        )


def _check_uri(tracking_uri: str | os.PathLike[str]) -> str:
    """The tracking URI if MLflow can use it, else a :class:`ValidationError` saying why."""
    if not isinstance(tracking_uri, str):
        raise ValidationError(
            f"tracking_uri must be a URI string, got the path {os.fspath(tracking_uri)!r}; "
            f"use 'sqlite:///{os.fspath(tracking_uri)}' for a database file"
        )
    scheme = tracking_uri.split("://", 1)[0].lower() if "://" in tracking_uri else ""
    if scheme in ("sqlite", "http", "https"):
        if scheme == "sqlite" and not tracking_uri.startswith("sqlite:///"):
            raise ValidationError(
                f"tracking_uri {tracking_uri!r} is not a SQLite URI: expected 'sqlite:///' "
                "followed by a path, e.g. 'sqlite:///runs/mlflow.db' (relative) or "
                "'sqlite:////abs/path/mlflow.db' (absolute)"
            )
        return tracking_uri
    raise ValidationError(
        f"tracking_uri {tracking_uri!r} is not supported: current MLflow refuses the plain "
        "file store (a folder such as ./mlruns or a file:// URI), so activesci logs to a "
        "database or a server; expected 'sqlite:///path/to/mlflow.db' (default "
        f"{_DEFAULT_URI!r}) or 'http(s)://host:port' of an MLflow tracking server"
    )


def _sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for memory or a server)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
    if path in ("", ":memory:"):
        return None
    return Path(path)


class MLflowTracker(Closing):
    """Logs a run to MLflow: settings as params, round summaries as metrics per step.

    One MLflow run is started when the tracker is made and ended by :meth:`close` (or by
    leaving a ``with`` block; an exception marks the run ``FAILED``). Params are flattened
    (:func:`flatten_params`: dotted keys, strings of at most 500 characters); metrics keep
    only finite numbers (:func:`flatten_metrics`).

    Parameters
    ----------
    tracking_uri : str
        ``"sqlite:///path/to/mlflow.db"`` (relative to the working directory, or
        ``sqlite:////abs/path``; the folder is created) or ``"http(s)://host:port"`` of an
        MLflow server. Plain folders and ``file://`` URIs are refused: current MLflow no
        longer supports the file store. Browse with
        ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``.
    experiment : str
        MLflow experiment name, created if missing.
    run_name : str, optional
        Name of the run (MLflow picks one if ``None``).
    tags : dict of str to str, optional
        Tags set on the run.

    Raises
    ------
    MissingExtraError
        If mlflow is not installed (``pip install activesci[mlflow]``).
    ValidationError
        If ``tracking_uri`` is neither a ``sqlite:///`` nor an ``http(s)://`` URI.

    Attributes
    ----------
    run_id : str
        The MLflow run id.
    experiment_id : str
        The MLflow experiment id.
    """

    def __init__(
        self,
        tracking_uri: str = _DEFAULT_URI,
        experiment: str = "activesci",
        run_name: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.tracking_uri = _check_uri(tracking_uri)
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise MissingExtraError(
                "MLflowTracker needs mlflow, which is not installed: pip install activesci[mlflow]"
            ) from err
        db = _sqlite_path(self.tracking_uri)
        artifact_location = None
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            # next to the database, not in whatever folder Python was started from
            artifact_location = (db.parent.resolve() / "mlartifacts").as_uri()
        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        found = self._client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id: str = self._client.create_experiment(
                experiment, artifact_location=artifact_location
            )
        else:
            self.experiment_id = found.experiment_id
        run = self._client.create_run(self.experiment_id, run_name=run_name, tags=tags or {})
        self.run_id: str = run.info.run_id
        self.experiment = experiment
        self._params: dict[str, str] = {}
        self._closed = False

    def log_params(self, params: dict[str, Any]) -> None:
        """Log the flattened ``params``; keys already logged with the same value are skipped.

        Raises
        ------
        ValidationError
            If a key was already logged with a different value (MLflow params are immutable).
        """
        from mlflow.entities import Param

        flat = flatten_params(params)
        new: dict[str, str] = {}
        for key, value in flat.items():
            old = self._params.get(key)
            if old is None:
                new[key] = value
            elif old != value:
                raise ValidationError(
                    f"param {key!r} was already logged as {old!r}; MLflow params cannot change "
                    f"(got {value!r}): log it as a metric or start a new run"
                )
        items = [Param(k, v) for k, v in new.items()]
        for start in range(0, len(items), 100):  # MLflow's batch limit for params
            self._client.log_batch(self.run_id, params=items[start : start + 100])
        self._params.update(new)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Log the finite numbers of ``metrics`` (see :func:`flatten_metrics`) at ``step``."""
        from mlflow.entities import Metric

        flat = flatten_metrics(metrics)
        stamp = int(time.time() * 1000)
        items = [Metric(k, v, stamp, int(step)) for k, v in flat.items()]
        for start in range(0, len(items), 1000):  # MLflow's batch limit for metrics
            self._client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def close(self, status: str = "FINISHED") -> None:
        """End the run (``status`` ``"FINISHED"``, ``"FAILED"`` or ``"KILLED"``); idempotent."""
        if not self._closed:
            self._client.set_terminated(self.run_id, status=status)
            self._closed = True

    def _close_on_exit(self, failed: bool) -> None:
        self.close("FAILED" if failed else "FINISHED")

    def __repr__(self) -> str:
        return (
            f"MLflowTracker({self.tracking_uri!r}, experiment={self.experiment!r}, "
            f"run_id={self.run_id!r})"
        )


def as_tracker(tracker: Any) -> Tracker:
    """A tracker from a learner's ``tracker=`` argument.

    ``None`` gives a :class:`NullTracker`, ``"memory"`` a :class:`MemoryTracker`,
    ``"mlflow"`` an :class:`MLflowTracker` with the default URI, and a ``sqlite:///`` or
    ``http(s)://`` URI an :class:`MLflowTracker` logging there; anything with ``log_params``,
    ``log_metrics`` and ``close`` is returned as it is.

    Raises
    ------
    ValidationError
        For any other value.

    Examples
    --------
    >>> as_tracker(None)
    NullTracker()
    >>> as_tracker("memory")
    MemoryTracker(params=0, metrics=0, closed=False)
    """
    if tracker is None:
        return NullTracker()
    if isinstance(tracker, str):
        if tracker == "memory":
            return MemoryTracker()
        if tracker == "mlflow":
            return MLflowTracker()
        if "://" in tracker:
            return MLflowTracker(tracking_uri=tracker)
        raise ValidationError(
            f"unknown tracker {tracker!r}; expected None, 'memory', 'mlflow', a "
            "'sqlite:///...' or 'http(s)://...' MLflow URI, or a Tracker object"
        )
    if all(callable(getattr(tracker, m, None)) for m in ("log_params", "log_metrics", "close")):
        return tracker
    raise ValidationError(
        f"tracker must be None, a name, an MLflow URI, or have log_params, log_metrics and "
        f"close; got {type(tracker).__name__}"
    )
