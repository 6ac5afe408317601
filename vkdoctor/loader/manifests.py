"""Find, parse and validate driver (ICD) and layer manifests exactly as the loader reads them.

Pure code over an ``Env``: no dlopen here.  Every problem is a ``Problem`` naming the finding
code, so the probes only decide severity context and remedies.  Rules: reference/loader-facts.md
sections 4 and 5 (``loader_parse_icd_manifest``, ``loader_read_layer_json``).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from vkdoctor.engine.env import Env
from vkdoctor.loader.libraries import can_access
from vkdoctor.loader.search import SearchEntry, Version, parse_version
from vkdoctor.loader.versions import Behaviour, has
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.model import Finding, Severity
from vkdoctor.system.safefile import FileRefused, describe_mode, read_regular

KNOWN_ICD_FORMATS = ((1, 0, 0), (1, 0, 1))
KNOWN_LAYER_FORMATS = ((1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 2, 0), (1, 2, 1))
# Real manifests are under 4 KiB (the largest, with many functions/extensions, ~20 KiB); a file
# over 1 MiB is garbage or an attack, and is not read into memory.
MAX_MANIFEST_BYTES = 1024 * 1024
# Longer digit strings exceed Python's int-str conversion limit (4300 digits); cJSON reads every
# number as a double, so such a number is a float (inf) there too.
_MAX_INT_DIGITS = 4000
# Vulkan packs a version into 32 bits: variant 3, major 7, minor 10, patch 12 bits.
_VERSION_LIMITS = (("major", 127), ("minor", 1023), ("patch", 4095))


@frozen
class Problem:
    code: str
    message: str
    skipped_by_loader: bool = False  # the loader ignores this manifest (or layer) because of it
    severity: Severity | None = None  # None: the code's own severity
    commands: tuple[str, ...] = ()  # remedy commands specific to this problem


@frozen
class ManifestFile:
    """One *.json file found in a search location, read and JSON-parsed (not yet validated)."""

    path: str  # as the machine sees it
    origin: str
    data: Any = None
    problems: tuple[Problem, ...] = ()

    @property
    def readable(self) -> bool:
        return self.data is not None


@frozen
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


@frozen
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


def _refused(path: str, origin: str, refused: FileRefused, mode: int, rdev: int) -> ManifestFile:
    if refused.kind == "too-large":
        return ManifestFile(
            path,
            origin,
            problems=(
                Problem("manifest-invalid-json", f"{path} {refused.reason}: not a manifest", True),
            ),
        )
    what = describe_mode(mode)
    commands = (shell.command("ls", "-lL", path, comment=f"{what} is never a manifest"),)
    # Debian's loader 1.3.239 fopen()s and reads whatever the path is: a FIFO blocks the open
    # until a writer comes, /dev/zero is read forever (vulkaninfo hangs on both); a socket
    # cannot be opened and /dev/null reads as an empty file, so the loader skips those.
    if stat.S_ISFIFO(mode):
        effect, skipped = "the loader blocks opening it, so every Vulkan program hangs", False
    elif stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and rdev == os.makedev(1, 3)):
        effect, skipped = "the loader cannot read a manifest from it", True
    else:
        effect = "the loader reads it as a file, and a device such as /dev/zero never ends, so "
        effect, skipped = effect + "Vulkan programs hang", False
    return ManifestFile(
        path,
        origin,
        problems=(
            Problem(
                "manifest-not-regular-file",
                f"{path} is {what}, not a file: {effect}",
                skipped,
                severity=None if skipped else Severity.FAIL,
                commands=commands,
            ),
        ),
    )


def _unreadable(path: str, origin: str, message: str) -> ManifestFile:
    return ManifestFile(path, origin, problems=(Problem("manifest-unreadable", message, True),))


def _parse_int(text: str) -> int | float:
    return float(text) if len(text) > _MAX_INT_DIGITS else int(text)


def read_manifest(env: Env, path: str, origin: str) -> ManifestFile:
    """Read and JSON-parse one manifest the way the loader's cJSON does: regular files only
    (never opened when a FIFO or device, so nothing blocks), a byte limit, the FIRST of
    duplicate keys, NUL bytes in strings dropped."""
    raw = _read_bytes(env, path, origin)
    if isinstance(raw, ManifestFile):
        return raw
    parsed = _parse_json(path, origin, raw)
    if isinstance(parsed, ManifestFile):
        return parsed
    data, duplicates = parsed
    problems = [
        Problem(
            "manifest-duplicate-key",
            f"{path}: key '{key}' appears more than once; the loader uses the first",
        )
        for key in dict.fromkeys(duplicates)
    ]
    nul_keys: list[str] = []
    data = _drop_nul(data, "", nul_keys)
    problems += [
        Problem(
            "manifest-bad-field",
            f"{path}: '{key}' contains a NUL byte (\\u0000); the loader drops it and reads the "
            "rest joined together",
        )
        for key in dict.fromkeys(nul_keys)
    ]
    return ManifestFile(path, origin, data=data, problems=tuple(problems))


def _read_bytes(env: Env, path: str, origin: str) -> bytes | ManifestFile:
    """The manifest's bytes, or the ManifestFile that says why there are none."""
    actual = env.path(path)
    try:
        st = actual.stat()
        if stat.S_ISDIR(st.st_mode):
            return ManifestFile(
                path,
                origin,
                problems=(Problem("manifest-not-regular-file", f"{path} is a directory", True),),
            )
        if not can_access(env, st, os.R_OK):
            # Root reads anything: judge by the mode bits for the identity being diagnosed.
            return _unreadable(path, origin, f"{path} is not readable by uid {env.euid}")
        raw = read_regular(actual, MAX_MANIFEST_BYTES, shown=path)
    except FileRefused as refused:
        return _refused(path, origin, refused, st.st_mode, st.st_rdev)
    except FileNotFoundError:
        return ManifestFile(
            path, origin, problems=(Problem("manifest-missing", f"{path} does not exist", True),)
        )
    except PermissionError:
        return _unreadable(path, origin, f"{path} is not readable")
    except OSError as exc:
        return _unreadable(path, origin, f"{path}: {exc.strerror or exc}")
    except ValueError:  # a NUL byte in the path itself
        return _unreadable(path, origin, f"{path!r}: a path with a NUL byte cannot be opened")
    return raw


