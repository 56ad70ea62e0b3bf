"""The "real experiment" of each round as a workflow of command steps.

:class:`WorkflowExperiment` runs one round's experiment as an adage workflow: a
:class:`~activesci.workflow.steps.CommandStep` that runs ``activesci simulate`` with the
hidden truth at the chosen design, on the host or inside a container image (with no
network), writes ``round-K.npz`` and its checksum into the work folder, and hands the learner
an :class:`~activesci.typing.Observation`. The learner uses it like any other experiment; the
event files stay in the work folder as the raw record of the run.

>>> import tempfile, activesci as asci
>>> exp = WorkflowExperiment(asci.tasks.gaussian(), seed=1, workdir=tempfile.mkdtemp())
>>> obs = exp.run([3.14])
>>> obs.n, obs.meta["file"]
(10, 'round-0000.npz')
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import ShapeError, ValidationError
from activesci.experiments import _HiddenTruthExperiment
from activesci.io import sha256, write_checksum
from activesci.simulators.eventfile import read_events
from activesci.tasks import Task
from activesci.typing import Observation
from activesci.workflow.containers import validate_container_config
from activesci.workflow.dag import DagTracker, run_flow
from activesci.workflow.steps import CommandStep, task_arguments

__all__ = ["WorkflowExperiment"]


_CONFIG_KEYS = {"kind", "truth", "seed", "image", "runtime", "workdir", "timeout", "retries"}


def _run_step(step: CommandStep, workdir: str) -> str:
    step.run(workdir)
    return workdir


class WorkflowExperiment(_HiddenTruthExperiment):
    """Each run is a workflow step: ``activesci simulate`` with a hidden truth.

    Parameters
    ----------
    task : Task
        The simulator's task (its name and luminosity are passed to the command).
    truth : mapping, optional
        The hidden truth (default: the task's).
    seed : int, optional
        Run ``k`` draws from ``default_rng([seed, k])``: the same data as
        :class:`~activesci.experiments.SimulatedExperiment` with that seed.
    image, runtime : optional
        Container image and ``"podman"``/``"docker"``; default the host (``"local"``).
    workdir : path
        Where the round files are written.
    executor : str or executor
        Where the step runs (``inline``, ``processes``, ``dask`` or an executor object).
    timeout, retries : optional
        Of the step.
    runs : int
        Runs already done (a resumed run continues the sequence).
    callback : callable, optional
        Called with ``{step name: state}`` as the step's state changes (dashboards set it).
    """

    def __init__(
        self,
        task: Task,
        truth: Any = None,
        seed: int | None = None,
        *,
        image: str | None = None,
        runtime: str = "local",
        workdir: str | os.PathLike[str] = "runs/experiment",
        executor: Any = "inline",
        timeout: float = 600.0,
        retries: int = 1,
        runs: int = 0,
        callback: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        self.task = task
        self._set_truth(task.truth if truth is None else truth)
        self.seed = seed
        self.image, self.runtime = image, runtime
        self.workdir = Path(workdir)
        self.executor = executor
        self.timeout, self.retries = timeout, retries
        self.runs = int(runs)
        self.callback = callback
        self._step(0, np.zeros(len(task.designs)))  # validates runtime, image and options

    @property
    def _model(self) -> Task:
        return self.task

    def __repr__(self) -> str:
        where = self.runtime if self.image is None else f"{self.runtime}:{self.image}"
        return f"WorkflowExperiment({self.task.name!r}, truth=<hidden>, seed={self.seed}, {where})"

    def to_config(self) -> dict[str, Any]:
        """What :func:`activesci.learner.ActiveLearner.resume` needs to rebuild it."""
        return {
            "kind": "workflow",
            "truth": self.truth,
            "seed": self.seed,
            "image": self.image,
            "runtime": self.runtime,
            "workdir": str(self.workdir),
            "timeout": self.timeout,
            "retries": self.retries,
        }

    @classmethod
    def from_config(
        cls,
        task: Task,
        config: Mapping[str, Any],
        *,
        run_dir: str | os.PathLike[str],
        runs: int = 0,
        allow_images: Sequence[str] = (),
    ) -> WorkflowExperiment:
        """Rebuild the experiment of :meth:`to_config` from untrusted data (a run store).

        The configuration chooses what runs, so it is checked as data: only the keys of
        :meth:`to_config`, a local ``localhost/activesci-*`` image unless the caller confirms
        it in ``allow_images``, and a work folder inside ``run_dir``
        (:func:`~activesci.workflow.containers.validate_container_config`).

        Parameters
        ----------
        task : Task
            The run's task.
        config : mapping
            What :meth:`to_config` returned, as read back from the store.
        run_dir : path
            The run folder; the experiment's work folder must be inside it.
        runs : int
            Runs already done.
        allow_images : sequence of str
            Container images the caller confirms, besides the local ones.

        Raises
        ------
        ValidationError
            Naming the bad key or value and what was expected.
        """
        if not isinstance(config, Mapping) or config.get("kind") != "workflow":
            raise ValidationError(
                f"experiment config must be a mapping with kind 'workflow', got {config!r:.120}"
            )
        unknown = sorted(set(config) - _CONFIG_KEYS)
        if unknown:
            raise ValidationError(
                f"experiment config has unknown key(s) {unknown}; expected {sorted(_CONFIG_KEYS)}"
            )
        seed = config.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValidationError(f"experiment seed must be a non-negative integer, got {seed!r}")
        checked = validate_container_config(config, run_dir, allow_images=allow_images)
        options = {k: config[k] for k in ("timeout", "retries") if k in config}
        return cls(task, config.get("truth"), seed, runs=runs, **checked, **options)

    def _step(self, k: int, design: np.ndarray) -> CommandStep:
        # run k draws from default_rng([seed, k]), exactly like SimulatedExperiment's run k
        seed = (
            [self.seed, k]
            if self.seed is not None
            else [int(np.random.default_rng().integers(2**31))]
        )
        truth = [f"{n}={v}" for n, v in self.truth.items()]
        point = [f"{n}={float(v)!r}" for n, v in zip(self.designs.names, design, strict=True)]
        out = f"round-{k:04d}.npz"
        command = [
            "activesci",
            "simulate",
            *task_arguments(self.task),
            "--theta",
            *truth,
            "--design",
            *point,
            "--seed",
            *(str(v) for v in seed),
            "--out",
            out,
            "--no-gold",
        ]
        return CommandStep(
            f"experiment-{k}",
            command,
            outputs=[out],
            image=self.image,
            runtime=self.runtime,
            timeout=self.timeout,
            retries=self.retries,
        )

    def run(self, design: Any) -> Observation:
        """Run the experiment once at ``design`` as a one-step workflow; read its events."""
        point = self.designs.validate(design)
        if len(point) != 1:
            raise ShapeError(f"run takes one design, got {len(point)}")
        return self.run_batch(point)[0]

    def run_batch(self, designs: Any) -> list[Observation]:
        """Run one experiment per design ``(q, D)`` as parallel steps of one workflow.

        The steps run together on the executor (``processes`` or ``dask``: in parallel); run
        ``k`` of the batch is seeded like run ``k`` of :meth:`run`, so a batch gives the same
        data as the same runs one by one. Returns the observations in the designs' order.
        """
        import adage

        points = self.designs.validate(designs)
        steps = [self._step(self.runs + i, point) for i, point in enumerate(points)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        flow = adage.adageobject()
        for step in steps:
            flow.dag.addTask(
                functools.partial(_run_step, step, str(self.workdir)), nodename=step.name
            )
        run_flow(
            flow,
            self.executor,
            DagTracker(progress=False, callback=self.callback),
            expected=len(steps),
        )
        return [self._read(step, point) for step, point in zip(steps, points, strict=True)]

    def _read(self, step: CommandStep, point: np.ndarray) -> Observation:
        """The observation of a finished step (its file is data: checked against the run)."""
        path = self.workdir / step.outputs[0]
        # the step's file is data: it must hold this task, the truth and the design asked for
        events = read_events(path, task=self.task.name, theta=self._truth[0], design=point)
        write_checksum(path)
        self.runs += 1
        return Observation(
            design=point,
            x=events.x,
            luminosity=events.luminosity,
            meta={"seed": self.seed, "run": self.runs, "file": path.name, "sha256": sha256(path)},
        )
