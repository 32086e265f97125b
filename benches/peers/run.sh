#!/usr/bin/env bash
# Peer comparison for issue 13 (not CI): our ack-retry beside NATS JetStream and
# PostgreSQL on loopback, same message count, one table with ratios.
#
#   benches/peers/run.sh            # from the repository root; installs what is missing (apt)
#   EO_PEER_MESSAGES=20000 EO_PEER_SIZE=100 EO_PEER_WINDOW=64 benches/peers/run.sh
#
# Rows:
#   ours (exactly-once), the at-least-once baseline (receiver dedup off), ours
#   without durability (logs on tmpfs), the disk's limits (raw write+fdatasync per
#   record; raw batched writes at the batch our run reached), NATS JetStream (file
#   storage, publish with Nats-Msg-Id dedup and PubAck, pull consumer acking with
#   the server's confirmation) and PostgreSQL (idempotent consumer: insert the id
#   into a processed table and apply the effect in one transaction,
#   synchronous_commit=on) driven by pgbench -f at 1, 4 and 16 clients.
# Every server runs from a temporary directory on the disk of the repository and
# is stopped on exit (trap), whatever happens.
set -euo pipefail

N=${EO_PEER_MESSAGES:-20000}
SIZE=${EO_PEER_SIZE:-100}
WINDOW=${EO_PEER_WINDOW:-64}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "$ROOT/target/eo-peers.XXXXXX")
ROWS=$WORK/rows
NATS_PORT=${EO_PEER_NATS_PORT:-14222}
PG_PORT=${EO_PEER_PG_PORT:-15432}
NATS_PID=
PG_STARTED=
PG_BIN=

cleanup() {
  set +e
  if [ -n "$NATS_PID" ]; then kill "$NATS_PID" 2>/dev/null; wait "$NATS_PID" 2>/dev/null; fi
  if [ -n "$PG_STARTED" ]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1; fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

need() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (apt)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need nats-server nats-server
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then need psql postgresql; fi
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
need pgbench postgresql-contrib

echo "building eo-bench-ours and eo-bench-nats (release)" >&2
(cd "$ROOT" && cargo build -q --release -p eo-benches --bins)
BIN=$ROOT/target/release

echo "machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); disk of $WORK: $(df -h "$WORK" | awk 'NR==2{print $1}')" >&2
echo "messages $N, peer payload $SIZE B, window $WINDOW" >&2

# --- ours, and the disk's limits (same run) ---
EO_BENCH_DIR=$WORK/eo "$BIN/eo-bench-ours" "$N" 1 "$WINDOW" | tee -a "$ROWS" >&2

# --- NATS JetStream ---
mkdir -p "$WORK/nats"
nats-server -js -sd "$WORK/nats" -a 127.0.0.1 -p "$NATS_PORT" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$NATS_PORT) 2>/dev/null && break; sleep 0.1; done
"$BIN/eo-bench-nats" "127.0.0.1:$NATS_PORT" "$N" "$SIZE" "$WINDOW" | tee -a "$ROWS" >&2
kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true; NATS_PID=

# --- PostgreSQL, idempotent consumer ---
mkdir -p "$WORK/pg" && chown postgres "$WORK/pg" && chmod 700 "$WORK/pg"
chmod o+x "$WORK"
runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -A trust -U postgres >/dev/null
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -w -l "$WORK/pg/log" \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c fsync=on -c max_connections=50" start >/dev/null
PG_STARTED=1
PSQL=(psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "create table processed (id bigint primary key, body text not null);
                 create table account (id int primary key, balance bigint not null);
                 insert into account select g, 0 from generate_series(0, 15) g;"
cat >"$WORK/consume.sql" <<SQL
\set id random(1, 9000000000000000000)
with fresh as (insert into processed (id, body) values (:id, repeat('x', $SIZE)) on conflict do nothing returning id)
update account set balance = balance + 1 where id = :id % 16 and exists (select 1 from fresh);
SQL
for C in 1 4 16; do
  "${PSQL[@]}" -c "truncate processed; update account set balance = 0; checkpoint;"
  (cd "$WORK" && rm -f pgbench_log.* && pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U postgres \
     -f "$WORK/consume.sql" -c "$C" -j "$C" -t $(( (N + C - 1) / C )) -l postgres >"$WORK/pgbench.out" 2>&1) || { cat "$WORK/pgbench.out" >&2; exit 1; }
  TPS=$(awk '/^tps/{print $3; exit}' "$WORK/pgbench.out")
  APPLIED=$("${PSQL[@]}" -At -c "select sum(balance) from account")
  read -r P50 P99 < <(cat "$WORK"/pgbench_log.* | awk '{print $3}' | sort -n |
    awk '{a[NR]=$1} END{printf "%d %d\n", a[int(NR*0.5+0.5)], a[int(NR*0.99+0.5)]}')
  echo "ROW postgresql-$C-clients ${TPS%.*} $P50 $P99 applied-$APPLIED,synchronous_commit=on" | tee -a "$ROWS" >&2
done

# --- the table ---
echo
awk '
  { name[NR]=$2; rate[NR]=$3; p50[NR]=$4; p99[NR]=$5; note[NR]=$6; if ($2=="exactly-once") ours=$3 }
  END {
    printf "| %-30s | %12s | %8s | %8s | %12s | %s\n", "system", "messages/s", "p50 us", "p99 us", "ours / this", "note"
    printf "|%s|%s|%s|%s|%s|%s\n", "--------------------------------", "--------------", "----------", "----------", "--------------", "---"
    for (i = 1; i <= NR; i++)
      printf "| %-30s | %12d | %8s | %8s | %11.2fx | %s\n", name[i], rate[i], p50[i], p99[i], ours / rate[i], note[i]
  }' "$ROWS"
