#!/usr/bin/env bash
# demo.sh ENDPOINT — the queue consumer story of the ECS task scale-in
# protection launch post, against a running holdfast (`holdfast up`).
#
#   1. build the worker; start a private redis-server on a loopback port
#   2. create the task role with the AWS CLI (allowed the task's own
#      protection), register the task definition and a service of 1 worker
#   3. enqueue one job of DEMO_JOB_MS milliseconds (default 300000, 5 min)
#   4. once the worker is working on it, scale the service to 0
#   5. show the service event "... unable to scale in due to (reason 1 tasks
#      under protection)" while the job runs
#   6. when the job is done the worker releases its protection and holdfast
#      stops the task at once; show the worker's log and the stopped task
#
# Exits non-zero if any step does not happen.
#
# Environment:
#   DEMO_JOB_MS        job length in ms (default 300000)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   holdfast's credentials, or
#   HOLDFAST_DATA_DIR  the data dir of `holdfast up` (default ./.holdfast),
#                      whose credentials.json is read when the above are unset
#   DEMO_WORKDIR       where to put the binary, redis data and logs
#                      (default: a new temporary directory, kept for you)
#   REDIS_SERVER       redis-server binary (default: from PATH; installed
#                      with apt-get when missing and running as root)
set -euo pipefail

DEMO_JOB_MS=${DEMO_JOB_MS:-300000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
demo_init queue-consumer "${1:-}"

REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
if [[ -z $REDIS_SERVER ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "redis-server is missing: installing it with apt-get (running as root)"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    REDIS_SERVER=$(command -v redis-server)
  else
    fail "redis-server is not installed: run 'sudo apt-get install -y redis-server' (Debian/Ubuntu) and try again"
  fi
fi

port=$("$bin" ctl freeport)
mkdir -p "$work/redis"
say "Starting redis-server on 127.0.0.1:$port (data in $work/redis)"
"$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --dir "$work/redis" --save "" --appendonly yes \
  --daemonize no --logfile "$work/redis/redis.log" &
redis_pid=$!
service=""
cleanup() {
  if [[ -n $service ]]; then "$bin" ctl delete --service "$service" >/dev/null 2>&1 || true; fi
  kill "$redis_pid" 2>/dev/null || true
  wait "$redis_pid" 2>/dev/null || true
}
trap cleanup EXIT
export REDIS_URL=redis://127.0.0.1:$port/0
for _ in $(seq 100); do "$bin" ping 2>/dev/null && break; sleep 0.1; done
"$bin" ping || fail "redis-server did not start (see $work/redis/redis.log)"

service=queue-consumer-$(date +%s)
log=$work/worker.log
demo_task_role "$service"
say "Registering the task definition and service $service (1 task running $bin worker)"
task=$("$bin" ctl deploy --service "$service" --task-role-arn "$role_arn" \
  --env REDIS_URL="$REDIS_URL" --env DEMO_LOG="$log" --env PROTECTION_MINUTES=1 \
  -- "$bin" worker) || fail "the service's task did not start"
echo "task $task is RUNNING"

say "Sending a job of $DEMO_JOB_MS milliseconds"
"$bin" send "$DEMO_JOB_MS" || fail "send"
"$bin" ctl wait-log --timeout 60s --file "$log" --contains " - Working for " || fail "the worker did not pick up the job"
"$bin" ctl protection --task "$task"

say "Scaling the service to 0 while the job runs"
demo_scale_in
echo "the task keeps running until its job is done"

wait_s=$(( DEMO_JOB_MS / 1000 + 120 ))
say "Waiting for the job to finish and the task to stop (at most ${wait_s}s)"
demo_wait_stopped worker "${wait_s}s"

say "Worker log"
cat "$log"
say "What happened"
echo "$stopped"
echo "The task was protected while it worked, scale-in waited for it, and it"
echo "stopped as soon as the worker released its protection."
echo "(files kept in $work)"
