"""Factories by name: the one registry behind tasks, design strategies and acquisitions.

A :class:`Registry` resolves a reference to a factory, in this order:

1. a name it was built with (the built-ins) or that the user added with
   :meth:`Registry.register` (or ``registry[name] = factory``): an explicit call, since
   importing an activesci module never adds one;
2. an entry point that an installed package declares in the registry's group, by its name
   or by the ``"package.module:attr"`` it points at (imported only when asked for);
3. a ``"package.module:attr"`` string, imported only with ``allow_plugins=True``: importing a
   module runs its code, so only a caller who chose the string (never a data file) allows it.

Nothing here changes what a registry holds except ``register`` and ``del``.

>>> reg = Registry("widget", {"plain": dict})
>>> reg.make("plain", colour="red")
{'colour': 'red'}
>>> reg.make("fancy")
Traceback (most recent call last):
...
activesci.errors.ValidationError: unknown widget 'fancy'; available: ['plain']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from importlib import metadata
from typing import Any, Generic, TypeVar

from activesci.errors import ValidationError

__all__ = ["Registry", "build", "qualified_name"]

T = TypeVar("T")


def qualified_name(function: Any) -> str:
    """``"module:qualname"`` of a function or class (how a stored config names it)."""
    return f"{getattr(function, '__module__', '')}:{getattr(function, '__qualname__', '')}"


class Registry(MutableMapping[str, Callable[..., T]], Generic[T]):
    """Factories of one kind by name: the built-ins, the user's and installed entry points.

    Parameters
    ----------
    kind : str
        What the factories build, for messages (``"task"``, ``"strategy"``).
    builtins : mapping
        The factories activesci ships, by name.
    group : str, optional
        The entry-point group installed packages declare factories in.
    ref : str
        How messages spell an importable reference (``"package.module:function"``).

    Iterating gives the built-in and registered names, then the entry points' names.
    """

    def __init__(
        self,
        kind: str,
        builtins: Mapping[str, Callable[..., T]],
        group: str | None = None,
        ref: str = "package.module:attr",
    ) -> None:
        self.kind = kind
        self.group = group
        self.ref = ref
        self._builtins = dict(builtins)
        self._added: dict[str, Callable[..., T]] = {}

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self)})"

    # -- the mapping ----------------------------------------------------------------------------
    def register(self, name: str, factory: Callable[..., T]) -> None:
        """Make ``factory(**options)`` available as ``name`` in this process.

        Raises
        ------
        ValidationError
            ``name`` is not a Python identifier, or ``factory`` is not callable.
        """
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValidationError(f"a {self.kind} name must be an identifier, got {name!r}")
        if not callable(factory):
            raise ValidationError(
                f"{self.kind} {name!r}: the factory must be callable, got {factory!r:.80}"
            )
        self._added[name] = factory

    def __setitem__(self, name: str, factory: Callable[..., T]) -> None:
        self.register(name, factory)

    def __delitem__(self, name: str) -> None:
        """Forget a registered factory (a built-in stays)."""
        del self._added[name]

    def __getitem__(self, name: str) -> Callable[..., T]:
        if name in self._added:
            return self._added[name]
        if name in self._builtins:
            return self._builtins[name]
        entry = self.entry_points().get(name)
        if entry is None:
            raise KeyError(name)
        return entry.load()

    def __iter__(self) -> Iterator[str]:
        names = [*self._builtins, *self._added, *self.entry_points()]
        return iter(dict.fromkeys(names))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self._added or name in self._builtins or name in self.entry_points()

    def entry_points(self) -> dict[str, metadata.EntryPoint]:
        """The installed entry points of the group, by name (none without a group)."""
        if self.group is None:
            return {}
        return {ep.name: ep for ep in metadata.entry_points(group=self.group)}

    # -- resolving and building -------------------------------------------------------------
    def resolve(self, ref: str, *, allow_plugins: bool = False) -> Callable[..., T]:
        """The factory ``ref`` names: a name, an entry point, or ``"package.module:attr"``.

        Raises
        ------
        ValidationError
            ``ref`` is unknown, names a module without ``allow_plugins``, cannot be imported,
            or is not callable.
        """
        if not isinstance(ref, str) or not ref:
            raise ValidationError(
                f"unknown {self.kind} {ref!r:.80}; expected a name or {self.ref!r}"
            )
        local = {**self._builtins, **self._added}
        if ref in local:
            return local[ref]
        by_path = {qualified_name(f): f for f in local.values()}
        if ref in by_path:
            return by_path[ref]
        entries = self.entry_points()
        declared = {ep.value.replace(" ", ""): ep for ep in entries.values()}
        if ref in entries or ref in declared:
            return (entries.get(ref) or declared[ref]).load()
        if ":" not in ref:
            where = f", an entry point of the group {self.group!r}" if self.group else ""
            raise ValidationError(
                f"unknown {self.kind} {ref!r}; available: {sorted(self)}{where}, or {self.ref!r}"
            )
        if not allow_plugins:
            raise ValidationError(
                f"{self.kind} {ref!r} names a module to import, which runs its code; expected "
                "a registered name or an installed entry point, or allow it if you trust it "
                "(allow_plugins=True, activesci ... --allow-plugins)"
            )
        return _imported(ref, self.kind)

    def make(self, ref: str, /, **options: Any) -> T:
        """``factory(**options)`` of the registered name (or entry point) ``ref``.

        Raises
        ------
        ValidationError
            An unknown name (the message lists the known ones), or options the factory
            does not take.
        """
        try:
            factory = self[ref] if isinstance(ref, str) else None
        except KeyError:
            factory = None
        if factory is None:
            raise ValidationError(f"unknown {self.kind} {ref!r}; available: {sorted(self)}")
        return build(self.kind, ref, factory, options)


def build(kind: str, name: str, factory: Callable[..., T], options: dict[str, Any]) -> T:
    """``factory(**options)``; options it does not take are a :class:`ValidationError`."""
    try:
        return factory(**options)
    except TypeError as exc:
        raise ValidationError(f"{kind} {name!r}: bad options {options}: {exc}") from None


def _imported(ref: str, kind: str) -> Callable[..., Any]:
    """Import ``"package.module:attr"`` (``attr`` may be dotted)."""
    module, _, attr = ref.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValidationError(
            f"{kind} {ref!r} could not be imported ({exc}); is its module on PYTHONPATH?"
        ) from None
    if not callable(target):
        raise ValidationError(f"{kind} {ref!r} is not callable")
    return target