def _parse_json(
    path: str, origin: str, raw: bytes
) -> tuple[dict[str, Any], list[str]] | ManifestFile:
    """(the top-level object, the duplicated keys), or the ManifestFile saying why not."""
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
    duplicates: list[str] = []

    def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # cJSON_GetObjectItem returns the first of equal keys; Python's json keeps the last.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                duplicates.append(key)
            else:
                out[key] = value
        return out

    try:
        data = json.loads(text, object_pairs_hook=first_wins, parse_int=_parse_int)
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
    return data, duplicates


def _drop_nul(value: Any, key: str, found: list[str]) -> Any:
    # Debian's loader read "lib.so\u0000junk" as "lib.sojunk" (its dlopen error names that).
    if isinstance(value, str):
        if "\0" in value:
            found.append(key)
            return value.replace("\0", "")
        return value
    if isinstance(value, list):
        return [_drop_nul(item, key, found) for item in value]
    if isinstance(value, dict):
        return {k.replace("\0", ""): _drop_nul(v, k, found) for k, v in value.items()}
    return value


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _version(value: Any) -> Version | None:
    """A version string's numbers; None for what is not one (or is absurdly long: int() of a
    100000-digit string raises)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    return parse_version(value)


def _overflow_reason(version: Version) -> str | None:
    for (part, limit), number in zip(_VERSION_LIMITS, version, strict=True):
        if number > limit:
            return (
                f"its {part} {number} does not fit Vulkan's 32-bit version encoding (major "
                "0-127, minor 0-1023, patch 0-4095), so the loader reads another version"
            )
    return None


def _version_problems(
    path: str, value: Any, known: tuple[Version, ...], kind: str
) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, [
            Problem("manifest-missing-field", f"{path} has no 'file_format_version'", True)
        ]
    version = _version(value)
    if version is None:
        # Only a missing field makes the loader skip the file: loader 1.3.239 prints any value
        # (1, true, "abc") as the file version and reads the manifest (VK_LOADER_DEBUG=all).
        return None, [
            Problem(
                "manifest-bad-field",
                f"{path}: 'file_format_version' must be a version string, got {_shown(value)} "
                "(the loader reads the manifest anyway)",
                False,
            )
        ]
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
    version = _version(value)
    if version is None:
        return None, [
            Problem(
                "manifest-bad-field",
                f"{path}: {where} 'api_version' {_shown(value)} is not a version",
                True,
            )
        ]
    reason = _overflow_reason(version)
    if reason:
        return value, [
            Problem("manifest-bad-field", f"{path}: {where} 'api_version' {value}: {reason}")
        ]
    return value, []


def _shown(value: Any) -> str:
    """A bad value as a message shows it: repr, cut short (a 100000-digit number)."""
    try:
        text = repr(value)
    except ValueError:  # int repr over the int-str limit
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def _arch_problems(path: str, value: Any) -> tuple[str | None, list[Problem]]:
    if value is None:
        return None, []
    if value not in ("32", "64"):
        return None, [
            Problem(
                "manifest-bad-field",
                f'{path}: \'library_arch\' must be "32" or "64", got {_shown(value)}',
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
            version = _version(api)
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
    layer_type = _string(node.get("type"))
    library = _string(node.get("library_path"))
    components = _names_list(node.get("component_layers"))
    problems += _layer_identity_problems(path, where, name, layer_type)
    problems += _layer_body_problems(path, where, library, components)
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


def _layer_identity_problems(
    path: str, where: str, name: str | None, layer_type: str | None
) -> list[Problem]:
    """The layer's name and type as the loader judges them (DEVICE layers are skipped)."""
    problems: list[Problem] = []
    if not name:
        problems.append(Problem("manifest-missing-field", f"{path}: {where} has no 'name'", True))
    elif not name.startswith("VK_LAYER_"):
        problems.append(
            Problem(
                "layer-name-nonconforming",
                f"{path}: layer name {name!r} does not start with VK_LAYER_",
            )
        )
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
    return problems


