"""Find, parse and validate driver (ICD) and layer manifests exactly as the loader reads them.

Pure code over an ``Env``: no dlopen here.  Every problem is a ``Problem`` naming the finding
code, so the probes only decide severity context and remedies.  Rules: reference/loader-facts.md
sections 4 and 5 (``loader_parse_icd_manifest``, ``loader_read_layer_json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vkdoctor.engine.env import Env
from vkdoctor.loader.libraries import can_access
from vkdoctor.loader.search import SearchEntry, Version, parse_version
from vkdoctor.report.model import Finding

KNOWN_ICD_FORMATS = ((1, 0, 0), (1, 0, 1))
KNOWN_LAYER_FORMATS = ((1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 2, 0), (1, 2, 1))
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the loader reads whole files; anything bigger is garbage


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    skipped_by_loader: bool = False  # the loader ignores this manifest (or layer) because of it


@dataclass(frozen=True)
class ManifestFile:
    """One *.json file found in a search location, read and JSON-parsed (not yet validated)."""

    path: str  # as the machine sees it
    origin: str
    data: Any = None
    problems: tuple[Problem, ...] = ()

    @property
    def readable(self) -> bool:
        return self.data is not None


@dataclass(frozen=True)
class DriverManifest:
    path: str
    origin: str
    file_format_version: str | None
    library_path: str | None
    api_version: str | None
    library_arch: str | None
    is_portability_driver: bool
    problems: tuple[Problem, ...]

    @property
    def skipped_by_loader(self) -> bool:
        return any(p.skipped_by_loader for p in self.problems)


@dataclass(frozen=True)
class LayerManifest:
    path: str
    origin: str
    implicit: bool
    name: str | None
    type: str | None
    library_path: str | None
    api_version: str | None
    implementation_version: str | None
    description: str | None
    library_arch: str | None
    functions: Mapping[str, str]
    enable_environment: Mapping[str, str]
    disable_environment: Mapping[str, str] | None
    component_layers: tuple[str, ...]
    pre_instance_functions: Mapping[str, str]
    instance_extensions: tuple[str, ...]
    device_extensions: tuple[str, ...]
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def skipped_by_loader(self) -> bool:
        return any(p.skipped_by_loader for p in self.problems)

    @property
    def is_meta(self) -> bool:
        return bool(self.component_layers)


def list_manifest_files(env: Env, entries: list[SearchEntry]) -> list[tuple[str, str]]:
    """(path, origin) of every *.json the loader would consider, in search order.  Within a
    directory the loader uses readdir order (unspecified); we sort for stable reports."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for entry in entries:
        actual = env.path(entry.path)
        candidates: list[str]
        if entry.is_override and entry.path.endswith(".json"):
            candidates = [entry.path]
        elif actual.is_dir():
            try:
                names = sorted(os.listdir(actual))
            except OSError:
                names = []
            candidates = [f"{entry.path.rstrip('/')}/{n}" for n in names if n.endswith(".json")]
        elif entry.is_override:
            candidates = [entry.path]  # a missing override file is a finding, keep it
        else:
            candidates = []
        for path in candidates:
            if path not in seen:
                seen.add(path)
                found.append((path, entry.origin))
    return found


