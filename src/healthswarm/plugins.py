"""Plug-ins by name: the one mechanism behind formats, detectors, playbook actions, buses, federated
strategies and model kinds.

A `Registry` holds one kind of plug-in. Built-ins are a table of `"module:attribute"` targets imported
on first use (a command that reads Suricata does not pay for pydicom); code registers more with the
`register` decorator; other installed packages add theirs through an entry-point group
(`[project.entry-points."healthswarm.formats"] myformat = "mypkg.myformat:MyFormat"`), read once.
A plug-in that cannot be loaded is a `PluginError` naming the entry point and its package, which the
CLI prints as one line; an unknown name is an `UnknownPluginError` listing the names there are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar, overload

from healthswarm.errors import HealthswarmError, InputError, Location, Problem

T = TypeVar("T")
R = TypeVar("R")


class PluginError(HealthswarmError):
    """A plug-in is broken: it cannot be imported, is not what its group expects, or its name is taken."""


class UnknownPluginError(InputError, KeyError):
    """No plug-in of that name. A KeyError too, for callers that look names up like dict keys; without a
    location, `args[0]` is the bare message, for callers that put their own in front."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(problem)
        self.args = (message,)

    __str__ = Exception.__str__


def _describe(ep: EntryPoint) -> str:
    dist = f", package {ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
    return f"entry point '{ep.name} = {ep.value}' (group {ep.group}{dist})"


def _origin(obj: object) -> tuple[str, str]:
    """Where a class or function is defined; an instance: where its class is."""
    named = obj if hasattr(obj, "__qualname__") else type(obj)
    return named.__module__, named.__qualname__


def _same(a: object, b: object) -> bool:
    # a module imported twice (under two names, or reloaded) registers an equal twin, not a rival
    return a is b or _origin(a) == _origin(b)


class Registry(Generic[T]):
    """Plug-ins of one kind by name.

    `kind` names them in messages ("format"); `group` is the entry-point group; `builtins` maps names to
    `"module:attribute"`; `make` turns what a decorator or an entry point hands over into the stored item
    (e.g. a class into its instance); `expect` is the type every stored item must be an instance of;
    `name_of` reads the name of a decorated object (default: its `name` attribute).
    """

    def __init__(self, kind: str, group: str, builtins: Mapping[str, str] | None = None, *,
                 make: Callable[[Any], T] | None = None, expect: type | tuple[type, ...] = object,
                 name_of: Callable[[Any], str] | None = None) -> None:
        self.kind, self.group = kind, group
        self._builtins = dict(builtins or {})
        self._make = make
        self._expect = expect
        self._name_of = name_of or (lambda obj: obj.name)
        self._items: dict[str, T] = {}
        self._sources: dict[str, str] = {}  # name -> what registered it, for the duplicate message
        self._entry_points: dict[str, EntryPoint] | None = None

    # -- registering ------------------------------------------------------------------------------

    @overload
    def register(self, obj: R, /) -> R: ...
    @overload
    def register(self, *, name: str) -> Callable[[R], R]: ...

    def register(self, obj: Any = None, /, *, name: str | None = None) -> Any:
        """Decorator: `@registry.register` (the name read from the object) or `@registry.register(name="x")`."""
        def decorate(target: R) -> R:
            key = name or self._name_of(target)
            # only a built-in's own module may register its name (learn's model classes do, on import)
            if key in self._builtins and self._builtins[key].partition(":")[0] != _origin(target)[0]:
                raise PluginError(f"{_where(target)} takes the name of the built-in {self.kind} {key!r}")
            self.add(key, target, _where(target))
            return target
        return decorate if obj is None else decorate(obj)

    def add(self, name: str, obj: object, source: str = "") -> None:
        """Register `obj` (made into an item) under `name`; a second, different plug-in of that name is refused."""
        if not name:
            raise PluginError(f"{self.kind} {source or obj!r} has no name")
        item = self._made(obj, source or name)
        if name in self._items:
            if _same(self._items[name], item):
                return
            raise PluginError(f"{self.kind} {name!r} registered twice: by {self._sources[name]} and by "
                              f"{source or _where(obj)}")
        self._items[name] = item
        self._sources[name] = source or _where(obj)

    # -- finding ----------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every name: built-ins in their table's order, then the rest sorted."""
        others = sorted({*self._items, *self._plugins()} - self._builtins.keys())
        return [*self._builtins, *others]

    def get(self, name: str, where: Location | None = None) -> T:
        """The plug-in `name`, imported on first use; unknown: UnknownPluginError at `where`."""
        if name not in self._items:
            if name in self._builtins:
                self._load(name, self._builtins[name], f"built-in {self.kind} {name!r}")
            elif (ep := self._plugins().get(name)) is not None:
                self._load_entry_point(ep)
            else:
                problem = Problem(where or Location(f"<{self.kind}>"), f"unknown {self.kind} {name!r}",
                                  "one of " + ", ".join(sorted(self.names())))
                # no location given: the caller puts its own (`--format: unknown format …`)
                raise UnknownPluginError(problem, str(problem) if where else str(problem).partition(": ")[2])
        return self._items[name]

    def all(self) -> list[T]:
        return [self.get(name) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    # -- loading ----------------------------------------------------------------------------------

    def _plugins(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=self.group):
                if ep.name in self._builtins:
                    raise PluginError(f"{_describe(ep)} takes the name of the built-in {self.kind} {ep.name!r}")
                if ep.name in found and found[ep.name].value != ep.value:
                    raise PluginError(f"{_describe(ep)} takes the name {ep.name!r} of {_describe(found[ep.name])}")
                found[ep.name] = ep
            self._entry_points = found
        return self._entry_points

    def _load(self, name: str, target: str, source: str) -> None:
        module, _, attr = target.partition(":")
        # a built-in's own decorator may register it on import; otherwise the attribute is the plug-in
        obj = getattr(import_module(module), attr)
        if name not in self._items:
            self.add(name, obj, source)

    def _load_entry_point(self, ep: EntryPoint) -> None:
        try:
            obj = ep.load()
        except Exception as exc:  # whatever a third-party import raises, say which plug-in it was
            raise PluginError(f"{_describe(ep)} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if ep.name not in self._items:
            self.add(ep.name, obj, _describe(ep))

    def _made(self, obj: object, source: str) -> T:
        try:
            item = self._make(obj) if self._make is not None else obj
        except Exception as exc:  # a plug-in class whose constructor fails
            raise PluginError(f"{self.kind} from {source} cannot be made: {type(exc).__name__}: {exc}") from exc
        if not isinstance(item, self._expect):
            expected = getattr(self._expect, "__name__", str(self._expect))
            raise PluginError(f"{self.kind} from {source} is {type(item).__name__}, not a {expected}")
        return item  # type: ignore[return-value]


def _where(obj: object) -> str:
    return ".".join(_origin(obj))


def instance(obj: Any) -> Any:
    """`make` for registries of instances: a registered class is instantiated, an instance kept."""
    return obj() if isinstance(obj, type) else obj
