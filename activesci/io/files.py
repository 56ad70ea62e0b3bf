"""Files: written atomically, read only after validation, with SHA-256 sidecars.

:func:`atomic_write` is how activesci writes every file a user names: into a new temporary
file in the same folder, created with ``O_EXCL`` under an unpredictable name (so a symlink
planted at ``out.part`` cannot redirect it), then renamed over the target (a symlink at the
target is replaced, not followed). A killed writer leaves the target as it was.

A step that produces ``chunk.npz`` also writes ``chunk.npz.sha256`` (``sha256sum`` format)
once the file is complete; a consumer verifies the pair before it reads the data, so a
truncated, altered or half-written chunk is refused instead of merged.

A file to read is checked first (:func:`check_input_file`: a FIFO or device would hang a
reader); an ``.npz`` archive is read without pickle, each array's header before its data
(:func:`read_npz_arrays`).

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
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from activesci.errors import ChecksumError, ValidationError

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_input_file",
    "check_output_path",
    "checksum_path",
    "read_npz_arrays",
    "sha256",
    "verify_checksum",
    "write_checksum",
]


def check_input_file(
    path: str | os.PathLike[str],
    error: type[Exception] = ValidationError,
    what: str = "file",
) -> Path:
    """Return ``path`` as a ``Path`` if it names a regular file to read, else raise ``error``.

    Symlinks are followed. A FIFO (reading it waits forever for a writer), a device
    (``/dev/zero`` never ends) or a folder is refused before anything is opened.

    Raises
    ------
    error
        Naming the path: missing, empty, with a NUL byte, or not a regular file.
    """
    text = os.fspath(path) if isinstance(path, str | os.PathLike) else None
    if not isinstance(text, str) or not text.strip() or "\0" in text:
        raise error(f"{path!r:.120} is not a path to a {what}")
    path = Path(text)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a device, FIFO or socket"
        raise error(f"{path}: is {kind}, not a {what}")
    return path


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a ``Path`` if a file may be written there, else raise.

    The target may be missing, a regular file, or a symlink (which a write replaces). A
    folder, a device (``/dev/null``), a FIFO or a socket is refused: a write renames a new
    file over the target, which would replace the device itself when run as root.

    Raises
    ------
    ValidationError
        An empty path, one with a NUL byte, or one naming something other than a file.
    """
    text = os.fspath(path)
    if not str(text).strip() or "\0" in str(text):
        raise ValidationError(f"{str(text)!r} is not a file path (empty, or with a NUL byte)")
    path = Path(text)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:  # e.g. a component that is a file, or no permission to look
        raise ValidationError(f"{str(path)!r} cannot be written ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ValidationError(f"{str(path)!r} is a folder; expected the path of a file to write")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise ValidationError(
            f"{str(path)!r} is a device, FIFO or socket, not a file; expected the path of a "
            "regular file to write"
        )
    return path


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a new temporary file beside ``path``; on success, rename it over ``path``.

    The temporary, ``.<name>.<random>.part``, is created with ``O_EXCL`` (it never opens an
    existing file or follows a symlink) and is flushed to disk before the rename; on an error
    it is removed and ``path`` is left as it was. Missing parent folders are created.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; a symlink there is replaced by the file, its target is untouched.
    mode : {"wb", "w"}
        Binary, or UTF-8 text (with no newline translation, as the :mod:`csv` module needs).

    Yields
    ------
    file object
        The temporary file, open for writing.

    Raises
    ------
    ValidationError
        ``mode`` is neither ``"wb"`` nor ``"w"``; or as :func:`atomic_path`, whose errors
        (a bad ``path``, an unwritable folder) these are too.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(target, "w") as fh:
    ...     _ = fh.write("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['out.txt'])
    """
    if mode not in ("wb", "w"):
        raise ValidationError(f"mode must be 'wb' or 'w', got {mode!r}")
    text = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    with _replacing(path) as (_, fd), os.fdopen(fd, mode, **text) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def _replacing(path: str | os.PathLike[str], suffix: str = "") -> Iterator[tuple[Path, int]]:
    """Check ``path`` as a write target and create its temporary with ``O_EXCL``.

    Yields the temporary (a random name beside ``path``, in created parent folders) and its
    open file descriptor; renames it over ``path`` when the block ends, removes it when the
    block raises.
    """
    path = check_output_path(path)
    if path.is_dir():  # a symlink to a folder
        raise ValidationError(f"{str(path)!r} is a folder; expected the path of a file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.part{suffix}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        yield tmp, fd
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A new, empty temporary file beside ``path``, renamed over ``path`` on success.

    For writers that take a path rather than a file object (papermill, a library's
    ``save(path)``): they write the temporary, which was created with ``O_EXCL`` under an
    unpredictable name, so a symlink at ``path`` (or anywhere a writer might guess) is
    replaced, never followed. On an error the temporary is removed and ``path`` is left as
    it was.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. Missing parent folders are created.
    suffix : str
        Ending of the temporary's name, for writers that check it (e.g. ``".ipynb"``).

    Yields
    ------
    Path
        The temporary file to write.

    Raises
    ------
    ValidationError
        ``path`` is an existing folder, a device, FIFO or socket (:func:`check_output_path`).
    OSError
        The folder cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['out.txt'])
    """
    with _replacing(path, suffix) as (tmp, fd):
        os.close(fd)
        yield tmp


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
    with atomic_write(side, "w") as fh:
        fh.write(f"{sha256(path)}  {path.name}\n")
    return side


def verify_checksum(path: str | os.PathLike[str]) -> Path:
    """Check ``path`` against its sidecar; raise :class:`ChecksumError` naming the problem."""
    path = check_input_file(path, ChecksumError)  # a FIFO would hang sha256
    side = checksum_path(path)
    if not side.exists():
        raise ChecksumError(f"{path}: no checksum file {side.name} (the step did not finish?)")
    check_input_file(side, ChecksumError, "checksum file")
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


def read_npz_arrays(
    path: Path, error: type[Exception], what: str = "file"
) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, loaded without pickle; failures raise ``error``.

    Each array's header is read first: one that declares more data than the archive holds
    (a crafted or truncated file) is refused before anything is allocated.
    """
    path = check_input_file(path, error, what)  # a FIFO or device would hang np.load
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except _UNREADABLE as exc:
        raise error(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise error(f"{path}: not a readable .npz archive (it holds one .npy array)")
    with data:
        try:
            for info in data.zip.infolist():
                _check_header(data.zip, info)
            return {k: data[k] for k in data.files}
        except _Oversized as exc:
            raise error(f"{path}: {exc}") from None
        except _UNREADABLE as exc:
            # e.g. an object array (refused without pickle), a truncated or corrupt member
            raise error(f"{path}: unreadable array ({exc})") from None


#: What reading a corrupt archive raises (zipfile: encrypted members are a RuntimeError,
#: unknown compression methods a NotImplementedError).
_UNREADABLE = (
    OSError,
    ValueError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
)


class _Oversized(Exception):
    """An array header declares more data than its archive member holds."""


def _check_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse a member whose ``.npy`` header declares more bytes than the member holds."""
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read_header = {
            (1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0,
        }.get(version)
        if read_header is None:
            raise ValueError(f"{info.filename}: unknown .npy format version {version}")
        shape, _, dtype = read_header(member)
        declared = math.prod(shape) * dtype.itemsize
        if declared > info.file_size:
            raise _Oversized(
                f"{info.filename!r} declares shape {shape} of {dtype} ({declared:,} bytes) "
                f"but holds {info.file_size:,} bytes (truncated or crafted)"
            )
