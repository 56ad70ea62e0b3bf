"""The ``activesci`` subcommands: each calls the public API and prints JSON or a table."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci import tasks
from activesci.errors import ValidationError
from activesci.simulators.base import experiment_size
from activesci.simulators.eventfile import FORMAT, EventFile, write_events
from activesci.simulators.weinberg import count_asymmetry
from activesci.typing import check_count

__all__: list[str] = []


def _simulate(args: argparse.Namespace) -> dict[str, Any]:
    task = _task(args.task, args.luminosity, args.task_option)
    sim = task.simulator
    theta = sim.parameters.parse_assignments(args.theta) if args.theta else task.truth
    theta = sim.parameters.validate(theta)
    design = sim.designs.parse_assignments(args.design)
    seed = None if args.seed is None else (args.seed[0] if len(args.seed) == 1 else args.seed)
    rng = np.random.default_rng(seed)
    # without --n, one experiment, drawn exactly as Simulator.run_experiment draws it from this
    # rng (so `--seed S K` replays run K of SimulatedExperiment(seed=S)), with the latent kept
    n = experiment_size(sim, theta, design, rng) if args.n is None else args.n
    events = sim.sample(theta, design, rng, n=n)
    gold = {}
    caps = sim.capabilities
    if not args.no_gold and events.z is not None and {"joint_log_prob", "joint_score"} <= caps:
        gold = {
            "joint_log_prob": sim.joint_log_prob(events.z, theta, design),
            "joint_score": sim.joint_score(events.z, theta, design),
        }
    path = write_events(
        args.out,
        EventFile(
            task=task.name,
            parameter_names=tuple(sim.parameters.names),
            design_names=tuple(sim.designs.names),
            feature_names=tuple(getattr(sim, "feature_names", ())),
            theta=theta[0],
            design=design[0],
            x=events.x,
            z=events.z,
            luminosity=getattr(sim, "luminosity", None),
            seed=seed if seed is None or isinstance(seed, int) else tuple(seed),
            **gold,
        ),
    )
    summary: dict[str, Any] = {
        "format": FORMAT,
        "out": str(path),
        "task": task.name,
        "theta": sim.parameters.to_dict(theta),
        "design": sim.designs.to_dict(design),
        "n": len(events),
        "gold": sorted(gold),
    }
    if "expected_count" in caps:
        summary["expected_count"] = float(sim.expected_count(theta, design)[0])
    if getattr(sim, "feature_names", ()) == ("cos_theta",):
        value, error = count_asymmetry(events.x)
        prediction = sim.summary(theta, design)
        summary["afb"] = {"value": value, "error": error}
        summary["afb_prediction"] = {
            "detector_level": prediction["afb_observed"],
            "born": prediction["afb_born"],
        }
    else:
        summary["x_mean"] = events.x.mean(axis=0).tolist() if len(events) else []
    return summary


def _pick(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The command line's options ``names``, by name: the keywords of a call that takes them.

    >>> _pick(argparse.Namespace(seed=0, rounds=8, out="runs"), "seed", "rounds")
    {'seed': 0, 'rounds': 8}
    """
    return {name: getattr(args, name) for name in names}


def _task(name: str, luminosity: float | None, assignments: Sequence[str] = ()) -> tasks.Task:
    """The task named on the command line: the user's choice, so a module may be imported."""
    return tasks.load(name, _task_options(luminosity, assignments), allow_plugins=True)


def _task_options(luminosity: float | None, assignments: Sequence[str]) -> dict[str, Any]:
    """``--luminosity`` and ``--task-option NAME=VALUE`` (JSON values) as factory options."""
    from activesci.notebook import parse_parameter

    options: dict[str, Any] = {} if luminosity is None else {"luminosity": luminosity}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name.isidentifier():
            raise ValidationError(f"--task-option expects NAME=VALUE, got {assignment!r}")
        options[name] = parse_parameter(value)
    return options


def _sample_training(args: argparse.Namespace) -> dict[str, Any]:
    from activesci.workflow.dag import sample_chunk

    task = _task(args.task, args.luminosity, args.task_option)
    path, checksum = sample_chunk(task, args.samples, args.seed, args.method, args.out)
    return {"out": str(path), "checksum": str(checksum), "samples": args.samples}