def read_manifest(env: Env, path: str, origin: str) -> ManifestFile:
    actual = env.path(path)
    try:
        if actual.is_dir():
            return ManifestFile(
                path,
                origin,
                problems=(Problem("manifest-not-a-file", f"{path} is a directory", True),),
            )
        st = actual.stat()
        size = st.st_size
        if not can_access(env, st, os.R_OK):
            # Root reads anything: judge by the mode bits for the identity being diagnosed.
            return ManifestFile(
                path,
                origin,
                problems=(
                    Problem(
                        "manifest-unreadable", f"{path} is not readable by uid {env.euid}", True
                    ),
                ),
            )
        if size > MAX_MANIFEST_BYTES:
            return ManifestFile(
                path,
                origin,
                problems=(
                    Problem(
                        "manifest-invalid-json", f"{path} is {size} bytes: not a manifest", True
                    ),
                ),
            )
        raw = actual.read_bytes()
    except FileNotFoundError:
        return ManifestFile(
            path, origin, problems=(Problem("manifest-missing", f"{path} does not exist", True),)
        )
    except PermissionError:
        return ManifestFile(
            path,
            origin,
            problems=(Problem("manifest-unreadable", f"{path} is not readable", True),),
        )
    except OSError as exc:
        return ManifestFile(
            path,
            origin,
            problems=(Problem("manifest-unreadable", f"{path}: {exc.strerror}", True),),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ManifestFile(
            path,
            origin,
            problems=(
                Problem(
                    "manifest-invalid-json", f"{path}: not UTF-8 text (byte {exc.start})", True
                ),
            ),
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return ManifestFile(
            path,
            origin,
            problems=(
                Problem(
                    "manifest-invalid-json",
                    f"{path}:{exc.lineno}:{exc.colno}: {exc.msg}",
                    True,
                ),
            ),
        )
    except RecursionError:
        return ManifestFile(
            path,
            origin,
            problems=(Problem("manifest-invalid-json", f"{path}: nested too deeply", True),),
        )
    if not isinstance(data, dict):
        return ManifestFile(
            path,
            origin,
            problems=(
                Problem("manifest-invalid-json", f"{path}: top level is not a JSON object", True),
            ),
        )
    return ManifestFile(path, origin, data=data)


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _version_problems(
    path: str, value: Any, known: tuple[Version, ...], kind: str
) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, [
            Problem("manifest-missing-field", f"{path} has no 'file_format_version'", True)
        ]
    if not isinstance(value, str) or parse_version(value) is None:
        return None, [
            Problem(
                "manifest-bad-field",
                f"{path}: 'file_format_version' must be a version string, got {value!r}",
                True,
            )
        ]
    version = parse_version(value)
    if version not in known:
        return value, [
            Problem(
                "manifest-unknown-format-version",
                f"{path}: {kind} manifest file_format_version {value} is unknown to the loader "
                "(it parses the file anyway)",
            )
        ]
    return value, []


def _api_version_problems(path: str, where: str, value: Any) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, [
            Problem("manifest-missing-field", f"{path}: {where} has no 'api_version'", True)
        ]
    if not isinstance(value, str) or parse_version(value) is None:
        return None, [
            Problem(
                "manifest-bad-field",
                f"{path}: {where} 'api_version' {value!r} is not a version",
                True,
            )
        ]
    return value, []


def _arch_problems(path: str, value: Any) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, []
    if value not in ("32", "64"):
        return None, [
            Problem(
                "manifest-bad-field",
                f'{path}: \'library_arch\' must be "32" or "64", got {value!r}',
            )
        ]
    return value, []


def parse_driver(manifest: ManifestFile) -> DriverManifest:
    path = manifest.path
    problems = list(manifest.problems)
    data = manifest.data if isinstance(manifest.data, dict) else {}
    fmt = library = api = arch = None
    portability = False
    if manifest.readable:
        fmt, extra = _version_problems(
            path, data.get("file_format_version"), KNOWN_ICD_FORMATS, "driver"
        )
        problems += extra
        icd = data.get("ICD")
        if not isinstance(icd, dict):
            problems.append(Problem("manifest-missing-field", f"{path} has no 'ICD' object", True))
        else:
            library = _string(icd.get("library_path"))
            if not library:
                problems.append(
                    Problem(
                        "manifest-missing-field",
                        f"{path}: ICD has no non-empty 'library_path'",
                        True,
                    )
                )
            api, extra = _api_version_problems(path, "ICD", icd.get("api_version"))
            problems += extra
            version = parse_version(api or "")
            if api and version and api.count(".") == 3 and api.split(".")[0] != "0":
                # A 4-part version is variant.major.minor.patch: non-zero variant is not Vulkan.
                problems.append(
                    Problem(
                        "manifest-bad-field",
                        f"{path}: api_version {api} has a non-zero variant",
                        True,
                    )
                )
            arch, extra = _arch_problems(path, icd.get("library_arch"))
            problems += extra
            value = icd.get("is_portability_driver", False)
            if not isinstance(value, bool):
                problems.append(
                    Problem(
                        "manifest-bad-field",
                        f"{path}: 'is_portability_driver' must be true or false",
                    )
                )
            portability = value is True
    return DriverManifest(
        path, manifest.origin, fmt, library, api, arch, portability, tuple(problems)
    )


def _env_map(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items()}


def _names(value: Any, key: str = "name") -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(item.get(key)) for item in value if isinstance(item, dict) and item.get(key))


def parse_layers(manifest: ManifestFile, implicit: bool) -> list[LayerManifest]:
    """One LayerManifest per layer in the file ("layer" or "layers").  A file that yields no
    layer at all still yields one entry (name None) carrying the problems."""
    path = manifest.path
    base_problems = list(manifest.problems)
    data = manifest.data if isinstance(manifest.data, dict) else {}
    nodes: list[Any] = []
    if manifest.readable:
        _, extra = _version_problems(
            path, data.get("file_format_version"), KNOWN_LAYER_FORMATS, "layer"
        )
        base_problems += extra
        if isinstance(data.get("layers"), list):
            nodes = list(data["layers"])
        elif isinstance(data.get("layer"), dict):
            nodes = [data["layer"]]
        else:
            base_problems.append(
                Problem("manifest-missing-field", f"{path} has no 'layer' or 'layers' object", True)
            )
    layers = [
        _parse_layer_node(path, manifest.origin, node, implicit, base_problems) for node in nodes
    ]
    if not layers:
        layers = [_empty_layer(path, manifest.origin, implicit, base_problems)]
    return layers


def _empty_layer(path: str, origin: str, implicit: bool, problems: list[Problem]) -> LayerManifest:
    return LayerManifest(
        path,
        origin,
        implicit,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        {},
        {},
        None,
        (),
        {},
        (),
        (),
        tuple(problems),
    )


def _parse_layer_node(
    path: str, origin: str, node: Any, implicit: bool, base: list[Problem]
) -> LayerManifest:
    problems = list(base)
    if not isinstance(node, dict):
        problems.append(
            Problem("manifest-bad-field", f"{path}: a layer entry is not an object", True)
        )
        return _empty_layer(path, origin, implicit, problems)
    name = _string(node.get("name"))
    where = f"layer {name}" if name else "layer"
    if not name:
        problems.append(Problem("manifest-missing-field", f"{path}: {where} has no 'name'", True))
    elif not name.startswith("VK_LAYER_"):
        problems.append(
            Problem(
                "layer-name-nonconforming",
                f"{path}: layer name {name!r} does not start with VK_LAYER_",
            )
        )
    layer_type = _string(node.get("type"))
    if layer_type is None:
        problems.append(Problem("manifest-missing-field", f"{path}: {where} has no 'type'", True))
    elif layer_type == "DEVICE":
        problems.append(
            Problem(
                "layer-device-type",
                f"{path}: {where} is a DEVICE layer; the loader skips those",
                True,
            )
        )
    elif layer_type not in ("INSTANCE", "GLOBAL"):
        problems.append(
            Problem("manifest-bad-field", f"{path}: {where} has unknown type {layer_type!r}", True)
        )
    library = _string(node.get("library_path"))
    components = _names_list(node.get("component_layers"))
    if library and components:
        problems.append(
            Problem(
                "manifest-bad-field",
                f"{path}: {where} has both 'library_path' and 'component_layers'",
                True,
            )
        )
    if not library and not components:
        problems.append(
            Problem(
                "manifest-missing-field",
                f"{path}: {where} has neither 'library_path' nor 'component_layers'",
                True,
            )
        )
    api, extra = _api_version_problems(path, where, node.get("api_version"))
    problems += extra
    arch, extra = _arch_problems(path, node.get("library_arch"))
    problems += extra
    for key in ("implementation_version", "description"):
        if node.get(key) is None:
            problems.append(Problem("manifest-missing-field", f"{path}: {where} has no '{key}'"))
    disable = _env_map(node.get("disable_environment"))
    if implicit and disable is None:
        problems.append(
            Problem(
                "layer-missing-disable-environment",
                f"{path}: implicit {where} has no 'disable_environment'; the loader skips it",
                True,
            )
        )
    enable = _env_map(node.get("enable_environment")) or {}
    functions = _env_map(node.get("functions")) or {}
    pre_instance = _env_map(node.get("pre_instance_functions")) or {}
    return LayerManifest(
        path=path,
        origin=origin,
        implicit=implicit,
        name=name,
        type=layer_type,
        library_path=library,
        api_version=api,
        implementation_version=_string(node.get("implementation_version"))
        if node.get("implementation_version") is not None
        else None,
        description=_string(node.get("description")),
        library_arch=arch,
        functions=functions,
        enable_environment=enable,
        disable_environment=disable,
        component_layers=components,
        pre_instance_functions=pre_instance,
        instance_extensions=_names(node.get("instance_extensions")),
        device_extensions=_names(node.get("device_extensions")),
        problems=tuple(problems),
    )


def _names_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str))


