"""Hostile and ordinary bad input: FIFOs, device links, huge files and numbers, NUL bytes,
duplicate keys, terminal escapes and HTML in manifest fields, out-of-range arguments.

Each case ends in a finding or a one-line usage error, never a hang or a traceback.  Where the
expected value is what the loader does (first of duplicate keys, NUL bytes dropped), it comes
from running the real loader (vulkaninfo), not from vkdoctor.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import LAVAPIPE_MANIFEST, VkWorld, finding, needs_lavapipe, probe

from vkdoctor.cli import main

REPORTS = Path(__file__).parent.parent / "reports"
HEALTHY = REPORTS / "healthy-lavapipe.json"
ESCAPES = "\u001b]0;pwned\u0007\u001b[2J"
HTML = "</details><img src=x onerror=alert(1)>"
LAVAPIPE_LIB = (
    json.loads(LAVAPIPE_MANIFEST.read_text())["ICD"]["library_path"]
    if LAVAPIPE_MANIFEST.exists()
    else ""
)


def vkdoctor(
    world: VkWorld, *args: str, stdin: object = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vkdoctor", *args],
        capture_output=stdin is None,
        stdout=subprocess.PIPE if stdin is not None else None,
        stderr=subprocess.PIPE if stdin is not None else None,
        stdin=stdin,  # type: ignore[arg-type]
        text=True,
        env={**world.environ, **env},
        timeout=120,
    )


def one_line_usage_error(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def _vulkaninfo_devices(environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if shutil.which("vulkaninfo") is None:
        pytest.skip("vulkaninfo (vulkan-tools) is not installed")
    return subprocess.run(
        ["vulkaninfo", "--summary"],
        capture_output=True,
        text=True,
        env={**environ, "VK_LOADER_DEBUG": "error"},
        timeout=60,
    )


# -- manifests that are not files ---------------------------------------------------------------


def test_fifo_in_a_driver_directory_is_a_finding_not_a_hang(world: VkWorld) -> None:
    world.icd_dir.mkdir(parents=True)
    fifo = world.icd_dir / "evil.json"
    os.mkfifo(fifo)
    started = time.monotonic()
    report = world.run(["driver-enumeration"], timeout_s=1.0)
    assert time.monotonic() - started < 30  # the FIFO was never opened by vkdoctor itself
    found = finding(probe(report, "driver-enumeration"), "manifest-not-regular-file")
    assert str(fifo) in found.summary and "FIFO" in found.summary
    assert found.severity.value == "fail"  # the real loader blocks on it (vulkaninfo hangs)
    assert found.remedy is not None and "sudo" not in " ".join(found.remedy.commands)


def test_dev_zero_link_named_by_vk_driver_files(world: VkWorld, tmp_path: Path) -> None:
    link = tmp_path / "z.json"
    link.symlink_to("/dev/zero")
    report = world.run(["driver-enumeration"], timeout_s=1.0, VK_DRIVER_FILES=str(link))
    found = finding(probe(report, "driver-enumeration"), "manifest-not-regular-file")
    assert str(link) in found.summary and "character device" in found.summary


def test_mknod_zero_device_in_a_layer_directory(world: VkWorld) -> None:
    world.implicit_dir.mkdir(parents=True)
    node = world.implicit_dir / "zero.json"
    try:
        os.mknod(node, 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    # The loader-discovery child meets the real loader reading the device: it needs time to
    # get as far as loading the loader before its timeout.
    report = world.run(["layer-enumeration"], timeout_s=3.0)
    found = finding(probe(report, "layer-enumeration"), "manifest-not-regular-file")
    assert str(node) in found.summary


def test_manifest_over_the_size_limit(world: VkWorld) -> None:
    big = world.icd_dir / "big.json"
    world.icd_dir.mkdir(parents=True)
    big.write_text('{"file_format_version": "1.0.0", "pad": "' + "x" * (2 << 20) + '"}')
    report = world.run(["driver-enumeration"], timeout_s=1.0)
    found = finding(probe(report, "driver-enumeration"), "manifest-invalid-json")
    assert str(big) in found.summary and "over the 1 MiB limit" in found.summary


# -- what the loader reads from odd JSON ----------------------------------------------------------


@needs_lavapipe
def test_duplicate_library_path_uses_the_first_like_the_loader(world: VkWorld) -> None:
    world.icd_dir.mkdir(parents=True)
    manifest = world.icd_dir / "dup.json"
    manifest.write_text(
        '{"file_format_version": "1.0.0", "ICD": {"library_path": "' + LAVAPIPE_LIB + '", '
        '"library_path": "/nonexistent/libbroken.so", "api_version": "1.3.239"}}'
    )
    loader = _vulkaninfo_devices({**world.environ, "VK_DRIVER_FILES": str(manifest)})
    assert "llvmpipe" in loader.stdout  # the real loader took the first library_path
    report = world.run(["driver-enumeration"], VK_DRIVER_FILES=str(manifest))
    enumeration = probe(report, "driver-enumeration")
    assert "driver-library-missing" not in [f.code for f in enumeration.findings]
    duplicate = finding(enumeration, "manifest-duplicate-key")
    assert "'library_path'" in duplicate.summary and duplicate.severity.value == "warn"


@needs_lavapipe
def test_nul_in_library_path_is_read_as_the_loader_reads_it(world: VkWorld) -> None:
    world.icd_dir.mkdir(parents=True)
    manifest = world.icd_dir / "nul.json"
    manifest.write_text(
        '{"file_format_version": "1.0.0", "ICD": {"library_path": "'
        + LAVAPIPE_LIB
        + '\\u0000junk", '
        '"api_version": "1.3.239"}}'
    )
    loader = _vulkaninfo_devices({**world.environ, "VK_DRIVER_FILES": str(manifest)})
    assert f"{LAVAPIPE_LIB}junk" in loader.stderr  # the loader dropped the NUL byte
    report = world.run(["driver-enumeration"], VK_DRIVER_FILES=str(manifest))
    missing = finding(probe(report, "driver-enumeration"), "driver-library-missing")
    assert f"{LAVAPIPE_LIB}junk" in missing.summary
    nul = finding(probe(report, "driver-enumeration"), "manifest-bad-field")
    assert "NUL byte" in nul.summary


def test_huge_number_and_overflowing_api_version(world: VkWorld) -> None:
    world.icd_dir.mkdir(parents=True)
    (world.icd_dir / "huge.json").write_text(
        '{"file_format_version": "1.0.0", "ICD": {"library_path": "/nonexistent/a.so", '
        '"api_version": "200.0.0", "x": ' + "9" * 100000 + "}}"
    )
    report = world.run(["driver-enumeration"], timeout_s=1.0)
    enumeration = probe(report, "driver-enumeration")
    assert "manifest-invalid-json" not in [f.code for f in enumeration.findings]
    bad = finding(enumeration, "manifest-bad-field")
    assert "major 200 does not fit" in bad.summary


def test_non_utf8_manifest_name_with_markdown(world: VkWorld, tmp_path: Path) -> None:
    world.icd_dir.mkdir(parents=True)
    name = os.fsencode(world.icd_dir) + b"/\xff\xfe.json"
    with open(name, "w") as handle:
        handle.write('{"file_format_version": "1.0.0", "ICD": {"library_path": "/x/a.so"}}')
    out = tmp_path / "out.md"
    done = subprocess.run(
        [sys.executable, "-m", "vkdoctor", "check", "driver-enumeration", "--markdown", str(out)],
        capture_output=True,
        env=world.environ,
        timeout=120,
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr, done.stderr
    # The undecodable bytes are shown as escapes, in a valid UTF-8 file.
    assert "\\xff\\xfe.json" in out.read_text(encoding="utf-8")


@needs_lavapipe
def test_dlopen_message_about_passwd_is_not_garbled(world: VkWorld) -> None:
    passwd = shutil.which("passwd") or "/usr/bin/passwd"
    if not os.path.exists(passwd):
        pytest.skip("no passwd binary")
    world.driver("passwd.json", passwd)
    done = vkdoctor(world, "check", "driver-enumeration")
    # What the real dynamic linker says about a PIE executable, kept whole by the scrubber.
    try:
        ctypes.CDLL(passwd)
        pytest.skip("this libc loads PIE executables")
    except OSError as exc:
        expected = str(exc).split(": ", 1)[-1]
    assert expected in done.stdout, done.stdout


# -- terminal escapes and HTML from a real manifest -----------------------------------------------


def test_escapes_and_html_in_manifest_fields_never_render_live(
    world: VkWorld, tmp_path: Path
) -> None:
    world.layer(
        "VK_LAYER_hostile",
        f"/nonexistent/{ESCAPES}{HTML}.so",
        description=f"{ESCAPES}{HTML}",
    )
    report_path, markdown = tmp_path / "r.json", tmp_path / "r.md"
    done = vkdoctor(
        world,
        "check",
        "layer-enumeration",
        "-vv",
        "--json",
        str(report_path),
        "--markdown",
        str(markdown),
    )
    assert done.returncode == 1, done.stderr
    assert "pwned" in done.stdout  # the text is shown ...
    for text in (done.stdout, done.stderr, markdown.read_text()):
        assert "\x1b" not in text and "\x07" not in text  # ... but cannot act
    # Inside a code span GitHub renders nothing as HTML; everywhere else it must be escaped.
    fenced = re.sub(r"^(`{3,}).*?^\1", "", markdown.read_text(), flags=re.S | re.M)
    prose = re.sub(r"(`+)(.+?)\1", "", fenced)
    assert "&lt;img" in prose and "<img" not in prose
    for args in (
        ("report", "show", "-vv", str(report_path)),
        ("report", "markdown", str(report_path)),
        ("report", "diff", str(HEALTHY), str(report_path)),
    ):
        shown = vkdoctor(world, *args)
        assert shown.returncode in (0, 1), shown.stderr
        assert "pwned" in shown.stdout, args
        assert "\x1b" not in shown.stdout and "\x07" not in shown.stdout, args
    from vkdoctor.render.safe_text import clean_report
    from vkdoctor.tui.documents import open_document
    from vkdoctor.tui.viewmodel import finding_items

    report, _ = open_document(str(report_path))
    assert report is not None
    items = repr(finding_items(clean_report(report)))
    assert "pwned" in items and "\\x1b" not in items.replace("\\\\x1b", "")


def test_compute_kernel_names_are_escaped_in_markdown() -> None:
    from vkdoctor.render.markdown import render_markdown
    from vkdoctor.report.io import load_report

    source = REPORTS / "nvidia-h200-kernels.json"
    text = source.read_text(encoding="utf-8")
    device = json.loads(text)
    names = json.dumps(device)  # the device name as stored, replaced everywhere it occurs
    original = _first_device_name(device)
    hostile = names.replace(json.dumps(original)[1:-1], json.dumps(f"{HTML}{ESCAPES}")[1:-1])
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"vkdoctor-hostile-{os.getpid()}.json"
    path.write_text(hostile, encoding="utf-8")
    try:
        rendered = render_markdown(load_report(str(path)))
    finally:
        path.unlink()
    assert "### Compute kernels" in rendered
    assert "<img" not in rendered and "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert "\x1b" not in rendered and "\x07" not in rendered


def _first_device_name(data: object) -> str:
    if isinstance(data, dict):
        if isinstance(data.get("name"), str) and "H200" in data["name"]:
            return data["name"]
        for value in data.values():
            found = _first_device_name(value)
            if found:
                return found
    if isinstance(data, list):
        for value in data:
            found = _first_device_name(value)
            if found:
                return found
    return ""


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--timeout", "nan"],
        ["check", "--timeout", "inf"],
        ["check", "--timeout", "1e-9"],
        ["check", "--timeout", "-1"],
        ["check", "--timeout", "1e999"],
        ["check", "--timeout", "7200"],
        ["check", "--loader", ""],
        ["trace", "--pid", "-5"],
        ["trace", "--pid", "9" * 100000],
        ["trace", "--timeout", "nan", "--", "true"],
        ["kernels", "--timeout", "inf"],
        ["tui", "--timeout", "nan"],
    ],
)
def test_out_of_range_arguments_are_usage_errors(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: argument" in err, err


def test_ascii_terminal_gets_ascii_markers(world: VkWorld) -> None:
    done = vkdoctor(world, "check", "loader-discovery", PYTHONIOENCODING="ascii")
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.splitlines()[0].startswith(("+ loader-discovery", "! loader-discovery"))
    shown = vkdoctor(world, "report", "show", str(REPORTS / "broken-missing-library.json"))
    assert shown.returncode == 0


def test_libc_as_the_loader_is_a_failure(world: VkWorld) -> None:
    assert not hasattr(ctypes.CDLL("libc.so.6"), "vkGetInstanceProcAddr")  # the real library
    done = vkdoctor(world, "check", "loader-discovery", "--loader", "libc.so.6")
    assert done.returncode == 1
    assert "loader-not-vulkan" in done.stdout


# -- stored reports ------------------------------------------------------------------------------


def _variant(tmp_path: Path, name: str, edit: object) -> Path:
    data = json.loads(HEALTHY.read_text())
    edit(data)  # type: ignore[operator]
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_unreadable_report_kinds_are_one_line_errors(world: VkWorld, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    zero.symlink_to("/dev/zero")
    text = HEALTHY.read_text()
    huge = tmp_path / "huge.json"
    huge.write_text(
        text.replace('"schema_version": ', '"x": ' + "9" * 5000 + ', "schema_version": ')
    )
    nan = tmp_path / "nan.json"
    nan.write_text(text.replace('"schema_version": ', '"x": NaN, "schema_version": '))
    for path, words in (
        (fifo, "FIFO"),
        (zero, "character device"),
        (huge, "thousands of digits"),
        (nan, "bare NaN"),
    ):
        for args in (
            ("report", "show", str(path)),
            ("report", "validate", str(path)),
            ("report", "markdown", str(path)),
            ("report", "diff", str(HEALTHY), str(path)),
            ("tui", str(path)),
        ):
            done = vkdoctor(world, *args)
            if args[1] == "validate" and path in (huge, nan):
                # Read, and not a report: validate's answer (exit 1, the reason on stdout).
                assert done.returncode == 1 and words in done.stdout, (args, done.stdout)
                assert "Traceback" not in done.stderr
                continue
            assert one_line_usage_error(done) and words in done.stderr, (args, done.stderr)


def test_report_from_endless_stdin(world: VkWorld) -> None:
    with open("/dev/zero", "rb") as zero:
        done = vkdoctor(world, "report", "show", "-", stdin=zero)
    assert done.returncode == 2 and "64 MiB" in done.stderr


def test_odd_but_schema_valid_shapes_render(world: VkWorld, tmp_path: Path) -> None:
    def os_minus_one(data: dict) -> None:
        data["environment"]["os"] = -1

    def variables_x(data: dict) -> None:
        for p in data["probes"]:
            if "variables" in p.get("facts", {}):
                p["facts"]["variables"] = "x"

    for name, edit in (("os.json", os_minus_one), ("vars.json", variables_x)):
        path = _variant(tmp_path, name, edit)
        assert vkdoctor(world, "report", "validate", str(path)).returncode == 0
        for args in (
            ("report", "show", str(path)),
            ("report", "markdown", str(path)),
            ("report", "diff", str(HEALTHY), str(path)),
        ):
            done = vkdoctor(world, *args)
            assert done.returncode in (0, 1) and "Traceback" not in done.stderr, (args, done.stderr)
        markdown = vkdoctor(world, "report", "markdown", str(path))
        assert markdown.stdout.startswith("## vkdoctor:")


def test_tui_findings_view_shows_hostile_text_inert() -> None:
    from test_tui import FIXTURES, SIZE, asynctest, text_of

    from vkdoctor.report.io import load_report
    from vkdoctor.report.model import Report
    from vkdoctor.tui.app import VkDoctorApp

    data = load_report(str(FIXTURES / "broken.json")).to_dict()
    # The finding the view opens on: the report's first root cause.
    first = next(
        f for p in data["probes"] for f in p["findings"] if f["id"] == data["root_causes"][0]
    )
    first["summary"] = f"{ESCAPES}{HTML} {first['summary']}"
    first["detail"] = f"{ESCAPES} detail"
    report = Report.from_dict(data)

    @asynctest
    async def run() -> None:
        app = VkDoctorApp(None, report=report, source="hostile.json", autorun=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            shown = text_of(app, "#finding-text")
            assert "pwned" in shown and "\x1b" not in shown and "\x07" not in shown
            # What Save writes is the report as recorded, not the cleaned copy.
            assert app.report is not None
            assert any(ESCAPES in f.summary for _, f in app.report.findings())

    run()
