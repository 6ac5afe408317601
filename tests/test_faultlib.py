"""The fault-injection fixtures do what they claim, against the real loader and lavapipe.

Every variant is built once per module and every Vulkan client runs in a child process at the
same time as the others (``faultlib.run_children``), so the hang variants cost one timeout in
total, not one each.  Expectations are the lines loader 1.3.239 (Debian 12) prints.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import faultlib
import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

pytestmark = pytest.mark.skipif(
    not faultlib.compiler_available(), reason="no C compiler (cc) to build the fault fixtures"
)

# Long enough to know a child is stuck, short enough to keep the module quick; all hanging
# children share it because they run concurrently.
HANG_TIMEOUT_S = 3.0
# The others finish in ~0.1 s; a generous limit keeps a loaded CI machine from faking a hang.
RUN_TIMEOUT_S = 30.0

LOADER_LINE = re.compile(
    r"^(?:\[Vulkan Loader\] )?(?:ERROR|WARNING|INFO|DEBUG|PERF|DRIVER|LAYER)\b"
)


@dataclass(frozen=True)
class Expect:
    """What one fault_probe run must show.

    ``end``: "done" (exit 0), "failed" (exit 1 after ``result <phase> <result>``), "SIGSEGV"
    or "hang".  ``stderr`` holds regexes; ``{lib}`` is replaced by the escaped library path and
    ``{name}`` by the layer name.
    """

    end: str
    phase: str
    result: int | None = None
    stderr: tuple[str, ...] = ()
    stdout: tuple[str, ...] = ()
    not_stderr: tuple[str, ...] = ()
    last_loader_line: str | None = None


NO_DRIVERS = r"vkCreateInstance: Found no drivers!"

DRIVER_EXPECT: dict[str, Expect] = {
    "ok": Expect(
        "done",
        "destroy",
        stderr=(r'Using "llvmpipe[^"]*" with driver: "{lib}"',),
        stdout=("devices 1", "queue-family 0 flags=0x7 count=1", "proc vkCreateBuffer ok"),
    ),
    "negotiate-crash": Expect(
        "SIGSEGV",
        "instance-extensions",
        stderr=(r"crashing in vk_icdNegotiateLoaderICDInterfaceVersion$",),
        last_loader_line=r"DEBUG \| DRIVER:\s+Searching for ICD drivers named {lib}$",
    ),
    "negotiate-hang": Expect(
        "hang",
        "instance-extensions",
        stderr=(r"hanging in vk_icdNegotiateLoaderICDInterfaceVersion$",),
        last_loader_line=r"Searching for ICD drivers named {lib}$",
    ),
    "negotiate-incompatible": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^ERROR:\s+loader_scanned_icd_add: ICD {lib} doesn't support interface version "
            r"compatible with loader, skip this ICD\.$",
            NO_DRIVERS,
        ),
    ),
    "old-interface": Expect(
        "done",
        "destroy",
        stderr=(
            r"^WARNING:\s+loader_scanned_icd_add: Driver {lib} supports Vulkan 1\.3, but only "
            r"supports loader interface version 1\. .*\(Policy #LDP_DRIVER_7\)$",
            r'with driver: "{lib}"',
        ),
        stdout=("devices 1",),
    ),
    "no-exports": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^ERROR:\s+loader_scanned_icd_add: Attempt to retrieve either 'vkGetInstanceProcAddr'"
            r" or 'vk_icdGetInstanceProcAddr' from ICD {lib} failed\.$",
            NO_DRIVERS,
        ),
    ),
    "no-gipa": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^ERROR:\s+loader_scanned_icd_add: ICD {lib} reports an interface version of 5 but "
            r"doesn't export vk_icdGetInstanceProcAddr, skip this ICD\.$",
            NO_DRIVERS,
        ),
    ),
    "constructor-crash": Expect(
        "SIGSEGV",
        "instance-extensions",
        stderr=(r"crashing in ELF constructor$",),
        last_loader_line=r"Searching for ICD drivers named {lib}$",
    ),
    "missing-dependency": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^ERROR:\s+libvkdoctor_gone\.so\.1: cannot open shared object file: "
            r"No such file or directory$",
            r"^ERROR \| DRIVER:\s+loader_icd_scan: Failed loading library associated with ICD "
            r"JSON {lib}\. Ignoring this JSON$",
            NO_DRIVERS,
        ),
    ),
    "wrong-arch": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^INFO:\s+{lib}: wrong ELF class: ELFCLASS32$",
            # 1.3.239 says "layer" here although it is a driver.
            r"^DRIVER:\s+Requested (?:layer|ICD|driver) {lib} was wrong bit-type\. "
            r"Ignoring this JSON$",
            NO_DRIVERS,
        ),
    ),
    "create-instance-crash": Expect(
        "SIGSEGV",
        "create-instance",
        stderr=(r"crashing in vkCreateInstance$",),
    ),
    "create-instance-hang": Expect(
        "hang", "create-instance", stderr=(r"hanging in vkCreateInstance$",)
    ),
    "create-instance-fail": Expect(
        "failed",
        "create-instance",
        result=-9,
        stderr=(
            r"^WARNING:\s+terminator_CreateInstance: Failed to CreateInstance in ICD 0\.\s+"
            r"Skipping ICD\.$",
            r"^ERROR \| DRIVER:\s+terminator_CreateInstance: Found no drivers!$",
        ),
    ),
    "enumerate-crash": Expect(
        "SIGSEGV",
        "enumerate-devices",
        stderr=(r"crashing in vkEnumeratePhysicalDevices$",),
    ),
    "enumerate-hang": Expect(
        "hang", "enumerate-devices", stderr=(r"hanging in vkEnumeratePhysicalDevices$",)
    ),
    "zero-devices": Expect(
        "failed",
        "enumerate-devices",
        result=-3,  # VK_ERROR_INITIALIZATION_FAILED: 1.3.239 fails when no driver has a device
        stderr=(
            r"^ERROR:\s+setup_loader_term_phys_devs:\s+Failed to detect any valid GPUs in the "
            r"current config$",
        ),
    ),
    "create-device-crash": Expect(
        "SIGSEGV",
        "create-device",
        stderr=(r"crashing in vkCreateDevice$",),
        last_loader_line=r'Using "llvmpipe[^"]*" with driver: "{lib}"$',
    ),
    "create-device-hang": Expect("hang", "create-device", stderr=(r"hanging in vkCreateDevice$",)),
    "gdpa-null": Expect(
        "done",
        "destroy",
        stdout=("proc vkCreateBuffer null", "proc vkGetDeviceQueue ok"),
    ),
    # fault_probe records no command buffer: these two only fault in a real dispatch
    # (tests/test_codes_e2e.py runs one).
    "dispatch-crash": Expect("done", "destroy"),
    "dispatch-hang": Expect("done", "destroy"),
    "dispatch-lost": Expect("done", "destroy"),
    "submit-oom": Expect("done", "destroy"),
    "submit-dropped": Expect("done", "destroy"),
    "create-device-fail": Expect("failed", "create-device", result=-3),
    # fault_probe enables no device extension by default: both devices are created
    # (tests/test_codes_driver.py shows each fault with --device-extension).
    "extensions-refused": Expect("done", "destroy"),
    "old-revision": Expect("done", "destroy"),
    # fault_probe makes no pipeline; the kernels test sees this one fail.
    "pipeline-fail": Expect("done", "destroy"),
    # fault_probe records no command buffer; tests/test_codes_driver.py dispatches.
    "bounds-off-by-one": Expect("done", "destroy"),
    # The loader asks GIPA(NULL, "vkCreateInstance") while scanning and drops the driver.
    "gipa-no-create-instance": Expect("failed", "create-instance", result=-9, stderr=(NO_DRIVERS,)),
    "no-compute": Expect(
        "done",
        "destroy",
        # lavapipe's one family is graphics|compute|transfer (0x7); compute is gone, the rest not.
        stdout=("queue-family 0 flags=0x5 count=1", "queue-family2 0 flags=0x5 count=1"),
    ),
}

LAYER_EXPECT: dict[str, Expect] = {
    "ok": Expect(
        "done",
        "destroy",
        stderr=(
            r'^INFO \| LAYER:\s+Insert instance layer "{name}" \({lib}\)$',
            r'^INFO \| LAYER:\s+Inserted device layer "{name}" \({lib}\)$',
            r"vkfault layer \(ok\): vkCreateInstance -> 0$",
            r"vkfault layer \(ok\): vkCreateDevice -> 0$",
            r"vkfault layer \(ok\): vkDestroyDevice$",
            r"vkfault layer \(ok\): vkDestroyInstance$",
        ),
    ),
    "create-instance-crash": Expect(
        "SIGSEGV",
        "create-instance",
        stderr=(r'Insert instance layer "{name}"', r"crashing in vkCreateInstance$"),
    ),
    "create-instance-hang": Expect(
        "hang",
        "create-instance",
        stderr=(r'Insert instance layer "{name}"', r"hanging in vkCreateInstance$"),
    ),
    "create-device-crash": Expect(
        "SIGSEGV",
        "create-device",
        stderr=(r'Inserted device layer "{name}"', r"crashing in vkCreateDevice$"),
    ),
    "negotiate-fail": Expect(
        "done",
        "destroy",
        stderr=(r"vkNegotiateLoaderLayerInterfaceVersion -> -3$",),
    ),
    "no-negotiate": Expect(
        "done",
        "destroy",
        stderr=(
            r"^ERROR \| LAYER:\s+loader_create_instance_chain: Failed to find "
            r"'vkGetInstanceProcAddr' in layer \"{lib}\"$",
        ),
        not_stderr=(r"vkfault layer \(no-negotiate\): vkCreateInstance",),
    ),
    # Its extra command is only answered when asked for (tests/test_codes_gipa.py does); the
    # rest is the ok layer's pass-through.
    "gipa-unexpected": Expect(
        "done",
        "destroy",
        stderr=(
            r'^INFO \| LAYER:\s+Insert instance layer "{name}" \({lib}\)$',
            r"vkfault layer \(gipa-unexpected\): vkCreateDevice -> 0$",
        ),
    ),
}


# ---------------------------------------------------------------------------------------------
# Fixtures (module-local: conftest.py belongs to the wider suite)


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def libs(build_dir: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    return faultlib.build_all(build_dir)


@pytest.fixture(scope="module")
def probe(build_dir: Path) -> Path:
    return faultlib.build_probe(build_dir)


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory,
    libs: tuple[dict[str, Path], dict[str, Path]],
    probe: Path,
) -> dict[str, faultlib.ChildRun]:
    """Every client run this module checks, all started at once.

    Keys: ``driver:<variant>`` (through the loader), ``direct:<variant>`` (driver dlopen'ed by
    the probe itself), ``layer:<variant>`` (implicit layer over lavapipe), and a few extras.
    """
    drivers, layers = libs
    root = tmp_path_factory.mktemp("runs")
    trace = {"VKFAULT_TRACE": "1"}
    jobs: dict[str, tuple[list[str], dict[str, str]]] = {}
    timeouts: dict[str, float] = {}

    def add(key: str, argv: list[str], env: dict[str, str], hangs: bool) -> None:
        jobs[key] = (argv, env)
        timeouts[key] = HANG_TIMEOUT_S if hangs else RUN_TIMEOUT_S

    # Hanging jobs first: they start first and so reach their hang well before the deadline.
    order = sorted(DRIVER_EXPECT, key=lambda v: DRIVER_EXPECT[v].end != "hang")
    for variant in order:
        where = root / f"driver-{variant}"
        manifest = faultlib.write_driver_manifest(where, str(drivers[variant]))
        env = faultlib.loader_env(where / "home", driver_manifests=[manifest], extra=trace)
        add(f"driver:{variant}", [str(probe)], env, DRIVER_EXPECT[variant].end == "hang")
        if variant == "no-compute":
            # Instance 1.0 + VK_KHR_get_physical_device_properties2: the loader calls the
            # driver's ...Properties2KHR, the third entry point that must hide compute.
            add("driver:no-compute:khr", [str(probe), "--api-minor", "0", "--khr"], env, False)

    for variant in ("ok", "old-interface", "zero-devices", "no-gipa", "missing-dependency"):
        env = faultlib.loader_env(root / f"direct-{variant}", extra=trace)
        add(f"direct:{variant}", [str(probe), "--driver", str(drivers[variant])], env, False)

    for variant in sorted(LAYER_EXPECT, key=lambda v: LAYER_EXPECT[v].end != "hang"):
        home = root / f"layer-{variant}"
        faultlib.write_layer_manifest(
            faultlib.implicit_layer_dir(home),
            name=faultlib.layer_name(variant),
            library_path=str(layers[variant]),
            implicit=True,
        )
        env = faultlib.loader_env(home, extra=trace)
        add(f"layer:{variant}", [str(probe)], env, LAYER_EXPECT[variant].end == "hang")

    # The same ok layer, switched off through the disable_environment the manifest declares.
    home = root / "layer-ok-disabled"
    name = faultlib.layer_name("ok")
    faultlib.write_layer_manifest(
        faultlib.implicit_layer_dir(home),
        name=name,
        library_path=str(layers["ok"]),
        implicit=True,
    )
    disable = {faultlib.default_disable_variable(name): "1"}
    add(
        "layer:ok:disabled",
        [str(probe)],
        faultlib.loader_env(home, extra={**trace, **disable}),
        False,
    )

    return faultlib.run_children(jobs, timeouts)


# ---------------------------------------------------------------------------------------------
# Helpers


def _check(run: faultlib.ChildRun, expect: Expect, lib: Path, name: str = "") -> None:
    info = run.describe()
    if expect.end == "hang":
        assert run.timed_out, info
    elif expect.end == "SIGSEGV":
        assert run.signal is not None and run.signal.name == "SIGSEGV", info
    elif expect.end == "failed":
        assert run.returncode == 1, info
        assert run.result(expect.phase) == expect.result, info
    else:
        assert run.returncode == 0, info
        assert run.stdout_lines[-1:] == ["done"], info
    assert run.last_phase() == expect.phase, info

    def pattern(p: str) -> re.Pattern[str]:
        return re.compile(
            p.replace("{lib}", re.escape(str(lib))).replace("{name}", re.escape(name)), re.M
        )

    for p in expect.stderr:
        assert pattern(p).search(run.stderr), f"stderr lacks /{p}/\n{info}"
    for p in expect.not_stderr:
        assert not pattern(p).search(run.stderr), f"stderr has /{p}/\n{info}"
    for line in expect.stdout:
        assert line in run.stdout_lines, f"stdout lacks {line!r}\n{info}"
    if expect.last_loader_line:
        loader_lines = [ln for ln in run.stderr_lines if LOADER_LINE.match(ln)]
        assert loader_lines, info
        assert pattern(expect.last_loader_line).search(loader_lines[-1]), info


def _loader_version(stderr: str) -> tuple[int, ...]:
    match = re.search(r"Vulkan Loader Version (\d+)\.(\d+)\.(\d+)", stderr)
    assert match, "VK_LOADER_DEBUG=all output lacks the loader version line"
    return tuple(int(g) for g in match.groups())


def _dynamic_symbols(path: Path) -> set[str]:
    with path.open("rb") as f:
        elf = ELFFile(f)
        dynsym = elf.get_section_by_name(".dynsym")
        return {s.name for s in dynsym.iter_symbols() if s.name and s["st_shndx"] != "SHN_UNDEF"}


# ---------------------------------------------------------------------------------------------
# Through the real loader


def test_every_variant_has_an_expectation() -> None:
    assert set(DRIVER_EXPECT) == set(faultlib.DRIVER_VARIANTS)
    assert set(LAYER_EXPECT) == set(faultlib.LAYER_VARIANTS)
    assert {
        v for v, e in DRIVER_EXPECT.items() if e.end == "hang"
    } == faultlib.HANGING_DRIVER_VARIANTS
    assert {
        v for v, e in LAYER_EXPECT.items() if e.end == "hang"
    } == faultlib.HANGING_LAYER_VARIANTS


@pytest.mark.parametrize("variant", faultlib.DRIVER_VARIANTS)
def test_driver_variant_through_loader(
    variant: str,
    runs: dict[str, faultlib.ChildRun],
    libs: tuple[dict[str, Path], dict[str, Path]],
) -> None:
    lib = libs[0][variant]
    run = runs[f"driver:{variant}"]
    _check(run, DRIVER_EXPECT[variant], lib)
    if DRIVER_EXPECT[variant].end in ("SIGSEGV", "hang"):
        # The fault fired where the variant says, not somewhere earlier by accident.
        assert f"vkfault driver ({variant}): " in run.stderr, run.describe()


def test_no_compute_hides_compute_from_the_khr_entry_point(
    runs: dict[str, faultlib.ChildRun],
) -> None:
    run = runs["driver:no-compute:khr"]
    assert run.returncode == 0, run.describe()
    assert "queue-family2 0 flags=0x5 count=1" in run.stdout_lines, run.describe()


def test_ok_driver_shows_up_in_vulkaninfo(
    tmp_path: Path, libs: tuple[dict[str, Path], dict[str, Path]]
) -> None:
    vulkaninfo = shutil.which("vulkaninfo")
    if vulkaninfo is None:
        pytest.skip("vulkaninfo not installed")
    manifest = faultlib.write_driver_manifest(tmp_path, str(libs[0]["ok"]))
    env = faultlib.loader_env(tmp_path / "home", driver_manifests=[manifest], debug=None)
    run = faultlib.run_child([vulkaninfo, "--summary"], env, timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.describe()
    assert re.search(r"deviceName\s+= llvmpipe", run.stdout), run.describe()


# ---------------------------------------------------------------------------------------------
# The driver on its own (what the loader never logs)


def test_direct_negotiated_versions(runs: dict[str, faultlib.ChildRun]) -> None:
    assert "interface 5" in runs["direct:ok"].stdout_lines, runs["direct:ok"].describe()
    old = runs["direct:old-interface"]
    assert "interface 1" in old.stdout_lines, old.describe()
    assert "negotiated interface version 1, result 0" in old.stderr, old.describe()


def test_direct_zero_devices_groups_agree(runs: dict[str, faultlib.ChildRun]) -> None:
    run = runs["direct:zero-devices"]
    assert run.returncode == 0, run.describe()
    assert "devices 0" in run.stdout_lines, run.describe()
    assert "groups 0" in run.stdout_lines, run.describe()
    ok = runs["direct:ok"]
    assert "groups 1" in ok.stdout_lines, ok.describe()


def test_direct_export_and_dependency_faults(runs: dict[str, faultlib.ChildRun]) -> None:
    no_gipa = runs["direct:no-gipa"]
    assert no_gipa.stdout_lines[-2:] == ["interface 5", "gipa absent"], no_gipa.describe()
    gone = runs["direct:missing-dependency"]
    expected = f"dlerror {faultlib.GONE_LIBRARY}: cannot open shared object file: No such file"
    assert gone.stdout_lines[-1].startswith(expected), gone.describe()


# ---------------------------------------------------------------------------------------------
# Layers


@pytest.mark.parametrize("variant", faultlib.LAYER_VARIANTS)
def test_layer_variant_through_loader(
    variant: str,
    runs: dict[str, faultlib.ChildRun],
    libs: tuple[dict[str, Path], dict[str, Path]],
) -> None:
    run = runs[f"layer:{variant}"]
    _check(run, LAYER_EXPECT[variant], libs[1][variant], faultlib.layer_name(variant))


def test_layer_negotiate_fail_consistency(
    runs: dict[str, faultlib.ChildRun], libs: tuple[dict[str, Path], dict[str, Path]]
) -> None:
    run = runs["layer:negotiate-fail"]
    name = faultlib.layer_name("negotiate-fail")
    inserted = f'Insert instance layer "{name}"' in run.stderr
    intercepted = "vkfault layer (negotiate-fail): vkCreateInstance -> 0" in run.stderr
    # Whatever the loader decides, its log must match what the layer saw.
    assert inserted == intercepted, run.describe()
    if _loader_version(run.stderr) < (1, 4, 0):
        # Vulkan-Loader#1708: the failed negotiation is ignored and the layer is activated
        # through its exported vkGetInstanceProcAddr.
        assert inserted, run.describe()


def test_layer_disable_environment_switches_it_off(runs: dict[str, faultlib.ChildRun]) -> None:
    run = runs["layer:ok:disabled"]
    assert run.returncode == 0, run.describe()
    assert "Insert instance layer" not in run.stderr, run.describe()
    assert "vkfault layer" not in run.stderr, run.describe()


# ---------------------------------------------------------------------------------------------
# The libraries as files


def test_elf_facts(libs: tuple[dict[str, Path], dict[str, Path]]) -> None:
    drivers, layers = libs
    icd = {
        "vk_icdNegotiateLoaderICDInterfaceVersion",
        "vk_icdGetInstanceProcAddr",
        "vk_icdGetPhysicalDeviceProcAddr",
    }
    assert icd <= _dynamic_symbols(drivers["ok"])
    assert "vkfault_driver_variant" in _dynamic_symbols(drivers["ok"])
    no_exports = _dynamic_symbols(drivers["no-exports"])
    assert not no_exports & (icd | {"vkGetInstanceProcAddr"}), no_exports
    no_gipa = _dynamic_symbols(drivers["no-gipa"])
    assert "vk_icdNegotiateLoaderICDInterfaceVersion" in no_gipa
    assert "vk_icdGetInstanceProcAddr" not in no_gipa

    with drivers["wrong-arch"].open("rb") as f:
        elf = ELFFile(f)
        assert (elf.elfclass, elf["e_machine"]) == (32, "EM_386")

    with drivers["missing-dependency"].open("rb") as f:
        dynamic = ELFFile(f).get_section_by_name(".dynamic")
        assert isinstance(dynamic, DynamicSection)
        needed = [t.needed for t in dynamic.iter_tags("DT_NEEDED")]
    assert faultlib.GONE_LIBRARY in needed
    assert not (drivers["missing-dependency"].parent / faultlib.GONE_LIBRARY).exists()

    layer = {"vkNegotiateLoaderLayerInterfaceVersion", "vkGetInstanceProcAddr"}
    assert layer | {"vkGetDeviceProcAddr"} <= _dynamic_symbols(layers["ok"])
    assert not layer & _dynamic_symbols(layers["no-negotiate"])


def test_every_fault_macro_is_a_variant() -> None:
    def macros(source: Path) -> set[str]:
        found = set(re.findall(r"\bFAULT_[A-Z_]+\b", source.read_text()))
        return found - {"FAULT_VARIANT_NAME"}

    assert macros(faultlib.DRIVER_SOURCE) == {
        "FAULT_" + v.upper().replace("-", "_") for v in faultlib.DRIVER_VARIANTS if v != "ok"
    }
    assert macros(faultlib.LAYER_SOURCE) == {
        "FAULT_" + v.upper().replace("-", "_") for v in faultlib.LAYER_VARIANTS if v != "ok"
    }
    # The command the gipa-unexpected layer answers is named in both places.
    assert f'"{faultlib.GIPA_UNEXPECTED_COMMAND}"' in faultlib.LAYER_SOURCE.read_text()
    assert macros(faultlib.LOADER_SOURCE) - {"FAULT_COMMAND"} == {
        "FAULT_" + v.upper().replace("-", "_") for v in faultlib.LOADER_VARIANTS
    }


@pytest.mark.parametrize("variant", faultlib.LOADER_VARIANTS)
def test_fault_loader_exports_what_the_real_loader_exports(build_dir: Path, variant: str) -> None:
    """A drop-in libvulkan.so.1: the real loader's every vk* function and its soname, so the
    dynamic linker and the vulkan binding take it for the loader."""
    loader = faultlib.build_loader(build_dir, variant)
    assert loader.name == "libvulkan.so.1"
    real = faultlib.system_loader()
    assert set(faultlib.loader_exports(real)) <= _dynamic_symbols(loader)
    with loader.open("rb") as f:
        dynamic = ELFFile(f).get_section_by_name(".dynamic")
        assert isinstance(dynamic, DynamicSection)
        assert [t.soname for t in dynamic.iter_tags("DT_SONAME")] == ["libvulkan.so.1"]


def test_builds_are_cached(build_dir: Path, libs: tuple[dict[str, Path], dict[str, Path]]) -> None:
    lib = libs[0]["gdpa-null"]
    before = lib.stat().st_mtime_ns
    assert faultlib.build_driver(build_dir, "gdpa-null") == lib
    assert lib.stat().st_mtime_ns == before
    assert faultlib.build_layer(build_dir, "ok") == libs[1]["ok"]


def test_build_failure_names_compiler_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "cc -Wl,--vkfault-no-such-option")
    with pytest.raises(faultlib.FaultBuildError, match="vkfault-no-such-option"):
        faultlib.build_layer(tmp_path, "ok")
    assert not list(tmp_path.glob("layer-*")), "a failed build must not leave a cached result"


def test_unknown_variant_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown driver variant"):
        faultlib.build_driver(tmp_path, "no-such-fault")
    with pytest.raises(ValueError, match="unknown layer variant"):
        faultlib.build_layer(tmp_path, "no-such-fault")


def test_lavapipe_library_comes_from_its_manifest() -> None:
    manifest = faultlib.lavapipe_manifest()
    library = faultlib.lavapipe_library()
    assert json.loads(manifest.read_text())["ICD"]["library_path"].endswith(library.name)
    assert library.name.startswith("libvulkan_lvp")
    if library.is_absolute():
        assert library.exists()


# ---------------------------------------------------------------------------------------------
# Manifests


def test_driver_manifest(tmp_path: Path) -> None:
    path = faultlib.write_driver_manifest(tmp_path, "/x/libfoo.so")
    assert path == tmp_path / "vkfault_driver.json"
    assert json.loads(path.read_text()) == {
        "file_format_version": "1.0.0",
        "ICD": {"library_path": "/x/libfoo.so", "api_version": "1.3.239"},
    }
    path = faultlib.write_driver_manifest(
        tmp_path,
        "libfoo.so",
        name="other",
        api_version="1.1.0",
        file_format_version="1.0.1",
        library_arch="32",
        extra={"is_portability_driver": True},
    )
    assert json.loads(path.read_text()) == {
        "file_format_version": "1.0.1",
        "ICD": {
            "library_path": "libfoo.so",
            "api_version": "1.1.0",
            "library_arch": "32",
            "is_portability_driver": True,
        },
    }


def test_layer_manifest(tmp_path: Path) -> None:
    implicit = faultlib.write_layer_manifest(
        tmp_path, name="VK_LAYER_X_y", library_path="/l.so", implicit=True
    )
    assert implicit == tmp_path / "VK_LAYER_X_y.json"
    data = json.loads(implicit.read_text())
    assert data["file_format_version"] == "1.1.2"
    assert data["layer"]["disable_environment"] == {"VKFAULT_DISABLE_X_Y": "1"}
    assert "enable_environment" not in data["layer"]
    assert {data["layer"][k] for k in ("name", "library_path", "api_version", "type")} == {
        "VK_LAYER_X_y",
        "/l.so",
        "1.3.239",
        "GLOBAL",
    }

    explicit = json.loads(
        faultlib.write_layer_manifest(
            tmp_path, name="VK_LAYER_E", library_path="e.so", implicit=False
        ).read_text()
    )
    assert "disable_environment" not in explicit["layer"]

    custom = json.loads(
        faultlib.write_layer_manifest(
            tmp_path,
            name="VK_LAYER_C",
            library_path="c.so",
            implicit=True,
            disable_environment=None,
            enable_environment={"ENABLE_C": "1"},
            api_version="1.2.0",
            file_format_version="1.2.1",
            extra={"library_arch": "64"},
        ).read_text()
    )
    assert custom == {
        "file_format_version": "1.2.1",
        "layer": {
            "name": "VK_LAYER_C",
            "type": "GLOBAL",
            "library_path": "c.so",
            "api_version": "1.2.0",
            "implementation_version": "1",
            "description": "vkdoctor fault-injection layer",
            "enable_environment": {"ENABLE_C": "1"},
            "library_arch": "64",
        },
    }
