#!/usr/bin/env bash
# The main job end to end: a real HAProxy in front of three app containers, haproxy-drain
# watching Docker, load on HAProxy, each container restarted in turn, then a report.
# Everything it starts is named hd-demo-<pid> and removed on exit, also on Ctrl-C or failure.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="$repo/target/debug/haproxy-drain"
image="haproxy-drain-testapp:nohc"
id="hd-demo-$$"
dir="$(mktemp -d "/tmp/$id.XXXX")"
apps=(app_1 app_2 app_3)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

cleanup() {
    [[ -f "$dir/daemon.pid" ]] && kill "$(cat "$dir/daemon.pid")" 2>/dev/null || true
    [[ -f "$dir/haproxy.pid" ]] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
    pkill -f "wrk .*$dir" 2>/dev/null || true
    for app in "${apps[@]}"; do docker rm -f "$id-$app" >/dev/null 2>&1 || true; done
    docker network rm "$id" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

say "starting three app containers ($image) on network $id"
docker network create --label hdt.test=1 "$id" >/dev/null
for app in "${apps[@]}"; do
    docker run -d --name "$id-$app" --network "$id" --label hdt.test=1 \
        --label haproxy-drain.backend=app --label haproxy-drain.server="$app" \
        --label haproxy-drain.port=8080 -e NAME="$app" -e ON_SIGTERM=graceful "$image" >/dev/null
done

port="$(free_port)"
metrics="$(free_port)"
{
    cat <<CFG
global
    stats socket $dir/admin.sock mode 600 level admin
    stats timeout 2m
defaults
    mode http
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch 1
    retry-on all-retryable-errors
frontend fe
    bind 127.0.0.1:$port
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
    default-server inter 500ms fall 2 rise 2
CFG
    for app in "${apps[@]}"; do
        ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$id\").IPAddress}}" "$id-$app")"
        echo "    server $app $ip:8080 check weight 10"
    done
} >"$dir/haproxy.cfg"
say "starting HAProxy on 127.0.0.1:$port (weights 10, checks every 500 ms)"
haproxy -D -p "$dir/haproxy.pid" -f "$dir/haproxy.cfg"

say "starting haproxy-drain"
"$bin" run --haproxy "unix://$dir/admin.sock" --state-file "$dir/state.json" \
    --control-socket "$dir/control.sock" --metrics-listen "127.0.0.1:$metrics" 2>"$dir/daemon.log" &
echo $! >"$dir/daemon.pid"
for _ in $(seq 100); do
    curl -sf "127.0.0.1:$metrics/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "127.0.0.1:$metrics/readyz" >/dev/null || { cat "$dir/daemon.log"; exit 1; }

in_rotation() { # server name -> 0 when READY, running, weight 10
    echo "show servers state app" | socat stdio "unix-connect:$dir/admin.sock" |
        awk -v s="$1" '$4 == s && $6 == 2 && $7 == 0 && $8 == 10 { found = 1 } END { exit !found }'
}
for app in "${apps[@]}"; do
    for _ in $(seq 100); do in_rotation "$app" && break; sleep 0.1; done
done
"$bin" status --control-socket "$dir/control.sock" --haproxy "unix://$dir/admin.sock" 2>/dev/null || true

say "load: wrk, 16 connections, for 14 s; restarting each container in turn"
wrk -t2 -c16 -d14s "http://127.0.0.1:$port/?delay_ms=2&demo=$dir" >"$dir/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
for app in "${apps[@]}"; do
    start="$(now)"
    docker restart -t 10 "$id-$app" >/dev/null
    for _ in $(seq 200); do in_rotation "$app" && break; sleep 0.05; done
    in_rotation "$app" || { echo "$app did not come back"; tail -20 "$dir/daemon.log"; exit 1; }
    awk -v app="$app" -v a="$start" -v b="$(now)" \
        'BEGIN { printf "    %s: docker restart -> back in rotation at weight 10 in %.2f s\n", app, b - a }'
done
wait "$wrk_pid"

requests="$(awk '/requests in/ { print $1 }' "$dir/wrk.txt")"
non2xx="$(awk -F': ' '/Non-2xx/ { print $2 }' "$dir/wrk.txt")"
socket="$(awk '/Socket errors/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$dir/wrk.txt")"
failed=$(( ${non2xx:-0} + ${socket:-0} ))

say "report"
echo "    requests served: $requests"
echo "    requests failed: $failed (non-2xx: ${non2xx:-0}, socket errors: ${socket:-0})"
echo "    time each server was out of rotation (haproxy-drain's own measure):"
sed -n 's/.*back in rotation server=app\/\([^ ]*\) start_to_rotation_ms=\([0-9]*\) out_of_rotation_ms=\([0-9]*\).*/        \1: \3 ms out of rotation (\2 ms from container start)/p' "$dir/daemon.log"
echo "    drains:"
sed -n 's/.*drain finished server=app\/\([^ ]*\) trigger="\([^"]*\)" result="\([^"]*\)" elapsed_ms=\([0-9]*\).*/        \1: \3 in \4 ms (\2)/p' "$dir/daemon.log"
[[ "$failed" -eq 0 ]] && say "no request lost" || say "$failed request(s) failed"
