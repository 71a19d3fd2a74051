#!/usr/bin/env bash
# Run an `ovn-heater openstack replay` steps file against a real neutron-server 21.0.0
# (ML2/OVN) and dump the OVN Northbound DB after every step.  See README.md.
#
#   tools/neutron-oracle/run.sh STEPS.yml OUT_DIR
#
# e.g.  tools/neutron-oracle/run.sh crates/ovn-openstack/tests/corpus/basic/steps.yml /tmp/basic
#
# Writes OUT_DIR/NN-NAME.json (raw dump) and OUT_DIR/NN-NAME.txt (normalized) per step.
# Uses only unix sockets under a fresh /tmp/neutron-oracle.XXXXXX and 127.0.0.1:9696; every
# process it starts is stopped when it exits, also on failure or Ctrl-C.  One run at a time
# (runs wait for each other on /tmp/neutron-oracle.lock).  Environment: KEEP_RUN_DIR=1 keeps
# the run dir (logs, DBs) after success too; ORACLE_QUIET (default 1.0 s) is how long the NB
# must stay unchanged before a dump; NEUTRON_REF_SEED (default 1) seeds neutron's PRNG.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ $# -ne 2 ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
STEPS=$1
OUT=$2
[ -f "$STEPS" ] || { echo "run.sh: no steps file $STEPS" >&2; exit 2; }
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import neutron, yaml, openstackclient' 2>/dev/null || {
    echo "run.sh: Debian's neutron is missing: apt-get install neutron-common python3-openstackclient curl ovn-central ovn-host" >&2
    exit 2
}

exec 9>/tmp/neutron-oracle.lock
flock 9

RUN_DIR=$(mktemp -d /tmp/neutron-oracle.XXXXXX)
cleanup() {
    local rc=$?
    "$HERE/services.sh" stop "$RUN_DIR" || true
    if [ $rc -eq 0 ] && [ "${KEEP_RUN_DIR:-0}" != 1 ]; then
        rm -rf "$RUN_DIR"
    else
        echo "run.sh: logs and DBs kept in $RUN_DIR" >&2
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$OUT"
rm -f "$OUT"/[0-9][0-9]-*.json "$OUT"/[0-9][0-9]-*.txt
start=$(date +%s)
"$HERE/services.sh" ovn "$RUN_DIR"
/usr/bin/python3 "$HERE/oracle.py" --run-dir "$RUN_DIR" "$STEPS" "$OUT"
nerr=$(grep -cE '^[0-9-]+ [0-9:.]+ [0-9]+ (ERROR|CRITICAL) ' "$RUN_DIR/neutron-server.log" 2>/dev/null || true)
[ "${nerr:-0}" = 0 ] || echo "run.sh: warning: neutron-server logged $nerr ERROR/CRITICAL lines (see $RUN_DIR/neutron-server.log)" >&2
/usr/bin/python3 "$HERE/normalize.py" "$OUT"/[0-9][0-9]-*.json
echo "run.sh: $(ls "$OUT"/[0-9][0-9]-*.txt | wc -l) dumps in $OUT ($(( $(date +%s) - start )) s)" >&2
