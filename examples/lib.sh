# lib.sh — what the examples' demo.sh scripts share; they source it after
# setting `here` to their own directory:
#
#   here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   source "$here/../lib.sh"
#
# It defines say and fail, and:
#   demo_init NAME ENDPOINT  checks the ENDPOINT argument (exported as
#                            HOLDFAST_ENDPOINT for `ctl`), makes the work dir
#                            ($DEMO_WORKDIR, or a new temporary one) and builds
#                            the example into it; sets ENDPOINT, work and bin
#   demo_task_role NAME      creates the task role NAME with the AWS CLI, as an
#                            ECS user does (trusted by ecs-tasks.amazonaws.com,
#                            allowed the task's own protection); sets role_arn
#   demo_scale_in            scales $service to 0 and checks that its protected
#                            $task keeps running, with the service event
#   demo_wait_stopped WHO T  waits up to T for WHO (worker, server) to log the
#                            release in $log and for $task to stop; sets stopped

say() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nFAILED: %s\n' "$*" >&2; exit 1; }

demo_init() {
  local name=$1
  if [[ -z ${2:-} ]]; then
    echo "usage: demo.sh ENDPOINT   e.g. demo.sh http://127.0.0.1:7420" >&2
    exit 2
  fi
  ENDPOINT=$2
  export HOLDFAST_ENDPOINT=$ENDPOINT
  work=${DEMO_WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/holdfast-$name-demo.XXXXXX")}
  mkdir -p "$work"
  work=$(cd "$work" && pwd)
  say "Building the $name example into $work"
  (cd "$here" && go build -o "$work/$name" .) || fail "go build"
  bin=$work/$name
}

demo_task_role() {
  command -v aws >/dev/null || fail "the AWS CLI is not installed: 'pip install awscli' or 'apt-get install awscli'"
  # The AWS CLI talks to holdfast with the same credentials as ctl (and
  # --endpoint-url, for CLI releases older than AWS_ENDPOINT_URL).
  eval "$("$bin" ctl env)"
  say "Creating the task role $1 with the AWS CLI"
  role_arn=$(aws --endpoint-url "$ENDPOINT" iam create-role --role-name "$1" --query Role.Arn --output text \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}') \
    || fail "aws iam create-role"
  # What the AWS CDK's grantTaskProtection grants.
  aws --endpoint-url "$ENDPOINT" iam put-role-policy --role-name "$1" --policy-name task-protection \
    --policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecs:UpdateTaskProtection","ecs:GetTaskProtection"],"Resource":"*"}]}' \
    || fail "aws iam put-role-policy"
  echo "$role_arn"
}

demo_scale_in() {
  "$bin" ctl scale --service "$service" 0
  "$bin" ctl wait-event --timeout 60s --service "$service" --contains "tasks under protection" \
    || fail "no 'tasks under protection' event"
  "$bin" ctl wait-task --timeout 5s --task "$task" --status RUNNING || fail "the protected task is not running"
}

demo_wait_stopped() {
  "$bin" ctl wait-log --timeout "$2" --file "$log" --contains "Task protection released" >/dev/null \
    || fail "the $1 did not release its protection"
  stopped=$("$bin" ctl wait-task --timeout 60s --task "$task" --status STOPPED) \
    || fail "the task did not stop after the release"
}
