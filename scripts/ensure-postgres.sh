#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers on 127.0.0.1:5432 for user postgres
# without a password (or on TEST_DATABASE_URL, when that is set): starts the
# installed cluster, or installs one.
#
# Letting postgres in without a password means rewriting pg_hba.conf. Only CI
# (CI=true, a machine that exists for the run) gets that done for it; on
# anyone else's machine the script says what to do and changes nothing.
set -euo pipefail

etc=${PG_ETC:-/etc/postgresql}

ready() {
  if [ -n "${TEST_DATABASE_URL:-}" ] && psql "$TEST_DATABASE_URL" -Atqc 'select 1' >/dev/null 2>&1; then
    return 0
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && psql -h 127.0.0.1 -U postgres -d postgres -Atqc 'select 1' >/dev/null 2>&1
}

# The suite runs packages in parallel, each with databases of a few dozen
# daily partitions (about a dozen indexes each); a query over all of them
# takes a lock per relation, and PostgreSQL's shared lock table holds
# max_locks_per_transaction x (max_connections + max_prepared_transactions)
# entries. The default 64 runs out ("out of shared memory", 53200) when
# several such queries overlap, so CI raises it; elsewhere the script says so.
want_locks=1024
locks() {
  local have
  have=$(psql "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -Atqc 'show max_locks_per_transaction' 2>/dev/null || echo 0)
  [ "${have:-0}" -ge "$want_locks" ] && return 0
  if [ "${CI:-}" != true ]; then
    echo "ensure-postgres: max_locks_per_transaction is $have; the whole suite wants $want_locks (ALTER SYSTEM SET max_locks_per_transaction = $want_locks, then restart PostgreSQL)" >&2
    return 0
  fi
  echo "ensure-postgres: CI: raising max_locks_per_transaction from $have to $want_locks"
  psql "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -Atqc "ALTER SYSTEM SET max_locks_per_transaction = $want_locks"
  local ver
  ver=$(ls "$etc" | sort -V | tail -n1)
  pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
  for _ in $(seq 1 30); do ready && return 0; sleep 1; done
  echo "ensure-postgres: PostgreSQL did not come back after the restart" >&2
  return 1
}

ready && { locks; exit $?; }

if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls "$etc" 2>/dev/null)" ]; then
  echo "ensure-postgres: installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql postgresql-client >/dev/null
fi

ver=$(ls "$etc" | sort -V | tail -n1)
hba=$etc/$ver/main/pg_hba.conf
start() { pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload || true; }

start
for _ in $(seq 1 10); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 1; done
ready && { locks; exit $?; }

# Tests connect over TCP as postgres without a password.
if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
  if [ "${CI:-}" != true ]; then
    cat >&2 <<EOF
ensure-postgres: PostgreSQL $ver runs, but user postgres cannot connect to 127.0.0.1:5432 without a password.
ensure-postgres: $hba is left as it is: only CI (CI=true) has it rewritten. Either
  - give the tests a superuser's URL (they create and drop databases and roles):
      export TEST_DATABASE_URL='postgres://USER:PASSWORD@127.0.0.1:5432/postgres?sslmode=disable'
  - or, on a machine where anyone local may be the database's superuser, put these two lines
    at the top of $hba
      host all all 127.0.0.1/32 trust
      host all all ::1/128 trust
    and reload the server: pg_ctlcluster $ver main reload (as root or postgres)
EOF
    exit 1
  fi
  echo "ensure-postgres: CI: letting local TCP connections in without a password ($hba)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  start
fi
for _ in $(seq 1 30); do ready && { locks; exit $?; }; sleep 1; done
echo "ensure-postgres: PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
