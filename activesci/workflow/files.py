"""Files that travel between workflow steps: SHA-256 sidecars written and verified.

A step that produces ``chunk.npz`` also writes ``chunk.npz.sha256`` (``sha256sum`` format)
once the file is complete; a consumer verifies the pair before it reads the data, so a
truncated, altered or half-written chunk is refused instead of merged.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = path.write_text("hello")
>>> write_checksum(path).read_text().split()[0][:12]
'2cf24dba5fb0'
>>> verify_checksum(path)
PosixPath('...a.txt')
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from activesci.errors import ChecksumError

__all__ = ["checksum_path", "sha256", "verify_checksum", "write_checksum"]


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar of ``path``: ``path`` + ``.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def write_checksum(path: str | os.PathLike[str]) -> Path:
    """Write the sidecar of a complete file (``sha256sum`` format); return its path."""
    path = Path(path)
    side = checksum_path(path)
    side.write_text(f"{sha256(path)}  {path.name}\n")
    return side


def verify_checksum(path: str | os.PathLike[str]) -> Path:
    """Check ``path`` against its sidecar; raise :class:`ChecksumError` naming the problem."""
    path = Path(path)
    side = checksum_path(path)
    if not path.exists():
        raise ChecksumError(f"{path}: no such file")
    if not side.exists():
        raise ChecksumError(f"{path}: no checksum file {side.name} (the step did not finish?)")
    expected = side.read_text().split()
    if not expected or len(expected[0]) != 64:
        raise ChecksumError(f"{side}: not a sha256sum line")
    actual = sha256(path)
    if actual != expected[0]:
        raise ChecksumError(
            f"{path}: sha256 {actual[:12]}... does not match {side.name} ({expected[0][:12]}...): "
            "the file is truncated or altered"
        )
    return path
