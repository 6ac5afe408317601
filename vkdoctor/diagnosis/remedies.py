"""The remedy rules of DESIGN.md, enforced on every command of every finding in one place.

- no ``sudo`` when the effective user is root, and only where sudo exists;
- never delete a file a package owns: reinstall the owning package instead;
- never suggest installing a package that is installed;
- a program a command names must exist, or the command says how to get it (``apt-file``).
Probes write the remedy they would give anyone; this module fits it to this machine.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from functools import cache

from vkdoctor.engine.env import Env
from vkdoctor.record import frozen
from vkdoctor.report import shell
from vkdoctor.report.model import Finding, Remedy

_DPKG_TIMEOUT_S = 5.0


@frozen
class Machine:
    """What the rules need to know about the machine (injected, so tests can fake a user)."""

    is_root: bool
    has_program: Callable[[str], bool]
    package_of: Callable[[str], str | None]  # owning package of a path, or None
    is_installed: Callable[[str], bool]
    can_ask_packages: bool = False  # dpkg answers for this root (not for fixture roots)

    @classmethod
    def of(cls, env: Env) -> Machine:
        path = env.get("PATH") or os.defpath
        real = env.is_real_root
        return cls(
            is_root=env.euid == 0,
            has_program=lambda name: shutil.which(name, path=path) is not None,
            package_of=_dpkg_owner if real else (lambda _path: None),
            is_installed=_dpkg_installed if real else (lambda _pkg: False),
            can_ask_packages=real and shutil.which("dpkg-query", path=path) is not None,
        )


# Packages install below these; a file elsewhere (a home, /tmp) belongs to no package, and
# asking dpkg for each of thousands of user manifests would cost seconds.
_PACKAGE_ROOTS = ("/usr/", "/etc/", "/opt/", "/lib", "/bin/", "/sbin/", "/var/", "/boot/")


def _dpkg_query(*args: str) -> str | None:
    """``dpkg-query``'s output, or None when it fails or is not there."""
    try:
        done = subprocess.run(
            ["dpkg-query", *args],
            capture_output=True,
            text=True,
            timeout=_DPKG_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@cache
def _dpkg_owner(path: str) -> str | None:
    """The Debian package that owns ``path`` (``dpkg-query -S``), through symlinks too."""
    for candidate in dict.fromkeys((path, os.path.realpath(path))):
        if not candidate.startswith(_PACKAGE_ROOTS):
            continue
        found = _dpkg_query("-S", candidate)
        if found and ":" in found:
            return found.split(":", 1)[0].split(",")[0].strip()
    return None


@cache
def _dpkg_installed(package: str) -> bool:
    status = _dpkg_query("-W", "-f=${db:Status-Abbrev}", package)
    return bool(status and status.startswith("ii"))


def _as_root(command: str, machine: Machine) -> str:
    """``command`` (already shell-quoted) run with root rights on this machine."""
    if machine.is_root:
        return command
    if machine.has_program("sudo"):
        return f"sudo {command}"
    return f"su -c {shlex.quote(command)}"


def _with_comment(text: str, comment: str) -> str:
    note = shell.one_line(comment)
    return f"{text}  # {note}" if note else text


def _reinstall(owner: str, path: str, machine: Machine) -> str:
    return _with_comment(
        _as_root(shell.command("apt-get", "install", "--reinstall", owner), machine),
        f"{path} belongs to {owner}",
    )


def fit_command(command: str, machine: Machine) -> str | None:
    """The command as it should be typed here, or None when it must not be suggested.

    Commands arrive built by ``vkdoctor.report.shell`` (quoted words, an optional trailing
    comment); the rules read the words with ``shlex`` and rebuild what they change the same way.
    """
    text, comment = shell.split_comment(command)
    text = text.strip()
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    privileged = words[:1] == ["sudo"]
    if privileged:
        words = words[1:]
        text = text.removeprefix("sudo").strip()  # still quoted as it was built
    if words[:2] == ["dpkg", "-S"] and len(words) == 3 and machine.can_ask_packages:
        # Asked while diagnosing: the user gets the answer's consequence, not the question.
        owner = machine.package_of(words[2])
        if owner is None:
            return None  # no package owns it: the commands that follow deal with the file
        return _reinstall(owner, words[2], machine)
    if words[:1] in (["rm"], ["mv"], ["chmod"]) and len(words) >= 2:
        target = words[-1] if words[0] != "mv" else words[-2]
        owner = machine.package_of(target)
        if owner:
            # A package's own file: deleting or editing it breaks the package; reinstall it.
            return _reinstall(owner, target, machine)
    if words[:2] == ["apt-get", "install"]:
        packages = [w for w in words[2:] if not w.startswith("-")]
        if packages and all(machine.is_installed(p) for p in packages):
            return None
    if words[:1] == ["apt-file"] and not machine.has_program("apt-file"):
        setup = (
            _as_root("apt-get install apt-file", machine)
            + " && "
            + _as_root("apt-file update", machine)
        )
        text = f"{setup} && {text}"
    elif privileged:
        text = _as_root(text, machine)
    return _with_comment(text, comment)


def fit_finding(finding: Finding, machine: Machine) -> Finding:
    if finding.remedy is None or not finding.remedy.commands:
        return finding
    fitted = [fit_command(c, machine) for c in finding.remedy.commands]
    commands = tuple(dict.fromkeys(c for c in fitted if c))
    if commands == finding.remedy.commands:
        return finding
    return replace(finding, remedy=Remedy(finding.remedy.text, commands))
