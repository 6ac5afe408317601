"""Build (or reuse) the Debian chroots of the matrix.

    python3 tests/matrix/build.py [--release NAME ...] [--rebuild]

Each chroot is built with mmdebstrap from the Debian mirror the host's apt uses, into
/var/cache/vkdoctor-matrix/<release> (VKDOCTOR_MATRIX_CACHE overrides), and reused while it is
there: a build goes to <release>.building and is renamed only when complete, so a half-built
chroot is never taken for a cached one. Each carries a venv at /opt/vkdoctor-venv with
vkdoctor's dependencies from PyPI; vkdoctor itself is installed from the working tree at run time
(tests/matrix/chroot.py), since the tree changes between runs and the chroot does not.

stdlib only, so it runs under the host's python3 before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chroot import cache_dir, chroot_run, meta_path
from releases import PYTHON_SOURCE, PYTHON_SOURCE_SHA256, RELEASES, Release, by_name

PACKAGES = (
    "libvulkan1",
    "mesa-vulkan-drivers",
    "vulkan-tools",
    "python3",
    "python3-venv",
    "python3-dev",
    "gcc",
    "libc6-dev",
    "ca-certificates",
)
# What bullseye needs to compile CPython (ssl for pip, ffi for cffi, the compression modules).
PYTHON_BUILD_PACKAGES = (
    "make",
    "xz-utils",
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libbz2-dev",
    "liblzma-dev",
)
# vkdoctor's runtime dependencies (pyproject.toml) and pytest for the in-chroot suite.
VENV_PACKAGES = (
    "vulkan>=1.3.275",
    "vulkan-object>=1.4.320",
    "pyelftools>=0.30",
    "psutil>=5.9",
    "rich>=13.0",
    "numpy>=1.24",
    "jsonschema>=4.17",
    "pytest>=7.4",
    "setuptools>=77",
    "wheel",
)
VENV = "/opt/vkdoctor-venv"
# Documentation, manual pages and translations are a third of a chroot and nothing reads them.
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")


def host_mirror() -> str:
    """The Debian archive URI of the host's apt sources (deb822 or one-line form)."""
    texts: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    for text in texts:
        for uri in re.findall(r"^URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", text, re.M
        ):
            if uri.rstrip("/").endswith("/debian"):
                return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def _mmdebstrap(release: Release, target: Path, mirror: str) -> None:
    packages = list(PACKAGES)
    if release.build_python:
        packages += PYTHON_BUILD_PACKAGES
    argv = [
        "mmdebstrap",
        "--variant=apt",
        "--quiet",
        "--include=" + ",".join(packages),
        # sid's Release file is valid for a week; a mirror that stopped syncing (the one this was
        # built from served a sid Release past its Valid-Until) would otherwise refuse it.
        "--aptopt=Acquire::Check-Valid-Until false",
        *[f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES],
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        release.name,
        str(target),
        mirror,
    ]
    subprocess.run(argv, check=True)


def _build_python(release: Release, root: Path, mirror: str) -> None:
    """Compile bookworm's CPython inside the chroot with the chroot's gcc, into /opt/python."""
    src = root / "opt" / "python-src.tar.gz"
    url = f"{mirror}/{PYTHON_SOURCE}"
    with urllib.request.urlopen(url, timeout=120) as response, src.open("wb") as out:
        shutil.copyfileobj(response, out)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    if PYTHON_SOURCE_SHA256 and digest != PYTHON_SOURCE_SHA256:
        raise SystemExit(f"{url}: sha256 {digest}, expected {PYTHON_SOURCE_SHA256}")
    script = (
        "set -e; cd /opt; rm -rf python-src; mkdir python-src; "
        "tar -xzf python-src.tar.gz -C python-src --strip-components=1; cd python-src; "
        "./configure -q --prefix=/opt/python --without-ensurepip >/opt/python-build.log 2>&1; "
        f"make -s -j{os.cpu_count() or 2} >>/opt/python-build.log 2>&1; "
        "make -s install >>/opt/python-build.log 2>&1; "
        "cd /opt; rm -rf python-src python-src.tar.gz python-build.log; "
        "rm -rf /opt/python/lib/python3*/test"
    )
    chroot_run(root, ["sh", "-c", script], check=True)


