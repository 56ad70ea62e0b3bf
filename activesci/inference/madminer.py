"""Bridge to MadMiner: export our training data in its format, train its estimators, use them.

MadMiner (``pip install activesci[madminer]``, Python < 3.12) is the reference implementation
of the likelihood-ratio tricks our :mod:`activesci.inference.ratio` re-implements. This module
lets the two be compared on the same samples and lets a MadMiner estimator drive our posteriors.

Conventions
-----------
The two packages label the same samples differently:

========  ===============================================  ========================================
quantity  activesci (:class:`TrainingData`)                MadMiner
========  ===============================================  ========================================
ratio     ``log r = log p(z|theta) - log p(z|theta_ref)``  ``r = p(x|theta0) / p(x|theta1)``
label     ``y = 1`` for events drawn at ``theta``          ``y = 0`` at ``theta0``, 1 at ``theta1``
score     joint score at ``theta`` (rows ``y = 1``)        ``t_xz``: joint score at ``theta0``
========  ===============================================  ========================================

so the export sets ``theta0 = theta``, ``theta1 = theta_ref`` (broadcast), ``y_mm = 1 - y``,
``r_xz = exp(log_r)`` and ``t_xz = score``. MadMiner's estimators have no design input, so the
design columns are appended to the features: ``x_mm = [x, design]`` (``X + D`` columns). With
that, MadMiner's ``log r_hat(x_mm | theta0)`` *is* our ``log r(x | theta, design)``.

:func:`export_madminer` does not need MadMiner; :class:`MadMinerRatioEstimator` imports it
lazily and raises :class:`MissingExtraError` when it is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from activesci.errors import (
    MissingCapabilityError,
    MissingExtraError,
    ShapeError,
    ValidationError,
)
from activesci.inference.training import TrainingData
from activesci.io import atomic_write
from activesci.spaces import Space

__all__ = [
    "MADMINER_METHODS",
    "MadMinerRatioEstimator",
    "export_madminer",
]

#: Methods of MadMiner's ``ParameterizedRatioEstimator.train`` and the gold each needs.
MADMINER_METHODS: dict[str, tuple[str, ...]] = {
    "carl": (),
    "rolr": ("log_r",),
    "alice": ("log_r",),
    "alices": ("log_r", "score"),
    "rascal": ("log_r", "score"),
    "cascal": ("score",),
}
_FORMAT = "activesci.madminer/1"


def _import_madminer() -> Any:
    """Import ``madminer.ml`` or raise :class:`MissingExtraError` with the install hint."""
    try:
        import madminer.ml as mm_ml
    except ImportError as exc:
        raise MissingExtraError(
            f"MadMinerRatioEstimator needs MadMiner, which is not installed ({exc}); "
            f"install it with `pip install activesci[madminer]` (Python < 3.12)"
        ) from exc
    return mm_ml


def export_madminer(
    data: TrainingData, folder: str | os.PathLike[str], *, filename: str = "train"
) -> dict[str, Path]:
    """Write ``data`` as MadMiner training files (``.npy``), as its ``sample_train_ratio`` does.

    Parameters
    ----------
    data : TrainingData
        Samples from :func:`~activesci.inference.training.simulate_training_data`.
    folder : path
        Created if missing.
    filename : str
        Suffix of the files, MadMiner style: ``x_{filename}.npy`` and so on.

    Returns
    -------
    dict of str to Path
        The files written, keyed ``x`` (``(n, X + D)``: features then design columns),
        ``theta0`` (``(n, P)``: our ``theta``), ``theta1`` (``(n, P)``: ``theta_ref``
        broadcast), ``y`` (``(n, 1)``: ``1 - y``), and, when the gold is present, ``r_xz``
        (``(n, 1)``: ``exp(log_r)``) and ``t_xz`` (``(n, P)``: the joint score at ``theta0``,
        zero for the rows drawn at ``theta1``, which MadMiner's score loss masks out).

    Examples
    --------
    >>> import tempfile
    >>> from activesci import tasks
    >>> from activesci.inference.training import simulate_training_data
    >>> sim = tasks.gaussian().simulator
    >>> data = simulate_training_data(sim, 100, theta_ref=[0.0], seed=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     files = export_madminer(data, tmp)
    ...     sorted(files)
    ['r_xz', 't_xz', 'theta0', 'theta1', 'x', 'y']
    """
    if not isinstance(data, TrainingData):
        raise ValidationError(f"data must be a TrainingData, got {type(data).__name__}")
    n = len(data)
    x = np.asarray(data.x, dtype=float)
    design = np.asarray(data.design, dtype=float)
    theta = np.asarray(data.theta, dtype=float)
    if x.ndim != 2 or design.ndim != 2 or theta.ndim != 2 or not (len(x) == len(theta) == n):
        raise ShapeError(
            f"TrainingData arrays must be 2-D with {n} rows: x {x.shape}, theta {theta.shape}, "
            f"design {design.shape}"
        )
    ref = np.asarray(data.theta_ref, dtype=float).reshape(-1)
    if ref.shape != (theta.shape[1],):
        raise ShapeError(f"theta_ref has shape {ref.shape}, expected ({theta.shape[1]},)")
    arrays: dict[str, np.ndarray] = {
        "x": np.concatenate([x, design], axis=1),
        "theta0": theta,
        "theta1": np.broadcast_to(ref, theta.shape).copy(),
        "y": (1.0 - np.asarray(data.y, dtype=float)).reshape(-1, 1),
    }
    if data.log_r is not None:
        with np.errstate(over="ignore"):
            arrays["r_xz"] = np.exp(np.asarray(data.log_r, dtype=float)).reshape(-1, 1)
    if data.score is not None:
        arrays["t_xz"] = np.asarray(data.score, dtype=float)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for key, value in arrays.items():
        path = out / f"{key}_{filename}.npy"
        with atomic_write(path) as fh:  # a symlink at path is replaced, not followed
            np.save(fh, value)
        files[key] = path
    return files


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch and numpy's global generator (MadMiner uses both), restoring them after."""
    import torch

    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(seed)  # noqa: NPY002 - MadMiner shuffles its split with the global generator
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


class MadMinerRatioEstimator:
    """A MadMiner ``ParameterizedRatioEstimator`` in activesci's estimator conventions.

    Trained on :func:`export_madminer` files, it estimates ``log p(x | theta, design) -
    log p(x | theta_ref, design)`` with the design as extra input features, and so satisfies
    :class:`~activesci.inference.posterior.LogRatioEstimator`: :class:`GridPosterior` and
    :class:`SamplePosterior` can use it like a :class:`RatioEstimator`.

    Parameters
    ----------
    parameters, designs : Space, optional
        When given, ``theta`` and ``design`` passed to :meth:`log_ratio` are validated (and may
        be mappings by name); otherwise they are taken as arrays ``(n_theta, P)`` and ``(D,)``.

    Raises
    ------
    MissingExtraError
        MadMiner is not installed.

    Notes
    -----
    MadMiner evaluates ``(theta, x)`` pairs one parameter point at a time and builds its input
    tensors event by event, so :meth:`log_ratio` is much slower than
    :meth:`RatioEstimator.log_ratio`: fine for grids of hundreds of points and observations of
    hundreds of events, the wrong tool for amortised design scans.
    """

    def __init__(self, *, parameters: Space | None = None, designs: Space | None = None) -> None:
        self._mm = _import_madminer()
        self.parameters = parameters
        self.designs = designs
        self.estimator: Any = None
        self.method: str | None = None
        self.theta_ref: np.ndarray | None = None
        self.n_features: int | None = None
        self.n_design: int | None = None
        self.history: Any = None

    def __repr__(self) -> str:
        state = "trained" if self.is_trained else "untrained"
        return f"MadMinerRatioEstimator(method={self.method!r}, {state})"

    @property
    def is_trained(self) -> bool:
        """Whether :meth:`train` or :meth:`load` has given the network its weights."""
        return self.estimator is not None and self.estimator.model is not None

    def train(
        self,
        data: TrainingData,
        method: str = "alices",
        *,
        folder: str | os.PathLike[str] | None = None,
        n_hidden: Sequence[int] = (100, 100),
        activation: str = "tanh",
        n_epochs: int = 50,
        batch_size: int = 128,
        alpha: float = 1.0,
        initial_lr: float = 1e-3,
        final_lr: float = 1e-4,
        validation_split: float = 0.25,
        early_stopping: bool = True,
        seed: int = 0,
        verbose: str = "none",
    ) -> Any:
        """Export ``data`` and train a MadMiner ``ParameterizedRatioEstimator`` on the files.

        Parameters
        ----------
        data : TrainingData
            Our samples (see :func:`export_madminer` for the translation).
        method : str
            ``carl``, ``rolr``, ``alice``, ``alices`` (default), ``rascal`` or ``cascal``.
        folder : path, optional
            Where the ``.npy`` files go (kept); default a temporary folder, deleted after.
        n_hidden, activation : optional
            MadMiner's network: hidden layer widths and activation.
        n_epochs, batch_size, alpha, initial_lr, final_lr, validation_split, early_stopping :
            Passed to MadMiner's ``train`` (``alpha`` weighs the score term).
        seed : int
            Seeds torch and numpy's global generator for the initialisation, split and batches.
        verbose : str
            MadMiner's verbosity: ``all``, ``many``, ``some``, ``few`` or ``none``.

        Returns
        -------
        Any
            MadMiner's training result (training and validation losses).
        """
        if method not in MADMINER_METHODS:
            raise ValidationError(
                f"unknown MadMiner method {method!r}; expected one of {list(MADMINER_METHODS)}"
            )
        if not isinstance(data, TrainingData):
            raise ValidationError(f"data must be a TrainingData, got {type(data).__name__}")
        missing = [k for k in MADMINER_METHODS[method] if getattr(data, k) is None]
        if missing:
            raise MissingCapabilityError(f"method {method!r} needs {missing} in the training data")
        if not (isinstance(n_epochs, int) and n_epochs >= 1):
            raise ValidationError(f"n_epochs must be a positive integer, got {n_epochs!r}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValidationError(f"batch_size must be a positive integer, got {batch_size!r}")
        hidden = tuple(int(h) for h in n_hidden)
        with contextlib.ExitStack() as stack:
            where = (
                folder if folder is not None else stack.enter_context(tempfile.TemporaryDirectory())
            )
            files = export_madminer(data, where)
            estimator = self._mm.ParameterizedRatioEstimator(n_hidden=hidden, activation=activation)
            with _seeded(seed):
                result = estimator.train(
                    method=method,
                    x=str(files["x"]),
                    y=str(files["y"]),
                    theta=str(files["theta0"]),
                    r_xz=str(files["r_xz"]) if "r_xz" in files else None,
                    t_xz=str(files["t_xz"]) if "t_xz" in files else None,
                    alpha=alpha,
                    n_epochs=n_epochs,
                    batch_size=batch_size,
                    initial_lr=initial_lr,
                    final_lr=final_lr,
                    validation_split=validation_split,
                    early_stopping=early_stopping,
                    verbose=verbose,
                    n_workers=0,
                )
        self.estimator = estimator
        self.method = method
        self.theta_ref = np.asarray(data.theta_ref, dtype=float).reshape(-1)
        self.n_features = int(data.x.shape[1])
        self.n_design = int(data.design.shape[1])
        self.history = result
        return result

    def _require_trained(self) -> None:
        if not self.is_trained:
            raise ValidationError("this MadMinerRatioEstimator is not trained: call train() first")

    def log_ratio(self, x: Any, theta: Any, design: Any) -> np.ndarray:
        """Estimated ``log p(x | theta, design) - log p(x | theta_ref, design)``.

        Parameters
        ----------
        x : array_like
            Events ``(n_x, X)``.
        theta : array_like or mapping
            Parameter points ``(n_theta, P)``.
        design : array_like or mapping
            One design ``(D,)`` or ``(1, D)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_theta, n_x)``, float64.
        """
        self._require_trained()
        assert self.n_features is not None and self.n_design is not None
        xx = np.asarray(x, dtype=float)
        if xx.ndim == 1 and self.n_features == 1:
            xx = xx[:, None]
        if xx.ndim != 2 or xx.shape[1] != self.n_features or len(xx) == 0:
            raise ShapeError(f"x must have shape (n, {self.n_features}), got {np.shape(x)}")
        if self.parameters is not None:
            th = self.parameters.validate(theta)
        else:
            th = np.atleast_2d(np.asarray(theta, dtype=float))
        n_params = len(self.theta_ref) if self.theta_ref is not None else th.shape[-1]
        if th.ndim != 2 or th.shape[1] != n_params or len(th) == 0:
            raise ShapeError(f"theta must have shape (n_theta, {n_params}), got {np.shape(theta)}")
        de = (
            self.designs.validate(design)
            if self.designs is not None
            else np.asarray(design, dtype=float).reshape(1, -1)
        )
        if de.shape != (1, self.n_design):
            raise ShapeError(f"give one design of {self.n_design} value(s), got {np.shape(design)}")
        inputs = np.concatenate([xx, np.repeat(de, len(xx), axis=0)], axis=1)
        # MadMiner's torch entry point: one forward pass per theta over all events. Its numpy
        # one, evaluate_log_likelihood_ratio, builds a tensor per event and per theta (1.09 s
        # for 200 thetas x 1000 events against 0.44 s here, on 1 thread of this machine)
        model = self.estimator.model.eval()
        dtype = next(model.parameters()).dtype
        log_r = self.estimator.evaluate_log_likelihood_ratio_torch(
            torch.tensor(inputs, dtype=dtype),  # copies: a validated theta may be read-only
            torch.tensor(th, dtype=dtype),
            test_all_combinations=True,
        )
        return log_r.detach().cpu().numpy().astype(np.float64).reshape(len(th), len(xx))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save with MadMiner's ``save(path)`` plus ``{path}_activesci.json`` (our metadata).

        MadMiner writes ``{path}_settings.json``, ``{path}_state_dict.pt`` and the scaling
        ``.npy`` files next to it.
        """
        self._require_trained()
        path = Path(path)
        self.estimator.save(str(path))
        meta = {
            "format": _FORMAT,
            "method": self.method,
            "theta_ref": None if self.theta_ref is None else self.theta_ref.tolist(),
            "n_features": self.n_features,
            "n_design": self.n_design,
            "parameters": None if self.parameters is None else self.parameters.to_config(),
            "designs": None if self.designs is None else self.designs.to_config(),
        }
        with atomic_write(Path(f"{path}_activesci.json"), "w") as fh:
            fh.write(json.dumps(meta))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MadMinerRatioEstimator:
        """Load an estimator written by :meth:`save`."""
        meta_file = Path(f"{path}_activesci.json")
        try:
            meta = json.loads(meta_file.read_text())
        except FileNotFoundError:
            raise ValidationError(f"{meta_file}: no such file (save() writes it)") from None
        except ValueError as exc:
            raise ValidationError(f"{meta_file}: not valid JSON ({exc})") from exc
        if meta.get("format") != _FORMAT:
            raise ValidationError(
                f"{meta_file}: format {meta.get('format')!r}, expected {_FORMAT!r}"
            )
        est = cls(
            parameters=Space.from_config(meta["parameters"]) if meta.get("parameters") else None,
            designs=Space.from_config(meta["designs"]) if meta.get("designs") else None,
        )
        inner = est._mm.ParameterizedRatioEstimator()
        inner.load(str(path))
        est.estimator = inner
        est.method = meta["method"]
        est.theta_ref = None if meta["theta_ref"] is None else np.asarray(meta["theta_ref"])
        est.n_features = meta["n_features"]
        est.n_design = meta["n_design"]
        return est
