#!/bin/sh
# Set up vkdoctor on Debian 12 (as root, from a clean clone) and run it or its tests.
#   ./bootstrap.sh check   system packages, a virtual environment, the package; then `vkdoctor check`
#   ./bootstrap.sh test    the same with the test extras; then the whole test suite
set -eu
mode=${1:-check}
cd "$(dirname "$0")"

packages="python3 python3-venv python3-dev gcc libc6-dev libvulkan1 mesa-vulkan-drivers vulkan-tools glslang-tools"
missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' $packages 2>/dev/null | awk '$1 != "ii" {print $2}')
if [ -n "$missing" ] || ! dpkg-query -W $packages >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $packages >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
case "$mode" in
    check)
        .venv/bin/python -m pip install -q '.[tui]'
        exec .venv/bin/vkdoctor check
        ;;
    test)
        .venv/bin/python -m pip install -q -e '.[test,tui]'
        exec .venv/bin/python -m pytest -q
        ;;
    *)
        echo "usage: $0 check|test" >&2
        exit 2
        ;;
esac
