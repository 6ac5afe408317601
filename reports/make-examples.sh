#!/bin/sh
# Regenerates the example reports in this directory with vkdoctor itself, redacted.
# Run from the repository root on a machine with the Vulkan loader and Mesa (lavapipe):
#     sh reports/make-examples.sh [path/to/vkdoctor]
# healthy-lavapipe: this machine as it is, with a clean environment.
# broken-missing-library: the same machine for a user "alice" whose ~/.local/share still holds
#   the manifest of an uninstalled AMDVLK driver (the classic stale-manifest breakage).
# The NVIDIA example is produced on the GPU machine with
#     vkdoctor check --redact --json reports/nvidia-gpu.json
# Each .md is rendered from its .json (`vkdoctor report markdown`), so the two always agree; the
# tests check that.
set -eu
VKDOCTOR=$(command -v "${1:-vkdoctor}")
HERE=$(cd "$(dirname "$0")" && pwd)
BASE=$(mktemp -d /tmp/vkdoctor-examples.XXXXXX)
trap 'rm -rf "$BASE"' EXIT
CLEAN="PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 NO_COLOR=1"

export_pair() {  # name, then the environment for the run
    name=$1
    shift
    env -i $CLEAN "$@" "$VKDOCTOR" check --redact --json "$HERE/$name.json" >/dev/null || true
    "$VKDOCTOR" report markdown "$HERE/$name.json" -o "$HERE/$name.md"
    echo "$name: $(wc -c <"$HERE/$name.json") bytes JSON, $(wc -c <"$HERE/$name.md") bytes Markdown"
}

export_pair healthy-lavapipe HOME=/root USER=root

ALICE=$BASE/home/alice
mkdir -p "$ALICE/.local/share/vulkan/icd.d"
cat >"$ALICE/.local/share/vulkan/icd.d/amd_icd64.json" <<'JSON'
{
    "file_format_version": "1.0.0",
    "ICD": {
        "library_path": "/usr/lib/x86_64-linux-gnu/amdvlk64.so",
        "api_version": "1.3.280"
    }
}
JSON
export_pair broken-missing-library HOME="$ALICE" USER=alice
