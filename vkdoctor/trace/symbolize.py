"""Addresses to names: ELF symbols (.symtab, then .dynsym) and DWARF line tables, offline.

The trace records where each object was mapped; an address in a crash backtrace becomes
``(library file, address - load bias)``, and this module looks that up in the file on disk with
pyelftools.  Files are read once per process of vkdoctor (cached); a file that cannot be read,
is not ELF, or has no symbol covering the address simply yields no name.  DWARF is only read
from files small enough to parse quickly (test programs and applications built with -g; not
whole driver stacks).
"""

from __future__ import annotations

import bisect
import functools
import os
from typing import Any

from vkdoctor.record import frozen

_MAX_DWARF_BYTES = 64 * 1024 * 1024


@frozen
class Symbol:
    name: str
    offset: int  # address - symbol start


@frozen
class SourceLine:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line}"


class ElfSymbols:
    """Function symbols of one ELF file, sorted by address."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._starts: list[int] = []
        self._symbols: list[tuple[int, int, str]] = []  # (start, size, name)
        self._lines: list[tuple[int, int, str, int]] | None = None  # (lo, hi, file, line)
        self._load_symbols()

    def _load_symbols(self) -> None:
        try:
            from elftools.elf.elffile import ELFFile
            from elftools.elf.sections import SymbolTableSection

            with open(self.path, "rb") as handle:
                elf = ELFFile(handle)
                found: dict[int, tuple[int, str]] = {}
                for name in (".dynsym", ".symtab"):  # .symtab wins: it has the local names
                    section = elf.get_section_by_name(name)
                    if not isinstance(section, SymbolTableSection):
                        continue
                    for sym in section.iter_symbols():
                        kind = sym["st_info"]["type"]
                        if kind not in ("STT_FUNC", "STT_GNU_IFUNC", "STT_OBJECT"):
                            continue
                        if not sym["st_value"] or not sym.name or sym["st_shndx"] == "SHN_UNDEF":
                            continue
                        start = int(sym["st_value"])
                        previous = found.get(start)
                        # Keep the exported (dynsym) spelling when both tables name the address:
                        # vkDestroyInstance, not a local alias.
                        if previous is None or (name == ".symtab" and previous[1].startswith("_")):
                            found[start] = (int(sym["st_size"]), sym.name)
        except Exception:  # unreadable or not ELF: no names, never an error
            found = {}
        self._symbols = sorted((start, size, name) for start, (size, name) in found.items())
        self._starts = [s[0] for s in self._symbols]

    def symbol(self, vaddr: int) -> Symbol | None:
        i = bisect.bisect_right(self._starts, vaddr) - 1
        if i < 0:
            return None
        start, size, name = self._symbols[i]
        if size and vaddr >= start + size:
            return None
        if not size and vaddr - start > 4096:
            return None
        return Symbol(name, vaddr - start)

    def line(self, vaddr: int) -> SourceLine | None:
        if self._lines is None:
            self._lines = self._load_lines()
        i = bisect.bisect_right(self._lines, (vaddr, float("inf"))) - 1
        if i < 0:
            return None
        lo, hi, file, line = self._lines[i]
        return SourceLine(file, line) if lo <= vaddr < hi else None

    def _load_lines(self) -> list[tuple[int, int, str, int]]:
        rows: list[tuple[int, int, str, int]] = []
        try:
            if os.path.getsize(self.path) > _MAX_DWARF_BYTES:
                return rows
            from elftools.elf.elffile import ELFFile

            with open(self.path, "rb") as handle:
                elf = ELFFile(handle)
                if not elf.has_dwarf_info():
                    return rows
                dwarf = elf.get_dwarf_info()
                for cu in dwarf.iter_CUs():
                    program = dwarf.line_program_for_CU(cu)
                    if program is None:
                        continue
                    names = _file_names(program)
                    previous = None
                    for entry in program.get_entries():
                        state = entry.state
                        if state is None:
                            continue
                        if previous is not None and state.address > previous.address:
                            name = names.get(previous.file, "?")
                            rows.append((previous.address, state.address, name, previous.line))
                        previous = None if state.end_sequence else state
        except Exception:  # damaged or unsupported DWARF: no lines
            return []
        rows.sort()
        return rows


def _file_names(program: Any) -> dict[int, str]:  # a pyelftools LineProgram
    names: dict[int, str] = {}
    header = program.header
    version = header["version"]
    dirs = [
        d.decode(errors="replace") if isinstance(d, bytes) else str(d)
        for d in header["include_directory"]
    ]
    for index, entry in enumerate(header["file_entry"]):
        name = entry.name.decode(errors="replace") if isinstance(entry.name, bytes) else entry.name
        dir_index = entry.dir_index
        directory = ""
        if version >= 5:
            directory = dirs[dir_index] if dir_index < len(dirs) else ""
        elif dir_index > 0 and dir_index - 1 < len(dirs):
            directory = dirs[dir_index - 1]
        full = name if name.startswith("/") or not directory else f"{directory}/{name}"
        # DWARF 5 numbers files from 0, earlier versions from 1.
        names[index if version >= 5 else index + 1] = full
    return names


@functools.lru_cache(maxsize=64)
def elf_symbols(path: str) -> ElfSymbols:
    return ElfSymbols(path)


def symbolize(
    path: str, vaddr: int, *, with_line: bool = True
) -> tuple[Symbol | None, SourceLine | None]:
    """The function and (where DWARF exists) the source line at ``vaddr`` of ``path``."""
    if not path or not path.startswith("/"):
        return None, None
    symbols = elf_symbols(path)
    return symbols.symbol(vaddr), symbols.line(vaddr) if with_line else None
