"""Simulation campaigns as adage DAGs: plan -> simulate chunks -> merge -> train.

A :class:`Campaign` builds an adage workflow whose graph grows by rules as results arrive:
the *plan* node fixes each chunk's size and seed; a rule then adds one *chunk* node per
planned chunk (each writes ``chunk-K.npz`` and its ``.sha256``); once every chunk succeeded
a rule adds *merge* (which verifies the checksums, so a partial chunk is never merged), and
after it *train*. Chunk seeds come from ``numpy.random.SeedSequence(seed).spawn``, so every
executor (inline, processes, Dask) and the REANA export produce the same merged file.

The step functions (:func:`sample_chunk`, :func:`merge_chunks`, :func:`train_estimator`) are
also the ``activesci sample-training``, ``merge`` and ``train`` commands, so a containerised
or REANA step runs exactly the code a notebook runs.

>>> import tempfile
>>> campaign = Campaign("gaussian", samples=2000, chunks=2, train=False,
...                     workdir=tempfile.mkdtemp(), progress=False)
>>> result = campaign.run("inline")
>>> result.samples, sorted(result.states.values())
(2000, ['success', 'success', 'success', 'success'])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from activesci import tasks as task_registry
from activesci.errors import ValidationError, WorkflowError
from activesci.io import atomic_write, verify_checksum, write_checksum
from activesci.tasks import Task
from activesci.workflow.executors import make_executor

__all__ = [
    "Campaign",
    "CampaignOptions",
    "CampaignResult",
    "DagTracker",
    "chunk_plan",
    "merge_chunks",
    "run_flow",
    "sample_chunk",
    "train_estimator",
]


# -- the steps ---------------------------------------------------------------------------------
def chunk_plan(samples: int, chunks: int, seed: int) -> list[dict[str, int]]:
    """Sizes and seeds of ``chunks`` chunks totalling ``samples`` rows.

    >>> [c["samples"] for c in chunk_plan(10, 3, seed=0)]
    [4, 3, 3]
    """
    if not (isinstance(chunks, int) and chunks >= 1):
        raise ValidationError(f"chunks must be a positive integer, got {chunks!r}")
    if not (isinstance(samples, int) and samples >= 2 * chunks):
        raise ValidationError(
            f"samples must be an integer >= 2 per chunk ({2 * chunks}), got {samples!r}"
        )
    sizes = [samples // chunks + (k < samples % chunks) for k in range(chunks)]
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(chunks)]
    return [
        {"index": k, "samples": n, "seed": s}
        for k, (n, s) in enumerate(zip(sizes, seeds, strict=True))
    ]


def _estimator(task: Task, method: str) -> Any:
    from activesci.inference.ratio import RatioEstimator

    return RatioEstimator(task.simulator, method=method)


def sample_chunk(
    task: Task, samples: int, seed: int, method: str, out: str | os.PathLike[str]
) -> tuple[Path, Path]:
    """Simulate one chunk of training data for ``method``; write it and its checksum."""
    from activesci.inference.methods import check_capabilities, default_theta_ref, resolve_method
    from activesci.inference.training import simulate_training_data

    if not (isinstance(samples, int) and samples >= 2):
        raise ValidationError(f"samples must be an integer >= 2, got {samples!r}")
    chosen = resolve_method(method)
    check_capabilities(task.simulator, chosen)
    data = simulate_training_data(
        task.simulator,
        samples,
        theta_ref=default_theta_ref(task.parameters),
        gold=chosen.needs,
        seed=seed,
    )
    path = data.save(out)
    return path, write_checksum(path)


def merge_chunks(
    paths: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]
) -> tuple[Path, int]:
    """Verify every chunk against its checksum, join them in order, write the result."""
    from activesci.inference.training import TrainingData

    parts = [TrainingData.load(verify_checksum(p)) for p in paths]
    merged = TrainingData.concatenate(parts)
    path = merged.save(out)
    write_checksum(path)
    return path, len(merged)


def train_estimator(
    task: Task,
    data: str | os.PathLike[str],
    method: str,
    seed: int,
    epochs: int,
    out: str | os.PathLike[str],
) -> tuple[Path, Any]:
    """Train a ratio estimator on a (verified) training-data file and save it."""
    from activesci.inference.training import TrainingData

    path = Path(data)
    if Path(str(path) + ".sha256").exists():
        verify_checksum(path)
    est = _estimator(task, method)
    summary = est.train(data=TrainingData.load(path), seed=seed, epochs=epochs, progress=False)
    return est.save(out), summary


# -- adage tasks (module level, so they pickle to worker processes) -------------------------
def _task_of(spec: dict[str, Any]) -> Task:
    """The campaign's task in a worker (``spec`` is the campaign's own ``Task.to_config``)."""
    return task_registry.load(spec["task"], spec["task_options"], allow_plugins=True)


def _plan_node(workdir: str, samples: int, chunks: int, seed: int) -> list[dict[str, int]]:
    plan = chunk_plan(samples, chunks, seed)
    with atomic_write(Path(workdir, "plan.json"), "w") as fh:
        fh.write(json.dumps(plan, indent=2) + "\n")
    return plan


def _chunk_node(
    spec: dict[str, Any], method: str, chunk: dict[str, int], out: str, retries: int
) -> str:
    last: Exception | None = None
    for _ in range(retries + 1):
        try:
            sample_chunk(_task_of(spec), chunk["samples"], chunk["seed"], method, out)
            return out
        except Exception as exc:  # any failure of the step: clean up, retry
            last = exc
            for partial in (Path(out), Path(out + ".sha256")):
                partial.unlink(missing_ok=True)
    raise WorkflowError(
        f"chunk {chunk['index']} failed {retries + 1} time(s); last error: {last}"
    ) from last


def _merge_node(paths: list[str], out: str) -> str:
    merge_chunks(paths, out)
    return out


def _train_node(
    spec: dict[str, Any], data: str, method: str, seed: int, epochs: int, out: str
) -> str:
    train_estimator(_task_of(spec), data, method, seed, epochs, out)
    return out


# -- tracking ----------------------------------------------------------------------------------
class DagTracker:
    """Reports node states of an adage workflow (adage's tracker protocol).

    Counts of ``defined``/``running``/``success``/``failed`` nodes feed a tqdm bar (scripts)
    and an optional ``callback(states)`` (dashboards); ``states`` maps node name to state.
    """

    def __init__(
        self, *, progress: bool = True, callback: Callable[[dict[str, str]], None] | None = None
    ) -> None:
        from tqdm.auto import tqdm

        self.callback = callback
        self.states: dict[str, str] = {}
        self._bar = tqdm(total=0, disable=not progress, desc="campaign", unit="node")

    def initialize(self, adageobj: Any) -> None:
        """Record the initial graph."""
        self.track(adageobj)

    def track(self, adageobj: Any) -> None:
        """Record the nodes' states and update the bar and the callback when they change."""
        dag = adageobj.dag
        states = {dag.getNode(n).name: str(dag.getNode(n).state).lower() for n in dag.nodes()}
        if states == self.states:
            return
        self.states = states
        done = sum(s in ("success", "failed") for s in states.values())
        self._bar.total = len(states)
        self._bar.n = done
        self._bar.set_postfix(running=sum(s == "running" for s in states.values()))
        self._bar.refresh()
        if self.callback is not None:
            self.callback(dict(states))

    def finalize(self, adageobj: Any) -> None:
        """Record the final states and close the bar."""
        self.track(adageobj)
        self._bar.close()


# -- the campaign --------------------------------------------------------------------------------
@dataclass(frozen=True)
class CampaignOptions:
    """What a training campaign simulates and trains, with its defaults.

    :class:`Campaign` and :func:`activesci.workflow.reana.export_reana` take these as keywords
    (the in-process campaign and its REANA export are the same campaign).

    Attributes
    ----------
    samples, chunks : int
        Training rows in total, split into this many chunks.
    seed : int
        Fixes every chunk's seed and the training.
    method : str
        Ratio-estimator method.
    epochs : int
        Training epochs.
    """

    samples: int = 100_000
    chunks: int = 4
    seed: int = 0
    method: str = "alices"
    epochs: int = 30


@dataclass
class CampaignResult:
    """What a campaign produced."""

    workdir: Path
    plan: list[dict[str, int]]
    chunks: list[Path]
    merged: Path
    estimator: Path | None
    samples: int
    states: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class Campaign:
    """A simulation campaign for a ratio estimator, run as an adage DAG.

    Parameters
    ----------
    task : Task or str
        What to simulate (a registered name or a task built by ``activesci.tasks``).
    samples, chunks : int
        Training rows in total, split into this many chunk nodes.
    seed : int
        Fixes every chunk's seed and the training.
    method : str
        Ratio-estimator method (decides the gold each chunk computes).
    epochs : int
        Training epochs.
    retries : int
        Further attempts of a failing chunk (its partial files are deleted in between).
    workdir : path
        Where the plan, chunks, merged data and estimator are written.
    train : bool
        Add the train node (else stop after merge).
    progress : bool
        A tqdm bar of node states.
    callback : callable, optional
        Called with ``{node name: state}`` whenever states change (for dashboards).
    """

    def __init__(
        self,
        task: Task | str,
        *,
        samples: int = CampaignOptions.samples,
        chunks: int = CampaignOptions.chunks,
        seed: int = CampaignOptions.seed,
        method: str = CampaignOptions.method,
        epochs: int = CampaignOptions.epochs,
        retries: int = 1,
        workdir: str | os.PathLike[str] = "runs/campaign",
        train: bool = True,
        progress: bool = True,
        callback: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        from activesci.inference.methods import METHODS

        if isinstance(task, str):
            task = task_registry.load(task, allow_plugins=True)
        self.task = task
        if method not in METHODS or method == "sally":
            names = sorted(m for m in METHODS if m != "sally")
            raise ValidationError(f"unknown method {method!r}; expected one of {names}")
        if not (isinstance(epochs, int) and epochs >= 1):
            raise ValidationError(f"epochs must be a positive integer, got {epochs!r}")
        if not (isinstance(retries, int) and 0 <= retries <= 10):
            raise ValidationError(f"retries must be an integer in [0, 10], got {retries!r}")
        chunk_plan(samples, chunks, seed)  # validates samples and chunks
        self.retries = retries
        self.samples, self.chunks, self.seed = samples, chunks, seed
        self.method, self.epochs, self.train = method, epochs, train
        self.workdir = Path(workdir)
        self.progress, self.callback = progress, callback
        self._spec = self.task.to_config()  # workers rebuild the task from it

    def build(self) -> Any:
        """The adage workflow object: the plan node and the rules that grow the graph."""
        import adage
        from adage import Rule

        wdir = str(self.workdir)
        flow = adage.adageobject()
        plan = flow.dag.addTask(
            adage.adagetask(_plan_node).s(wdir, self.samples, self.chunks, self.seed),
            nodename="plan",
        )

        def add_chunks(adageobj: Any) -> None:
            for chunk in adageobj.dag.getNode(plan.identifier).result:
                out = str(self.workdir / f"chunk-{chunk['index']}.npz")
                adageobj.dag.addTask(
                    adage.adagetask(_chunk_node).s(
                        self._spec, self.method, chunk, out, self.retries
                    ),
                    nodename=f"chunk-{chunk['index']}",
                    depends_on=[plan],
                )

        def chunk_nodes(adageobj: Any) -> list[Any]:
            dag = adageobj.dag
            return [dag.getNode(n) for n in dag.nodes() if dag.getNode(n).name.startswith("chunk")]

        def add_merge(adageobj: Any) -> None:
            nodes = sorted(chunk_nodes(adageobj), key=lambda n: int(n.name.split("-")[1]))
            paths = [n.result for n in nodes]
            adageobj.dag.addTask(
                adage.adagetask(_merge_node).s(paths, str(self.workdir / "merged.npz")),
                nodename="merge",
                depends_on=nodes,
            )

        def add_train(adageobj: Any) -> None:
            merge = adageobj.dag.getNodeByName("merge")
            adageobj.dag.addTask(
                adage.adagetask(_train_node).s(
                    self._spec,
                    merge.result,
                    self.method,
                    self.seed,
                    self.epochs,
                    str(self.workdir / "estimator.pt"),
                ),
                nodename="train",
                depends_on=[merge],
            )

        def succeeded(name: str) -> Callable[[Any], bool]:
            def predicate(adageobj: Any) -> bool:
                node = adageobj.dag.getNodeByName(name)
                return node is not None and node.successful()

            return predicate

        def chunks_done(adageobj: Any) -> bool:
            nodes = chunk_nodes(adageobj)
            return len(nodes) == self.chunks and all(n.successful() for n in nodes)

        flow.rules = [
            Rule(succeeded("plan"), lambda adageobj: add_chunks(adageobj)),
            Rule(chunks_done, lambda adageobj: add_merge(adageobj)),
        ]
        if self.train:
            flow.rules.append(Rule(succeeded("merge"), lambda adageobj: add_train(adageobj)))
        return flow

    def run(self, executor: Any = "inline", **executor_options: Any) -> CampaignResult:
        """Run the DAG on an executor (a name, or an executor object that stays open).

        Raises
        ------
        WorkflowError
            Naming the failed node and its error.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        tracker = DagTracker(progress=self.progress, callback=self.callback)
        start = time.perf_counter()
        run_flow(
            self.build(), executor, tracker, 2 + self.chunks + int(self.train), **executor_options
        )
        merged = self.workdir / "merged.npz"
        plan = json.loads((self.workdir / "plan.json").read_text())
        return CampaignResult(
            workdir=self.workdir,
            plan=plan,
            chunks=[self.workdir / f"chunk-{c['index']}.npz" for c in plan],
            merged=merged,
            estimator=self.workdir / "estimator.pt" if self.train else None,
            samples=sum(c["samples"] for c in plan),
            states=tracker.states,
            seconds=time.perf_counter() - start,
        )


def run_flow(
    flow: Any, executor: Any, tracker: DagTracker, expected: int, **executor_options: Any
) -> None:
    """Run an adage workflow to the end on ``executor`` (a name or an open executor).

    Raises
    ------
    WorkflowError
        A node failed (named, with its error), or fewer than ``expected`` nodes succeeded.
    """
    import adage

    owned = isinstance(executor, str)
    backend = make_executor(executor, **executor_options)
    try:
        adage.rundag(
            flow,
            backend=backend,
            default_trackers=False,
            additional_trackers=[tracker],
            update_interval=0.02,
            loggername="activesci.workflow",
        )
    except RuntimeError:
        pass  # adage reports a failed DAG this way; the node states below say which
    finally:
        if owned:
            backend.close()
    nodes = [flow.dag.getNode(n) for n in flow.dag.nodes()]
    failed = [n for n in nodes if n.ready() and not n.successful()]
    if failed:
        node = failed[0]
        info = backend.fail_info(node.resultproxy) if node.resultproxy is not None else None
        cause = info if isinstance(info, BaseException) else None
        raise WorkflowError(f"workflow node {node.name!r} failed: {info}") from cause
    done = [n for n in nodes if n.successful()]
    if len(done) != expected:
        names = sorted(n.name for n in nodes if not n.successful())
        raise WorkflowError(
            f"workflow stopped with {len(done)} of {expected} nodes done; not done: {names}"
        )
