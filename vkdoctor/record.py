"""``@frozen`` and ``@mutable``: dataclasses that cost a third of one to define.

Every value in vkdoctor is a frozen dataclass, and ``vkdoctor check`` defines about 90 of them
before its first result: on Python 3.10-3.12 ``dataclasses`` compiles six methods per frozen
class with ``exec`` (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``,
``__delattr__``), 1-1.5 ms a class on a 2-core machine, over 100 ms of the check's start-up
(benchmarks/RESULTS.md, sixth session).  ``frozen`` lets ``dataclasses`` do the field processing
(``fields()``, ``replace()``, ``asdict()``, metadata and the JSON Schema keep working), compiles
only ``__init__``, and gives the five other methods as closures over ``operator.attrgetter``s
of the fields, or shared functions, which need no compiling.

What a record is, is what ``@dataclass(frozen=True)`` gives: the same ``__init__`` signature
(defaults, ``default_factory``, ``kw_only``, ``field(init=False)``, ``__post_init__``), equality
and hashing over the fields with ``compare`` (``hash``) set, a repr over those with ``repr`` set,
and ``FrozenInstanceError`` on assignment and deletion.  Methods a class defines itself are kept,
as ``dataclasses`` keeps them.  What differs: ``__dataclass_params__`` says what ``dataclasses``
was asked for (no init, repr, eq or frozen: that is what lets a record derive from a record), so
a ``@dataclass(frozen=True)`` cannot derive from a record; and ``InitVar`` fields, which nothing
here uses, are refused with a ``TypeError``.  ``@mutable`` is the same for a plain
``@dataclass`` (assignable, no ``__hash__``; its ``__init__`` sets fields with
``object.__setattr__``, as a frozen one does, so a class's own ``__setattr__`` is not called
there); ``@frozen(slots=True)`` adds ``__slots__`` as ``dataclasses`` does.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from typing import Any, TypeVar, overload

try:
    from typing import dataclass_transform
except ImportError:  # Python 3.10: only type checkers need it

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:  # type: ignore[no-redef]
        return lambda decorator: decorator


_T = TypeVar("_T")
_SELF = "__record_self__"  # the generated __init__'s first parameter (a field may be "self")


class _Factory:
    """The default of a ``default_factory`` parameter: ``help()`` shows ``<factory>``, as for a
    dataclass."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


@overload
def frozen(cls: type[_T], /) -> type[_T]: ...
@overload
def frozen(*, kw_only: bool = False, slots: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def frozen(cls: type[_T] | None = None, /, *, kw_only: bool = False, slots: bool = False) -> Any:
    """``@frozen``, ``@frozen(kw_only=True)`` or ``@frozen(slots=True)`` on a class, in place of
    ``@dataclass(frozen=True, ...)``."""

    def build(target: type[_T]) -> type[_T]:
        return _build(target, kw_only=kw_only, slots=slots, immutable=True)

    return build if cls is None else build(cls)


@overload
def mutable(cls: type[_T], /) -> type[_T]: ...
@overload
def mutable(*, kw_only: bool = False) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field,))
def mutable(cls: type[_T] | None = None, /, *, kw_only: bool = False) -> Any:
    """``@mutable`` in place of a plain ``@dataclass``: the same, with no ``__hash__`` (as a
    dataclass with ``eq`` and without ``frozen`` has none)."""

    def build(target: type[_T]) -> type[_T]:
        return _build(target, kw_only=kw_only, slots=False, immutable=False)

    return build if cls is None else build(cls)


