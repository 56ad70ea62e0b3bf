"""The ``activesci`` command: parses arguments, calls the public API, prints JSON or tables."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from activesci import __version__, tasks
from activesci.errors import ActivesciError, ValidationError
from activesci.simulators.base import experiment_size
from activesci.simulators.eventfile import FORMAT, EventFile, write_events
from activesci.simulators.weinberg import count_asymmetry
from activesci.typing import check_count, check_positive

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print ``activesci COMMAND: error: message`` and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _typed(check: Callable[[str], Any], expected: str) -> Callable[[str], Any]:
    """An argparse type that converts with ``check`` and says what was ``expected``."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except (ValueError, ActivesciError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    convert.__name__ = expected
    return convert


def _integer(minimum: int) -> Callable[[str], int]:
    def check(text: str) -> int:
        return check_count(int(text), "value", minimum=minimum)

    return _typed(check, {0: "a non-negative integer", 1: "a positive integer"}[minimum])


def _path(text: str, *, folder: bool) -> str:
    if not text.strip() or "\0" in text:
        raise ValueError("an empty path")
    if not folder:
        from activesci.io import check_output_path

        check_output_path(text)  # not a folder, device, FIFO or socket
        if os.path.isdir(text):
            raise ValueError("a folder")
    return text


_COUNT = _integer(0)
_POSITIVE = _integer(1)
_NUMBER = _typed(lambda text: check_positive(float(text), "value"), "a positive finite number")
_FILE = _typed(functools.partial(_path, folder=False), "a file path (not a folder, device or FIFO)")
_FOLDER = _typed(functools.partial(_path, folder=True), "a folder path")
_OPTION_HELP = "options of the task's factory (JSON values), e.g. dim=3"
_TASK_HELP = "a task name (activesci tasks) or package.module:function of your own factory"
_PLUGINS_HELP = (
    "rebuild a task the run names as package.module:function by importing that module "
    "(runs its code: only for runs you trust)"
)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="activesci",
        description="Active sciencing: design, run and infer experiments in a closed loop.",
    )
    parser.add_argument("--version", action="version", version=f"activesci {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback instead of a one-line error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the flagship loop headless and write its report")
    demo.add_argument(
        "--out", type=_FOLDER, default="runs/demo", help="run folder (default: runs/demo)"
    )
    demo.add_argument("--seed", type=_COUNT, default=0, help="seed of everything")
    demo.add_argument("--rounds", type=_COUNT, default=8, help="rounds (default 8)")
    demo.add_argument("--luminosity", type=_NUMBER, default=0.2, help="pb^-1 per round")
    demo.add_argument(
        "--training-samples", type=_POSITIVE, default=100_000, help="estimator budget"
    )
    demo.add_argument(
        "--refine-every",
        type=_POSITIVE,
        default=None,
        help="also retrain every N rounds (default: "
        "only when the posterior or the designs call for it)",
    )

    sub.add_parser("tasks", help="list the ready-made tasks")

    run = sub.add_parser("run", help="run the active-sciencing loop on a task, resumably")
    run.add_argument("task", help=_TASK_HELP)
    run.add_argument("--rounds", type=_COUNT, default=8, help="rounds to run (default 8)")
    run.add_argument("--strategy", default="eig", help="eig, grid, random, fixed, scan, ...")
    run.add_argument("--estimator", default="alices", help="alices, carl, ..., or exact")
    run.add_argument("--seed", type=_COUNT, default=0, help="seed of everything")
    run.add_argument("--out", type=_FOLDER, required=True, help="run folder (store and report)")
    run.add_argument("--truth", nargs="+", default=[], metavar="NAME=VALUE", help="hidden truth")
    run.add_argument("--luminosity", type=_NUMBER, default=None, help="pb^-1 per round (Weinberg)")
    run.add_argument(
        "--task-option",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help=_OPTION_HELP,
    )
    run.add_argument("--training-samples", type=_POSITIVE, default=100_000, help="estimator budget")
    run.add_argument(
        "--refine-every",
        type=_POSITIVE,
        default=None,
        help="retrain at the designs run, every N rounds",
    )
    run.add_argument(
        "--batch", type=_POSITIVE, default=1, help="experiments per round, run together"
    )
    run.add_argument(
        "--posterior",
        choices=["auto", "grid", "particles"],
        default="auto",
        help="a grid (up to 3 parameters) or SMC particles (any number); auto: by the size",
    )
    run.add_argument("--track", default=None, help="MLflow URI, e.g. sqlite:///runs/mlflow.db")
    run.add_argument(
        "--experiment",
        choices=["simulated", "workflow", "container"],
        default="simulated",
        help="how each round's experiment runs: in-process, as a workflow step on the host, "
        "or as a workflow step in the local podman image (built on first use)",
    )
    run.add_argument("--image", default=None, help="container image (default: the local one)")

    resume = sub.add_parser("resume", help="continue a run after a crash or with more rounds")
    resume.add_argument("dir", help="run folder")
    resume.add_argument(
        "--rounds", type=_COUNT, default=None, help="total rounds (default: planned)"
    )
    resume.add_argument(
        "--allow-image",
        action="append",
        default=[],
        metavar="IMAGE",
        help="run this container image if the stored run names it (repeatable); by default "
        "only local localhost/activesci-* images run",
    )
    resume.add_argument("--allow-plugins", action="store_true", help=_PLUGINS_HELP)

    report = sub.add_parser("report", help="write the HTML report of a run")
    report.add_argument("dir", help="run folder")
    report.add_argument("--allow-plugins", action="store_true", help=_PLUGINS_HELP)

    book = sub.add_parser(
        "notebook", help="run one of the project's notebooks with papermill into runs/notebooks"
    )
    book.add_argument("name", help="notebook name or number prefix, e.g. 01")
    book.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help='a parameter (JSON values: 12, 0.5, true, "eig"); repeatable',
    )
    book.add_argument("--out", type=_FILE, default=None, help="executed notebook path")

    bench = sub.add_parser(
        "bench",
        help="run a benchmark spec (leaderboard) or compare design strategies on a task",
        description="activesci bench SPEC runs a benchmark spec (a shipped name, see --list, or "
        "a YAML file) and writes results.json, leaderboard.csv and leaderboard.html into --out "
        "(default runs/bench/NAME). activesci bench TASK runs the learner with each of "
        "--strategies for --repeats seeds and prints the median posterior std (volume for "
        "several parameters) per round, the rounds to reach --target and the time per round; "
        "eig uses a learned ALICES estimator, every other strategy the exact likelihood.",
    )
    bench.add_argument("target", nargs="?", help="a task name, a shipped spec name or a YAML file")
    bench.add_argument("--list", action="store_true", help="list the shipped specs and tasks")
    bench.add_argument(
        "--strategies",
        nargs="+",
        default=["eig", "eig-exact", "oracle", "grid", "random", "fixed"],
        help="eig, eig-exact, oracle, grid, random, fixed, scan or a registered name",
    )
    bench.add_argument("--repeats", type=_POSITIVE, default=20, help="seeds 0..N-1 (default 20)")
    bench.add_argument("--rounds", type=_COUNT, default=8, help="rounds per run (default 8)")
    bench.add_argument(
        "--target-std", type=_NUMBER, default=0.004, help="posterior std to reach (TASK)"
    )
    bench.add_argument("--luminosity", type=_NUMBER, default=None, help="pb^-1 per round")
    bench.add_argument(
        "--task-option",
        nargs="+",
        default=[],
        metavar="NAME=VALUE",
        help="options of the task's factory (TASK; JSON values)",
    )
    bench.add_argument("--truth", nargs="+", default=[], metavar="NAME=VALUE", help="truth")
    bench.add_argument("--training-samples", type=_POSITIVE, default=100_000, help="eig's budget")
    bench.add_argument("--refine-every", type=_POSITIVE, default=2, help="eig's refinement period")
    bench.add_argument(
        "--out", type=_FOLDER, default=None, help="results: a JSON file (TASK) or a folder (SPEC)"
    )
    bench.add_argument(
        "--allow-plugins",
        action="store_true",
        help="let a spec name strategies or its task as 'module:attr' and import them (runs "
        "that code: only for specs you trust)",
    )

    chunk = sub.add_parser(
        "sample-training",
        help="simulate one chunk of training data (npz + .sha256) for a ratio estimator",
    )
    chunk.add_argument("task", help=_TASK_HELP)
    chunk.add_argument("--samples", type=_POSITIVE, required=True, help="rows to simulate")
    chunk.add_argument("--seed", type=_COUNT, required=True, help="random seed of this chunk")
    chunk.add_argument("--method", default="alices", help="decides the gold to compute")
    chunk.add_argument("--luminosity", type=_NUMBER, default=None, help="pb^-1 (Weinberg tasks)")
    chunk.add_argument(
        "--task-option", nargs="+", default=[], metavar="NAME=VALUE", help=_OPTION_HELP
    )
    chunk.add_argument("--out", type=_FILE, required=True, help="output .npz file")

    merge = sub.add_parser("merge", help="verify training chunks by checksum and join them")
    merge.add_argument("chunks", nargs="+", help="chunk .npz files (each with its .sha256)")
    merge.add_argument("--out", type=_FILE, required=True, help="output .npz file")

    train = sub.add_parser("train", help="train a ratio estimator on a training-data file")
    train.add_argument("task", help=_TASK_HELP)
    train.add_argument("data", help="training-data .npz (from merge or sample-training)")
    train.add_argument("--method", default="alices", help="estimator method (default alices)")
    train.add_argument("--seed", type=_COUNT, default=0, help="seed of the initialisation")
    train.add_argument("--epochs", type=_POSITIVE, default=30, help="epochs (default 30)")
    train.add_argument("--luminosity", type=_NUMBER, default=None, help="pb^-1 (Weinberg tasks)")
    train.add_argument(
        "--task-option", nargs="+", default=[], metavar="NAME=VALUE", help=_OPTION_HELP
    )
    train.add_argument("--out", type=_FILE, required=True, help="output estimator file (.pt)")

    from activesci.workflow import reana

    reana.add_parser(sub)

    sim = sub.add_parser(
        "simulate",
        help=f"simulate events into an {FORMAT} .npz file",
        description="Simulate events at one theta and design and write them with their gold "
        f"into an {FORMAT} .npz file (see activesci.simulators.eventfile); print a JSON summary.",
    )
    sim.add_argument("task", help=_TASK_HELP)
    sim.add_argument(
        "--theta", nargs="+", default=[], metavar="NAME=VALUE", help="parameters (default: truth)"
    )
    sim.add_argument("--design", nargs="+", required=True, metavar="NAME=VALUE", help="design")
    sim.add_argument(
        "--n",
        type=_COUNT,
        default=None,
        help="number of events (default: Poisson, as an experiment)",
    )
    sim.add_argument("--luminosity", type=_NUMBER, default=None, help="pb^-1 (Weinberg tasks)")
    sim.add_argument(
        "--task-option", nargs="+", default=[], metavar="NAME=VALUE", help=_OPTION_HELP
    )
    sim.add_argument("--out", type=_FILE, required=True, help="output .npz file")
    sim.add_argument(
        "--seed",
        type=_COUNT,
        nargs="+",
        default=None,
        help="random seed; several integers seed default_rng([s0, s1, ...]) (e.g. seed and run)",
    )
    sim.add_argument("--no-gold", action="store_true", help="do not compute the joint gold")
    return parser


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


