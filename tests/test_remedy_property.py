"""A property over the remedy builders: whatever the path or value, every command is one shell
line whose words are exactly the intended ones, carries no `sudo` for root, and never removes,
moves or re-modes a file a package owns.

The builders are the real ones (libcheck's static check and disable commands, the manifest
problem finding, the shell helpers), and every command goes through diagnosis/remedies.fit_command
for four machines: this one (root, real dpkg), a user with sudo, a user without sudo, and root
where a package owns the generated path.  The Machine is injected on purpose: it is the seam the
remedy rules are designed around (DESIGN.md), and dpkg cannot be made to own a generated path.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vkdoctor.diagnosis.remedies import Machine, fit_command
from vkdoctor.engine.env import Env
from vkdoctor.loader import libcheck
from vkdoctor.loader.manifests import Problem, problem_finding
from vkdoctor.report import shell

# The characters that break naive quoting, plus ordinary ones and a few non-ASCII.
_HOSTILE = " '\"$;&|<>()`\\!*?~#\n\t{}[]=%-.,:@+é€"
_segment = st.text(
    alphabet=st.sampled_from(_HOSTILE)
    | st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
paths = st.lists(_segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
values = st.text(
    alphabet=st.sampled_from(_HOSTILE)
    | st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=("Cs",)),
    max_size=16,
)
names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)

OWNER = "pkg-owner"


def _machines(owned: str) -> list[tuple[str, Machine]]:
    here = Machine.of(Env.current())
    user = Machine(
        is_root=False,
        has_program=lambda name: name != "apt-file",
        package_of=here.package_of,
        is_installed=lambda _p: False,
        can_ask_packages=here.can_ask_packages,
    )
    return [
        ("this machine", here),
        ("user with sudo", user),
        (
            "user without sudo",
            Machine(
                False, lambda n: n not in ("sudo", "apt-file"), here.package_of, lambda _p: False
            ),
        ),
        (
            "root, packaged",
            Machine(
                True,
                lambda _n: True,
                lambda p: OWNER if p == owned else None,
                lambda _p: False,
                can_ask_packages=True,
            ),
        ),
    ]


def _words(line: str) -> list[str]:
    """The words sh runs, comments dropped; ``su -c 'CMD'`` is opened up to CMD's words."""
    words = shlex.split(line, comments=True)
    if words[:2] == ["su", "-c"] and len(words) == 3:
        return _words(words[2])
    return words


def _commands_for(path: str, library: str, variable: str, value: str) -> list[list[str]]:
    """Every builder's commands for these texts, not yet fitted to a machine."""
    env = Env.current()
    built: list[str] = []
    built += libcheck.disable_commands("driver", path)
    built += libcheck.disable_commands("layer", path, {variable: value})
    invalid = problem_finding(Problem("manifest-invalid-json", "bad"), "driver", path, None)
    built += invalid.remedy.commands if invalid.remedy else ()
    static = libcheck.static_check(env, "driver", path, library, None)
    for finding in static.findings:
        built += finding.remedy.commands if finding.remedy else ()
    built.append(shell.command("gdb", "--args", path, value, library))
    built.append(shell.export(variable, value, comment=value))
    return built


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=paths, library=paths, variable=names, value=values)
def test_every_built_command_is_safe_to_paste(
    path: str, library: str, variable: str, value: str
) -> None:
    for line in _commands_for(path, library, variable, value):
        words = _words(line)  # raises on an unbalanced quote
        if words[:1] == ["sudo"]:
            words = words[1:]
        # Each hostile text comes back as exactly one word: the intended argv, nothing more.
        expected = {
            "rm": ["rm", path],
            "mv": ["mv", path, f"{path}.disabled"],
            "python3": ["python3", "-m", "json.tool", f"{path}.disabled"],
            "gdb": ["gdb", "--args", path, value, library],
            "dpkg": ["dpkg", "-S", words[2] if len(words) == 3 else None],
            "export": [
                "export",
                f"VK_LOADER_DRIVERS_DISABLE={os.path.basename(path)}"
                if words[1:2] and words[1].startswith("VK_LOADER_DRIVERS_DISABLE=")
                else f"{variable}={value if words[-1:] != [f'{variable}=1'] else '1'}",
            ],
        }
        assert words[0] in expected, f"a builder made a command this test does not know: {line}"
        assert words == expected[words[0]], line
        if words[0] == "dpkg":
            assert words[2] in (path, library), line


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=paths, library=paths, variable=names, value=values)
def test_fitted_commands_obey_the_remedy_rules(
    path: str, library: str, variable: str, value: str
) -> None:
    for label, machine in _machines(owned=path):
        for line in _commands_for(path, library, variable, value):
            fitted = fit_command(line, machine)
            if fitted is None:
                continue
            words = shlex.split(fitted, comments=True)
            assert "\n" not in fitted.partition("  # ")[2], (label, fitted)
            if machine.is_root:
                assert "sudo" not in words and words[:1] != ["su"], (label, line, fitted)
            run = _words(fitted)
            if run[:1] == ["sudo"]:
                run = run[1:]
            if machine.package_of(path) is not None:
                # A package's file is never deleted, moved or re-moded: the package is reinstalled.
                assert not (run[:1] in (["rm"], ["mv"], ["chmod"]) and path in run), (
                    label,
                    fitted,
                )
            if run[:1] == ["rm"]:
                assert run == ["rm", path], (label, fitted)
            if run[:3] == ["apt-get", "install", "--reinstall"]:
                assert run == ["apt-get", "install", "--reinstall", OWNER], (label, fitted)


