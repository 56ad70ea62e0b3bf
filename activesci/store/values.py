"""What a run store writes and reads back, checked: JSON values, round numbers, arrays.

A store file is data, possibly crafted: every value read back passes these checks or is a
:class:`~activesci.errors.StoreError`; every value written is converted to plain JSON first.
"""

from __future__ import annotations

import io
import json
import operator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from activesci.errors import StoreError, ValidationError


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _jsonable(value: Any, where: str) -> Any:
    """``value`` with NumPy arrays and scalars converted, or a ValidationError naming ``where``."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ValidationError(
                f"{where} is an array of dtype {value.dtype}, which is not JSON-serialisable "
                "(use a numeric array)"
            )
        return _jsonable(value.tolist(), where)
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(
                    f"{where} has the key {k!r} of type {type(k).__name__}; "
                    "JSON object keys must be str"
                )
            out[k] = _jsonable(v, f"{where}[{k!r}]")
        return out
    raise ValidationError(
        f"{where} is a {type(value).__name__} ({value!r:.80}), which is not JSON-serialisable "
        "(use str, int, float, bool, None, lists, dicts or numeric numpy arrays)"
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _round_number(round: Any, what: str) -> int:
    if isinstance(round, bool):
        raise ValidationError(f"{what} round must be an integer, got {round!r}")
    try:
        r = operator.index(round)
    except TypeError:
        raise ValidationError(f"{what} round must be an integer, got {round!r}") from None
    if r < 0:
        raise ValidationError(f"{what} round must be >= 0, got {r}")
    return r


def _array_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x, dtype=np.float64), allow_pickle=False)
    return buf.getvalue()


def _array(blob: Any, n: Any) -> np.ndarray:
    """The float64 ``(n, X)`` array saved in ``blob``; ValueError if the bytes are not one.

    The header is checked against ``n`` and the size of the data before anything is
    allocated, so a header that declares 10**13 rows costs nothing.
    """
    if not isinstance(blob, bytes) or isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"expected bytes and an integer row count, got {type(blob).__name__}")
    buf = io.BytesIO(blob)
    version = np.lib.format.read_magic(buf)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"unsupported .npy version {version}")
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf)
    if dtype != np.dtype("<f8") or fortran or len(shape) != 2 or shape[0] != n:
        raise ValueError(f"an array of {dtype} and shape {shape}, expected float64 ({n}, X)")
    if len(blob) - buf.tell() != 8 * shape[0] * shape[1]:
        raise ValueError(f"{len(blob) - buf.tell()} bytes of data for the shape {shape}")
    return np.frombuffer(blob, dtype="<f8", offset=buf.tell()).reshape(shape).copy()


def _json_value(text: Any, kind: type, where: str) -> Any:
    """Parse a stored JSON document of type ``kind``; StoreError naming ``where`` if not."""
    try:
        if not isinstance(text, str):
            raise ValueError(f"a {type(text).__name__}, not text")
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise StoreError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(value, kind):
        raise StoreError(
            f"{where} is a JSON {type(value).__name__}, expected a JSON "
            f"{'object' if kind is dict else 'list'}"
        )
    return value


def _check_rounds(rounds: list[Any], what: str, where: str) -> None:
    """StoreError unless ``rounds`` is ``0, 1, 2, ...`` (a missing round, or a bad number)."""
    if rounds == list(range(len(rounds))):
        return
    missing = next(k for k in range(len(rounds)) if k not in rounds)
    raise StoreError(
        f"{where}: the {what} of round {missing} is missing or misnumbered (stored rounds: "
        f"{rounds[:20]!r}); expected rounds 0, 1, 2, ... without gaps: the store was altered"
    )


def _check_summary_round(r: int, observed: int, summaries: int, where: str) -> None:
    """StoreError unless round ``r`` has an observation and every earlier round a summary."""
    if r >= observed:
        raise StoreError(
            f"{where}: cannot write the summary of round {r}: it has no observation "
            f"({observed} stored; store the observation first)"
        )
    if r > summaries:
        raise StoreError(
            f"{where}: cannot write the summary of round {r}: the next summary is round "
            f"{summaries} (summaries are written in order without gaps)"
        )