def manifest_dir(path: str) -> str:
    return str(Path(path).parent)


# Findings about manifest files themselves, shared by the driver and layer probes.
from vkdoctor.report.codes import CodeInfo, code_table  # noqa: E402
from vkdoctor.report.model import Severity  # noqa: E402

CODES = code_table(
    [
        CodeInfo(
            "manifest-invalid-json",
            Severity.FAIL,
            "a manifest is not valid JSON",
            "The loader cannot parse this manifest. Loaders before 1.3.268 (Debian 12 ships "
            "1.3.239) then fail vkCreateInstance with VK_ERROR_OUT_OF_HOST_MEMORY for every "
            "program, even though valid drivers exist; newer loaders skip the file.",
            (
                "a hand-edited file (trailing comma)",
                "a truncated write (disk full, interrupted install)",
            ),
            "Fix the file at the reported line and column, or remove it.",
        ),
        CodeInfo(
            "manifest-missing-field",
            Severity.WARN,
            "a manifest lacks a required field",
            "The loader skips manifests (or layers) without their required fields.",
            ("a hand-written manifest", "a manifest for another tool"),
            "Add the field or remove the manifest.",
        ),
        CodeInfo(
            "manifest-bad-field",
            Severity.WARN,
            "a manifest field has the wrong type or value",
            "The loader ignores or misreads this field.",
            ("a hand-written manifest",),
            "Correct the field's value.",
        ),
        CodeInfo(
            "manifest-unknown-format-version",
            Severity.INFO,
            "unknown manifest file_format_version",
            "The loader parses the manifest anyway and logs 'May cause errors'.",
            ("a manifest written for a newer loader",),
            "Nothing to do unless the manifest misbehaves.",
        ),
        CodeInfo(
            "manifest-missing",
            Severity.FAIL,
            "a manifest named by a variable does not exist",
            "An override variable names a manifest file that does not exist.",
            ("a stale VK_DRIVER_FILES / VK_ICD_FILENAMES / VK_LAYER_PATH",),
            "Fix or unset the variable.",
        ),
        CodeInfo(
            "manifest-unreadable",
            Severity.FAIL,
            "a manifest cannot be read",
            "The loader cannot open this manifest (permissions or I/O error).",
            ("file modes", "sandbox confinement"),
            "Fix the file's permissions.",
        ),
        CodeInfo(
            "manifest-not-a-file",
            Severity.WARN,
            "a manifest path is a directory",
            "A *.json entry that is a directory.",
            ("a packaging mistake",),
            "Remove it.",
        ),
        CodeInfo(
            "layer-name-nonconforming",
            Severity.WARN,
            "layer name does not start with VK_LAYER_",
            "The loader warns (Policy #LLP_LAYER_3) but loads it.",
            ("a non-conforming layer",),
            "Rename the layer.",
        ),
        CodeInfo(
            "layer-device-type",
            Severity.WARN,
            "a DEVICE layer",
            "Device layers are deprecated; the loader skips them.",
            ("an ancient layer",),
            "Update the layer.",
        ),
        CodeInfo(
            "layer-missing-disable-environment",
            Severity.WARN,
            "implicit layer without disable_environment",
            "The loader requires implicit layers to name a disable variable and skips those "
            "that do not, so the layer is silently absent.",
            ("a hand-written manifest",),
            "Add a disable_environment object to the manifest.",
        ),
    ]
)