def _build(cls: type[_T], *, kw_only: bool, slots: bool, immutable: bool) -> type[_T]:
    own = dict(cls.__dict__)
    for name in ("__setattr__", "__delattr__") if immutable else ():
        if name in own:
            raise TypeError(f"cannot overwrite attribute {name} in record {cls.__name__}")
    class_hash = own.get("__hash__", dataclasses.MISSING)
    explicit_hash = not (
        class_hash is dataclasses.MISSING or (class_hash is None and "__eq__" in own)
    )
    if not own.get("__doc__"):
        # dataclasses would otherwise build the docstring from inspect.signature (slow), and from
        # the wrong __init__; the right one is set below.
        cls.__doc__ = cls.__name__
        needs_doc = True
    else:
        needs_doc = False
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False, kw_only=kw_only, slots=slots)
    declared = cls.__dataclass_fields__.values()
    if any(f._field_type is dataclasses._FIELD_INITVAR for f in declared):
        raise TypeError(f"record {cls.__name__}: InitVar fields are not supported")
    fields = list(dataclasses.fields(cls))
    compared = _getter(tuple(f.name for f in fields if f.compare))
    hashed = _getter(tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)))
    cls.__record_shown__ = tuple(f.name for f in fields if f.repr)
    if "__init__" not in own:
        cls.__init__ = _init(cls, fields)
    if "__repr__" not in own:
        cls.__repr__ = _repr
    if "__eq__" not in own:
        cls.__eq__ = _eq(compared)
    if not explicit_hash:
        cls.__hash__ = _hash(hashed) if immutable else None  # type: ignore[assignment]
    if immutable:
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
    if needs_doc:
        cls.__doc__ = f"{cls.__name__}({', '.join(f.name for f in fields if f.init)})"
    return cls


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The named attributes of a record as a tuple (``attrgetter`` runs in C)."""
    if not names:
        return lambda _: ()
    if len(names) == 1:
        single = operator.attrgetter(names[0])
        return lambda value: (single(value),)
    return operator.attrgetter(*names)


def _init(cls: type, fields: list[dataclasses.Field[Any]]) -> Callable[..., None]:
    """``__init__`` compiled once, as ``dataclasses`` writes it for a frozen class."""
    # What the body refers to is handed in as arguments of an enclosing function, so the body
    # reads closure cells (as dataclasses' own code does), not globals: ~30 % faster __init__.
    namespace: dict[str, Any] = {"__set": object.__setattr__, "__FACTORY": _FACTORY}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    seen_default = False
    for f in fields:
        value = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"__default_{f.name}"] = f.default
            default = f"=__default_{f.name}"
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"__factory_{f.name}"] = f.default_factory
            default = "=__FACTORY"
            value = f"__factory_{f.name}() if {f.name} is __FACTORY else {f.name}"
        else:
            default = ""
        if not f.init:
            if f.default is not dataclasses.MISSING:
                body.append(f"__set({_SELF}, {f.name!r}, __default_{f.name})")
            elif f.default_factory is not dataclasses.MISSING:
                body.append(f"__set({_SELF}, {f.name!r}, __factory_{f.name}())")
            continue
        if f.kw_only:
            keyword.append(f"{f.name}{default}")
        else:
            if default:
                seen_default = True
            elif seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            positional.append(f"{f.name}{default}")
        body.append(f"__set({_SELF}, {f.name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append(f"{_SELF}.__post_init__()")
    params = [_SELF, *positional, *(["*", *keyword] if keyword else [])]
    source = (
        f"def __create__({', '.join(namespace)}):\n"
        f"  def __init__({', '.join(params)}):\n    " + ("\n    ".join(body) or "pass") + "\n"
        "  return __init__"
    )
    scope: dict[str, Any] = {}
    exec(source, scope)
    init = scope["__create__"](**namespace)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in type(self).__record_shown__)
    return f"{type(self).__qualname__}({shown})"


def _eq(compared: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any, Any], Any]:
    """``__eq__`` over the compared fields: a closure, built without compiling."""

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return compared(self) == compared(other)

    return __eq__


def _hash(hashed: Callable[[Any], tuple[Any, ...]]) -> Callable[[Any], int]:
    def __hash__(self: Any) -> int:
        return hash(hashed(self))

    return __hash__


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
