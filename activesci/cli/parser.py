"""The ``activesci`` command line's arguments: one parser, usage errors as one line."""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from typing import Any, NoReturn

from activesci import __version__
from activesci.errors import ActivesciError
from activesci.simulators.eventfile import FORMAT
from activesci.typing import check_count, check_positive

__all__: list[str] = []


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
    _add_task_options(run, "pb^-1 per round (Weinberg)")
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
    _add_on_failure(run)

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
    _add_on_failure(resume)

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
    _add_task_options(bench, "pb^-1 per round", "options of the task's factory (TASK; JSON values)")
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
    _add_task_options(chunk, "pb^-1 (Weinberg tasks)")
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
    _add_task_options(train, "pb^-1 (Weinberg tasks)")
    train.add_argument("--out", type=_FILE, required=True, help="output estimator file (.pt)")

    _export_reana_parser(sub)

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
    _add_task_options(sim, "pb^-1 (Weinberg tasks)")
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


def _add_task_options(
    parser: argparse.ArgumentParser, luminosity_help: str, option_help: str = _OPTION_HELP
) -> None:
    """Add ``--luminosity`` and ``--task-option NAME=VALUE``: the options of the task's factory.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    luminosity_help, option_help : str
        The help texts of the two options.
    """
    parser.add_argument("--luminosity", type=_NUMBER, default=None, help=luminosity_help)
    parser.add_argument(
        "--task-option", nargs="+", default=[], metavar="NAME=VALUE", help=option_help
    )


def _export_reana_parser(subparsers: Any) -> None:
    """The ``export-reana`` subcommand."""
    from activesci.inference.methods import METHODS
    from activesci.workflow.reana import ENVIRONMENTS

    parser = subparsers.add_parser(
        "export-reana",
        help="write a yadage workflow and reana.yaml of a training campaign",
        description="Write workflow.yml (yadage: sample-training chunks -> merge -> train), "
        "reana.yaml and README.md into a folder, for reana-client or yadage-run.",
    )
    parser.add_argument("task", help="a task name or package.module:function of your own factory")
    parser.add_argument("--out", required=True, help="folder to write to")
    parser.add_argument("--samples", type=int, default=100_000, help="training samples in all")
    parser.add_argument("--chunks", type=int, default=4, help="parallel simulation steps")
    parser.add_argument("--seed", type=int, default=0, help="seed (chunk seeds derive from it)")
    parser.add_argument(
        "--method",
        choices=sorted(m for m in METHODS if m != "sally"),
        default="alices",
        help="estimator",
    )
    parser.add_argument("--epochs", type=int, default=30, help="training epochs")
    parser.add_argument(
        "--image", default="activesci-sim:latest", help="simulator image for REANA steps"
    )
    parser.add_argument(
        "--train-image",
        default=None,
        help="image with PyTorch for the train step (default: --image)",
    )
    parser.add_argument(
        "--environment",
        choices=ENVIRONMENTS,
        default="docker",
        help="docker: steps in the image (REANA); local: steps on this host",
    )


def _add_on_failure(parser: argparse.ArgumentParser) -> None:
    """``--on-failure``: what a failing experiment does to the run."""
    parser.add_argument(
        "--on-failure",
        choices=["raise", "abandon"],
        default="raise",
        help="an experiment that fails: stop the run (raise, resumable) or abandon its "
        "design, stored with the error, and go on (abandon)",
    )
