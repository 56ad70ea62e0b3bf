"""Export a training-simulation campaign as a yadage workflow and a ``reana.yaml``.

The campaign is the one of :mod:`activesci.workflow`: simulate training samples in chunks (a
scatter over chunk seeds), merge the chunks, train the ratio estimator. Each step calls the
``activesci`` command explicitly (``activesci sample-training``, ``activesci merge``,
``activesci train``): REANA runs every step as ``bash -c COMMAND``, which replaces the
``activesci simulate`` ENTRYPOINT of the simulator image, so the same specification serves every
subcommand.

>>> spec = workflow_spec(environment="local")
>>> [stage["name"] for stage in spec["stages"]]
['sample', 'merge', 'train']
>>> spec["stages"][1]["scheduler"]["step"]["process"]["cmd"]
'activesci merge {chunks} --out {merged}'
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from activesci import tasks
from activesci.errors import ValidationError
from activesci.io import atomic_write

__all__ = ["ENVIRONMENTS", "export_reana", "workflow_spec"]

ENVIRONMENTS = ("docker", "local")
"""``docker``: each step in the simulator image (REANA); ``local``: on the host, via PATH."""

_ESTIMATOR = "train/estimator.pt"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _split_image(image: str) -> tuple[str, str]:
    """Split ``name[:tag]`` into yadage's ``image`` and ``imagetag`` (default ``latest``)."""
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise ValidationError(f"image must be a name such as 'activesci-sim:latest', got {image!r}")
    if "@" in image:
        raise ValidationError(f"image {image!r}: yadage takes name:tag, not a digest")
    name, sep, tag = image.rpartition(":")
    if sep and name and "/" not in tag:
        return name, tag
    return image, "latest"


def _environment(environment: str, image: str) -> dict[str, Any]:
    if environment == "local":
        return {"environment_type": "localproc-env"}
    name, tag = _split_image(image)
    return {"environment_type": "docker-encapsulated", "image": name, "imagetag": tag}


def _step(cmd: str, publish: dict[str, str], environment: dict[str, Any]) -> dict[str, Any]:
    return {
        "process": {"process_type": "string-interpolated-cmd", "cmd": cmd},
        "publisher": {"publisher_type": "interpolated-pub", "publish": publish},
        "environment": dict(environment),
    }


def _outputs(step: str, *names: str) -> dict[str, dict[str, str]]:
    """Stage parameters that are the outputs ``names`` of ``step`` (``init``: the inputs)."""
    return {name: {"step": step, "output": name} for name in names}


