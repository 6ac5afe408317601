"""Shared-library facts without loading anything: where a manifest's ``library_path`` resolves,
the ELF class and machine, DT_NEEDED closures, static exports, and who may read a file.

``library_path`` rules (LoaderDriverInterface.md): absolute as is; containing a slash: relative to
the manifest's directory; a bare file name: the dynamic linker's search (LD_LIBRARY_PATH, the
ld.so cache, the default directories).
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import field
from functools import lru_cache
from pathlib import Path

from vkdoctor.engine.env import Env
from vkdoctor.record import frozen

ELF_MAGIC = b"\x7fELF"
EM_NAMES = {
    3: "x86",
    8: "mips",
    20: "ppc",
    21: "ppc64",
    22: "s390",
    40: "arm",
    62: "x86-64",
    183: "aarch64",
    243: "riscv",
}
HOST_ELF = {
    "x86_64": (64, 62),
    "i686": (32, 3),
    "i386": (32, 3),
    "aarch64": (64, 183),
    "armv7l": (32, 40),
    "ppc64le": (64, 21),
    "s390x": (64, 22),
    "riscv64": (64, 243),
}
MULTIARCH = {
    "x86_64": "x86_64-linux-gnu",
    "aarch64": "aarch64-linux-gnu",
    "i686": "i386-linux-gnu",
    "armv7l": "arm-linux-gnueabihf",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
}


@frozen
class ElfHeader:
    elf_class: int | None  # 32 / 64; None when not ELF
    machine: int | None
    error: str | None = None  # "not an ELF file", "file too short"

    @property
    def machine_name(self) -> str:
        return EM_NAMES.get(self.machine or -1, f"machine {self.machine}")

    def matches(self, host_machine: str) -> bool | None:
        expected = HOST_ELF.get(host_machine)
        if expected is None or self.elf_class is None:
            return None
        return (self.elf_class, self.machine) == expected


def read_elf_header(path: Path) -> ElfHeader:
    try:
        with open(path, "rb") as handle:
            head = handle.read(20)
    except OSError as exc:
        return ElfHeader(None, None, exc.strerror or str(exc))
    if len(head) < 20:
        return ElfHeader(None, None, "file too short")
    if head[:4] != ELF_MAGIC:
        return ElfHeader(None, None, "not an ELF file")
    elf_class = {1: 32, 2: 64}.get(head[4])
    endian = "<" if head[5] == 1 else ">"
    (machine,) = struct.unpack(endian + "H", head[18:20])
    return ElfHeader(elf_class, machine)


def can_access(env: Env, st: os.stat_result, want: int) -> bool:
    """Whether the env's identity may access a file with mode ``st`` (want: R_OK/W_OK bits).
    Computed from the mode bits, not ``os.access``: vkdoctor may run as root on behalf of a
    user, and fixture roots carry modes for other identities."""
    if env.euid == 0:
        return True
    mode = st.st_mode
    if st.st_uid == env.euid:
        bits = (mode >> 6) & 7
    elif st.st_gid == env.egid or st.st_gid in env.groups:
        bits = (mode >> 3) & 7
    else:
        bits = mode & 7
    return bits & want == want


@lru_cache(maxsize=8)
def _read_ld_cache(path: str) -> tuple[tuple[str, str], ...]:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return ()
    magic = b"glibc-ld.so.cache1.1"
    start = data.find(magic)
    if start < 0:
        return ()
    try:
        nlibs, _strings = struct.unpack_from("<II", data, start + 20)
        entries = []
        offset = start + 48
        for _ in range(nlibs):
            _flags, key, value, _osv, _hwcap = struct.unpack_from("<iIIIQ", data, offset)
            offset += 24
            name = data[start + key : data.index(b"\0", start + key)].decode("utf-8", "replace")
            target = data[start + value : data.index(b"\0", start + value)].decode(
                "utf-8", "replace"
            )
            entries.append((name, target))
    except (struct.error, ValueError):
        return ()
    return tuple(entries)


def ld_cache_entries(env: Env) -> tuple[tuple[str, str], ...]:
    """(soname, path) pairs from the ld.so cache, for every architecture in it."""
    return _read_ld_cache(str(env.path("/etc/ld.so.cache")))


def default_library_dirs(env: Env) -> list[str]:
    triplet = MULTIARCH.get(env.machine)
    dirs = []
    if triplet:
        dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
    if env.machine in ("x86_64", "aarch64", "ppc64le", "s390x", "riscv64"):
        dirs += ["/lib64", "/usr/lib64"]
    dirs += ["/lib", "/usr/lib"]
    return dirs


def ld_library_path(env: Env) -> list[str]:
    if env.secure:  # ld.so ignores it for AT_SECURE processes
        return []
    return [d for d in (env.get("LD_LIBRARY_PATH") or "").replace(";", ":").split(":") if d]


@frozen
class Resolution:
    requested: str
    kind: str  # absolute | relative | bare
    path: str | None  # the file the loader will open (logical), None when nothing matches
    searched: tuple[str, ...] = ()  # where a bare name was looked for, in order
    candidates: tuple[str, ...] = field(default_factory=tuple)  # every match for a bare name


def _matches_host(env: Env, logical: str) -> bool:
    return read_elf_header(env.path(logical)).matches(env.machine) is not False


def search_bare(env: Env, name: str, extra_dirs: list[str] | None = None) -> Resolution:
    """A bare soname through LD_LIBRARY_PATH, the ld.so cache, then the default dirs; entries of
    the wrong ELF class are skipped like ld.so does."""
    searched: list[str] = []
    candidates: list[str] = []
    for directory in (extra_dirs or []) + ld_library_path(env):
        searched.append(directory)
        candidate = f"{directory.rstrip('/')}/{name}"
        if env.path(candidate).exists():
            candidates.append(candidate)
    searched.append("/etc/ld.so.cache")
    for soname, target in ld_cache_entries(env):
        if soname == name and env.path(target).exists():
            candidates.append(target)
    for directory in default_library_dirs(env):
        searched.append(directory)
        candidate = f"{directory}/{name}"
        if env.path(candidate).exists():
            candidates.append(candidate)
    unique = list(dict.fromkeys(candidates))
    chosen = next((c for c in unique if _matches_host(env, c)), None)
    return Resolution(name, "bare", chosen, tuple(searched), tuple(unique))


def resolve_library_path(env: Env, library_path: str, manifest_path: str) -> Resolution:
    if library_path.startswith("/"):
        return Resolution(library_path, "absolute", library_path)
    if "/" in library_path:
        joined = os.path.normpath(os.path.join(os.path.dirname(manifest_path), library_path))
        return Resolution(library_path, "relative", joined)
    return search_bare(env, library_path)


@frozen
class FileCheck:
    path: str
    exists: bool
    is_file: bool = False
    size: int = 0
    readable: bool = False
    real_path: str | None = None
    elf: ElfHeader | None = None
    arch_ok: bool | None = None
    error: str | None = None


def check_file(env: Env, logical: str) -> FileCheck:
    actual = env.path(logical)
    try:
        st = actual.stat()
    except FileNotFoundError:
        return FileCheck(logical, exists=False, error="No such file or directory")
    except OSError as exc:
        return FileCheck(logical, exists=False, error=exc.strerror or str(exc))
    if not stat.S_ISREG(st.st_mode):
        return FileCheck(logical, True, False, error="not a regular file")
    readable = can_access(env, st, os.R_OK)
    elf = read_elf_header(actual) if readable else None
    real = env.logical(os.path.realpath(actual))
    return FileCheck(
        logical,
        True,
        True,
        st.st_size,
        readable,
        real,
        elf,
        elf.matches(env.machine) if elf else None,
    )


@frozen
class MissingDependency:
    soname: str
    needed_by: str


@frozen
class TruncatedLibrary:
    """A shared object shorter than its own headers say: mapping it faults (SIGBUS) or dlopen
    reports 'file too short'."""

    path: str
    size: int
    expected: int  # the end of the furthest section or segment the headers describe


def elf_end(path: Path) -> tuple[int, int] | None:
    """(file size, bytes the ELF headers describe) or None when it is no readable ELF file."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(64)
            if len(head) < 52 or head[:4] != ELF_MAGIC or head[4] not in (1, 2):
                return None
            wide, endian = head[4] == 2, "<" if head[5] == 1 else ">"
            if wide and len(head) < 64:
                return None
            fields = struct.unpack(
                endian + ("QQ" if wide else "II"), head[32:48] if wide else head[28:36]
            )
            phoff, shoff = fields
            at = 54 if wide else 42
            phentsize, phnum, shentsize, shnum = struct.unpack(endian + "HHHH", head[at : at + 8])
            end = max(phoff + phentsize * phnum, shoff + shentsize * shnum)
            if phentsize != (56 if wide else 32):  # a hostile or foreign header: no table read
                return size, end
            handle.seek(phoff)
            table = handle.read(min(phentsize * phnum, 1 << 20))  # bounded: 16-bit counts
    except (OSError, struct.error):
        return None
    entry = "IIQQQQQQ" if wide else "IIIIIIII"
    for index in range(len(table) // max(phentsize, 1)):
        raw = table[index * phentsize : index * phentsize + struct.calcsize(endian + entry)]
        if len(raw) < struct.calcsize(endian + entry):
            break
        values = struct.unpack(endian + entry, raw)
        kind, offset, filesz = (
            (values[0], values[2], values[5]) if wide else (values[0], values[1], values[4])
        )
        if kind == 1:  # PT_LOAD: the bytes the dynamic linker maps
            end = max(end, offset + filesz)
    return size, end


def truncated(env: Env, logical: str) -> TruncatedLibrary | None:
    found = elf_end(env.path(logical))
    if found is None or found[0] >= found[1]:
        return None
    return TruncatedLibrary(logical, found[0], found[1])


def truncated_in_closure(env: Env, logical: str, limit: int = 200) -> list[TruncatedLibrary]:
    """The library and every object of its DT_NEEDED closure that is shorter than its headers."""
    return [t for t in (truncated(env, p) for p in _closure(env, logical, limit)[0]) if t]


def missing_dependencies(env: Env, logical: str, limit: int = 200) -> list[MissingDependency]:
    """Walk the DT_NEEDED closure with the linker's rules and list what cannot be found."""
    return _closure(env, logical, limit)[1]


def _closure(env: Env, logical: str, limit: int) -> tuple[list[str], list[MissingDependency]]:
    """(every object of the DT_NEEDED closure that was found, in walk order; what was not)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    missing: list[MissingDependency] = []
    seen: set[str] = set()
    queue = [logical]
    while queue and len(seen) < limit:
        current = queue.pop(0)
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(env.path(current), "rb") as handle:
                elf = ELFFile(handle)
                needed: list[str] = []
                runpath: list[str] = []
                for section in elf.iter_sections():
                    if not isinstance(section, DynamicSection):
                        continue
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)
                        elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                            value = tag.runpath if tag.entry.d_tag == "DT_RUNPATH" else tag.rpath
                            origin = os.path.dirname(current)
                            runpath += [p.replace("$ORIGIN", origin) for p in value.split(":")]
        except (OSError, ELFError, ValueError, AttributeError):
            continue
        for soname in needed:
            if soname.startswith(("ld-linux", "ld64.so", "ld-")):
                continue
            found = search_bare(env, soname, runpath).path
            if found is None:
                missing.append(MissingDependency(soname, current))
            else:
                queue.append(found)
    return list(seen), missing
