"""Containers for workflow steps: which runtimes work here, their command lines, a local image.

A step runs one command either on the host (runtime ``"local"``) or in a container (``"podman"``
or ``"docker"``) that sees only its work folder, mounted at ``/work``, and no network. Commands
name files relative to the work folder (or under ``/work``), so the same step runs anywhere.

The simulator image is built locally by ``docker/build-local-image.sh`` from Debian packages,
without any image registry: see :func:`ensure_local_image`.

A container configuration read back from data (a run store's experiment) is untrusted: it
could name any image and mount any folder. :func:`validate_container_config` accepts only the
local ``localhost/activesci-*`` images (others must be confirmed by the caller) and a work
folder inside the run folder.

>>> argv = container_argv("docker", "activesci-sim", ["activesci", "tasks"], "/tmp")
>>> " ".join(argv[argv.index("-v"):])
'-v /tmp:/work:Z -w /work --entrypoint activesci activesci-sim tasks'
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from activesci.errors import ActivesciError, MissingCapabilityError, ValidationError

__all__ = [
    "BUILD_SCRIPT",
    "LOCAL_IMAGE",
    "RUNC",
    "RUNTIMES",
    "ULIMITS",
    "container_argv",
    "ensure_local_image",
    "relative_workdir",
    "runtime_available",
    "validate_container_config",
]

#: Where a step can run: on the host, or in a container run by podman or docker.
RUNTIMES = ("local", "podman", "docker")
#: The OCI runtime podman is told to use when it exists (Debian's ``runc`` package).
RUNC = Path("/usr/sbin/runc")
#: The script that builds the simulator image from Debian packages (in a source checkout).
BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "build-local-image.sh"
#: Resource limits of every container; runc refuses the inherited ones in some sandboxes.
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")
_MISSING = 3  # exit status of the build script for a missing requirement
#: Images built on this machine by :func:`ensure_local_image`; others need the caller's consent.
LOCAL_IMAGE = re.compile(r"localhost/activesci-[a-z0-9][a-z0-9._-]*(:[A-Za-z0-9_][A-Za-z0-9._-]*)?")


def _check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValidationError(f"unknown container runtime {runtime!r}; expected one of {RUNTIMES}")
    return runtime


def runtime_available(runtime: str) -> bool:
    """Whether ``runtime`` can run steps on this machine (the answer is cached).

    ``"local"`` always can; ``"podman"`` needs ``podman`` on ``PATH`` and either :data:`RUNC`
    or a default OCI runtime that ``podman info`` reports; ``"docker"`` needs ``docker`` on
    ``PATH`` and a daemon that answers ``docker info``.

    Raises
    ------
    ValidationError
        ``runtime`` is not one of :data:`RUNTIMES`.
    """
    return _available(_check_runtime(runtime))


@functools.cache
def _available(runtime: str) -> bool:
    if runtime == "local":
        return True
    if shutil.which(runtime) is None:
        return False
    if runtime == "podman" and RUNC.exists():
        return True
    try:
        done = subprocess.run([runtime, "info"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def container_argv(
    runtime: str,
    image: str,
    command: Sequence[str],
    workdir: str | os.PathLike[str],
    *,
    network: str = "none",
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    name: str | None = None,
) -> list[str]:
    """The command line that runs ``command`` in ``image`` with ``workdir`` mounted at ``/work``.

    The container is removed when it exits, has no network (``network="none"``), the limits
    :data:`ULIMITS`, and starts in ``/work``. ``command[0]`` replaces the image's entrypoint
    (``--entrypoint``), so any command runs, not only the ``activesci simulate`` the image
    starts by default: pass ``["activesci", "simulate", "weinberg", ...]`` in full. Podman is
    told to use :data:`RUNC` when it exists.

    Parameters
    ----------
    runtime : {"local", "podman", "docker"}
        ``"local"`` returns ``list(command)``, to be run on the host with ``cwd=workdir``.
    image : str
        Image reference, e.g. the tag :func:`ensure_local_image` returns.
    command : sequence of str
        Program and arguments; paths in it are relative to ``workdir`` or under ``/work``.
    workdir : path
        An existing folder: the step's inputs and outputs.
    network : str
        Container network mode (``"none"`` isolates the step).
    env : mapping of str to str, optional
        Environment variables set in the container.
    user : str, optional
        ``uid[:gid]`` or name the command runs as (default: the image's, root).
    name : str, optional
        The container's name, by which it can be removed (``podman rm -f NAME``).

    Returns
    -------
    list of str
        The argv to pass to :func:`subprocess.run`.

    Raises
    ------
    ValidationError
        Unknown runtime, empty or string ``command``, empty ``image`` or ``network``, a
        ``workdir`` that is not a folder, or an environment variable name that is empty or
        contains ``=``.
    """
    _check_runtime(runtime)
    if isinstance(command, str) or not command or not all(isinstance(a, str) for a in command):
        raise ValidationError(
            f"command must be a non-empty sequence of strings (program and arguments), "
            f"got {command!r}"
        )
    folder = Path(workdir)
    if not folder.is_dir():
        raise ValidationError(f"workdir {str(folder)!r} is not an existing folder")
    if runtime == "local":
        return list(command)
    if not image:
        raise ValidationError(f"image must be a non-empty image reference, got {image!r}")
    if not network:
        raise ValidationError(f"network must be a network mode such as 'none', got {network!r}")
    argv = [runtime]
    if runtime == "podman" and RUNC.exists():
        argv += ["--runtime", str(RUNC)]
    argv += ["run", "--rm", "--network", network]
    for limit in ULIMITS:
        argv += ["--ulimit", limit]
    argv += ["-v", f"{folder.absolute()}:/work:Z", "-w", "/work"]
    for key, value in (env or {}).items():
        if not key or "=" in key:
            raise ValidationError(f"environment variable name {key!r} is empty or contains '='")
        argv += ["-e", f"{key}={value}"]
    if user is not None:
        argv += ["--user", user]
    if name is not None:
        argv += ["--name", name]
    return [*argv, "--entrypoint", command[0], image, *command[1:]]


def validate_container_config(
    config: Mapping[str, Any],
    run_dir: str | os.PathLike[str],
    *,
    allow_images: Sequence[str] = (),
) -> dict[str, Any]:
    """Check the ``runtime``, ``image`` and ``workdir`` of a configuration read from data.

    Parameters
    ----------
    config : mapping
        Untrusted settings, e.g. a run store's experiment: ``runtime`` (default ``"local"``),
        ``image`` (required by a container runtime) and ``workdir``.
    run_dir : path
        The run folder; the work folder (the only folder a container sees) must lie inside it.
    allow_images : sequence of str
        Images the caller confirms, besides the local ``localhost/activesci-*`` ones.

    Returns
    -------
    dict
        ``runtime``, ``image`` and ``workdir`` (resolved, symlinks followed; a relative
        ``workdir`` is relative to ``run_dir``, as :func:`relative_workdir` stores it).

    Raises
    ------
    ValidationError
        An unknown runtime; an image that is neither local nor in ``allow_images``; a
        ``workdir`` that is not a subfolder of ``run_dir`` (after following symlinks).

    Examples
    --------
    >>> config = {"runtime": "podman", "image": "docker.io/someone/any:latest", "workdir": "/"}
    >>> validate_container_config(config, "runs/demo")
    Traceback (most recent call last):
    ...
    activesci.errors.ValidationError: image 'docker.io/someone/any:latest' is not a local ...
    """
    runtime = _check_runtime(config.get("runtime", "local"))
    image = config.get("image")
    if (runtime != "local" or image is not None) and not (
        isinstance(image, str) and (LOCAL_IMAGE.fullmatch(image) or image in allow_images)
    ):
        raise ValidationError(
            f"image {image!r} is not a local activesci image (expected localhost/activesci-*, "
            "as built by ensure_local_image); pass allow_images=[...] with it to run it anyway"
        )
    workdir, root = config.get("workdir"), Path(run_dir).resolve()
    folder = None
    if isinstance(workdir, str) and workdir:
        try:  # relative to the run folder (as stored), not to the current folder
            folder = (root / workdir).resolve()
        except (OSError, ValueError):  # a NUL byte, a symlink loop
            folder = None
    if folder is None or folder == root or not folder.is_relative_to(root):
        raise ValidationError(
            f"workdir {workdir!r} is not a folder inside the run folder {str(root)!r}; "
            "expected a subfolder such as 'experiment' (symlinks are followed)"
        )
    return {"runtime": runtime, "image": image, "workdir": folder}


def relative_workdir(config: Mapping[str, Any], run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``config`` with its ``workdir`` relative to ``run_dir`` when it lies inside it.

    What a run store keeps, so that a run folder that is moved or copied still resumes with
    its own work folder (:func:`validate_container_config` resolves it against the run
    folder again). A ``workdir`` outside ``run_dir`` is kept as it is (and refused on resume).

    Examples
    --------
    >>> relative_workdir({"workdir": "/runs/a/experiment"}, "/runs/a")["workdir"]
    'experiment'
    """
    out = dict(config)
    workdir = out.get("workdir")
    if isinstance(workdir, str | os.PathLike):
        try:
            root = Path(run_dir).resolve()
            folder = (root / workdir).resolve()
        except (OSError, ValueError):
            return out
        if folder != root and folder.is_relative_to(root):
            out["workdir"] = folder.relative_to(root).as_posix()
    return out


def ensure_local_image(force: bool = False) -> str:
    """Build the simulator image with podman if the current sources have none; return its tag.

    Runs :data:`BUILD_SCRIPT`: the first build debootstraps a Debian base with Python, NumPy
    and SciPy (minutes, cached under ``~/.cache/activesci``); later ones add the activesci
    sources on top (seconds); an existing tag is returned at once.

    Parameters
    ----------
    force : bool
        Rebuild the image even if its tag exists (the cached base is reused).

    Returns
    -------
    str
        ``localhost/activesci-sim:<hash of the sources>``.

    Raises
    ------
    MissingCapabilityError
        Not a source checkout, not root, or podman, runc or debootstrap is not installed; the
        message names what is missing and how to install it.
    ActivesciError
        The build failed; the message ends with the build's log.
    """
    install = "apt-get install -y podman runc debootstrap"
    if not BUILD_SCRIPT.is_file():
        raise MissingCapabilityError(
            f"the image build script {BUILD_SCRIPT} is missing: build images from a source "
            "checkout of activesci"
        )
    if shutil.which("podman") is None:
        raise MissingCapabilityError(f"podman is not installed: {install}")
    if not runtime_available("podman"):
        raise MissingCapabilityError(f"podman has no working OCI runtime (runc): {install}")
    if os.geteuid() != 0:
        raise MissingCapabilityError("building the local image needs root (debootstrap, podman)")
    done = subprocess.run(
        ["bash", str(BUILD_SCRIPT), *(["--force"] if force else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == _MISSING:
        raise MissingCapabilityError(done.stderr.strip().splitlines()[-1])
    lines = done.stdout.split()
    if done.returncode != 0 or not lines:
        log = "\n".join(done.stderr.strip().splitlines()[-20:])
        raise ActivesciError(f"{BUILD_SCRIPT.name} failed (exit {done.returncode}):\n{log}")
    return lines[-1]
