"""Attributes of a package imported on first use (PEP 562), so importing it stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, names: Mapping[str, str], modules: Iterable[str] = ()
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports what is asked for on first use.

    Parameters
    ----------
    package : str
        The package's name (its ``__name__``).
    names : mapping
        Attribute name -> the submodule that defines it.
    modules : iterable of str
        Submodules returned whole.
    """
    whole = frozenset(modules)

    def __getattr__(name: str) -> Any:
        if name in whole:
            return importlib.import_module(f"{package}.{name}")
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
