"""Progress of long work, shown where the user looks: a bar or the caller's callback.

The science modules report progress through :func:`progress_bar` and never draw: the bar is
tqdm's (notebook-aware, blanked when done) or, for a callable
:data:`~activesci.typing.Progress`, calls of ``progress(what, done, total)`` that a view (the
dashboard) turns into its own display.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

from activesci.typing import Progress

__all__ = ["progress_bar"]


@contextlib.contextmanager
def progress_bar(progress: Progress, *, total: int, desc: str, unit: str = "it") -> Iterator[Any]:
    """A bar of ``total`` steps for ``with``; ``update(k)`` and ``set_postfix`` are thread-safe.

    Parameters
    ----------
    progress : bool or callable
        ``True``: a tqdm bar that leaves nothing behind once the work is done; ``False``: none;
        a callable: ``progress(desc, done, total)`` after every update, and once more with
        ``done == total`` at the end (stopping early is not a failure).
    total, desc, unit
        The bar's length, label and unit.

    Examples
    --------
    >>> seen = []
    >>> with progress_bar(lambda *a: seen.append(a), total=2, desc="fit") as bar:
    ...     bar.update()
    >>> seen
    [('fit', 0, 2), ('fit', 1, 2), ('fit', 2, 2)]
    """
    with _bar(progress, total=total, desc=desc, unit=unit) as bar:
        yield _SharedBar(bar)


class _SharedBar:
    """A bar updated from several threads (members trained at once), under a lock."""

    def __init__(self, bar: Any) -> None:
        self.bar, self.lock = bar, threading.Lock()

    def update(self, k: int = 1) -> None:
        with self.lock:
            self.bar.update(k)

    def set_postfix(self, **values: Any) -> None:
        with self.lock:
            self.bar.set_postfix(**values)


class _CallbackBar:
    """The part of tqdm's interface training uses, reported to ``progress(what, done, total)``."""

    def __init__(self, progress: Callable[[str, int, int], None], desc: str, total: int) -> None:
        self.progress, self.desc, self.total, self.n = progress, desc, total, 0
        progress(desc, 0, total)

    def update(self, k: int = 1) -> None:
        self.n += k
        self.progress(self.desc, self.n, self.total)

    def set_postfix(self, **_: Any) -> None:
        """Losses are not reported through the callback."""


@contextlib.contextmanager
def _bar(progress: Progress, **options: Any) -> Iterator[Any]:
    """A tqdm bar that leaves nothing behind once its work is done, or a callback's bar.

    In a notebook, tqdm leaves a closed widget in the cell's output ("Error displaying widget:
    model not found" in Voila and in saved notebooks) and paints an early-stopped bar red as if
    it had failed; here the bar is shown through a display handle that is blanked at the end.
    A callable ``progress`` is called instead (:data:`activesci.typing.Progress`), and once
    more with ``done == total`` at the end (early stopping is not a failure).
    """
    if callable(progress):
        bar = _CallbackBar(progress, options["desc"], options["total"])
        try:
            yield bar
        finally:
            progress(bar.desc, bar.total, bar.total)
        return
    from tqdm.auto import tqdm
    from tqdm.notebook import tqdm_notebook

    options["disable"] = not progress
    if options.get("disable") or not issubclass(tqdm, tqdm_notebook):
        with tqdm(leave=False, **options) as bar:
            yield bar
        return
    from IPython.display import HTML, display

    bar = tqdm(leave=False, display=False, **options)
    handle = display(bar.container, display_id=True)
    try:
        yield bar
    finally:
        bar.total = bar.n  # early stopping is not a failure
        bar.close()
        if handle is not None:
            handle.update(HTML(""))