def _merge(args: argparse.Namespace) -> dict[str, Any]:
    from activesci.workflow.dag import merge_chunks

    path, n = merge_chunks(args.chunks, args.out)
    return {"out": str(path), "chunks": len(args.chunks), "samples": n}


def _train(args: argparse.Namespace) -> dict[str, Any]:
    from activesci.workflow.dag import train_estimator

    task = _task(args.task, args.luminosity, args.task_option)
    path, summary = train_estimator(task, args.data, args.method, args.seed, args.epochs, args.out)
    return {"out": str(path), "best_val_loss": summary.best_val_loss, "seconds": summary.seconds}


_CAMPAIGN = {"sample-training": _sample_training, "merge": _merge, "train": _train}


def _bench(args: argparse.Namespace) -> None:
    from activesci.bench import available_specs

    if args.list or not args.target:
        print(json.dumps({"specs": available_specs(), "tasks": sorted(tasks.TASKS)}, indent=2))
        return
    if not _names_task(args.target):
        _bench_spec(args)
        return
    from activesci.bench import DesignBenchmark, format_design_table, run_design_benchmark

    if args.out and os.path.isdir(args.out):  # checked before the benchmark runs
        raise ValidationError(f"--out {args.out!r} is a folder; expected a JSON file (TASK)")
    if args.out:
        from activesci.io import check_output_path

        check_output_path(args.out)  # not a device or FIFO, before the benchmark runs
    task = _task(args.target, args.luminosity, args.task_option)
    bench = DesignBenchmark(
        task=args.target,
        task_options=_task_options(args.luminosity, args.task_option),
        truth=task.parameters.to_dict(task.parameters.parse_assignments(args.truth))
        if args.truth
        else None,
        strategies=tuple(args.strategies),
        seeds=args.repeats,
        **_pick(args, "rounds", "target_std", "training_samples", "refine_every"),
    )
    result = run_design_benchmark(bench)
    print(format_design_table(result))
    if args.out:
        from activesci.io import atomic_write

        with atomic_write(args.out, "w") as fh:
            fh.write(json.dumps(result, indent=2) + "\n")
        print(json.dumps({"results": args.out}))


def _names_task(target: str) -> bool:
    """Whether ``activesci bench TARGET`` names a task rather than a spec."""
    if target in tasks.TASKS:
        return True
    return ":" in target and not os.path.exists(target) and not target.endswith((".yaml", ".yml"))


def _bench_spec(args: argparse.Namespace) -> None:
    from activesci.bench import format_leaderboard, load_spec, run_spec, write_results

    spec = load_spec(args.target, allow_plugins=args.allow_plugins)
    result = run_spec(spec, allow_plugins=args.allow_plugins)
    print(format_leaderboard(result))
    paths = write_results(result, args.out or os.path.join("runs", "bench", spec["name"]))
    print(json.dumps({k: str(v) for k, v in paths.items()}))


def _run(args: argparse.Namespace) -> None:
    from activesci.learner import ActiveLearner

    task = _task(args.task, args.luminosity, args.task_option)
    truth = task.parameters.parse_assignments(args.truth) if args.truth else None
    _refuse_started(args.out)
    learner = ActiveLearner(
        task,
        experiment=_experiment(args, task, truth),
        store=args.out,
        tracker=args.track,
        planned_rounds=args.rounds,
        **_pick(
            args,
            "estimator",
            "strategy",
            "seed",
            "training_samples",
            "refine_every",
            "batch",
            "posterior",
        ),
    )
    _loop(learner, args.rounds, args.out, on_failure=args.on_failure)


def _refuse_started(folder: str) -> None:
    """Refuse a run folder that holds a started run: its estimator and plan must stay as they are.

    Only reads the folder; a store without settings (its run failed before it started) is
    not a run and may be started again.
    """
    from pathlib import Path

    from activesci.store import DB_NAME, SQLiteRunStore

    if (Path(folder) / DB_NAME).exists():
        with SQLiteRunStore.open(folder, readonly=True) as old:
            started = bool(old.metadata() or old.observations())
        if started:
            raise ValidationError(
                f"{folder} already holds a run: use `activesci resume {folder}`, or a new folder"
            )


