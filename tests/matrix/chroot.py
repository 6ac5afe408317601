"""Running commands inside a matrix chroot (stdlib only).

Each command runs in a private mount namespace (`unshare --mount`): /proc, /sys and /dev are
mounted into the chroot there and vanish with the namespace, so a killed run leaves no mount
behind on the host and two runs in the same chroot do not see each other's mounts.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_CACHE = "/var/cache/vkdoctor-matrix"
_HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
# What the host lends the chroot so pip reaches PyPI the way the host's pip does: its resolver and
# its CA bundle (this machine's HTTPS goes through a proxy whose CA only the host's bundle holds),
# the latter beside the chroot's own bundle, named by PIP_CERT.
_HOST_FILES = {"/etc/resolv.conf": "etc/resolv.conf", _HOST_CA: "etc/vkdoctor-matrix-ca.crt"}


def cache_dir() -> Path:
    return Path(os.environ.get("VKDOCTOR_MATRIX_CACHE", DEFAULT_CACHE))


def meta_path(release: str) -> Path:
    """The build record (versions, cold build time), beside the chroot, written last."""
    return cache_dir() / f"{release}.json"


def _lend_host_files(root: Path) -> None:
    for name, inside in _HOST_FILES.items():
        source = Path(name)
        if source.is_file():
            target = root / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or (target.exists() and not target.is_file()):
                target.unlink()
            shutil.copyfile(source, target)


def chroot_run(
    root: Path,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    check: bool = False,
    capture: bool = False,
    timeout: float | None = None,
    cwd: str = "/",
) -> subprocess.CompletedProcess[str]:
    """Run argv inside the chroot at root, with a clean environment plus env."""
    _lend_host_files(root)
    base = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_DEFAULT_TIMEOUT": "180",
        "PIP_CERT": "/etc/vkdoctor-matrix-ca.crt",
    }
    base.update(env or {})
    r = shlex.quote(str(root))
    inner = " ".join(shlex.quote(a) for a in argv)
    script = (
        f"mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && "
        f"mount --rbind /dev {r}/dev && "
        f"exec chroot {r} /usr/bin/env -i "
        + " ".join(shlex.quote(f"{k}={v}") for k, v in base.items())
        + f" sh -c {shlex.quote(f'cd {shlex.quote(cwd)} && exec {inner}')}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        check=check,
        text=True,
        capture_output=capture,
        timeout=timeout,
    )