def test_a_packaged_manifest_on_this_machine_is_reinstalled_not_removed() -> None:
    """The real dpkg answers: lavapipe's manifest belongs to mesa-vulkan-drivers."""
    lvp = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
    machine = Machine.of(Env.current())
    for line in libcheck.disable_commands("driver", lvp):
        fitted = fit_command(line, machine)
        assert fitted is not None
        assert shlex.split(fitted, comments=True)[:1] != ["rm"]
    assert fit_command(shell.command("sudo", "rm", lvp, comment="if it is stale"), machine) == (
        f"apt-get install --reinstall mesa-vulkan-drivers  # {lvp} belongs to mesa-vulkan-drivers"
    )


def test_installed_packages_are_asked_of_the_real_dpkg() -> None:
    machine = Machine.of(Env.current())
    assert machine.is_installed("mesa-vulkan-drivers")  # the suite's own prerequisite
    assert not machine.is_installed("vkdoctor-no-such-package")
    assert fit_command("sudo apt-get install mesa-vulkan-drivers", machine) is None
    assert fit_command("sudo apt-get install vkdoctor-no-such-package", machine) == (
        "apt-get install vkdoctor-no-such-package"
    )


def _user(*, apt_file: bool) -> Machine:
    return Machine(
        is_root=False,
        has_program=lambda name: name == "sudo" or (apt_file and name == "apt-file"),
        package_of=lambda _p: None,
        is_installed=lambda _p: False,
    )


def test_apt_file_is_set_up_only_where_it_is_missing_and_only_for_apt_file() -> None:
    search = shell.command("apt-file", "search", "libfoo.so.1", comment="which package")
    assert fit_command(search, _user(apt_file=False)) == (
        "sudo apt-get install apt-file && sudo apt-file update && "
        "apt-file search libfoo.so.1  # which package"
    )
    assert fit_command(search, _user(apt_file=True)) == search
    other = shell.command("ls", "-l", "/dev/dri")
    assert fit_command(other, _user(apt_file=False)) == other


def test_fit_finding_keeps_a_finding_without_commands_and_fits_the_rest() -> None:
    from vkdoctor.diagnosis.remedies import fit_finding
    from vkdoctor.report.model import Finding, Remedy, Severity

    bare = Finding("x", Severity.INFO, "s")
    assert fit_finding(bare, _user(apt_file=True)) is bare
    text_only = Finding("x", Severity.INFO, "s", remedy=Remedy("read the log"))
    assert fit_finding(text_only, _user(apt_file=True)) is text_only
    unchanged = Finding("x", Severity.INFO, "s", remedy=Remedy("t", ("ls",)))
    assert fit_finding(unchanged, _user(apt_file=True)) is unchanged
    root = Machine(True, lambda _n: True, lambda _p: None, lambda _p: False)
    fixed = fit_finding(
        Finding("x", Severity.FAIL, "s", remedy=Remedy("t", ("sudo rm /tmp/a", "sudo rm /tmp/a"))),
        root,
    )
    assert fixed.remedy == Remedy("t", ("rm /tmp/a",))  # no sudo as root, duplicates once


def test_programs_and_dpkg_are_asked_of_this_machine_only(tmp_path: Path) -> None:
    from dataclasses import replace

    here = Machine.of(Env.current())
    assert here.has_program("sh") and not here.has_program("vkdoctor-no-such-program")
    assert here.can_ask_packages  # Debian: dpkg-query answers for the real root
    search = shell.command("apt-file", "search", "libfoo.so.1")
    fitted = fit_command(search, here)
    assert fitted == search if shutil.which("apt-file") else fitted.endswith(f"&& {search}")
    # A fixture root is not this machine's dpkg database: the question stays a question.
    fixture = Machine.of(replace(Env.current(), root=tmp_path))
    assert not fixture.can_ask_packages
    question = shell.command("dpkg", "-S", "/usr/lib/libfoo.so", comment="which package")
    assert fit_command(question, fixture) == question
