#!/usr/bin/env bash
# Bring up a real one-node Slurm cluster (munged + slurmctld + slurmd) on localhost, for testing
# repro's Slurm executor in a container without systemd or cgroups (Debian 12, slurm-wlm 22.05).
#
#   eval "$(scripts/slurm_local.sh start)"   start (idempotent), then export SLURM_CONF
#   scripts/slurm_local.sh env                print the export lines only
#   scripts/slurm_local.sh stop               stop slurmd, slurmctld (and munged if we started it)
#   scripts/slurm_local.sh status             exit 0 if slurmctld or slurmd runs (says which), 3 if neither
#
# State (slurm.conf, pid files, logs, spool, saved job state) lives in ${REPRO_SLURM_DIR:-/tmp/repro-slurm}.
# Only the export lines go to stdout; diagnostics go to stderr. Needs root.
# No slurmdbd, so `sacct` fails ("Slurm accounting storage is disabled"): poll with
# `scontrol show job -o <id>` (finished jobs stay for MinJobAge=3600 s) or read $DIR/jobcomp.txt.
# REPRO_SLURM_CRED_EXPIRE (default 120, as on real clusters) is how long a requeued job waits.
# `stop` does not cancel jobs: their job steps keep running and reattach on the next `start`.
set -euo pipefail

DIR="${REPRO_SLURM_DIR:-/tmp/repro-slurm}"
CONF="$DIR/slurm.conf"
HOST="$(hostname -s)"
export SLURM_CONF="$CONF"

log() { echo "slurm_local: $*" >&2; }
die() { log "error: $*"; exit 1; }
print_env() { echo "export SLURM_CONF=$CONF"; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { timeout 10 sinfo -h -o %T 2>/dev/null | head -n1 | tr -d '*~#!%$@^-'; }
is_up() {
  [ -f "$CONF" ] && pid_alive "$DIR/slurmctld.pid" || return 1  # sinfo alone retries for ~8 s
  case "$(node_state)" in idle | mixed | alloc | allocated | completing) return 0 ;; *) return 1 ;; esac
}

dump_logs() {
  local f
  for f in "$DIR/slurmctld.log" "$DIR/slurmd.log" /var/log/munge/munged.log; do
    if [ -f "$f" ]; then { echo "----- tail $f -----"; tail -n 20 "$f"; } >&2; fi
  done
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then log "munged already running"; return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"; mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  local user=root
  getent passwd munge >/dev/null && user=munge
  chown "$user:" /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown "$user:" /run/munge /var/lib/munge /var/log/munge && chmod 0755 /run/munge
  log "starting munged as $user"
  if [ "$user" = root ]; then /usr/sbin/munged --force
  else runuser -u munge -- /usr/sbin/munged --force; fi
  touch "$DIR/munged.started-by-us"
  local i
  for i in $(seq 1 50); do
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  dump_logs; die "munged did not come up"
}

write_conf() {
  local cpus mem
  cpus="$(nproc)"
  mem=$(( $(awk '/^MemTotal:/ {print int($2/1024)}' /proc/meminfo) * 95 / 100 ))
  cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: one-node cluster on localhost, no cgroups, no slurmdbd.
ClusterName=repro
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=${REPRO_SLURM_CRED_EXPIRE:-120}
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=10,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=5
OverTimeLimit=0
SlurmdTimeout=300
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

cmd_start() {
  if is_up; then log "cluster already up ($CONF)"; print_env; return 0; fi
  [ "$(id -u)" = 0 ] || die "must run as root"
  [[ "${REPRO_SLURM_CRED_EXPIRE:-120}" =~ ^[0-9]+$ ]] || die "REPRO_SLURM_CRED_EXPIRE must be seconds"
  if ! command -v slurmctld >/dev/null; then
    log "installing slurm-wlm munge"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >&2 \
      || die "apt-get install failed"
  fi
  mkdir -p "$DIR/state" "$DIR/spool"
  start_munge
  write_conf
  pid_alive "$DIR/slurmctld.pid" || { log "starting slurmctld"; slurmctld -f "$CONF" || { dump_logs; die "slurmctld failed to start"; }; }
  pid_alive "$DIR/slurmd.pid" || { log "starting slurmd"; slurmd -f "$CONF" -N "$HOST" || { dump_logs; die "slurmd failed to start"; }; }
  local st="" d t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 60 ]; do
    for d in slurmctld slurmd; do  # daemonized; give them 3 s to write their pid files
      [ $((SECONDS - t0)) -lt 3 ] || pid_alive "$DIR/$d.pid" || { dump_logs; die "$d exited (see its log above)"; }
    done
    st="$(node_state || true)"
    case "$st" in
      idle | mixed | alloc | allocated) log "node $HOST is $st"; print_env; return 0 ;;
      down | drain* | drained) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  dump_logs; die "node $HOST not idle after 60 s (state: '${st:-none}')"
}

stop_pidfile() {  # name pidfile
  pid_alive "$2" || { log "$1 not running"; return 0; }
  local pid i; pid="$(cat "$2")"
  log "stopping $1 (pid $pid)"; kill "$pid" 2>/dev/null || true
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "$1 did not exit, sending KILL"; kill -9 "$pid" 2>/dev/null || true
}

cmd_stop() {
  stop_pidfile slurmd "$DIR/slurmd.pid"
  stop_pidfile slurmctld "$DIR/slurmctld.pid"
  if [ -f "$DIR/munged.started-by-us" ]; then
    stop_pidfile munged /run/munge/munged.pid
    rm -f "$DIR/munged.started-by-us"
  fi
}

cmd_status() {
  local d up=()
  for d in slurmctld slurmd; do pid_alive "$DIR/$d.pid" && up+=("$d"); done
  if [ ${#up[@]} -eq 0 ]; then log "not running ($DIR)"; return 3; fi
  log "running: ${up[*]} ($DIR)"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
