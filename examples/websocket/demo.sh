#!/usr/bin/env bash
# demo.sh ENDPOINT — the WebSocket story of the ECS task scale-in protection
# launch post, against a running holdfast (`holdfast up`).
#
#   1. build the server; create its task role with the AWS CLI (allowed the
#      task's own protection); register its task definition and a service of 1
#   2. connect one client (it pings every 2 s) for DEMO_CLIENT_SECONDS
#      (default 60); the server holds a protection lease for the connection
#   3. scale the service to 0 and show the service event "... unable to scale
#      in due to (reason 1 tasks under protection)"; the client stays connected
#   4. when the client leaves, the server releases the protection and
#      holdfast stops the task at once; show the server's log and the task
#
# Exits non-zero if any step does not happen (including the client being
# disconnected early).
#
# Environment:
#   DEMO_CLIENT_SECONDS how long the client stays (default 60)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY   holdfast's credentials, or
#   HOLDFAST_DATA_DIR   the data dir of `holdfast up` (default ./.holdfast),
#                       whose credentials.json is read when the above are unset
#   DEMO_WORKDIR        where to put the binary and logs (default: a new
#                       temporary directory, kept for you)
#   PORT                the server's port (default: a free one)
set -euo pipefail

DEMO_CLIENT_SECONDS=${DEMO_CLIENT_SECONDS:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../lib.sh"
demo_init websocket "${1:-}"
port=${PORT:-$("$bin" ctl freeport)}

service=websocket-$(date +%s)
log=$work/server.log
client_pid=""
cleanup() {
  if [[ -n $client_pid ]]; then kill "$client_pid" 2>/dev/null || true; fi
  "$bin" ctl delete --service "$service" >/dev/null 2>&1 || true
}
trap cleanup EXIT

demo_task_role "$service"
say "Registering the task definition and service $service (1 task running $bin serve on 127.0.0.1:$port)"
task=$("$bin" ctl deploy --service "$service" --task-role-arn "$role_arn" \
  --env PORT="$port" --env HOST=127.0.0.1 --env DEMO_LOG="$log" \
  -- "$bin" serve) || fail "the service's task did not start"
echo "task $task is RUNNING; open http://127.0.0.1:$port/ in a browser to connect from there too"
"$bin" ctl wait-log --timeout 30s --file "$log" --contains "Listening on port" >/dev/null || fail "the server did not listen"

say "Connecting a client for ${DEMO_CLIENT_SECONDS}s"
"$bin" client --url "ws://127.0.0.1:$port/ws" --seconds "$DEMO_CLIENT_SECONDS" > "$work/client.log" 2>&1 &
client_pid=$!
"$bin" ctl wait-log --timeout 30s --file "$log" --contains "Task protection acquired" || fail "the server did not protect its task"
"$bin" ctl protection --task "$task"

say "Scaling the service to 0 while the client is connected"
demo_scale_in
echo "the task keeps running while the client is connected"

say "Waiting for the client to leave (after ${DEMO_CLIENT_SECONDS}s) and the task to stop"
if ! wait "$client_pid"; then
  client_pid=""
  cat "$work/client.log"
  fail "the client was disconnected before it left"
fi
client_pid=""
demo_wait_stopped server 60s

say "Client log"
cat "$work/client.log"
say "Server log"
cat "$log"
say "What happened"
echo "$stopped"
echo "The task was protected while a client was connected, scale-in waited,"
echo "and it stopped as soon as the last client left."
echo "(files kept in $work)"
