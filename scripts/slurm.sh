#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on this host, for testing jwpipe's cluster profile.
#
#   scripts/slurm.sh up      install slurmctld/slurmd/munge if missing (apt), configure, start
#                            munged + slurmctld + slurmd, wait for the node, run a smoke job
#   scripts/slurm.sh down    cancel all jobs and stop the daemons started by "up" (by pid file)
#   scripts/slurm.sh status  sinfo + squeue
#   scripts/slurm.sh clean   down, then remove the state directory and the generated slurm.conf
#
# Needs root (daemons run as root, munged as the munge user). No systemd, no slurmdbd: profiles
# used against this cluster must set `slurm-status-command: squeue` (sacct has no data here).
# Memory limits are enforced without cgroups: jobacct_gather/linux samples every step's RSS
# each second and OverMemoryKill kills a step above its --mem (state OUT_OF_MEMORY).
#
# Exit status: 0 ok, 2 usage, 3 cannot run here (not root / no apt / install failed),
# 4 the daemons did not come up (see $SLURM_CI_STATE/log/).
set -euo pipefail

ACTION="${1:-up}"
STATE="${SLURM_CI_STATE:-/var/tmp/jwpipe-slurm}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
MARK="# written by jwpipe scripts/slurm.sh"
NODE="$(hostname -s)"

say() { echo "[slurm.sh] $*" >&2; }
die() { local code="$1"; shift; say "error: $*"; exit "$code"; }

have_slurm() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v munged >/dev/null && command -v sbatch >/dev/null
}

install() {
  have_slurm && return 0
  [ "$(id -u)" -eq 0 ] || die 3 "slurm is not installed and installing it needs root"
  command -v apt-get >/dev/null || die 3 "slurm is not installed and apt-get is not available"
  say "installing slurmctld slurmd slurm-client munge (apt)"
  export DEBIAN_FRONTEND=noninteractive
  # the package index may be missing on a fresh image; update it only then
  if ! apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
      >/dev/null 2>&1; then
    apt-get update -qq >/dev/null || die 3 "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
      >/dev/null || die 3 "apt-get install of slurm failed"
  fi
}

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

munge_up() {
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    head -c 1024 /dev/urandom > /etc/munge/munge.key
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
  chmod 700 /etc/munge
  chmod 400 /etc/munge/munge.key
  chmod 755 /run/munge
  if ! alive /run/munge/munged.pid; then
    # munged refuses to run as root
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  fi
  munge -n | unmunge >/dev/null || die 4 "munge does not work"
}

configure() {
  mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/spool" "$STATE/log"
  if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    die 3 "$CONF exists and was not written by this script; refusing to overwrite it"
  fi
  # the node's hardware exactly as slurmd sees it (CPUs, sockets, cores, RealMemory)
  local hw
  hw="$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')"
  local tmp="$CONF.tmp.$$"
  cat > "$tmp" <<EOF
$MARK (single-node test cluster; state in $STATE)
ClusterName=jwpipe
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# finished jobs stay visible to squeue (the profile polls with squeue) for 10 minutes
MinJobAge=600
KillWait=2
OverTimeLimit=0
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$tmp" "$CONF"
  [ -e "$CONF_DIR/cgroup.conf" ] || printf 'CgroupPlugin=autodetect\nIgnoreSystemd=yes\n' \
    > "$CONF_DIR/cgroup.conf"
}

up() {
  local t0=$SECONDS
  install
  munge_up
  configure
  alive "$STATE/slurmctld.pid" || slurmctld -i
  alive "$STATE/slurmd.pid" || slurmd
  local ok=""
  for _ in $(seq 1 80); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then ok=1; break; fi
    sleep 0.25
  done
  [ -n "$ok" ] || { scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true; }
  sinfo -h -N -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)' \
    || die 4 "node $NODE did not become idle; see $STATE/log/"
  srun -N1 -n1 -t 1 true || die 4 "smoke job (srun true) failed; see $STATE/log/"
  say "cluster up in $((SECONDS - t0)) s (partition debug, node $NODE)"
}

stop_pidfile() {
  local f="$1" p
  alive "$f" || return 0
  p="$(cat "$f")"
  kill "$p"
  for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$p" 2>/dev/null; then kill -9 "$p"; fi
  say "stopped $(basename "$f" .pid) (pid $p)"
}

down() {
  if alive "$STATE/slurmctld.pid"; then scancel --user="$(id -un)" 2>/dev/null || true; fi
  stop_pidfile "$STATE/slurmd.pid"
  stop_pidfile "$STATE/slurmctld.pid"
  stop_pidfile /run/munge/munged.pid
}

clean() {
  down
  rm -rf "$STATE"
  if [ -e "$CONF" ] && grep -qF "$MARK" "$CONF"; then rm -f "$CONF"; fi
  say "removed $STATE and the generated $CONF"
}

case "$ACTION" in
  up) up ;;
  down) down ;;
  clean) clean ;;
  status) sinfo; squeue --states=all ;;
  *) echo "usage: $0 up|down|status|clean" >&2; exit 2 ;;
esac
