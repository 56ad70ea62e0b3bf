"""The ``activesci`` command: parses arguments, calls the public API, prints JSON or tables.

:func:`main` is the entry point; the arguments are :mod:`~activesci.cli.parser`'s and each
subcommand's work is in :mod:`~activesci.cli.commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from activesci import tasks
from activesci.cli.commands import (
    _CAMPAIGN,
    _bench,
    _export_reana,
    _loop,
    _resume,
    _run,
    _simulate,
)
from activesci.cli.parser import _parser
from activesci.errors import ActivesciError

__all__ = ["main"]


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
        return _export_reana(args)
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
