#!/usr/bin/env bash
# The pgtrail demo, on this machine and nothing else: PostgreSQL, the local
# AWS stack (SQS, SNS, S3 on 127.0.0.1), the CloudTrail corpus uploaded as a
# trail writes it and announced through SNS, and a pgtrail worker that runs
# until the queue drains. Prints a short summary at the end.
#
#   CORPUS=path/to/AWSLogs-tree ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS=${CORPUS:-../shared/corpus/s3}
DB=${DEMO_DB:-pgtrail_demo}
PORT=${DEMO_PORT:-4566}
ADMIN_URL=${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable}

[ -d "$CORPUS" ] || { echo "demo: no CloudTrail tree at $CORPUS (set CORPUS)" >&2; exit 1; }
./scripts/ensure-postgres.sh
PGOPTIONS="-c client_min_messages=warning" psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

echo "demo: building"
make -s build

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

# Serve SQS, SNS and S3 on loopback; upload the corpus and announce each
# object with CloudTrail's own SNS notification.
bin/localaws -addr "127.0.0.1:$PORT" -queue cloudtrail -bucket cloudtrail-logs -topic cloudtrail \
  -seed "$CORPUS" >"$work/env" 2>"$work/localaws.log" &
for _ in $(seq 1 300); do grep -q '^SEEDED_OBJECTS=' "$work/env" 2>/dev/null && break; sleep 0.1; done
grep -q '^SEEDED_OBJECTS=' "$work/env" || { cat "$work/localaws.log" >&2; exit 1; }
set -a; . "$work/env"; set +a
echo "demo: uploaded $SEEDED_OBJECTS objects to s3://$BUCKET and announced them on $TOPIC_ARN"

export SQS_QUEUE_URL=$QUEUE_URL S3_FORCE_PATH_STYLE=true
export PGTRAIL_WAIT_TIME=1s PGTRAIL_HTTP_ADDR= PGTRAIL_LOG_FORMAT=console PGTRAIL_LOG_LEVEL=${PGTRAIL_LOG_LEVEL:-warn}
start=$(date +%s.%N)
bin/pgtrail run -drain
end=$(date +%s.%N)

psql "$DATABASE_URL" -X -q <<SQL
\echo
\echo '== pgtrail demo summary =='
SELECT (SELECT count(*) FROM cloudtrail_objects) AS objects,
       (SELECT count(*) FROM cloudtrail_events)  AS events,
       (SELECT count(*) FROM cloudtrail_rejects) AS rejects,
       round(($end - $start)::numeric, 1) AS seconds_of_run;
\echo '(seconds_of_run includes start-up, migrations and the last, empty long poll)'
\echo '== busiest APIs =='
SELECT event_source, event_name, count(*) FROM cloudtrail_events
 GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 8;
\echo '== who stopped or deleted a trail =='
SELECT event_time, event_name, user_identity_arn, source_ip_address
  FROM cloudtrail_events WHERE event_name IN ('StopLogging', 'DeleteTrail') ORDER BY event_time;
SQL
echo "demo: the database is $DATABASE_URL — try: psql \"$DATABASE_URL\""
