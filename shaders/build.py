#!/usr/bin/env python3
"""Rebuild the committed SPIR-V from the GLSL compute shaders, or check that it is up to date.

    python shaders/build.py            compile every *.comp to *.spv and rewrite manifest.json
    python shaders/build.py --check    verify the committed *.spv against the sources

Each source names its SPIR-V environment in a header comment (``// vkdoctor: target-env=vulkan1.1``)
so that shaders needing subgroup operations target Vulkan 1.1 while the rest stay loadable on 1.0
devices.  glslangValidator's output depends on its version, so the manifest records the version
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
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
_TARGET = re.compile(r"^//\s*vkdoctor:\s*target-env=(\S+)\s*$", re.MULTILINE)


def target_env(source: Path) -> str:
    match = _TARGET.search(source.read_text())
    return match.group(1) if match else "vulkan1.0"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def glslang_version(tool: str) -> str:
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0] if out else ""
    return first.split(":", 1)[-1].strip() if "Glslang Version" in first else first.strip()


def compile_one(tool: str, source: Path, output: Path) -> None:
    # No -g: debug info would embed the source path and make output depend on the checkout.
    cmd = [tool, "-V", "--target-env", target_env(source), "-o", str(output), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{source.name}: glslangValidator failed\n{proc.stdout}{proc.stderr}")


def validate(tool: str | None, module: Path, env: str) -> str | None:
    if tool is None:
        return None
    proc = subprocess.run([tool, "--target-env", env, str(module)], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stdout + proc.stderr).strip()


def sources(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.comp"))


def build(directory: Path, tool: str, spirv_val: str | None) -> int:
    entries = {}
    for source in sources(directory):
        output = source.with_suffix(".spv")
        compile_one(tool, source, output)
        env = target_env(source)
        problem = validate(spirv_val, output, env)
        if problem:
            print(f"{output.name}: spirv-val: {problem}", file=sys.stderr)
            return 1
        entries[source.stem] = {
            "source_sha256": sha256(source),
            "spirv_sha256": sha256(output),
            "target_env": env,
        }
        print(f"built {output.name} ({env}, {output.stat().st_size} bytes)")
    for stale in sorted(set(p.stem for p in directory.glob("*.spv")) - set(entries)):
        (directory / f"{stale}.spv").unlink()
        print(f"removed {stale}.spv (no source)")
    manifest = {"glslang_version": glslang_version(tool), "shaders": entries}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


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
    args = parser.parse_args(argv)
    try:
        if args.check:
            return check(args.dir, args.glslang, args.spirv_val)
        if args.glslang is None:
            print("glslangValidator not found (Debian: apt install glslang-tools)", file=sys.stderr)
            return 2
        return build(args.dir, args.glslang, args.spirv_val)
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
