"""Where the native parts of ``vkdoctor trace`` are, or why they are not there.

The audit module and the trace layer are plain shared libraries built by ``pip install`` into
``vkdoctor/native/`` (see setup.py).  They are optional: every caller gets either a path or a
reason, never an exception, so the tracer can fall back to /proc polling and say what it cannot
see.  ``VKDOCTOR_NATIVE_DIR`` points the lookup elsewhere (tests use it to simulate an install
without a compiler).
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from pathlib import Path

from vkdoctor.record import frozen

AUDIT_LIBRARY = "libvkdoctor_audit.so"
LAYER_LIBRARY = "libVkLayer_vkdoctor_trace.so"
NATIVE_DIR_ENV = "VKDOCTOR_NATIVE_DIR"

_ELF_MAGIC = b"\x7fELF"


@frozen
class NativeLibrary:
    """One native part: ``path`` when usable, otherwise ``reason`` says why not."""

    name: str
    path: Path | None
    reason: str = ""

    @property
    def available(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "path": str(self.path) if self.path else None,
            "reason": self.reason,
        }


def native_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The directory holding the built libraries (it may lack them)."""
    environ = os.environ if environ is None else environ
    override = environ.get(NATIVE_DIR_ENV)
    if override:
        return Path(override)
    try:
        # A real directory for regular and editable installs; zip imports have none.
        return Path(str(importlib.resources.files("vkdoctor") / "native"))
    except (ModuleNotFoundError, TypeError, OSError):
        return None


def find_native(name: str, environ: Mapping[str, str] | None = None) -> NativeLibrary:
    directory = native_dir(environ)
    if directory is None:
        return NativeLibrary(name, None, "the vkdoctor package has no native directory")
    path = directory / name
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        return NativeLibrary(
            name,
            None,
            f"{path} was not built (no C compiler when vkdoctor was installed?)",
        )
    except OSError as exc:
        return NativeLibrary(name, None, f"{path} is unreadable: {exc.strerror or exc}")
    if magic != _ELF_MAGIC:
        return NativeLibrary(name, None, f"{path} is not an ELF shared library")
    # LD_AUDIT takes a colon-separated list: a path with a colon cannot be passed at all.
    if ":" in str(path):
        return NativeLibrary(name, None, f"{path} contains ':' and cannot be used in LD_AUDIT")
    return NativeLibrary(name, path.resolve())


def audit_library(environ: Mapping[str, str] | None = None) -> NativeLibrary:
    return find_native(AUDIT_LIBRARY, environ)


def layer_library(environ: Mapping[str, str] | None = None) -> NativeLibrary:
    return find_native(LAYER_LIBRARY, environ)
