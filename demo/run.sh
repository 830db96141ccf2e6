#!/usr/bin/env bash
# Starts Waymark all-in-one, every demo service and the load driver; prints the
# UI's URL and stops everything on Ctrl-C. See demo/README.md for the variables.
#
#   demo/run.sh                           # defaults below
#   LOAD_RPS=20 PAYMENT_ERROR_RATE=0.3 demo/run.sh
#   DEMO_START_WAYMARK=0 OTEL_EXPORTER_OTLP_ENDPOINT=http://otherhost:4318 demo/run.sh
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO_ROOT="$(dirname "$DEMO_DIR")"
# Paths given relative to where run.sh was started from.
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
[ -z "${WAYMARK_BIN:-}" ] || WAYMARK_BIN="$(abspath "$WAYMARK_BIN")"
[ -z "${DEMO_DATA_DIR:-}" ] || DEMO_DATA_DIR="$(abspath "$DEMO_DATA_DIR")"
[ -z "${DEMO_PYTHON:-}" ] || DEMO_PYTHON="$(abspath "$DEMO_PYTHON")"
[ -z "${CATALOG_DB_PATH:-}" ] || CATALOG_DB_PATH="$(abspath "$CATALOG_DB_PATH")"
cd "$DEMO_DIR"

# --- configuration -----------------------------------------------------------
export FRONTEND_PORT="${FRONTEND_PORT:-8080}"
export SERVICE_A_PORT="${SERVICE_A_PORT:-8081}"
export SERVICE_B_PORT="${SERVICE_B_PORT:-8082}"
export LOGIN_PORT="${LOGIN_PORT:-8091}"
export CATALOG_PORT="${CATALOG_PORT:-8092}"
export PAYMENT_PORT="${PAYMENT_PORT:-8093}"

WAYMARK_HOST="${WAYMARK_HOST:-127.0.0.1}"
WAYMARK_UI_PORT="${WAYMARK_UI_PORT:-16686}"
WAYMARK_OTLP_HTTP_PORT="${WAYMARK_OTLP_HTTP_PORT:-4318}"
WAYMARK_OTLP_GRPC_PORT="${WAYMARK_OTLP_GRPC_PORT:-4317}"
WAYMARK_ADMIN_PORT="${WAYMARK_ADMIN_PORT:-14269}"
DEMO_START_WAYMARK="${DEMO_START_WAYMARK:-1}"
DATA_DIR="${DEMO_DATA_DIR:-$DEMO_DIR/.data}"
LOG_DIR="$DATA_DIR/logs"
DEMO_PYTHON="${DEMO_PYTHON:-$DEMO_DIR/.venv/bin/python}"

# Where every service sends its spans (OTLP/HTTP; the exporters append /v1/traces).
export OTEL_EXPORTER_OTLP_ENDPOINT="${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$WAYMARK_OTLP_HTTP_PORT}"
# Export every second rather than every 5 s, so traces show up quickly.
export OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-1000}"
export CATALOG_DB_PATH="${CATALOG_DB_PATH:-$DATA_DIR/catalog.sqlite}"

# The Waymark receivers the demo does not use get any free port, so a busy
# 9411 or 14250 cannot stop it (set these variables to pin them).
export WAYMARK_ZIPKIN_LISTEN="${WAYMARK_ZIPKIN_LISTEN:-127.0.0.1:0}"
export WAYMARK_JAEGER_COMPACT_LISTEN="${WAYMARK_JAEGER_COMPACT_LISTEN:-127.0.0.1:0}"
export WAYMARK_JAEGER_BINARY_LISTEN="${WAYMARK_JAEGER_BINARY_LISTEN:-127.0.0.1:0}"
export WAYMARK_JAEGER_HTTP_LISTEN="${WAYMARK_JAEGER_HTTP_LISTEN:-127.0.0.1:0}"
export WAYMARK_JAEGER_GRPC_LISTEN="${WAYMARK_JAEGER_GRPC_LISTEN:-127.0.0.1:0}"
export WAYMARK_SAMPLING_LISTEN="${WAYMARK_SAMPLING_LISTEN:-127.0.0.1:0}"
export WAYMARK_QUERY_GRPC_LISTEN="${WAYMARK_QUERY_GRPC_LISTEN:-127.0.0.1:0}"

# --- processes and clean-up --------------------------------------------------
PIDS=()
NAMES=()