def _make_venv(release: Release, root: Path) -> None:
    if release.build_python:
        # The source's bundled pip wheel, if the tarball has it; else the host's pip wheel.
        made = chroot_run(root, ["/opt/python/bin/python3", "-m", "venv", VENV])
        if made.returncode != 0:
            chroot_run(
                root, ["/opt/python/bin/python3", "-m", "venv", "--without-pip", VENV], check=True
            )
            _install_pip(root)
    else:
        chroot_run(root, ["python3", "-m", "venv", VENV], check=True)
    chroot_run(
        root,
        [f"{VENV}/bin/python", "-m", "pip", "install", "-q", "--upgrade", "pip"],
        check=True,
    )
    chroot_run(
        root, [f"{VENV}/bin/python", "-m", "pip", "install", "-q", *VENV_PACKAGES], check=True
    )


def _install_pip(root: Path) -> None:
    """pip into a venv without one: the pip wheel the host's ensurepip bundles, run from itself."""
    import ensurepip

    bundled = Path(ensurepip.__file__).parent / "_bundled"
    wheels = sorted(bundled.glob("pip-*.whl"))
    if not wheels:
        # Debian's host python3 keeps the wheels in /usr/share/python-wheels.
        wheels = sorted(Path("/usr/share/python-wheels").glob("pip-*.whl"))
    if not wheels:
        raise SystemExit("no pip wheel on the host to bootstrap the chroot's venv with")
    dest = root / "opt" / wheels[-1].name
    shutil.copy2(wheels[-1], dest)
    chroot_run(
        root,
        [f"{VENV}/bin/python", f"/opt/{dest.name}/pip", "install", "-q", f"/opt/{dest.name}"],
        check=True,
    )
    dest.unlink()


def _versions(root: Path) -> dict[str, str]:
    out = chroot_run(
        root,
        ["dpkg-query", "-W", "-f=${Package} ${Version}\\n", "libvulkan1", "mesa-vulkan-drivers"],
        capture=True,
        check=True,
    ).stdout
    versions = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    python = chroot_run(
        root,
        [f"{VENV}/bin/python", "-c", "import platform;print(platform.python_version())"],
        capture=True,
        check=True,
    ).stdout.strip()
    return {
        "loader": versions.get("libvulkan1", ""),
        "mesa": versions.get("mesa-vulkan-drivers", ""),
        "python": python,
    }


def build(release: Release, *, rebuild: bool = False) -> Path:
    cache = cache_dir()
    root = cache / release.name
    if root.is_dir() and meta_path(release.name).is_file() and not rebuild:
        return root
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f"{release.name}.building"
    shutil.rmtree(work, ignore_errors=True)
    mirror = host_mirror()
    started = time.monotonic()
    _mmdebstrap(release, work, mirror)
    bootstrapped = time.monotonic()
    if release.build_python:
        _build_python(release, work, mirror)
    python_built = time.monotonic()
    _make_venv(release, work)
    finished = time.monotonic()
    meta = {
        "release": release.name,
        "mirror": mirror,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": {
            "mmdebstrap": round(bootstrapped - started, 1),
            "python": round(python_built - bootstrapped, 1),
            "venv": round(finished - python_built, 1),
            "total": round(finished - started, 1),
        },
        **_versions(work),
    }
    (work / "etc" / "vkdoctor-matrix.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    meta_path(release.name).unlink(missing_ok=True)
    work.rename(root)
    meta_path(release.name).write_text(json.dumps(meta, indent=2) + "\n")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", action="append", choices=[r.name for r in RELEASES])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("mmdebstrap") is None:
        print("build.py: mmdebstrap is not installed (apt-get install mmdebstrap)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("build.py: building chroots needs root", file=sys.stderr)
        return 2
    names = args.release or [r.name for r in RELEASES]
    failed = 0
    for name in names:
        release = by_name(name)
        try:
            build(release, rebuild=args.rebuild)
        except (subprocess.CalledProcessError, OSError) as exc:
            print(f"{name}: build failed: {exc}", file=sys.stderr)
            failed += 1
            continue
        meta = json.loads(meta_path(name).read_text())
        print(
            f"{name}: loader {meta['loader']}, Mesa {meta['mesa']}, Python {meta['python']}, "
            f"cold build {meta['seconds']['total']} s"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
