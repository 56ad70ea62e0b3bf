"""The recorded-observation formats that :class:`~activesci.experiments.RecordedExperiment` replays.

The recorded ``.npz`` format (``numpy.load(path, allow_pickle=False)`` reads it):

==================  ============  =========================================================
key                 shape, dtype  meaning
==================  ============  =========================================================
``design``          (k, D), f8    the design of each of the ``k`` observations
``counts``          (k,), int     number of events of each observation (may be 0)
``x``               (N, X), f8    all events, observation after observation; N = sum(counts)
``luminosity``      (k,), f8      per observation, NaN where unknown (optional)
``design_names``    (D,), str     must equal the space's names (optional)
``feature_names``   (X,), str     names of the columns of ``x`` (optional)
==================  ============  =========================================================

The CSV format has a header naming the columns: the design names, the feature names and
optionally ``luminosity`` (any order); then one event per row. The rows of one design form one
observation (observations in the order their design first appears), so a CSV holds at most one
observation per design and none without events; use ``.npz`` for those. Categorical designs are
written as category indices.

Both readers validate everything before anything is used: a bad value is a
:class:`~activesci.errors.RecordError` naming the file, the line or key, and the column.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from activesci.errors import RecordError, ValidationError
from activesci.io.files import atomic_write, check_input_file, read_npz_arrays
from activesci.spaces import Space
from activesci.typing import Observation, check_positive

__all__ = [
    "check_luminosity",
    "read_records_csv",
    "read_records_npz",
    "show_design",
    "write_records_npz",
]

_NPZ_KEYS = ("design", "counts", "x", "luminosity", "design_names", "feature_names")


def read_records_csv(
    path: str | os.PathLike[str], designs: Space, features: Sequence[str]
) -> tuple[list[Observation], list[str]]:
    """Observations of a CSV of events (see the module docstring), every row validated.

    Parameters
    ----------
    path : str or path
        The CSV file, with a header line.
    designs : Space
        The design space; its names are the design columns.
    features : sequence of str
        The feature columns, in the order of the columns of ``x``.

    Returns
    -------
    observations : list of Observation
        One per design, in the order each design first appears.
    features : list of str
        The feature names.

    Raises
    ------
    RecordError
        The message names the file, the line (the header is line 1) and the column.
    """
    features = [features] if isinstance(features, str) else list(features)
    if not features or len(set(features)) != len(features):
        raise ValidationError(f"features must be distinct names, got {features}")
    clash = [f for f in features if f in designs.names or f == "luminosity"]
    if clash:
        raise ValidationError(f"feature name(s) {clash} clash with the design or luminosity")
    expected = [*designs.names, *features]
    path = check_input_file(path, RecordError)  # a FIFO or device would hang the reader
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            groups = _read_csv(csv.reader(f), path, designs, features, expected)
    except FileNotFoundError:
        raise RecordError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RecordError(f"{path}: not a readable CSV file ({exc})") from None
    observations = [
        Observation(design=list(key), x=np.array(rows, dtype=float), luminosity=lum)
        for key, (rows, lum, _) in groups.items()
    ]
    return observations, features


def read_records_npz(
    path: str | os.PathLike[str], designs: Space
) -> tuple[list[Observation], list[str] | None]:
    """Observations of an ``.npz`` archive (format in the module docstring), and feature names.

    The feature names are None where the archive names none.

    Raises
    ------
    RecordError
        The file is missing or unreadable, or a key is missing, unknown, of the wrong shape
        or holds NaN or out-of-space values; the message names the file and the key.
    """
    path = Path(path)
    return _from_arrays(read_npz_arrays(path, RecordError), path, designs)


def write_records_npz(
    path: str | os.PathLike[str],
    observations: Sequence[Observation],
    designs: Space,
    feature_names: Sequence[str] | None = None,
) -> Path:
    """Write observations to ``path`` atomically; :func:`read_records_npz` reads them back."""
    path = Path(path)
    obs = list(observations)
    arrays: dict[str, np.ndarray] = {
        "design": np.stack([o.design for o in obs]).astype(float),
        "counts": np.array([o.n for o in obs], dtype=np.int64),
        "x": np.concatenate([o.x for o in obs], axis=0).astype(float),
        "luminosity": np.array(
            [np.nan if o.luminosity is None else o.luminosity for o in obs], dtype=float
        ),
        "design_names": np.array(designs.names, dtype=str),
    }
    if feature_names is not None:
        arrays["feature_names"] = np.array(list(feature_names), dtype=str)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)
    return path


def show_design(designs: Space, point: np.ndarray) -> str:
    """``"sqrt_s=91.19"``: a design point for messages."""
    return ", ".join(f"{n}={float(v):.10g}" for n, v in zip(designs.names, point, strict=True))


def check_luminosity(value: Any, where: str) -> float | None:
    """A positive finite luminosity or ``None``; ``where`` prefixes the error."""
    return None if value is None else check_positive(value, f"{where}: luminosity", RecordError)


def _read_csv(
    reader: Any, path: Path, designs: Space, features: list[str], expected: list[str]
) -> dict[tuple[float, ...], tuple[list[list[float]], float | None, int]]:
    """Parse and validate the rows; ``{design: (feature rows, luminosity, first line)}``."""
    header = next(reader, None)
    if header is None or not any(h.strip() for h in header):
        raise RecordError(f"{path}: empty file; expected a header line with columns {expected}")
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    unknown = [h for h in header if h not in expected and h != "luminosity"]
    missing = [c for c in expected if c not in header]
    if dup or unknown or missing:
        what = "; ".join(
            f"{label} column(s) {cols}"
            for label, cols in (("duplicate", dup), ("unknown", unknown), ("missing", missing))
            if cols
        )
        raise RecordError(
            f"{path}, line 1: {what}; expected {expected} and optionally 'luminosity'"
        )
    d_idx = [header.index(n) for n in designs.names]
    x_idx = [header.index(n) for n in features]
    lum_idx = header.index("luminosity") if "luminosity" in header else None
    groups: dict[tuple[float, ...], tuple[list[list[float]], float | None, int]] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue  # blank line
        if len(row) != len(header):
            raise RecordError(
                f"{path}, line {line}: {len(row)} fields, expected {len(header)} as in the header"
            )

        def number(j: int, row: list[str] = row, line: int = line) -> float:
            text = row[j].strip()
            try:
                value = float(text)
            except ValueError:
                raise RecordError(
                    f"{path}, line {line}, column {header[j]!r}: {text!r} is not a number"
                ) from None
            if not math.isfinite(value):
                raise RecordError(
                    f"{path}, line {line}, column {header[j]!r}: {text!r} is not a finite number"
                )
            return value

        key = tuple(number(j) for j in d_idx)
        x = [number(j) for j in x_idx]
        lum = None
        if lum_idx is not None and row[lum_idx].strip():
            lum = number(lum_idx)
            if lum <= 0:
                raise RecordError(
                    f"{path}, line {line}, column 'luminosity': must be positive, got {lum:g}"
                )
        if key not in groups:
            _check_design(designs, key, path, line)
            groups[key] = ([], lum, line)
        rows, first_lum, first_line = groups[key]
        if lum != first_lum:
            raise RecordError(
                f"{path}, line {line}, column 'luminosity': {lum} differs from {first_lum} on "
                f"line {first_line} for the same design {show_design(designs, np.array(key))}; one "
                f"design is one observation with one luminosity"
            )
        rows.append(x)
    if not groups:
        raise RecordError(f"{path}: no events after the header (line 1)")
    return groups


def _check_design(designs: Space, key: tuple[float, ...], path: Path, line: int) -> None:
    try:
        designs.validate(np.array([key]))
    except ValidationError as exc:
        bad = [d.name for d, v in zip(designs, key, strict=True) if not _inside(Space([d]), v)]
        column = bad[0] if bad else designs.names[0]
        why = str(exc).removesuffix(" (row 0)")
        raise RecordError(f"{path}, line {line}, column {column!r}: {why}") from None


def _inside(space: Space, value: float) -> bool:
    try:
        space.validate([[value]])
    except ValidationError:
        return False
    return True


def _from_arrays(
    a: dict[str, np.ndarray], path: Path, designs: Space
) -> tuple[list[Observation], list[str] | None]:
    def fail(why: str) -> RecordError:
        return RecordError(f"{path}: {why}")

    unknown = sorted(set(a) - set(_NPZ_KEYS))
    if unknown:
        raise fail(f"unknown key(s) {unknown}; expected {list(_NPZ_KEYS)}")
    missing = [k for k in ("design", "counts", "x") if k not in a]
    if missing:
        raise fail(f"missing key(s) {missing}; expected 'design', 'counts', 'x'")
    for key in ("design", "counts", "x", "luminosity"):
        if key in a and not (
            np.issubdtype(a[key].dtype, np.integer) or np.issubdtype(a[key].dtype, np.floating)
        ):
            raise fail(f"{key!r} has dtype {a[key].dtype}, expected numbers")
    D = len(designs)
    design = a["design"].astype(float)
    if design.ndim != 2 or design.shape[1] != D or design.shape[0] == 0:
        raise fail(f"'design' has shape {design.shape}, expected (k, {D}) with k >= 1")
    k = design.shape[0]
    if "design_names" in a and [str(s) for s in a["design_names"].reshape(-1)] != designs.names:
        raise fail(f"'design_names' are {a['design_names'].tolist()}, expected {designs.names}")
    for i, point in enumerate(design):
        try:
            designs.validate(point)
        except ValidationError as exc:
            raise fail(f"'design' row {i}: {str(exc).removesuffix(' (row 0)')}") from None
    counts = a["counts"]
    if counts.shape != (k,):
        raise fail(f"'counts' has shape {counts.shape}, expected ({k},) like 'design'")
    events = a["x"].shape[0] if a["x"].ndim else 0
    if not (
        np.isfinite(counts).all()
        and (counts >= 0).all()
        and (counts == np.round(counts)).all()
        and (counts <= events).all()  # before the cast: 9.3e18 would overflow int64
    ):
        raise fail(
            f"'counts' must be non-negative integers, each at most the {events} rows of 'x', "
            f"got {counts.tolist()}"
        )
    counts = counts.astype(np.int64)
    x = a["x"].astype(float)
    if x.ndim != 2 or x.shape[1] == 0 or x.shape[0] != counts.sum():
        raise fail(f"'x' has shape {x.shape}, expected ({int(counts.sum())}, X): sum of 'counts'")
    if not np.isfinite(x).all():
        raise fail("'x' contains NaN or infinite values")
    lums: list[float | None] = [None] * k
    if "luminosity" in a:
        lum = a["luminosity"].astype(float)
        if lum.shape != (k,):
            raise fail(f"'luminosity' has shape {lum.shape}, expected ({k},) like 'design'")
        for i, v in enumerate(lum):
            if not np.isnan(v):
                lums[i] = check_luminosity(float(v), f"{path}: 'luminosity' entry {i}")
    names = None
    if "feature_names" in a:
        names = [str(s) for s in a["feature_names"].reshape(-1)]
        if len(names) != x.shape[1]:
            raise fail(f"'feature_names' has {len(names)} names for {x.shape[1]} columns of 'x'")
    ends = np.cumsum(counts)
    obs = [
        Observation(design=design[i], x=x[ends[i] - counts[i] : ends[i]], luminosity=lums[i])
        for i in range(k)
    ]
    return obs, names
