"""The injected view of the machine: environment variables, filesystem root, procfs, identity.

Probes read files through ``Env.path`` and variables through ``Env.get`` so that tests can point
them at a fixture root and a fixture environment.  Native probes (children that dlopen things)
always act on the real machine; they receive ``Env.environ`` as their environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path

from vkdoctor.record import frozen


def _at_secure() -> bool:
    """True when this process runs with AT_SECURE set (setuid/setgid/file capabilities)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        getauxval = libc.getauxval
        getauxval.restype = ctypes.c_ulong
        getauxval.argtypes = [ctypes.c_ulong]
        return bool(getauxval(23))  # AT_SECURE
    except (OSError, AttributeError):
        return os.geteuid() != os.getuid() or os.getegid() != os.getgid()


@frozen
class Env:
    environ: Mapping[str, str]
    root: Path = Path("/")
    procfs: Path = Path("/proc")
    uid: int = 0
    euid: int = 0
    gid: int = 0
    egid: int = 0
    groups: tuple[int, ...] = ()
    secure: bool = False  # the loader's secure_getenv() would return NULL
    machine: str = field(default_factory=lambda: os.uname().machine)

    @classmethod
    def current(cls) -> Env:
        return cls(
            environ=dict(os.environ),
            uid=os.getuid(),
            euid=os.geteuid(),
            gid=os.getgid(),
            egid=os.getegid(),
            groups=tuple(os.getgroups()),
            secure=_at_secure(),
        )

    @property
    def is_real_root(self) -> bool:
        """Whether paths map 1:1 onto this machine (native children can act on them)."""
        return self.root == Path("/")

    def get(self, name: str) -> str | None:
        return self.environ.get(name)

    def get_nonempty(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value else None

    def path(self, logical: str | os.PathLike[str]) -> Path:
        """Map a path as the machine sees it onto the (possibly fixture) root."""
        p = Path(logical)
        if self.root == Path("/") or not p.is_absolute():
            return p
        return self.root / p.relative_to("/")

    def logical(self, actual: str | os.PathLike[str]) -> str:
        """Inverse of ``path``: how a file under the root looks to the machine."""
        p = Path(actual)
        if self.root == Path("/"):
            return str(p)
        try:
            return "/" + str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def home(self) -> str | None:
        return self.get_nonempty("HOME")

    def with_environ(self, **changes: str | None) -> Env:
        environ = dict(self.environ)
        for key, value in changes.items():
            if value is None:
                environ.pop(key, None)
            else:
                environ[key] = value
        return Env(
            environ=environ,
            root=self.root,
            procfs=self.procfs,
            uid=self.uid,
            euid=self.euid,
            gid=self.gid,
            egid=self.egid,
            groups=self.groups,
            secure=self.secure,
            machine=self.machine,
        )
