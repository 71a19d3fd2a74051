#!/usr/bin/env bash
# Lifecycle of the oracle's private services; used by run.sh and oracle.py.
#
#   services.sh ovn RUN_DIR       fresh NB + SB ovsdb-servers and ovn-northd on unix sockets
#   services.sh neutron RUN_DIR   neutron-server 21.0.0 (ML2/OVN, noauth, sqlite) on 127.0.0.1:9696
#   services.sh stop RUN_DIR      stop everything started for RUN_DIR (by pid)
#
# Only unix sockets under RUN_DIR and 127.0.0.1:9696 are used.  A pid is only signalled if its
# command line mentions RUN_DIR, so nothing that is not ours is ever stopped.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACTION=${1:?usage: services.sh ovn|neutron|stop RUN_DIR}
RUN_DIR=${2:?usage: services.sh ovn|neutron|stop RUN_DIR}
PY=/usr/bin/python3          # Debian's python: neutron lives there
API=http://127.0.0.1:9696
NB="unix:$RUN_DIR/nb.sock"
SB="unix:$RUN_DIR/sb.sock"
OVN_METADATA_ENABLED="${OVN_METADATA_ENABLED:-True}"
ML2_EXTENSION_DRIVERS="${ML2_EXTENSION_DRIVERS:-port_security,qos}"
OVN_DNS_SERVERS="${OVN_DNS_SERVERS:-8.8.8.8}"
NEUTRON_REF_SEED="${NEUTRON_REF_SEED:-1}"

case "$RUN_DIR" in
    /tmp/neutron-oracle*) ;;
    *) echo "services.sh: RUN_DIR must be under /tmp/neutron-oracle* (got $RUN_DIR)" >&2; exit 2;;
esac

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
nbctl() { ovn-nbctl --db="$NB" "$@"; }
sbctl() { ovn-sbctl --db="$SB" "$@"; }

pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
ours() {
    local pid=$1
    pid_alive "$pid" && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$RUN_DIR"
}
stop_pid() {   # stop_pid PID NAME
    local pid=$1 name=$2 i
    ours "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do pid_alive "$pid" || return 0; sleep 0.25; done
    log "$name (pid $pid) did not exit, killing"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {
    local pid child children=""
    if [ -f "$RUN_DIR/neutron-server.pid" ]; then
        pid=$(cat "$RUN_DIR/neutron-server.pid")
        if ours "$pid"; then
            children=$(pgrep -P "$pid" || true)
            stop_pid "$pid" neutron-server
            for child in $children; do stop_pid "$child" "neutron-server worker"; done
        fi
    fi
    for d in northd sb nb; do
        [ -f "$RUN_DIR/$d.pid" ] && stop_pid "$(cat "$RUN_DIR/$d.pid")" "$d"
    done
    return 0
}

start_ovn() {
    for b in ovsdb-tool ovsdb-server ovsdb-client ovn-northd ovn-nbctl ovn-sbctl; do
        command -v "$b" >/dev/null || die "missing $b: apt-get install ovn-central ovn-host"
    done
    mkdir -p "$RUN_DIR"
    ovsdb-tool create "$RUN_DIR/nb.db" /usr/share/ovn/ovn-nb.ovsschema
    ovsdb-tool create "$RUN_DIR/sb.db" /usr/share/ovn/ovn-sb.ovsschema
    for d in nb sb; do
        ovsdb-server --detach --no-chdir \
            --pidfile="$RUN_DIR/$d.pid" --log-file="$RUN_DIR/$d.log" \
            --unixctl="$RUN_DIR/$d.ctl" --remote="punix:$RUN_DIR/$d.sock" \
            "$RUN_DIR/$d.db"
    done
    nbctl --wait=none init
    sbctl init
    ovn-northd --detach --no-chdir \
        --pidfile="$RUN_DIR/northd.pid" --log-file="$RUN_DIR/northd.log" \
        --unixctl="$RUN_DIR/northd.ctl" --ovnnb-db="$NB" --ovnsb-db="$SB"
    nbctl --timeout=30 --wait=sb sync || die "ovn-northd is not processing NB"
    log "OVN up in $RUN_DIR (northd $(nbctl get NB_Global . options:northd_internal_version))"
}

start_neutron() {
    for b in neutron-server neutron-db-manage openstack curl; do
        command -v "$b" >/dev/null || die "missing $b: apt-get install neutron-common python3-openstackclient curl"
    done
    if curl -s -o /dev/null --max-time 2 "$API/"; then
        die "something already listens on $API (another oracle or neutron-server run?)"
    fi
    mkdir -p "$RUN_DIR"/{lock,state,pyhook}
    sed -e "s#@RUN_DIR@#$RUN_DIR#g" "$HERE/etc/neutron.conf" > "$RUN_DIR/neutron.conf"
    sed -e "s#@RUN_DIR@#$RUN_DIR#g" \
        -e "s#@EXT_DRIVERS@#$ML2_EXTENSION_DRIVERS#" \
        -e "s#@METADATA@#$OVN_METADATA_ENABLED#" \
        -e "s#@DNS_SERVERS@#$OVN_DNS_SERVERS#" \
        "$HERE/etc/ml2_conf.ini" > "$RUN_DIR/ml2_conf.ini"
    local args=(--config-file "$RUN_DIR/neutron.conf" --config-file "$RUN_DIR/ml2_conf.ini")
    # neutron-db-manage upgrade heads fails on sqlite (alembic ALTERs constraints); do what
    # neutron's own sqlite tests do: schema from the models, then stamp heads.
    "$PY" - "sqlite:///$RUN_DIR/neutron.sqlite" > "$RUN_DIR/db-manage.log" 2>&1 <<'PYEOF'
import sys
import sqlalchemy as sa
from neutron.db.migration.models import head
engine = sa.create_engine(sys.argv[1])
head.get_metadata().create_all(engine)
print("created %d tables" % len(head.get_metadata().tables))
PYEOF
    neutron-db-manage "${args[@]}" stamp heads >> "$RUN_DIR/db-manage.log" 2>&1 \
        || die "neutron-db-manage stamp heads failed (see $RUN_DIR/db-manage.log)"
    # Harness fixes (pyhook/usercustomize.py): fixed PRNG seed; sqlite BEGIN IMMEDIATE +
    # busy_timeout.  WAL lets readers and the writer proceed side by side.
    cp "$HERE/pyhook/usercustomize.py" "$RUN_DIR/pyhook/usercustomize.py"
    "$PY" -c "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" \
        "$RUN_DIR/neutron.sqlite"
    (
        cd "$RUN_DIR"
        export PYTHONPATH="$RUN_DIR/pyhook" PYTHONHASHSEED=0 NEUTRON_REF_SEED
        exec neutron-server "${args[@]}" > "$RUN_DIR/neutron-server.out" 2>&1 < /dev/null
    ) &
    echo $! > "$RUN_DIR/neutron-server.pid"
    local i
    for i in $(seq 1 240); do
        curl -sf -o /dev/null "$API/v2.0/networks" && break
        pid_alive "$(cat "$RUN_DIR/neutron-server.pid")" || die "neutron-server died (see $RUN_DIR/neutron-server.log)"
        sleep 0.25
    done
    curl -sf -o /dev/null "$API/v2.0/networks" || die "neutron API did not come up"
    # ML2/OVN creates neutron_pg_drop once its workers have opened the OVN IDLs.
    for i in $(seq 1 240); do
        nbctl --bare --columns name find Port_Group name=neutron_pg_drop 2>/dev/null \
            | grep -q neutron_pg_drop && break
        sleep 0.25
    done
    nbctl --bare --columns name find Port_Group name=neutron_pg_drop | grep -q neutron_pg_drop \
        || die "neutron-server did not create neutron_pg_drop (see $RUN_DIR/neutron-server.log)"
    log "neutron-server up (pid $(cat "$RUN_DIR/neutron-server.pid"))"
}

case "$ACTION" in
    ovn) start_ovn ;;
    neutron) start_neutron ;;
    stop) stop_all ;;
    *) echo "usage: services.sh ovn|neutron|stop RUN_DIR" >&2; exit 2 ;;
esac