def _layer_body_problems(
    path: str, where: str, library: str | None, components: tuple[str, ...]
) -> list[Problem]:
    """A layer is a library or a meta layer of component layers: exactly one of the two."""
    if library and components:
        return [
            Problem(
                "manifest-bad-field",
                f"{path}: {where} has both 'library_path' and 'component_layers'",
                True,
            )
        ]
    if not library and not components:
        return [
            Problem(
                "manifest-missing-field",
                f"{path}: {where} has neither 'library_path' nor 'component_layers'",
                True,
            )
        ]
    return []


def _names_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str))


def manifest_dir(path: str) -> str:
    return str(Path(path).parent)


# Findings about manifest files themselves, shared by the driver and layer probes.
from vkdoctor.report.codes import CodeInfo, code_table  # noqa: E402

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
            alias_of="manifest-not-regular-file",  # merged: a directory is not a regular file
        ),
        CodeInfo(
            "manifest-not-regular-file",
            Severity.WARN,
            "a manifest path is not a regular file",
            "A *.json entry in a manifest directory, or a file named by VK_DRIVER_FILES, "
            "VK_ICD_FILENAMES, VK_ADD_DRIVER_FILES or VK_LAYER_PATH, that is not a regular "
            "file. A directory yields no manifest and is skipped. Anything else the loader "
            "fopen()s and reads: a FIFO blocks every Vulkan program until "
            "something writes to it, a device such as /dev/zero is read forever (both a fail); "
            "a socket or /dev/null yields no manifest and is skipped. vkdoctor never opens it.",
            (
                "a named pipe or device link left in a user-writable directory such as "
                "$XDG_DATA_HOME/vulkan/icd.d",
                "a variable pointing at /dev/stdin or another special file",
            ),
            "Remove the entry from the manifest directory (no package ships a FIFO or device "
            "node as a manifest), or point the variable that names it at a real manifest.",
        ),
        CodeInfo(
            "manifest-duplicate-key",
            Severity.WARN,
            "a manifest repeats a key",
            "JSON objects should not repeat keys. The loader's parser (cJSON) uses the first "
            "occurrence and ignores the others, so an edit appended at the end has no effect.",
            (
                "a hand-edited manifest where a second library_path was added instead of "
                "replacing the first",
            ),
            "Keep one occurrence of the key, with the value you mean.",
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


def problem_finding(
    problem: Problem, kind: str, path: str, loader_version: Version | None
) -> Finding:
    """A finding for a manifest problem; ``kind`` is 'driver' or 'layer' (for the wording)."""
    from vkdoctor.report.codes import make_finding

    commands: list[str] = []
    severity = problem.severity
    if problem.code == "manifest-invalid-json":
        commands = [  # the fix first: the verdict quotes the first command
            shell.command(
                "sudo", "mv", path, f"{path}.disabled", comment="the loader reads only *.json"
            ),
            shell.command(
                "python3",
                "-m",
                "json.tool",
                f"{path}.disabled",
                comment="shows the syntax error, to repair it",
            ),
        ]
        if loader_version is not None and not has(
            Behaviour.MALFORMED_MANIFEST_SKIPPED, loader_version
        ):
            effect = (
                f" This loader ({'.'.join(map(str, loader_version))}) then fails every "
                "vkCreateInstance with VK_ERROR_OUT_OF_HOST_MEMORY, even with valid drivers."
            )
        else:
            effect = " The loader skips it."
            # Only this file's driver or layer is lost (measured on Debian 13's 1.4.309 and
            # sid's 1.4.363 by tests/matrix): a warning; no-usable-driver fails on its own.
            if loader_version is not None:
                severity = Severity.WARN
    else:
        effect = " The loader skips it." if problem.skipped_by_loader else ""
    return make_finding(
        CODES,
        problem.code,
        f"{kind} manifest: {problem.message}.{effect}",
        evidence={"problem": problem.message, "manifest": path},
        commands=commands or problem.commands,
        severity=severity,
    )
