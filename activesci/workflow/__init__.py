"""Workflows: campaigns as adage DAGs, executors, containerised steps and REANA export.

* :class:`Campaign` (``dag.py``): plan -> simulate chunks -> merge -> train, grown by adage rules;
* executors (``executors.py``): ``inline``, ``processes`` and ``dask`` (local or a real cluster);
* :class:`CommandStep` and :class:`CommandSimulator` (``steps.py``): commands on the host or in
  podman/docker containers, with checked outputs, timeouts and retries;
* :class:`WorkflowExperiment` (``experiment.py``): each round's experiment as a workflow step;
* ``containers.py``: container command lines and the locally built simulator image;
* ``reana.py``: ``activesci export-reana``, a yadage workflow and ``reana.yaml``.
"""

from activesci.workflow.dag import Campaign, CampaignResult, DagTracker
from activesci.workflow.executors import DaskExecutor, InlineExecutor, ProcessExecutor
from activesci.workflow.experiment import WorkflowExperiment
from activesci.workflow.steps import CommandSimulator, CommandStep

__all__ = [
    "Campaign",
    "CampaignResult",
    "CommandSimulator",
    "CommandStep",
    "DagTracker",
    "DaskExecutor",
    "InlineExecutor",
    "ProcessExecutor",
    "WorkflowExperiment",
]