def _experiment(args: argparse.Namespace, task: tasks.Task, truth: Any) -> Any:
    if args.experiment == "simulated":
        return task.experiment(truth=truth, seed=args.seed)
    from pathlib import Path

    from activesci.workflow.experiment import WorkflowExperiment

    image, runtime = None, "local"
    if args.experiment == "container":
        from activesci.workflow.containers import ensure_local_image

        image, runtime = args.image or ensure_local_image(), "podman"
    return WorkflowExperiment(
        task,
        truth,
        args.seed,
        image=image,
        runtime=runtime,
        workdir=Path(args.out).absolute() / "experiment",
    )


def _resume(args: argparse.Namespace) -> None:
    from activesci.learner import ActiveLearner

    learner = ActiveLearner.resume(
        args.dir, allow_images=tuple(args.allow_image), allow_plugins=args.allow_plugins
    )
    total = args.rounds if args.rounds is not None else _planned(learner)
    print(f"resuming {args.dir} at round {learner.round} of {total}", file=sys.stderr)
    left = -(-max(0, total * learner.batch - learner.round) // learner.batch)  # a partial batch
    _loop(learner, left, args.dir, allow_plugins=args.allow_plugins, on_failure=args.on_failure)


def _planned(learner: Any) -> int:
    """The rounds the resumed run was started with (0 if it was not started with a plan)."""
    if learner.planned_rounds is not None:
        return int(learner.planned_rounds)
    data = learner.store.load_checkpoint("plan")  # where earlier runs kept it
    try:
        return check_count(json.loads(data or b"{}").get("rounds", 0), "rounds")
    except (ValueError, AttributeError):
        raise ValidationError(
            f"the stored plan {data[:80]!r} is not {{'rounds': N}}; give --rounds"
        ) from None


def _loop(
    learner: Any,
    rounds: int,
    folder: str,
    *,
    allow_plugins: bool = True,
    on_failure: str = "raise",
) -> None:
    """Run ``rounds`` rounds, printing each, then write the run's report.

    ``allow_plugins``: the report may import the run's task module (the user named it).
    ``on_failure``: as :meth:`~activesci.learner.ActiveLearner.iterate`'s; an abandoned
    design is reported on stderr.
    """
    from activesci.report import write_run_report

    def abandoned(_: Any, designs: Any, reason: str) -> None:
        where = "; ".join(", ".join(f"{v:.4g}" for v in d) for d in designs)
        print(f"abandoned design {where}: {reason}", file=sys.stderr, flush=True)

    learner.events.abandoned.subscribe(abandoned)
    names = learner.task.parameters.names
    print(f"{'round':>5} {'design':>14} {'events':>7} " + " ".join(f"{n:>18}" for n in names))
    for state in learner.iterate(rounds, on_failure=on_failure):
        s = state.summary()
        cells = " ".join(f"{m:9.5f} ± {e:7.5f}" for m, e in zip(s["mean"], s["std"], strict=True))
        design = ", ".join(f"{v:.4g}" for v in s["design"])
        check = state.check
        verdict = "" if check is None else (" ok" if check["ok"] else " WARNING")
        trained = " (retrained)" if state.trainings else ""
        print(f"{state.round:5d} {design:>14} {s['n']:7d} {cells}{verdict}{trained}", flush=True)
        for warning in (check or {}).get("warnings", []):
            print(f"warning: round {state.round}: {warning}", file=sys.stderr, flush=True)
    learner.close()
    report = write_run_report(folder, allow_plugins=allow_plugins)
    print(json.dumps({"rounds": learner.round, "report": str(report)}))


def _export_reana(args: argparse.Namespace) -> int:
    """``activesci export-reana``: export, print the files as JSON, return 0."""
    from activesci.workflow.reana import export_reana

    path = export_reana(
        args.task,
        Path(args.out),
        **_pick(
            args,
            "samples",
            "chunks",
            "seed",
            "method",
            "epochs",
            "image",
            "train_image",
            "environment",
        ),
    )
    folder = path.parent
    files = {"reana": path, "workflow": folder / "workflow.yml", "readme": folder / "README.md"}
    print(json.dumps({k: str(v) for k, v in files.items()}, indent=2))
    return 0
