"""Fault-injection fixtures: broken Vulkan drivers and layers, built at test time.

The libraries are real shared objects compiled from ``tests/native/*.c`` with the system C
compiler and driven by the real loader: ``fault_driver.c`` wraps Mesa's lavapipe and breaks one
step (negotiation, dlopen, instance/device creation, enumeration, proc-address lookup, queue
families), ``fault_layer.c`` is a pass-through layer broken the same way.  One compile per variant,
selected with ``-DFAULT_<NAME>``.

Nothing here imports pytest: ``conftest.py`` wraps these functions in fixtures, e.g.::

    @pytest.fixture(scope="session")
    def fault_build_dir(tmp_path_factory):
        return tmp_path_factory.mktemp("faults")

    lib = faultlib.build_driver(fault_build_dir, "negotiate-crash")
    manifest = faultlib.write_driver_manifest(tmp_path, str(lib))
    env = faultlib.loader_env(tmp_path / "home", driver_manifests=[manifest])

Builds are cached per variant (and source hash) inside ``out_dir``, and are safe when several
processes build into the same directory: each build happens in a private temporary directory that
is renamed into place.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from signal import Signals
from typing import IO, Any

NATIVE_DIR = Path(__file__).resolve().parent / "native"
DRIVER_SOURCE = NATIVE_DIR / "fault_driver.c"
LAYER_SOURCE = NATIVE_DIR / "fault_layer.c"
PROBE_SOURCE = NATIVE_DIR / "fault_probe.c"
LOADER_SOURCE = NATIVE_DIR / "fault_loader.c"
GONE_HELPER_SOURCE = NATIVE_DIR / "gone_helper.c"
# The Vulkan ABI slice the fixtures share with vkdoctor's own trace layer.
VK_HEADER = Path(__file__).resolve().parent.parent / "vkdoctor" / "native" / "vkdoctor_vk.h"

DRIVER_VARIANTS: tuple[str, ...] = (
    "ok",
    "negotiate-crash",
    "negotiate-hang",
    "negotiate-incompatible",
    "old-interface",
    "no-exports",
    "no-gipa",
    "constructor-crash",
    "missing-dependency",
    "wrong-arch",
    "create-instance-crash",
    "create-instance-hang",
    "create-instance-fail",
    "enumerate-crash",
    "enumerate-hang",
    "zero-devices",
    "create-device-crash",
    "create-device-hang",
    "gdpa-null",
    "no-compute",
    "dispatch-crash",
    "dispatch-hang",
    "create-device-fail",
    "gipa-no-create-instance",
    "dispatch-lost",
    "submit-oom",
    "submit-dropped",
    "extensions-refused",
    "old-revision",
    "pipeline-fail",
    "bounds-off-by-one",
)

LAYER_VARIANTS: tuple[str, ...] = (
    "ok",
    "create-instance-crash",
    "create-instance-hang",
    "create-device-crash",
    "negotiate-fail",
    "no-negotiate",
    "gipa-unexpected",
)

# Fault loaders (fault_loader.c): the real loader with vkGetInstanceProcAddr wrong for one
# command, {variant: that command}.
LOADER_VARIANTS: dict[str, str] = {
    # A global command: the spec requires vkGetInstanceProcAddr(NULL, name) to return it.
    "global-missing": "vkEnumerateInstanceLayerProperties",
    # Not global: vkGetInstanceProcAddr(NULL, name) must return NULL for it.
    "null-leak": "vkEnumeratePhysicalDevices",
    # Core 1.1 instance command: vkGetInstanceProcAddr(instance, name) must return it at 1.3.
    "instance-missing": "vkEnumeratePhysicalDeviceGroups",
}

# Variants whose failure is a process that never returns; callers need a timeout.
HANGING_DRIVER_VARIANTS: frozenset[str] = frozenset(
    {"negotiate-hang", "create-instance-hang", "enumerate-hang", "create-device-hang"}
)
HANGING_LAYER_VARIANTS: frozenset[str] = frozenset({"create-instance-hang"})

# The dependency the "missing-dependency" driver is linked against and that the build deletes.
GONE_LIBRARY = "libvkdoctor_gone.so.1"

# The command the "gipa-unexpected" layer resolves although its extension (VK_SEC_ubm_surface, an
# instance extension unknown to loader 1.3.239) is not enabled; fault_layer.c names it too.
GIPA_UNEXPECTED_COMMAND = "vkGetPhysicalDeviceUbmPresentationSupportSEC"

# The device command the "gdpa-null" driver hides from vkGetDeviceProcAddr.
GDPA_NULL_COMMAND = "vkCreateBuffer"

# The extension the "old-revision" driver reports at specVersion 1, and its command it hides.
OLD_REVISION_EXTENSION = "VK_KHR_push_descriptor"
OLD_REVISION_COMMAND = "vkCmdPushDescriptorSetKHR"

VK_QUEUE_GRAPHICS_BIT = 0x1
VK_QUEUE_COMPUTE_BIT = 0x2
VK_QUEUE_TRANSFER_BIT = 0x4

# Where distributions install lavapipe's manifest; XDG_DATA_DIRS is consulted first.
_MANIFEST_ROOTS = ("/usr/local/share", "/usr/share", "/etc")


class FaultBuildError(RuntimeError):
    """A fixture library could not be built; the message carries the compiler's output."""