#: Commands that train or run torch networks: they apply the thread policy (activesci.threads).
_TORCH_COMMANDS = frozenset({"bench", "demo", "resume", "run", "train"})


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input).

    Bad input (arguments, files, folders) is one line on stderr and exit status 2; ``--debug``
    shows the traceback instead.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command in _TORCH_COMMANDS:
            from activesci.threads import configure_threads

            configure_threads()  # torch/BLAS threads from the CPU quota, unless the user chose
        return _command(args)
    except (ActivesciError, OSError, UnicodeDecodeError) as exc:
        if args.debug:
            raise
        message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"activesci: error: {message or type(exc).__name__}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        print(json.dumps(_simulate(args), indent=2))
    elif args.command == "tasks":
        for name in sorted(tasks.TASKS):
            task = tasks.get(name)
            print(f"{name:20s} {task.description}")
    elif args.command == "run":
        _run(args)
    elif args.command == "resume":
        _resume(args)
    elif args.command in _CAMPAIGN:
        print(json.dumps(_CAMPAIGN[args.command](args), indent=2))
    elif args.command == "export-reana":
        from activesci.workflow import reana

        return reana.run_cli(args)
    elif args.command == "notebook":
        from activesci.notebook import parse_parameter, run_notebook

        params = {key: parse_parameter(value) for key, value in args.parameter}
        path, records = run_notebook(args.name, params, out=args.out)
        print(json.dumps({"notebook": str(path), "records": records}, indent=2))
    elif args.command == "bench":
        _bench(args)
    elif args.command == "report":
        from activesci.report import write_run_report

        report = write_run_report(args.dir, allow_plugins=args.allow_plugins)
        print(json.dumps({"report": str(report)}))
    elif args.command == "demo":
        from activesci.demo import demo_learner

        learner = demo_learner(
            args.out,
            seed=args.seed,
            luminosity=args.luminosity,
            training_samples=args.training_samples,
            refine_every=args.refine_every,
        )
        _loop(learner, args.rounds, args.out)
    return 0


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
        rounds=args.rounds,
        target_std=args.target_std,
        training_samples=args.training_samples,
        refine_every=args.refine_every,
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
        estimator=args.estimator,
        strategy=args.strategy,
        store=args.out,
        seed=args.seed,
        training_samples=args.training_samples,
        refine_every=args.refine_every,
        tracker=args.track,
        planned_rounds=args.rounds,
        batch=args.batch,
        posterior=args.posterior,
    )
    _loop(learner, args.rounds, args.out)


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
    _loop(learner, left, args.dir, allow_plugins=args.allow_plugins)  # counts as a round


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


def _loop(learner: Any, rounds: int, folder: str, *, allow_plugins: bool = True) -> None:
    """Run ``rounds`` rounds, printing each, then write the run's report.

    ``allow_plugins``: the report may import the run's task module (the user named it).
    """
    from activesci.report import write_run_report

    names = learner.task.parameters.names
    print(f"{'round':>5} {'design':>14} {'events':>7} " + " ".join(f"{n:>18}" for n in names))
    for state in learner.iterate(rounds):
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


if __name__ == "__main__":
    sys.exit(main())
