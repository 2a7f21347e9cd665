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

ready && exit 0

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
ready && exit 0

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
for _ in $(seq 1 30); do ready && exit 0; sleep 1; done
echo "ensure-postgres: PostgreSQL did not come up on 127.0.0.1:5432" >&2
exit 1