class _Auto(enum.Enum):
    AUTO = "auto"


# Default for ``write_layer_manifest(disable_environment=...)``: a per-layer variable for implicit
# layers (the loader requires one), nothing for explicit layers.
AUTO = _Auto.AUTO


# --------------------------------------------------------------------------------------------
# lavapipe


def lavapipe_manifest() -> Path:
    """The installed lavapipe driver manifest for this machine's architecture.

    Raises FileNotFoundError when lavapipe (Debian: mesa-vulkan-drivers) is not installed.
    """
    roots = [p for p in os.environ.get("XDG_DATA_DIRS", "").split(":") if p]
    roots += [r for r in _MANIFEST_ROOTS if r not in roots]
    candidates: list[Path] = []
    for root in roots:
        candidates += sorted(Path(root, "vulkan", "icd.d").glob("lvp_icd*.json"))
    if not candidates:
        raise FileNotFoundError(
            "no lavapipe manifest (lvp_icd*.json) under "
            + ", ".join(f"{r}/vulkan/icd.d" for r in roots)
            + "; install mesa-vulkan-drivers"
        )
    # Multiarch systems also carry lvp_icd.i686.json; prefer the one named for this machine.
    machine = platform.machine()
    for path in candidates:
        if path.name == f"lvp_icd.{machine}.json":
            return path
    return candidates[0]


def lavapipe_library() -> Path:
    """lavapipe's library as named by its installed manifest, resolved like the loader does.

    An absolute path is returned as is, a relative path is taken relative to the manifest, and a
    bare file name is returned unchanged (``dlopen`` searches the system paths for it).
    """
    manifest = lavapipe_manifest()
    data = json.loads(manifest.read_text())
    library = data["ICD"]["library_path"]
    path = Path(library)
    if path.is_absolute() or "/" not in library:
        return path
    return (manifest.parent / path).resolve()


# --------------------------------------------------------------------------------------------
# Building


def _compiler() -> str:
    """The C compiler: $CC if set, else ``cc`` (the build uses only its gcc/clang driver flags)."""
    return os.environ.get("CC") or "cc"


def compiler_available() -> bool:
    return shutil.which(shlex.split(_compiler())[0]) is not None


def _macro(variant: str) -> str:
    return "FAULT_" + variant.upper().replace("-", "_")


def _c_string(value: str) -> str:
    # One -D argument (no shell involved): the macro's value must be a C string literal.
    return json.dumps(value)


def driver_library_name(variant: str) -> str:
    return f"libvkfault_driver_{variant.replace('-', '_')}.so"


def layer_library_name(variant: str) -> str:
    return f"libVkLayer_vkfault_{variant.replace('-', '_')}.so"


def layer_name(variant: str) -> str:
    """The layer name the fixture manifests use for a layer variant."""
    return "VK_LAYER_VKFAULT_" + variant.replace("-", "_")


