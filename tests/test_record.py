"""``@frozen`` against ``@dataclass(frozen=True)``: the same class, built both ways, must behave
the same wherever vkdoctor relies on it (construction, defaults, equality, hashing, repr, replace,
asdict, fields and their metadata, immutability)."""

from __future__ import annotations

import dataclasses
import inspect
import itertools
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from vkdoctor.record import frozen, mutable

_counter = itertools.count()


def _both(body: dict[str, Any], annotations: dict[str, str], **options: Any) -> tuple[type, type]:
    """The same class body as a frozen dataclass and as a record."""

    def make(decorate: Any) -> type:
        namespace = {"__annotations__": dict(annotations), "__doc__": "A class.", **body}
        return decorate(type(f"C{next(_counter)}", (), namespace))

    return make(dataclass(frozen=True, **options)), make(frozen(**options) if options else frozen)


def _signature(cls: type) -> list[tuple[str, Any, str]]:
    return [(p.name, p.kind, repr(p.default)) for p in inspect.signature(cls).parameters.values()]


def _hashing(value: object, same: object) -> str:
    """Whether hashing works and agrees for equal values ("unhashable" for a list field)."""
    try:
        return "equal" if hash(value) == hash(same) else "different"
    except TypeError:
        return "unhashable"


SHAPES = {
    "plain": ({}, {"a": "int", "b": "str"}),
    "defaults": ({"b": "x", "c": None}, {"a": "int", "b": "str", "c": "int | None"}),
    "factory": (
        {"items": field(default_factory=list), "meta": field(default=(), metadata={"k": 1})},
        {"name": "str", "items": "list[int]", "meta": "tuple[str, ...]"},
    ),
    "hidden": (
        {"b": field(default=0, compare=False, repr=False), "c": field(default=1, hash=False)},
        {"a": "int", "b": "int", "c": "int"},
    ),
    "not-in-init": (
        {"cache": field(init=False, default=5), "made": field(init=False, default_factory=dict)},
        {"a": "int", "cache": "int", "made": "dict[str, int]"},
    ),
    "classvar": ({"LIMIT": 3}, {"LIMIT": "ClassVar[int]", "a": "int"}),
    "self-field": ({}, {"self": "int", "other": "int"}),
    "empty": ({}, {}),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_a_record_is_built_and_compared_like_a_frozen_dataclass(shape: str) -> None:
    body, annotations = SHAPES[shape]
    reference, record = _both(body, annotations)
    assert _signature(record) == _signature(reference)
    assert [
        (f.name, f.default, f.metadata, f.compare, f.init) for f in dataclasses.fields(record)
    ] == [(f.name, f.default, f.metadata, f.compare, f.init) for f in dataclasses.fields(reference)]
    arguments = [
        p.name for p in inspect.signature(reference).parameters.values() if p.default is p.empty
    ]
    for values in ([1] * len(arguments), [2] * len(arguments)):
        kwargs = dict(zip(arguments, values, strict=True))
        ref, rec = reference(**kwargs), record(**kwargs)
        assert dataclasses.asdict(rec) == dataclasses.asdict(ref)
        assert repr(rec).split("(", 1)[1] == repr(ref).split("(", 1)[1]
        assert (rec == record(**kwargs)) is (ref == reference(**kwargs))
        assert _hashing(rec, record(**kwargs)) == _hashing(ref, reference(**kwargs))
        changed = {name: 9 for name in arguments[:1]}
        if changed:
            assert dataclasses.asdict(dataclasses.replace(rec, **changed)) == dataclasses.asdict(
                dataclasses.replace(ref, **changed)
            )
            assert (dataclasses.replace(rec, **changed) == rec) is (
                dataclasses.replace(ref, **changed) == ref
            )


def test_fields_left_out_of_compare_and_hash_are_left_out_as_dataclasses_does() -> None:
    reference, record = _both(*SHAPES["hidden"])
    for cls in (reference, record):
        assert cls(1, b=5) == cls(1, b=6)  # compare=False
        assert cls(1, c=5) != cls(1, c=6)  # hash=False still compares
        assert hash(cls(1, c=5)) == hash(cls(1, c=6))
        assert "b=" not in repr(cls(1))  # repr=False


def test_a_record_refuses_assignment_and_deletion() -> None:
    _, record = _both(*SHAPES["plain"])
    value = record(1, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.a = 2  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del value.a  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.new = 1  # type: ignore[attr-defined]
    assert value.a == 1  # type: ignore[attr-defined]


def test_missing_unexpected_and_misordered_arguments_raise_type_errors() -> None:
    _, record = _both(*SHAPES["defaults"])
    with pytest.raises(TypeError):
        record()
    with pytest.raises(TypeError):
        record(1, nope=2)
    with pytest.raises(TypeError, match="non-default argument"):
        frozen(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))


def test_factories_give_each_instance_its_own_value() -> None:
    _, record = _both(*SHAPES["factory"])
    first, second = record("a"), record("b")
    assert first.items == [] and first.items is not second.items  # type: ignore[attr-defined]
    _, hidden = _both(*SHAPES["not-in-init"])
    assert hidden(1).cache == 5 and hidden(1).made is not hidden(1).made  # type: ignore[attr-defined]


@frozen(kw_only=True)
class _Base:
    """A keyword-only base, like report.records.LibraryFacts."""

    path: str | None = None
    exists: bool = False


@frozen(kw_only=True)
class _Derived(_Base):
    """Derived fields after the base's, all keyword-only."""

    manifest: str
    issues: tuple[str, ...] = ()

    @property
    def named(self) -> bool:
        return self.path is not None


@frozen
class _Checked:
    """A record with its own __post_init__, __repr__ and __hash__, which are kept."""

    low: int
    high: int
    SPAN: ClassVar[str] = "span"

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")

    def __repr__(self) -> str:
        return f"{self.low}..{self.high}"

    def __hash__(self) -> int:
        return 7


def test_keyword_only_records_derive_from_records() -> None:
    value = _Derived(manifest="m.json", path="/x")
    assert value.named and value.exists is False and value.issues == ()
    assert [f.name for f in dataclasses.fields(_Derived)] == [
        "path",
        "exists",
        "manifest",
        "issues",
    ]
    with pytest.raises(TypeError):
        _Derived("m.json")  # type: ignore[misc]
    assert dataclasses.replace(value, exists=True) == _Derived(
        manifest="m.json", path="/x", exists=True
    )
    assert value != _Base(path="/x")  # another class never compares equal


def test_a_records_own_methods_and_post_init_are_kept() -> None:
    assert repr(_Checked(1, 2)) == "1..2"
    assert hash(_Checked(1, 2)) == 7
    assert _Checked(1, 2) == _Checked(1, 2) and _Checked(1, 2) != _Checked(1, 3)
    assert _Checked.SPAN == "span" and [f.name for f in dataclasses.fields(_Checked)] == [
        "low",
        "high",
    ]
    with pytest.raises(ValueError, match="low above high"):
        _Checked(3, 2)
    with pytest.raises(TypeError):
        frozen(type("Own", (), {"__annotations__": {"a": "int"}, "__setattr__": lambda *a: None}))


def test_a_record_without_a_docstring_gets_its_constructor_as_its_doc() -> None:
    assert (
        frozen(type("Bare", (), {"__annotations__": {"a": "int", "b": "int"}})).__doc__
        == "Bare(a, b)"
    )


@pytest.mark.parametrize("shape", ["plain", "defaults", "factory", "hidden", "not-in-init"])
def test_a_mutable_record_behaves_like_a_plain_dataclass(shape: str) -> None:
    body, annotations = SHAPES[shape]

    def make(decorate: Any) -> type:
        namespace = {"__annotations__": dict(annotations), "__doc__": "A class.", **body}
        return decorate(type(f"M{next(_counter)}", (), namespace))

    reference, record = make(dataclass), make(mutable)
    assert _signature(record) == _signature(reference)
    arguments = [
        p.name for p in inspect.signature(reference).parameters.values() if p.default is p.empty
    ]
    kwargs = dict.fromkeys(arguments, 1)
    ref, rec = reference(**kwargs), record(**kwargs)
    assert dataclasses.asdict(rec) == dataclasses.asdict(ref)
    assert repr(rec).split("(", 1)[1] == repr(ref).split("(", 1)[1]
    assert (rec == record(**kwargs)) is (ref == reference(**kwargs)) is True
    assert record.__hash__ is None and reference.__hash__ is None  # unhashable, as a dataclass
    name = dataclasses.fields(reference)[0].name
    setattr(ref, name, 5)
    setattr(rec, name, 5)  # assignable
    assert dataclasses.asdict(rec) == dataclasses.asdict(ref)
    assert (rec == record(**kwargs)) is (ref == reference(**kwargs)) is False


@frozen(slots=True)
class _Slotted:
    """A slotted record, like loader.registry's commands."""

    name: str
    level: int = 0
    aliases: tuple[str, ...] = field(default=())


def test_a_slotted_record_has_slots_and_stays_frozen() -> None:
    value = _Slotted("vkCreateDevice", 2)
    assert _Slotted.__slots__ == ("name", "level", "aliases") and not hasattr(value, "__dict__")
    assert value == _Slotted("vkCreateDevice", 2) and hash(value) == hash(
        _Slotted("vkCreateDevice", 2)
    )
    assert value.aliases == () and _Slotted("x").level == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.level = 3  # type: ignore[misc]
    assert dataclasses.replace(value, level=3) == _Slotted("vkCreateDevice", 3)
