"""Notebooks as parameterised programs: record key numbers, run with papermill, read them back.

Inside a notebook, :func:`record` displays a value under its own MIME type (scrapbook style), so
the executed notebook carries its key numbers; :func:`read_records` reads them back for tests
and scripts. :func:`run_notebook` executes one of the project's notebooks with papermill and
parameters into ``runs/`` (``activesci notebook NAME -p key value``).

>>> record("answer", 42)
{'answer': 42}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from activesci.errors import ValidationError

__all__ = ["MIME", "NOTEBOOKS", "parse_parameter", "read_records", "record", "run_notebook"]

#: MIME type of recorded values in a notebook's outputs.
MIME = "application/vnd.activesci.record+json"
#: The project's notebooks (a source checkout's ``notebooks/`` folder).
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def record(name: str, value: Any) -> dict[str, Any]:
    """Record ``value`` (JSON-serialisable) under ``name`` in the notebook's outputs.

    Outside IPython it only returns ``{name: value}``.
    """
    item = {name: json.loads(json.dumps(value))}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return item
    if get_ipython() is not None:
        display({MIME: item, "text/plain": f"recorded {name} = {value!r}"}, raw=True)
    return item


def read_records(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every value recorded in an executed notebook, by name (later records win)."""
    import nbformat

    out: dict[str, Any] = {}
    for cell in nbformat.read(Path(path), as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                out.update(data[MIME])
    return out


def parse_parameter(text: str) -> Any:
    """A command-line value: JSON if it parses (numbers, true/false, lists), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_notebook(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    kernel: str = "python3",
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Execute notebook ``name`` (e.g. ``"01"`` or ``"01-weinberg-active-sciencing"``).

    Returns
    -------
    path : Path
        The executed notebook (default ``runs/notebooks/NAME.ipynb``).
    records : dict
        What it recorded with :func:`record`.
    """
    import papermill

    # a prefix of a file name, not a glob pattern ("*", "**", "../" match nothing)
    matches = sorted(
        p for p in NOTEBOOKS.glob("*.ipynb") if isinstance(name, str) and p.name.startswith(name)
    )
    if len(matches) != 1:
        available = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
        raise ValidationError(f"no single notebook matches {name!r}; available: {available}")
    source = matches[0]
    from activesci.io import atomic_path

    target = Path(out) if out is not None else Path("runs") / "notebooks" / source.name
    # papermill writes its output path as it goes: give it a fresh temporary beside the
    # target (a symlink at the target is replaced, not followed)
    with atomic_path(target, suffix=".ipynb") as tmp:
        try:
            papermill.execute_notebook(
                source,
                tmp,
                parameters=parameters or {},
                kernel_name=kernel,
                progress_bar=progress,
                cwd=str(target.parent),
            )
        except papermill.PapermillExecutionError:
            os.replace(tmp, target)  # the executed notebook shows where it failed
            raise
    return target, read_records(target)
