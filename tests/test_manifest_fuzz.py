"""Fuzz the manifest reader and validators: any bytes, any JSON, never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.engine.env import Env
from vkdoctor.loader.manifests import parse_driver, parse_layers, read_manifest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "file_format_version",
        "ICD",
        "layer",
        "layers",
        "library_path",
        "api_version",
        "name",
        "type",
        "disable_environment",
        "enable_environment",
        "component_layers",
        "library_arch",
        "is_portability_driver",
        "functions",
    ]
)
manifest_like = st.recursive(
    json_values,
    lambda children: st.dictionaries(keys, children, max_size=6) | st.lists(children, max_size=3),
    max_leaves=30,
)


def _check(path: Path) -> None:
    env = Env.current()
    manifest = read_manifest(env, str(path), "fuzz")
    driver = parse_driver(manifest)
    assert driver.path == str(path)
    for layer in parse_layers(manifest, implicit=True) + parse_layers(manifest, implicit=False):
        assert layer.path == str(path)
        for problem in layer.problems:
            assert problem.code and problem.message


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(data)
    _check(path)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=manifest_like)
def test_arbitrary_manifest_shaped_json(tmp_path: Path, value: object) -> None:
    import json

    path = tmp_path / "m.json"
    path.write_text(json.dumps(value))
    _check(path)