MALFORMED_JSON_SKIPPED_SINCE = (1, 3, 268)  # before: vkCreateInstance fails with OUT_OF_HOST_MEMORY


def problem_finding(
    problem: Problem, kind: str, path: str, loader_version: Version | None
) -> Finding:
    """A finding for a manifest problem; ``kind`` is 'driver' or 'layer' (for the wording)."""
    from vkdoctor.report.codes import make_finding

    commands: list[str] = []
    if problem.code == "manifest-invalid-json":
        commands = [
            f"python3 -m json.tool {path}  # shows the syntax error",
            f"sudo mv {path} {path}.disabled  # the loader reads only *.json",
        ]
        if loader_version is not None and loader_version < MALFORMED_JSON_SKIPPED_SINCE:
            effect = (
                f" This loader ({'.'.join(map(str, loader_version))}) then fails every "
                "vkCreateInstance with VK_ERROR_OUT_OF_HOST_MEMORY, even with valid drivers."
            )
        else:
            effect = " The loader skips it."
    else:
        effect = " The loader skips it." if problem.skipped_by_loader else ""
    return make_finding(
        CODES,
        problem.code,
        f"{kind} manifest: {problem.message}.{effect}",
        evidence={"problem": problem.message, "manifest": path},
        commands=commands,
    )