def _run_compiler(args: Sequence[str], what: str) -> None:
    cmd = [*shlex.split(_compiler()), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise FaultBuildError(f"building {what}: C compiler not found: {cmd[0]}") from exc
    if proc.returncode != 0:
        raise FaultBuildError(
            f"building {what} failed (exit {proc.returncode}):\n"
            f"$ {shlex.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )


def _cached_build(
    out_dir: Path, kind: str, variant: str, inputs: Iterable[str], filename: str, build: Any
) -> Path:
    """Build once into ``out_dir/<kind>-<variant>-<hash>/<filename>``, atomically.

    The hash covers the sources and flags, so a reused ``out_dir`` never serves a stale library.
    ``build(tmpdir) -> None`` must create ``tmpdir/filename``.
    """
    digest = hashlib.sha256("\0".join(inputs).encode()).hexdigest()[:12]
    final_dir = Path(out_dir) / f"{kind}-{variant}-{digest}"
    target = final_dir / filename
    if target.exists():
        return target
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{kind}-{variant}-", dir=final_dir.parent))
    try:
        build(work)
        if not (work / filename).exists():
            raise FaultBuildError(f"building {kind} {variant!r}: {filename} was not produced")
        try:
            work.rename(final_dir)
        except OSError:
            # Another process finished the same build first; its result is identical.
            if not target.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _source_inputs(*sources: Path) -> list[str]:
    return [f"{s.name}:{hashlib.sha256(s.read_bytes()).hexdigest()}" for s in (*sources, VK_HEADER)]


_COMMON_FLAGS = (
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-fPIC",
    "-fvisibility=hidden",
    f"-I{VK_HEADER.parent}",
)


def build_driver(out_dir: Path, variant: str) -> Path:
    """Compile the fault driver ``variant`` (one of DRIVER_VARIANTS) and return the library.

    Every variant except "wrong-arch" forwards to lavapipe (``lavapipe_library()``, compiled in);
    "missing-dependency" is linked against GONE_LIBRARY, which is deleted after linking.
    Raises FaultBuildError naming the compiler command and its output on failure.
    """
    if variant not in DRIVER_VARIANTS:
        raise ValueError(f"unknown driver variant {variant!r}; known: {', '.join(DRIVER_VARIANTS)}")
    filename = driver_library_name(variant)
    defines = [f"-DFAULT_VARIANT_NAME={_c_string(variant)}"]
    if variant != "ok":
        defines.append(f"-D{_macro(variant)}")

    if variant == "wrong-arch":
        # A 32-bit object that needs no 32-bit libc: the source includes no headers in this mode.
        flags = ["-m32", "-shared", "-nostdlib", "-nostartfiles", "-fPIC", "-fvisibility=hidden"]

        def build(work: Path) -> None:
            _run_compiler(
                [*flags, *defines, str(DRIVER_SOURCE), "-o", str(work / filename)],
                f"driver {variant!r}",
            )

        inputs = [_compiler(), *flags, *defines, *_source_inputs(DRIVER_SOURCE)]
        return _cached_build(out_dir, "driver", variant, inputs, filename, build)

    defines.append(f"-DLVP_PATH={_c_string(str(lavapipe_library()))}")
    flags = [*_COMMON_FLAGS, "-shared"]
    libs = ["-ldl", "-lpthread"]
    sources = [DRIVER_SOURCE]
    if variant == "missing-dependency":
        sources.append(GONE_HELPER_SOURCE)

    def build(work: Path) -> None:
        extra: list[str] = []
        if variant == "missing-dependency":
            gone = work / GONE_LIBRARY
            _run_compiler(
                [*flags, f"-Wl,-soname,{GONE_LIBRARY}", str(GONE_HELPER_SOURCE), "-o", str(gone)],
                f"helper {GONE_LIBRARY}",
            )
            # --no-as-needed keeps DT_NEEDED even if a linker default would drop it; the
            # $ORIGIN run path makes the library's absence (not the search path) the fault.
            extra = ["-Wl,--no-as-needed", str(gone), "-Wl,-rpath,$ORIGIN"]
        _run_compiler(
            [*flags, *defines, str(DRIVER_SOURCE), "-o", str(work / filename), *extra, *libs],
            f"driver {variant!r}",
        )
        if variant == "missing-dependency":
            (work / GONE_LIBRARY).unlink()

    inputs = [_compiler(), *flags, *defines, *libs, *_source_inputs(*sources)]
    return _cached_build(out_dir, "driver", variant, inputs, filename, build)


def build_layer(out_dir: Path, variant: str) -> Path:
    """Compile the fault layer ``variant`` (one of LAYER_VARIANTS) and return the library."""
    if variant not in LAYER_VARIANTS:
        raise ValueError(f"unknown layer variant {variant!r}; known: {', '.join(LAYER_VARIANTS)}")
    filename = layer_library_name(variant)
    defines = [f"-DFAULT_VARIANT_NAME={_c_string(variant)}"]
    if variant != "ok":
        defines.append(f"-D{_macro(variant)}")
    flags = [*_COMMON_FLAGS, "-shared"]
    libs = ["-lpthread"]

    def build(work: Path) -> None:
        _run_compiler(
            [*flags, *defines, str(LAYER_SOURCE), "-o", str(work / filename), *libs],
            f"layer {variant!r}",
        )

    inputs = [_compiler(), *flags, *defines, *libs, *_source_inputs(LAYER_SOURCE)]
    return _cached_build(out_dir, "layer", variant, inputs, filename, build)


def system_loader() -> Path:
    """The real libvulkan.so.1 the dynamic linker's cache names for this machine's ABI.

    Raises FileNotFoundError when libvulkan1 is not installed.
    """
    abi = {"x86_64": "x86-64", "aarch64": "AArch64"}.get(platform.machine(), platform.machine())
    listing = subprocess.run(
        ["ldconfig", "-p"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    for line in listing.splitlines():
        name, _, target = line.strip().partition(" => ")
        if name.startswith("libvulkan.so.1 (") and abi in name:
            return Path(target).resolve()
    raise FileNotFoundError("no libvulkan.so.1 in the dynamic linker's cache; install libvulkan1")


def loader_exports(loader: Path) -> list[str]:
    """The vk* functions ``loader`` exports (its dynamic symbol table), sorted."""
    from elftools.elf.elffile import ELFFile

    with open(loader, "rb") as f:
        dynsym = ELFFile(f).get_section_by_name(".dynsym")
        names = {
            s.name
            for s in dynsym.iter_symbols()
            if s.name.startswith("vk")
            and s["st_info"]["type"] == "STT_FUNC"
            and s["st_shndx"] != "SHN_UNDEF"
        }
    return sorted(names)


def build_loader(out_dir: Path, variant: str) -> Path:
    """Compile the fault loader ``variant`` (a key of LOADER_VARIANTS) over ``system_loader()``.

    The library is named libvulkan.so.1 in a folder of its own: put that folder on
    LD_LIBRARY_PATH and every Vulkan program (vkdoctor's children too) loads it.
    """
    if variant not in LOADER_VARIANTS:
        known = ", ".join(LOADER_VARIANTS)
        raise ValueError(f"unknown loader variant {variant!r}; known: {known}")
    real = system_loader()
    # Every export but the one the fault loader defines itself jumps to the real loader.
    forwards = "".join(
        f"FORWARD({name})\n" for name in loader_exports(real) if name != "vkGetInstanceProcAddr"
    )
    filename = "libvulkan.so.1"
    defines = [
        f"-DFAULT_VARIANT_NAME={_c_string(variant)}",
        f"-D{_macro(variant)}",
        f"-DREAL_LOADER={_c_string(str(real))}",
        f"-DFAULT_COMMAND={_c_string(LOADER_VARIANTS[variant])}",
    ]
    flags = [*_COMMON_FLAGS, "-shared", f"-Wl,-soname,{filename}"]
    libs = ["-ldl"]

    def build(work: Path) -> None:
        (work / "forwards.h").write_text(forwards)
        _run_compiler(
            [*flags, f"-I{work}", *defines, str(LOADER_SOURCE), "-o", str(work / filename), *libs],
            f"loader {variant!r}",
        )

    inputs = [_compiler(), *flags, *defines, *libs, forwards, *_source_inputs(LOADER_SOURCE)]
    return _cached_build(out_dir, "loader", variant, inputs, filename, build)


def build_probe(out_dir: Path) -> Path:
    """Compile ``fault_probe``, a small Vulkan client printing how far it gets (see its source)."""
    filename = "vkfault_probe"
    flags = ["-O2", "-g", "-Wall", "-Wextra", f"-I{VK_HEADER.parent}"]

    def build(work: Path) -> None:
        _run_compiler([*flags, str(PROBE_SOURCE), "-o", str(work / filename), "-ldl"], "probe")

    inputs = [_compiler(), *flags, *_source_inputs(PROBE_SOURCE)]
    return _cached_build(out_dir, "probe", "client", inputs, filename, build)


def build_all(
    out_dir: Path,
    drivers: Iterable[str] = DRIVER_VARIANTS,
    layers: Iterable[str] = LAYER_VARIANTS,
    *,
    jobs: int | None = None,
) -> tuple[dict[str, Path], dict[str, Path]]:
    """Build many variants concurrently; returns ({driver variant: lib}, {layer variant: lib})."""
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        driver_futures = {v: pool.submit(build_driver, out_dir, v) for v in drivers}
        layer_futures = {v: pool.submit(build_layer, out_dir, v) for v in layers}
        return (
            {v: f.result() for v, f in driver_futures.items()},
            {v: f.result() for v, f in layer_futures.items()},
        )


# --------------------------------------------------------------------------------------------
# Manifests


def _write_json(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4) + "\n")
    return path


def write_driver_manifest(
    dir: Path,
    library_path: str,
    *,
    name: str = "vkfault_driver",
    api_version: str = "1.3.239",
    file_format_version: str = "1.0.0",
    library_arch: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``dir/<name>.json``, a driver (ICD) manifest, and return its path.

    ``extra`` is merged into the ``"ICD"`` object last, so it can add fields
    (``is_portability_driver``) or override the generated ones.  ``library_arch`` is written as
    given; the loader only honours it with file_format_version >= 1.0.1.
    """
    icd: dict[str, Any] = {"library_path": library_path, "api_version": api_version}
    if library_arch is not None:
        icd["library_arch"] = library_arch
    icd.update(extra or {})
    return _write_json(
        Path(dir) / f"{name}.json", {"file_format_version": file_format_version, "ICD": icd}
    )


def default_disable_variable(name: str) -> str:
    """The disable_environment variable AUTO gives layer ``name``."""
    return "VKFAULT_DISABLE_" + name.removeprefix("VK_LAYER_").upper()


def write_layer_manifest(
    dir: Path,
    *,
    name: str,
    library_path: str,
    implicit: bool,
    disable_environment: dict[str, str] | _Auto | None = AUTO,
    enable_environment: dict[str, str] | None = None,
    api_version: str = "1.3.239",
    file_format_version: str = "1.1.2",
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``dir/<name>.json``, a single-layer manifest, and return its path.

    ``implicit`` only decides the AUTO default of ``disable_environment``
    (``{default_disable_variable(name): "1"}`` for implicit layers, absent for explicit ones);
    whether the loader treats the layer as implicit depends on the directory it is found in.
    ``None`` omits the field, e.g. to provoke the loader's "required disable_environment" warning.
    ``extra`` is merged into the ``"layer"`` object last.
    """
    layer: dict[str, Any] = {
        "name": name,
        "type": "GLOBAL",
        "library_path": library_path,
        "api_version": api_version,
        "implementation_version": "1",
        "description": "vkdoctor fault-injection layer",
    }
    if disable_environment is AUTO:
        disable_environment = {default_disable_variable(name): "1"} if implicit else None
    if disable_environment is not None:
        layer["disable_environment"] = dict(disable_environment)
    if enable_environment is not None:
        layer["enable_environment"] = dict(enable_environment)
    layer.update(extra or {})
    return _write_json(
        Path(dir) / f"{name}.json", {"file_format_version": file_format_version, "layer": layer}
    )


# --------------------------------------------------------------------------------------------
# Running Vulkan clients in isolation


def implicit_layer_dir(home: Path) -> Path:
    """The implicit-layer directory that ``loader_env(home, ...)`` makes the loader search.

    Loader 1.3.239 has no VK_IMPLICIT_LAYER_PATH; it finds implicit layers under
    ``$XDG_DATA_HOME/vulkan/implicit_layer.d``, so that is where fixtures go.
    """
    return Path(home) / ".local" / "share" / "vulkan" / "implicit_layer.d"


def loader_env(
    home: Path,
    *,
    driver_manifests: Sequence[Path] = (),
    debug: str | None = "all",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """An environment for a Vulkan child that sees only the given drivers and fixture layers.

    Starts from ``os.environ`` without any ``VK_*`` variable, then: ``VK_DRIVER_FILES`` lists
    ``driver_manifests`` (exclusive; default: lavapipe's manifest), HOME and every XDG
    config/data variable point inside ``home`` (so the machine's own implicit layers, such as
    Mesa's device_select, stay out, and ``implicit_layer_dir(home)`` is searched), and
    ``VK_LOADER_DEBUG`` is ``debug``.  ``extra`` is applied last.
    """
    home = Path(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VK_")}
    manifests = list(driver_manifests) or [lavapipe_manifest()]
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        # Existing but empty, so the loader's fallbacks (/etc/xdg, /usr/share) are not used.
        XDG_CONFIG_DIRS=str(home / "xdg-config-dirs"),
        XDG_DATA_DIRS=str(home / "xdg-data-dirs"),
        VK_DRIVER_FILES=":".join(str(m) for m in manifests),
    )
    for sub in ("xdg-config-dirs", "xdg-data-dirs", ".config", ".local/share"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    if debug:
        env["VK_LOADER_DEBUG"] = debug
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ChildRun:
    """How a child process ended and what it printed."""

    argv: tuple[str, ...]
    returncode: int | None  # None: still running at the timeout, then killed
    stdout: str
    stderr: str
    duration_s: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    @property
    def signal(self) -> Signals | None:
        """The signal that ended the child (SIGSEGV for the crash variants), if any."""
        if self.returncode is None or self.returncode >= 0:
            return None
        return Signals(-self.returncode)

    @property
    def stdout_lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()

    def phases(self) -> list[str]:
        """The ``phase`` breadcrumbs fault_probe printed, in order."""
        return [ln.split(" ", 1)[1] for ln in self.stdout_lines if ln.startswith("phase ")]

    def last_phase(self) -> str | None:
        phases = self.phases()
        return phases[-1] if phases else None

    def result(self, stage: str) -> int | None:
        """The VkResult fault_probe printed for ``stage``, if it got that far."""
        for ln in self.stdout_lines:
            parts = ln.split()
            if len(parts) == 3 and parts[:2] == ["result", stage]:
                return int(parts[2])
        return None

    def describe(self) -> str:
        """Everything about the run, for assertion messages."""
        end = "timeout" if self.timed_out else f"rc={self.returncode} signal={self.signal}"
        return (
            f"$ {shlex.join(self.argv)}  ({end}, {self.duration_s:.2f}s)\n"
            f"--- stdout\n{self.stdout}--- stderr (last 40 lines)\n"
            + "\n".join(self.stderr_lines[-40:])
        )


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    stdout: IO[bytes]
    stderr: IO[bytes]
    started: float


def _start_child(argv: Sequence[str], env: Mapping[str, str]) -> _Child:
    # Output goes to files, not pipes: a child blocked on a full pipe (VK_LOADER_DEBUG=all is
    # verbose) would look like a hang, and several children run at once in run_children.
    # The files outlive this function (they belong to the _Child); _collect closes them.
    out = tempfile.TemporaryFile()  # noqa: SIM115
    err = tempfile.TemporaryFile()  # noqa: SIM115
    started = time.monotonic()
    try:
        # A session of its own, so a timeout kills the child and anything it spawned.
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    except BaseException:
        out.close()
        err.close()
        raise
    return _Child(proc, out, err, started)


def _kill(child: _Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signal.SIGKILL)
    child.proc.wait()


def _collect(child: _Child, returncode: int | None, ended: float) -> ChildRun:
    texts = []
    for f in (child.stdout, child.stderr):
        f.seek(0)
        texts.append(f.read().decode(errors="replace"))
        f.close()
    return ChildRun(
        argv=tuple(str(a) for a in child.proc.args),  # type: ignore[union-attr]
        returncode=returncode,
        stdout=texts[0],
        stderr=texts[1],
        duration_s=ended - child.started,
    )


def run_child(argv: Sequence[str], env: Mapping[str, str], timeout: float = 3.0) -> ChildRun:
    """Run a Vulkan client (fault_probe, vulkaninfo) in isolation, killed after ``timeout``."""
    return run_children({"child": (argv, env)}, timeout)["child"]


def run_children(
    jobs: Mapping[str, tuple[Sequence[str], Mapping[str, str]]],
    timeout: float | Mapping[str, float] = 3.0,
) -> dict[str, ChildRun]:
    """Run several children at once, so that hang tests pay their timeout only once.

    ``timeout`` is one value for all jobs or a value per job key; each job's clock starts when
    it is started.  A child past its timeout is killed (its whole session) and reported with
    ``returncode=None``.
    """
    children: dict[str, _Child] = {}
    finished: dict[str, tuple[int | None, float]] = {}
    try:
        for key, (argv, env) in jobs.items():
            children[key] = _start_child(argv, env)
        deadline = {
            key: child.started + (timeout if isinstance(timeout, int | float) else timeout[key])
            for key, child in children.items()
        }
        # Polling (10 ms) rather than waiting on each in turn keeps every duration_s accurate.
        while len(finished) < len(children):
            now = time.monotonic()
            for key, child in children.items():
                if key in finished:
                    continue
                if child.proc.poll() is not None:
                    finished[key] = (child.proc.returncode, now)
                elif now >= deadline[key]:
                    _kill(child)
                    finished[key] = (None, now)
            if len(finished) < len(children):
                time.sleep(0.01)
    finally:
        # Interrupted (Ctrl-C, a child that cannot start): leave no hung driver behind.
        for key, child in children.items():
            if key not in finished:
                _kill(child)
                child.stdout.close()
                child.stderr.close()
    return {key: _collect(child, *finished[key]) for key, child in children.items()}
