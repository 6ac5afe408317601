"""Thin ctypes boundary over the dynamic linker for the child tasks."""

from __future__ import annotations

import ctypes
import os
import re

from vkdoctor.record import frozen

RTLD_LAZY = os.RTLD_LAZY
RTLD_NOW = os.RTLD_NOW
RTLD_LOCAL = os.RTLD_LOCAL
RTLD_DI_LINKMAP = 2

_MISSING = re.compile(r"^(?P<name>[^:]+): cannot open shared object file")


class _LinkMap(ctypes.Structure):
    _fields_ = [
        ("l_addr", ctypes.c_void_p),
        ("l_name", ctypes.c_char_p),
        ("l_ld", ctypes.c_void_p),
        ("l_next", ctypes.c_void_p),
        ("l_prev", ctypes.c_void_p),
    ]


_libc = ctypes.CDLL(None)
_dlinfo = _libc.dlinfo
_dlinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_dlinfo.restype = ctypes.c_int


@frozen
class Loaded:
    lib: ctypes.CDLL
    path: str  # the file the linker picked


def open_library(path: str, mode: int) -> Loaded:
    """dlopen; raises OSError with dlerror()'s text."""
    lib = ctypes.CDLL(path, mode=mode)
    return Loaded(lib, loaded_path(lib) or path)


def loaded_path(lib: ctypes.CDLL) -> str | None:
    link_map = ctypes.POINTER(_LinkMap)()
    if _dlinfo(lib._handle, RTLD_DI_LINKMAP, ctypes.byref(link_map)) != 0 or not link_map:
        return None
    name = link_map.contents.l_name
    return name.decode("utf-8", "replace") if name else None


def symbol(lib: ctypes.CDLL, name: str) -> int:
    """Address of an exported symbol, 0 when absent."""
    try:
        return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0
    except AttributeError:
        return 0


def missing_object(dlerror: str, requested: str) -> str | None:
    """The shared object dlopen could not find, if it is not the requested file itself."""
    match = _MISSING.match(dlerror)
    if not match:
        return None
    name = match.group("name")
    if name in (requested, os.path.basename(requested)):
        return None
    return name


def mapped_objects(fragment: str) -> list[str]:
    """Paths of mapped files whose name contains ``fragment`` (from /proc/self/maps)."""
    paths: list[str] = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                parts = line.split(None, 5)
                if len(parts) == 6 and fragment in parts[5]:
                    path = parts[5].strip()
                    if path not in paths:
                        paths.append(path)
    except OSError:
        pass
    return paths


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


_dladdr = _libc.dladdr
_dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
_dladdr.restype = ctypes.c_int


def symbolize(address: int) -> str:
    """``library+0xoffset`` for a code address: stable across runs, unlike the address (ASLR)."""
    info = _DlInfo()
    if not address or not _dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return "unknown" if address else "NULL"
    name = os.path.basename(info.dli_fname.decode("utf-8", "replace"))
    return f"{name}+{hex(address - (info.dli_fbase or 0))}"
