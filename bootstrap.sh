#!/bin/sh
# Set up vkdoctor on Debian 12 (as root, from a clean clone) and run it or its tests.
#   ./bootstrap.sh check   system packages, a virtual environment, the package; then `vkdoctor check`
#   ./bootstrap.sh test    the same with the test extras; then lint and the whole test suite
set -eu
mode=${1:-check}
case "$mode" in check | test) ;; *)
    echo "usage: $0 check|test" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")"
step() { printf 'bootstrap: %s\n' "$*" >&2; }
# pip's own chatter (index warnings from the machine's pip configuration) goes to a log that is
# shown only when the install fails.
log=$(mktemp /tmp/vkdoctor-bootstrap.XXXXXX)
trap 'rm -f "$log"' EXIT
quiet() { "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }

packages="python3 python3-venv python3-dev gcc libc6-dev libvulkan1 mesa-vulkan-drivers vulkan-tools glslang-tools"
# The test suite also runs the real fleet engines: node_exporter (started by the tests on a free
# port) and promtool (Debian ships it in the prometheus package).  Check mode stays lean.
if [ "$mode" = test ]; then
    packages="$packages prometheus-node-exporter prometheus"
fi
missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $packages 2>/dev/null | awk '$1 != "ii" {print $2}')
if [ -n "$missing" ] || ! dpkg-query -W $packages >/dev/null 2>&1; then
    step "installing system packages: $packages (apt-get; this takes a few minutes)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $packages >/dev/null
else
    step "system packages present"
fi

if [ ! -x .venv/bin/python ]; then
    step "creating the virtual environment .venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
case "$mode" in
    check)
        step "installing vkdoctor into .venv (builds the native trace parts)"
        quiet .venv/bin/python -m pip install -q '.[tui]'
        step "done: the tool is .venv/bin/vkdoctor; running .venv/bin/vkdoctor check"
        rm -f "$log"
        exec .venv/bin/vkdoctor check
        ;;
    test)
        step "installing vkdoctor with the test extras and the real Vulkan programs the trace tests run (wgpu, taichi, ncnn) into .venv (editable)"
        quiet .venv/bin/python -m pip install -q -e '.[test,tui,trace-programs]'
        step "lint: ruff check and ruff format --check"
        .venv/bin/ruff check -q .
        .venv/bin/ruff format -q --check .
        step "running the test suite"
        rm -f "$log"
        exec .venv/bin/python -m pytest -q
        ;;
esac