# stop_pids PID...: SIGTERM, up to 8 s to exit, then SIGKILL
stop_pids() {
  local pid deadline=$(( $(date +%s) + 8 ))
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

cleanup() {
  trap - EXIT INT TERM
  [ "${#PIDS[@]}" -gt 0 ] || return 0
  echo
  echo "== stopping ${NAMES[*]}"
  # The services first (they flush their spans on SIGTERM), Waymark last.
  local i services=() waymark=()
  for i in "${!PIDS[@]}"; do
    if [ "${NAMES[$i]}" = waymark ]; then waymark+=("${PIDS[$i]}"); else services+=("${PIDS[$i]}"); fi
  done
  [ "${#services[@]}" -eq 0 ] || stop_pids "${services[@]}"
  [ "${#waymark[@]}" -eq 0 ] || stop_pids "${waymark[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "run.sh: $*" >&2
  exit 1
}

# start NAME COMMAND...: runs COMMAND in the background, output in $LOG_DIR/NAME.log
start() {
  local name="$1"
  shift
  "$@" >"$LOG_DIR/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

# wait_for INDEX PORT: until 127.0.0.1:PORT accepts connections; the process
# started as number INDEX must stay alive meanwhile
wait_for() {
  local name="${NAMES[$1]}" pid="${PIDS[$1]}" port="$2" tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$LOG_DIR/$name.log" >&2 || true
      die "$name exited during start-up (log: $LOG_DIR/$name.log)"
    fi
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "$name did not open port $port within 30 s (log: $LOG_DIR/$name.log)"
    sleep 0.1
  done
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- prerequisites -----------------------------------------------------------
if [ ! -d node_modules ] || [ ! -x "$DEMO_PYTHON" ]; then
  echo "== dependencies missing: running demo/install.sh"
  bash "$DEMO_DIR/install.sh"
fi

mkdir -p "$LOG_DIR"
ports=("$FRONTEND_PORT" "$SERVICE_A_PORT" "$SERVICE_B_PORT" "$LOGIN_PORT" "$CATALOG_PORT" "$PAYMENT_PORT")
if [ "$DEMO_START_WAYMARK" = 1 ]; then
  ports+=("$WAYMARK_UI_PORT" "$WAYMARK_OTLP_HTTP_PORT" "$WAYMARK_OTLP_GRPC_PORT" "$WAYMARK_ADMIN_PORT")
fi
for port in "${ports[@]}"; do
  port_free "$port" || die "port $port is already in use (see demo/README.md to choose other ports)"
done

# --- Waymark ------------------------------------------------------------------
if [ "$DEMO_START_WAYMARK" = 1 ]; then
  if [ -z "${WAYMARK_BIN:-}" ]; then
    WAYMARK_BIN="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/waymark"
    if [ ! -x "$WAYMARK_BIN" ]; then
      echo "== building Waymark: cargo build --release -p waymark"
      (cd "$REPO_ROOT" && cargo build --release -p waymark)
    fi
  fi
  [ -x "$WAYMARK_BIN" ] || die "no Waymark binary at $WAYMARK_BIN"
  echo "== Waymark all-in-one ($WAYMARK_BIN), data in $DATA_DIR/waymark"
  start waymark "$WAYMARK_BIN" all-in-one \
    --data-dir "$DATA_DIR/waymark" \
    --otlp-http-listen "$WAYMARK_HOST:$WAYMARK_OTLP_HTTP_PORT" \
    --otlp-grpc-listen "$WAYMARK_HOST:$WAYMARK_OTLP_GRPC_PORT" \
    --query-listen "$WAYMARK_HOST:$WAYMARK_UI_PORT" \
    --admin-listen "$WAYMARK_HOST:$WAYMARK_ADMIN_PORT"
  wait_for 0 "$WAYMARK_ADMIN_PORT"
  tries=0
  until curl -fsS "http://127.0.0.1:$WAYMARK_ADMIN_PORT/ready" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "Waymark not ready within 30 s (log: $LOG_DIR/waymark.log)"
    sleep 0.1
  done
fi

# --- the demo services (same commands as the Dockerfiles in demo/docker/) ----
echo "== services (logs in $LOG_DIR), spans to $OTEL_EXPORTER_OTLP_ENDPOINT"
start service-b node node/service-b.js
start service-a node node/service-a.js
start login "$DEMO_PYTHON" python/login.py
start catalog "$DEMO_PYTHON" python/catalog.py
start payment node node/payment.js
start frontend node node/frontend.js
for i in "${!NAMES[@]}"; do
  case "${NAMES[$i]}" in
    service-a) port=$SERVICE_A_PORT ;; service-b) port=$SERVICE_B_PORT ;;
    login) port=$LOGIN_PORT ;; catalog) port=$CATALOG_PORT ;;
    payment) port=$PAYMENT_PORT ;; frontend) port=$FRONTEND_PORT ;;
    *) continue ;;
  esac
  wait_for "$i" "$port"
  printf '   %-10s http://127.0.0.1:%s\n' "${NAMES[$i]}" "$port"
done

# --- load ----------------------------------------------------------------------
start loadgen node node/loadgen.js
LOADGEN_PID="${PIDS[${#PIDS[@]}-1]}"

echo
if [ "$DEMO_START_WAYMARK" = 1 ]; then
  echo "Waymark UI: http://localhost:$WAYMARK_UI_PORT   (traces in a few seconds; System Architecture for the dependency graph)"
fi
echo "Try: curl 'http://127.0.0.1:$FRONTEND_PORT/checkout'   curl 'http://127.0.0.1:$SERVICE_A_PORT/serviceB'"
echo "Load: ${LOAD_RPS:-5} req/s$( [ "${LOAD_DURATION_S:-0}" != 0 ] && echo " for ${LOAD_DURATION_S} s"); progress in $LOG_DIR/loadgen.log. Ctrl-C stops everything."

# Watch: a service (or Waymark) that dies ends the demo; the load driver may finish.
load_done=0
while true; do
  for i in "${!PIDS[@]}"; do
    pid="${PIDS[$i]}"
    kill -0 "$pid" 2>/dev/null && continue
    if [ "$pid" = "$LOADGEN_PID" ]; then
      if [ "$load_done" = 0 ]; then
        load_done=1
        echo "== load driver finished: $(tail -n 2 "$LOG_DIR/loadgen.log" | head -n 1)"
        echo "   services keep running; Ctrl-C stops them"
      fi
      continue
    fi
    tail -n 30 "$LOG_DIR/${NAMES[$i]}.log" >&2 || true
    die "${NAMES[$i]} exited (log: $LOG_DIR/${NAMES[$i]}.log)"
  done
  sleep 1
done