def _stage(
    name: str,
    dependency: str,
    parameters: dict[str, Any],
    step: dict[str, Any],
    scatter: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A yadage stage after ``dependency``: one ``step``, or one per scattered parameter value.

    Parameters
    ----------
    name, dependency : str
        The stage's name and the stage (or ``init``) it runs after.
    parameters : dict
        The step's parameters: values, or references to other stages' outputs.
    step : dict
        The step (:func:`_step`).
    scatter : dict, optional
        How to scatter the parameters over steps (a ``multistep-stage``); a single step if None.
    """
    kind = "singlestep-stage" if scatter is None else "multistep-stage"
    scheduler: dict[str, Any] = {"scheduler_type": kind, "parameters": parameters}
    if scatter is not None:
        scheduler["scatter"] = scatter
    scheduler["step"] = step
    return {"name": name, "dependencies": [dependency], "scheduler": scheduler}


def _parameters(
    task: str, samples: int, chunks: int, seed: int, method: str, epochs: int
) -> dict[str, Any]:
    """The workflow inputs: the chunk seeds and sizes are derived from ``seed`` and ``samples``."""
    from activesci.workflow.dag import chunk_plan

    plan = chunk_plan(samples, chunks, seed)  # the same chunks as an in-process Campaign
    return {
        "task": task,
        "method": method,
        "epochs": epochs,
        "seed": seed,
        "chunk_seeds": [c["seed"] for c in plan],
        "chunk_samples": [c["samples"] for c in plan],
    }


def workflow_spec(
    environment: str = "docker",
    image: str = "activesci-sim:latest",
    train_image: str | None = None,
) -> dict:
    """The yadage workflow (stages ``sample`` -> ``merge`` -> ``train``) as a JSON-like dict.

    Parameters
    ----------
    environment : str
        ``"docker"`` (``docker-encapsulated`` steps in ``image``) or ``"local"`` (``localproc-env``
        steps that run ``activesci`` from the host's PATH).
    image : str
        Simulator image ``name[:tag]`` for the docker environment.
    train_image : str, optional
        Image of the ``train`` step, which needs PyTorch (default: ``image``).
    """
    if environment not in ENVIRONMENTS:
        raise ValidationError(f"environment must be one of {ENVIRONMENTS}, got {environment!r}")
    env = _environment(environment, image)
    train_env = _environment(environment, image if train_image is None else train_image)
    sample = _stage(
        "sample",
        "init",
        {
            **_outputs("init", "task", "method", "chunk_seeds", "chunk_samples"),
            "chunk": "{workdir}/chunk.npz",
        },
        _step(
            "activesci sample-training {task} --samples {chunk_samples} --seed {chunk_seeds} "
            "--method {method} --out {chunk}",
            {"chunk": "{chunk}"},
            env,
        ),
        scatter={"method": "zip", "parameters": ["chunk_seeds", "chunk_samples"]},
    )
    merge = _stage(
        "merge",
        "sample",
        {"chunks": {"stages": "sample", "output": "chunk"}, "merged": "{workdir}/merged.npz"},
        _step("activesci merge {chunks} --out {merged}", {"merged": "{merged}"}, env),
    )
    train = _stage(
        "train",
        "merge",
        {
            **_outputs("init", "task", "method", "seed", "epochs"),
            **_outputs("merge", "merged"),
            "estimator": "{workdir}/estimator.pt",
        },
        _step(
            "activesci train {task} {merged} --method {method} --seed {seed} --epochs {epochs} "
            "--out {estimator}",
            {"estimator": "{estimator}"},
            train_env,
        ),
    )
    return {"stages": [sample, merge, train]}


def _yaml_scalar(value: Any) -> str:
    """``value`` as the one-line YAML that ``yadage-run -p NAME=VALUE`` reads back."""
    import yaml  # PyYAML comes with papermill; imported late so `activesci simulate` needs none

    if isinstance(value, str) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def _readme(
    task: str, parameters: dict[str, Any], environment: str, image: str, train_image: str
) -> str:
    flags = " ".join(f"-p {k}={shlex.quote(_yaml_scalar(v))}" for k, v in parameters.items())
    where = (
        f"The steps run in the image `{image}`, the training in `{train_image}` (it needs "
        "PyTorch); each step's own `activesci ...` command replaces the image's "
        "`activesci simulate` ENTRYPOINT."
        if environment == "docker"
        else "Every step runs `activesci` on the host (`localproc-env`): put it on PATH."
    )
    return f"""# activesci campaign: {task}

Simulate {sum(parameters["chunk_samples"])} training samples in {len(parameters["chunk_seeds"])} \
chunks, merge them and train the ratio estimator (method `{parameters["method"]}`, \
epochs {parameters["epochs"]}) into `{_ESTIMATOR}`.
{where}

Files: `workflow.yml` (yadage), `reana.yaml` (REANA; its `inputs.parameters` are the workflow
inputs; edit them there).

## On REANA

```
reana-client create -w {task}-campaign -f reana.yaml
reana-client upload -w {task}-campaign
reana-client start -w {task}-campaign
reana-client download -w {task}-campaign {_ESTIMATOR}
```

or in one go: `reana-client run -w {task}-campaign -f reana.yaml` (with `REANA_SERVER_URL` and
`REANA_ACCESS_TOKEN` set; `reana-client validate -f reana.yaml` checks the files first).

## Locally with yadage

In a virtual environment of its own (`scripts/yadage-venv.sh` in the activesci repository makes
one: yadage pins an old jsonschema):

```
yadage-run work workflow.yml {flags}
```

The estimator is then `work/{_ESTIMATOR}`. A spec exported with `--environment local` runs the
steps on this machine with the `activesci` found on PATH. The default (`docker`) one needs Docker
and, because `docker run` keeps the image's ENTRYPOINT, `PACKTIVITY_DOCKER_CMD_MOD=--entrypoint=`
in the environment of `yadage-run` (plus `PACKTIVITY_DOCKER_NOPULL=1` for an image built locally
rather than pulled from a registry).
"""


def export_reana(
    task: str,
    out: str | Path,
    *,
    image: str = "activesci-sim:latest",
    train_image: str | None = None,
    environment: str = "docker",
    **campaign: Any,
) -> Path:
    """Write ``workflow.yml``, ``reana.yaml`` and ``README.md`` of a training campaign to ``out``.

    Parameters
    ----------
    task : str
        A task name (:data:`activesci.tasks.TASKS`, an entry point) or the
        ``"package.module:function"`` of your own factory (then its module must be installed
        in ``image``); the steps build it with its default options.
    out : str or Path
        Folder to write to (created if needed; existing files are replaced).
    image : str
        Simulator image ``name[:tag]`` of the steps on REANA.
    train_image : str, optional
        Image of the ``train`` step, which needs PyTorch (default: ``image``).
    environment : str
        ``"docker"`` for REANA, or ``"local"`` to run the steps on the host with yadage.
    **campaign
        The campaign's keyword options, with the defaults of
        :class:`~activesci.workflow.dag.CampaignOptions`:

        * ``samples`` (int): total training samples, split as evenly as possible over the
          chunks;
        * ``chunks`` (int): number of ``sample-training`` steps, run in parallel;
          ``1 <= chunks <= samples``;
        * ``seed`` (int): seed of the training; the chunk seeds are spawned from it
          (``numpy.random.SeedSequence``);
        * ``method`` (str): estimator method (a key of
          :data:`activesci.inference.ratio.METHODS`);
        * ``epochs`` (int): training epochs.

    Returns
    -------
    Path
        The ``reana.yaml`` written.
    """
    from activesci.inference.methods import METHODS
    from activesci.workflow.dag import CampaignOptions

    options = CampaignOptions(**campaign)  # a TypeError names an unknown option
    if not (isinstance(task, str) and re.fullmatch(r"[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?", task)):
        raise ValidationError(
            f"task must be a task name or 'package.module:function', got {task!r:.80}"
        )
    tasks.load(task, allow_plugins=True)  # the caller's choice; an unknown task fails here
    method, seed = options.method, options.seed
    if method not in METHODS:
        raise ValidationError(f"unknown method {method!r}; available: {sorted(METHODS)}")
    samples = _positive_int("samples", options.samples)
    chunks = _positive_int("chunks", options.chunks)
    epochs = _positive_int("epochs", options.epochs)
    if samples < chunks:
        raise ValidationError(f"samples ({samples}) must be >= chunks ({chunks})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValidationError(f"seed must be a non-negative integer, got {seed!r}")
    spec = workflow_spec(environment, image, train_image)
    parameters = _parameters(task, samples, chunks, int(seed), method, epochs)
    reana = {
        "version": "0.9.0",
        "inputs": {"parameters": parameters},
        "workflow": {"type": "yadage", "file": "workflow.yml"},
        "outputs": {"files": [_ESTIMATOR]},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    readme = _readme(task, parameters, environment, image, train_image or image)
    for name, text in (
        ("workflow.yml", yaml.safe_dump(spec, sort_keys=False)),
        ("README.md", readme),
        ("reana.yaml", yaml.safe_dump(reana, sort_keys=False)),
    ):
        with atomic_write(out / name, "w") as fh:
            fh.write(text)
    return out / "reana.yaml"
