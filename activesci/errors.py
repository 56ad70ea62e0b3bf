"""Exceptions raised by activesci.

Every error a user can trigger with bad input is a subclass of :class:`ActivesciError`; the
ones about values are also :class:`ValueError`, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "ActivesciError",
    "ChecksumError",
    "EventFileError",
    "MissingCapabilityError",
    "MissingExtraError",
    "OutOfSpaceError",
    "RecordError",
    "ShapeError",
    "SpecError",
    "StepError",
    "StoreError",
    "ValidationError",
    "WorkflowError",
]


class ActivesciError(Exception):
    """Base class of every error activesci raises on purpose."""


class ValidationError(ActivesciError, ValueError):
    """An input value is not what was expected; the message names the value and the expectation."""


class OutOfSpaceError(ValidationError):
    """A point lies outside its space (outside the bounds, not a category, or NaN)."""


class ShapeError(ValidationError):
    """An array has the wrong shape or the wrong number of columns."""


class EventFileError(ValidationError):
    """An events file does not follow the documented ``activesci.events`` format."""


class MissingCapabilityError(ActivesciError, TypeError):
    """A method needs a simulator capability (e.g. ``joint_score``) that the simulator lacks."""


class MissingExtraError(ActivesciError, ImportError):
    """An optional dependency (an ``activesci[extra]``) is not installed; says how to install it."""


class StoreError(ValidationError):
    """A run store is missing, unreadable, of a newer format, or asked to break its rules."""


class SpecError(ValidationError):
    """A benchmark spec fails its schema; the message names the path of the bad field."""


class RecordError(ValidationError):
    """Recorded or manually entered data are malformed, or have no result for a design."""


class WorkflowError(ActivesciError):
    """A workflow could not run: a step failed, hung, or left no valid output."""


class StepError(WorkflowError):
    """A workflow step failed; the message names the step, its command and its stderr tail."""


class ChecksumError(WorkflowError, ValueError):
    """A file does not match its recorded checksum (truncated, altered or partial)."""
