"""Build the two native parts of ``vkdoctor trace`` as plain shared libraries.

Metadata lives in pyproject.toml; this file only adds the C parts.  They are ordinary ELF shared
objects with no Python API (an LD_AUDIT module and a Vulkan layer), built through setuptools so
that ``pip install .`` and ``pip install -e .`` produce them, and placed inside the package at
``vkdoctor/native/`` where ``vkdoctor.trace.native_paths`` finds them.  Both are optional: without a C
compiler the install still succeeds and ``vkdoctor trace`` falls back to /proc polling.
It also installs the committed man page, man/vkdoctor.1.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE_DIR = os.path.join("vkdoctor", "native")
COMMON_FLAGS = ["-O2", "-fvisibility=hidden", "-fno-strict-aliasing", "-Wall", "-Wextra"]

# Module name -> output file name inside vkdoctor/native/.
NATIVE_LIBRARIES = {
    "vkdoctor.native.libvkdoctor_audit": "libvkdoctor_audit.so",
    "vkdoctor.native.libVkLayer_vkdoctor_trace": "libVkLayer_vkdoctor_trace.so",
}


class build_native(build_ext):
    """build_ext that names our libraries plainly (no cpython ABI tag, no PyInit_ export)."""

    def get_ext_filename(self, fullname: str) -> str:
        # distutils asks with the last component only (get_ext_fullpath), setuptools with the
        # full dotted name; answer both.
        for name, filename in NATIVE_LIBRARIES.items():
            if fullname == name:
                return os.path.join(*name.split(".")[:-1], filename)
            if fullname == name.rsplit(".", 1)[1]:
                return filename
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext: Extension) -> list[str]:
        if ext.name in NATIVE_LIBRARIES:
            return []
        return super().get_export_symbols(ext)

    def build_extension(self, ext: Extension) -> None:
        if ext.name not in NATIVE_LIBRARIES:
            super().build_extension(ext)
            return
        # No Python headers, no libpython search path or RPATH from Python's LDSHARED: these
        # libraries are loaded by ld.so and the Vulkan loader into arbitrary programs.
        ext.include_dirs = [NATIVE_DIR]
        saved = list(self.compiler.linker_so)
        self.compiler.linker_so = [
            arg for arg in saved if not arg.startswith(("-L", "-Wl,-rpath", "-Wl,-R"))
        ]
        saved_dirs, self.compiler.library_dirs = self.compiler.library_dirs, []
        saved_rpath, self.compiler.runtime_library_dirs = self.compiler.runtime_library_dirs, []
        try:
            super().build_extension(ext)
        finally:
            self.compiler.linker_so = saved
            self.compiler.library_dirs = saved_dirs
            self.compiler.runtime_library_dirs = saved_rpath


def native(name: str, source: str, libraries: list[str]) -> Extension:
    return Extension(
        name,
        sources=[os.path.join(NATIVE_DIR, source)],
        depends=[os.path.join(NATIVE_DIR, h) for h in ("vkdoctor_emit.h", "vkdoctor_vk.h")],
        extra_compile_args=COMMON_FLAGS,
        extra_link_args=["-Wl,--no-undefined"],
        libraries=libraries,
        # A missing compiler must not break `pip install`: the tracer reports the gap instead.
        optional=True,
    )


setup(
    ext_modules=[
        native("vkdoctor.native.libvkdoctor_audit", "vkdoctor_audit.c", ["dl"]),
        native("vkdoctor.native.libVkLayer_vkdoctor_trace", "vkdoctor_layer.c", ["pthread", "dl"]),
    ],
    cmdclass={"build_ext": build_native},
    # The man page generated from the parser (python -m vkdoctor.manpage --write); pip puts it
    # in <prefix>/share/man/man1, where man(1) finds it next to <prefix>/bin on PATH.
    data_files=[("share/man/man1", ["man/vkdoctor.1"])],
)
