#!/bin/sh
# vkdoctor-healthcheck: a Slurm HealthCheckProgram that keeps nodes with a broken Vulkan stack
# out of the scheduler.
#
#   slurm.conf:  HealthCheckProgram=/usr/local/sbin/vkdoctor-healthcheck
#                HealthCheckInterval=300
#
# Each run: `vkdoctor check --json <dir>/<node>.json`; when the check fails (exit 1) the node is
# drained with the verdict as the reason ("vkdoctor: Vulkan is unusable: ... — fix: ..."); when a
# later check passes and the node's reason is vkdoctor's, the node is resumed.  A node drained by
# anyone else (any other reason) is never touched, in either direction.  When vkdoctor itself
# cannot run (exit 2, 3, a signal) the node is left as it is: a broken checker must not empty a
# cluster.
#
# slurmd runs this as root with an empty environment (only SLURMD_NODENAME), so settings come
# from a file, /etc/default/vkdoctor-healthcheck (or $VKDOCTOR_HEALTHCHECK_CONFIG), sourced as
# shell:
#   VKDOCTOR_PYTHON=/opt/vkdoctor/bin/python   the Python that has vkdoctor installed
#   VKDOCTOR_REPORT_DIR=/var/lib/vkdoctor      where <node>.json and <node>.log go
#   VKDOCTOR_DEADLINE=45                       seconds for the whole check (slurmd kills the
#                                              health check after 60)
#   VKDOCTOR_FAIL_ON=fail                      drain on failures only (the default, as the
#                                              Prometheus and NPD integrations' "up"); "warn"
#                                              drains on warnings too
#   VKDOCTOR_ARGS="--require dispatch"         more `vkdoctor check` arguments (split on spaces)
#   SCONTROL=scontrol SINFO=sinfo              the Slurm commands
# and anything the check must see (export VK_LOADER_DEBUG=..., a site's VK_* variables).
#
# Exit status: 0 healthy, 1 Vulkan problem found (node drained unless someone else drained it),
# 2 the check could not run or Slurm refused the update.
set -u

: "${PATH:=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
export PATH
config=${VKDOCTOR_HEALTHCHECK_CONFIG:-/etc/default/vkdoctor-healthcheck}
if [ -r "$config" ]; then
    # shellcheck disable=SC1090
    . "$config"
fi
py=${VKDOCTOR_PYTHON:-python3}
dir=${VKDOCTOR_REPORT_DIR:-/var/lib/vkdoctor}
deadline=${VKDOCTOR_DEADLINE:-45}
fail_on=${VKDOCTOR_FAIL_ON:-fail}
scontrol=${SCONTROL:-scontrol}
sinfo=${SINFO:-sinfo}
# SLURMD_NODENAME: the name slurmd runs as (several node names can share one host).
node=${SLURMD_NODENAME:-$(hostname -s)}

say() {
    printf 'vkdoctor-healthcheck: %s: %s\n' "$node" "$*" >&2
    logger -t vkdoctor-healthcheck -- "$node: $*" 2>/dev/null || :
}

if ! mkdir -p "$dir"; then
    say "cannot create $dir; node state left as it is"
    exit 2
fi
report="$dir/$node.json"

# shellcheck disable=SC2086  # VKDOCTOR_ARGS is a list of words on purpose
"$py" -m vkdoctor check --json "$report" --deadline "$deadline" --fail-on "$fail_on" --no-color \
    ${VKDOCTOR_ARGS:-} \
    >"$dir/$node.log" 2>&1
status=$?

# The node's current reason: "none" when nothing is set ("%E" is printed in full).
current=$("$sinfo" --noheader --node="$node" --Node --format='%E' 2>/dev/null | head -n 1)

case $status in
    0)
        case $current in
            vkdoctor:*)
                if "$scontrol" update nodename="$node" state=resume; then
                    say "Vulkan works again; resumed (was: $current)"
                else
                    say "Vulkan works again, but scontrol could not resume the node"
                    exit 2
                fi
                ;;
        esac
        exit 0
        ;;
    1)
        # The verdict, made safe for Slurm by vkdoctor itself (no JSON parsing in shell).
        if ! reason=$("$py" -m vkdoctor.fleet.slurm reason "$report"); then
            reason="vkdoctor: check failed; its report $report could not be read"
        fi
        case $current in
            "$reason")
                exit 1 # already drained for this very reason
                ;;
            none | "" | vkdoctor:*) ;;
            *)
                say "Vulkan check failed, but the node is held for another reason ($current); left alone"
                exit 1
                ;;
        esac
        if "$scontrol" update nodename="$node" state=drain reason="$reason"; then
            say "drained: $reason"
            exit 1
        fi
        say "scontrol could not drain the node: $reason"
        exit 2
        ;;
    *)
        say "vkdoctor check could not run (exit $status, see $dir/$node.log); node state left as it is"
        exit 2
        ;;
esac
