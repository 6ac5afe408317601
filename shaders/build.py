#!/usr/bin/env python3
"""Rebuild the committed SPIR-V from the GLSL compute shaders, or check that it is up to date.

    python shaders/build.py            compile every *.comp to *.spv and rewrite manifest.json
    python shaders/build.py --check    verify the committed *.spv against the sources

Each source names its SPIR-V environment in a header comment (``// vkdoctor: target-env=vulkan1.1``)
so that shaders needing subgroup operations target Vulkan 1.1 while the rest stay loadable on 1.0
devices.  A source may also need a newer compiler than the distribution's
(``// vkdoctor: min-glslang=15``: GL_KHR_cooperative_matrix needs glslang 14+, Debian 12 has
12): it is built with ``--glslang-new CMD`` (and validated with ``--spirv-val-new CMD``), for
example Debian 13's tools run through that release's dynamic loader::

    T=/path/to/a/trixie/root
    python shaders/build.py --glslang-new "$T/lib64/ld-linux-x86-64.so.2 \\
        --library-path $T/usr/lib/x86_64-linux-gnu $T/usr/bin/glslangValidator" ...

and without one its committed module is kept (its source hash must still match) and
``--check`` compares hashes only.  glslangValidator's output depends on its version, so the manifest records the version
together with SHA-256 hashes of every source and module.  ``--check`` always verifies the hashes
(a source edited without a rebuild fails); it recompiles and compares byte for byte when the
installed glslangValidator is the one the manifest names, and validates with spirv-val when that
is installed.  Exit status: 0 up to date, 1 stale or invalid, 2 usage or tool error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
_TARGET = re.compile(r"^//\s*vkdoctor:\s*target-env=(\S+)\s*$", re.MULTILINE)
_MIN_GLSLANG = re.compile(r"^//\s*vkdoctor:\s*min-glslang=(\d+)\s*$", re.MULTILINE)


def target_env(source: Path) -> str:
    match = _TARGET.search(source.read_text())
    return match.group(1) if match else "vulkan1.0"


def min_glslang(source: Path) -> int:
    match = _MIN_GLSLANG.search(source.read_text())
    return int(match.group(1)) if match else 0


def glslang_major(version: str) -> int:
    """12 from ``11:12.0.0`` (glslang's own version after the SPIR-V generator number)."""
    match = re.search(r"(?::|^)(\d+)\.\d+", version)
    return int(match.group(1)) if match else 0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def glslang_version(tool: str) -> str:
    argv = [*shlex.split(tool), "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0] if out else ""
    return first.split(":", 1)[-1].strip() if "Glslang Version" in first else first.strip()


def compile_one(tool: str, source: Path, output: Path) -> None:
    # No -g: debug info would embed the source path and make output depend on the checkout.
    cmd = [*shlex.split(tool), "-V", "--target-env", target_env(source), "-o", str(output)]
    cmd.append(str(source))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{source.name}: glslangValidator failed\n{proc.stdout}{proc.stderr}")


def validate(tool: str | None, module: Path, env: str) -> str | None:
    if tool is None:
        return None
    argv = [*shlex.split(tool), "--target-env", env, str(module)]
    proc = subprocess.run(argv, capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()


def sources(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.comp"))


def build(
    directory: Path,
    tool: str,
    spirv_val: str | None,
    new_tool: str | None = None,
    new_spirv_val: str | None = None,
) -> int:
    entries = {}
    version = glslang_version(tool)
    old = _read_manifest(directory).get("shaders", {})
    for source in sources(directory):
        output = source.with_suffix(".spv")
        env = target_env(source)
        use, val, built_by = tool, spirv_val, None
        if min_glslang(source) > glslang_major(version):
            if new_tool is None:
                kept = old.get(source.stem) or {}
                if kept.get("source_sha256") != sha256(source) or not output.exists():
                    print(
                        f"{source.name} needs glslang {min_glslang(source)}+ (this one is "
                        f"{version}) and changed: pass --glslang-new",
                        file=sys.stderr,
                    )
                    return 2
                entries[source.stem] = kept
                print(f"kept {output.name} (built by glslang {kept.get('glslang_version')})")
                continue
            use, val, built_by = new_tool, new_spirv_val, glslang_version(new_tool)
        compile_one(use, source, output)
        problem = validate(val, output, env)
        if problem:
            print(f"{output.name}: spirv-val: {problem}", file=sys.stderr)
            return 1
        entries[source.stem] = {
            "source_sha256": sha256(source),
            "spirv_sha256": sha256(output),
            "target_env": env,
            **({"glslang_version": built_by} if built_by else {}),
        }
        print(f"built {output.name} ({env}, {output.stat().st_size} bytes)")
    for stale in sorted(set(p.stem for p in directory.glob("*.spv")) - set(entries)):
        (directory / f"{stale}.spv").unlink()
        print(f"removed {stale}.spv (no source)")
    manifest = {"glslang_version": version, "shaders": entries}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


def _read_manifest(directory: Path) -> dict:
    try:
        return json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def check(directory: Path, tool: str | None, spirv_val: str | None) -> int:
    problems: list[str] = []
    notes: list[str] = []
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        print(f"{MANIFEST}: unreadable ({exc}); run shaders/build.py", file=sys.stderr)
        return 1
    recorded = manifest.get("shaders", {})
    names = {s.stem for s in sources(directory)}
    for name in sorted(set(recorded) - names):
        problems.append(f"{name}: in {MANIFEST} but {name}.comp is gone")
    for stray in sorted({p.stem for p in directory.glob("*.spv")} - names):
        problems.append(f"{stray}.spv has no source")
    same_tool = tool is not None and glslang_version(tool) == manifest.get("glslang_version")
    if tool is None:
        notes.append("glslangValidator not found: checked hashes only")
    elif not same_tool:
        notes.append(
            f"glslangValidator {glslang_version(tool)} differs from the one that built the "
            f"modules ({manifest.get('glslang_version')}): checked hashes, compiled, but did "
            "not compare bytes"
        )
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources(directory):
            name = source.stem
            module = source.with_suffix(".spv")
            entry = recorded.get(name)
            if entry is None:
                problems.append(f"{name}: not in {MANIFEST}; run shaders/build.py")
                continue
            if not module.exists():
                problems.append(f"{module.name} missing; run shaders/build.py")
                continue
            if sha256(source) != entry.get("source_sha256"):
                problems.append(f"{source.name} changed since {module.name} was built")
            if sha256(module) != entry.get("spirv_sha256"):
                problems.append(f"{module.name} does not match the hash in {MANIFEST}")
            if target_env(source) != entry.get("target_env"):
                problems.append(f"{source.name}: target env changed since the build")
            newer = entry.get("glslang_version")  # built by a newer compiler than this one
            if newer and (
                tool is None or min_glslang(source) > glslang_major(glslang_version(tool))
            ):
                notes.append(
                    f"{module.name} needs glslang {min_glslang(source)}+ ({newer} built "
                    "it): checked hashes only"
                )
                continue
            if tool is not None:
                fresh = Path(tmp) / module.name
                try:
                    compile_one(tool, source, fresh)
                except RuntimeError as exc:
                    problems.append(str(exc))
                    continue
                if same_tool and fresh.read_bytes() != module.read_bytes():
                    problems.append(f"{module.name} differs from a fresh compile of {source.name}")
            problem = validate(spirv_val, module, target_env(source))
            if problem:
                problems.append(f"{module.name}: spirv-val: {problem}")
    for note in notes:
        print(f"note: {note}")
    for problem in problems:
        print(f"stale: {problem}", file=sys.stderr)
    if problems:
        print("run: python shaders/build.py", file=sys.stderr)
        return 1
    print(f"ok: {len(names)} SPIR-V modules match their sources")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify instead of rebuilding")
    parser.add_argument("--dir", type=Path, default=HERE, help="shader directory")
    parser.add_argument("--glslang", default=shutil.which("glslangValidator"))
    parser.add_argument("--spirv-val", default=shutil.which("spirv-val"))
    parser.add_argument("--glslang-new", help="command for sources needing a newer glslang")
    parser.add_argument("--spirv-val-new", help="command validating what --glslang-new built")
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check(args.dir, args.glslang, args.spirv_val)
        if args.glslang is None:
            print("glslangValidator not found (Debian: apt install glslang-tools)", file=sys.stderr)
            return 2
        return build(args.dir, args.glslang, args.spirv_val, args.glslang_new, args.spirv_val_new)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
