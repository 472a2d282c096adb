#!/usr/bin/env bash
# The main job end to end, deployed as in production: a real HAProxy (haproxy/demo.cfg, no
# `retry-on`) in front of three app containers, haproxy-drain running as a container from its own
# image (`make image`) with the Docker socket, the HAProxy socket directory and a state volume
# mounted; load on HAProxy, each app container restarted in turn, then a report.
# Everything it starts is named hd-demo-<pid> and removed on exit, also on Ctrl-C or failure.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
drain_image="${HAPROXY_DRAIN_IMAGE:-haproxy-drain:latest}"
app_image="haproxy-drain-testapp:nohc"
id="hd-demo-$$"
dir="$(mktemp -d "/tmp/$id.XXXX")"
apps=(app_1 app_2 app_3)
sidecar="$id-haproxy-drain"
wrk_pid=""

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }

cleanup() {
    trap - EXIT INT TERM
    [[ -n "$wrk_pid" ]] && kill "$wrk_pid" 2>/dev/null || true
    docker rm -f "$sidecar" >/dev/null 2>&1 || true
    docker volume rm "$id-state" >/dev/null 2>&1 || true
    [[ -f "$dir/haproxy.pid" ]] && kill "$(cat "$dir/haproxy.pid")" 2>/dev/null || true
    for app in "${apps[@]}"; do docker rm -f "$id-$app" >/dev/null 2>&1 || true; done
    docker network rm "$id" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
# Ctrl-C / kill: leave through exit, so the EXIT trap cleans up.
trap 'echo; say "interrupted: cleaning up"; exit 130' INT TERM

docker image inspect "$drain_image" >/dev/null 2>&1 ||
    { echo "no image $drain_image: run make image first" >&2; exit 1; }

say "starting three app containers ($app_image) on network $id"
# STOP_DELAY_MS: the app keeps accepting 300 ms after SIGTERM. Docker signals the app and
# reports the kill event at the same moment; haproxy-drain drains within a few ms, and the
# requests HAProxy sent meanwhile must still find a listener.
docker network create --label hdt.test=1 "$id" >/dev/null
for app in "${apps[@]}"; do
    docker run -d --name "$id-$app" --network "$id" --label hdt.test=1 \
        --label haproxy-drain.backend=app --label haproxy-drain.server="$app" \
        --label haproxy-drain.port=8080 -e NAME="$app" -e ON_SIGTERM=graceful \
        -e STOP_DELAY_MS=300 "$app_image" >/dev/null
done

# HAProxy's admin socket in a directory of its own, reached by the sidecar through its group.
socket_gid="$(getent group haproxy | cut -d: -f3 || true)"
socket_gid="${socket_gid:-60123}"
mkdir "$dir/run"
chgrp "$socket_gid" "$dir/run"
chmod 750 "$dir/run"
export DEMO_DIR="$dir" DEMO_SOCKET_GID="$socket_gid"
DEMO_PORT="$(free_port)"
DEMO_PROMETHEUS_PORT="$(free_port)"
export DEMO_PORT DEMO_PROMETHEUS_PORT
for app in "${apps[@]}"; do
    ip="$(docker inspect -f "{{(index .NetworkSettings.Networks \"$id\").IPAddress}}" "$id-$app")"
    export "DEMO_${app^^}=$ip"
done
say "starting HAProxy on 127.0.0.1:$DEMO_PORT (haproxy/demo.cfg: no retry-on, weights 10)"
haproxy -W -D -p "$dir/haproxy.pid" -f "$repo/haproxy/demo.cfg"

metrics="$(free_port)"
say "starting haproxy-drain from its image ($drain_image), as user 65532 in groups docker and haproxy"
docker volume create --label hdt.test=1 "$id-state" >/dev/null
docker run -d --name "$sidecar" --label hdt.test=1 --network host \
    --group-add "$(stat -c %g /var/run/docker.sock)" --group-add "$socket_gid" \
    -v /var/run/docker.sock:/var/run/docker.sock \
    -v "$dir/run:/var/run/haproxy" \
    -v "$id-state:/var/lib/haproxy-drain" \
    -e HAPROXY_DRAIN_METRICS_LISTEN="127.0.0.1:$metrics" \
    "$drain_image" run >/dev/null
for _ in $(seq 100); do
    curl -sf "127.0.0.1:$metrics/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "127.0.0.1:$metrics/readyz" >/dev/null || { docker logs "$sidecar"; exit 1; }

in_rotation() { # server name -> 0 when READY, running, weight 10
    echo "show servers state app" | socat stdio "unix-connect:$dir/run/admin.sock" |
        awk -v s="$1" '$4 == s && $6 == 2 && $7 == 0 && $8 == 10 { found = 1 } END { exit !found }'
}
for app in "${apps[@]}"; do
    for _ in $(seq 100); do in_rotation "$app" && break; sleep 0.1; done
done
docker exec "$sidecar" /haproxy-drain status 2>/dev/null || true

say "load: wrk, 16 connections, for 14 s; restarting each container in turn"
wrk -t2 -c16 -d14s "http://127.0.0.1:$DEMO_PORT/?delay_ms=2" >"$dir/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
for app in "${apps[@]}"; do
    start="$(now)"
    docker restart -t 10 "$id-$app" >/dev/null
    for _ in $(seq 200); do in_rotation "$app" && break; sleep 0.05; done
    in_rotation "$app" || { echo "$app did not come back"; docker logs --tail 20 "$sidecar"; exit 1; }
    awk -v app="$app" -v a="$start" -v b="$(now)" \
        'BEGIN { printf "    %s: docker restart -> back in rotation at weight 10 in %.2f s\n", app, b - a }'
done
wait "$wrk_pid"
wrk_pid=""

requests="$(awk '/requests in/ { print $1 }' "$dir/wrk.txt")"
non2xx="$(awk -F': ' '/Non-2xx/ { print $2 }' "$dir/wrk.txt")"
socket="$(awk '/Socket errors/ { gsub(/,/, ""); print $4 + $6 + $8 + $10 }' "$dir/wrk.txt")"
failed=$(( ${non2xx:-0} + ${socket:-0} ))
docker logs "$sidecar" >"$dir/daemon.log" 2>&1

say "report"
echo "    requests served: $requests"
echo "    requests failed: $failed (non-2xx: ${non2xx:-0}, socket errors: ${socket:-0}; HAProxy has no retry-on)"
echo "    time each server was out of rotation (haproxy-drain's own measure):"
sed -n 's/.*back in rotation server=app\/\([^ ]*\) start_to_rotation_ms=\([0-9]*\) out_of_rotation_ms=\([0-9]*\).*/        \1: \3 ms out of rotation (\2 ms from container start)/p' "$dir/daemon.log"
echo "    drains:"
sed -n 's/.*drain finished server=app\/\([^ ]*\) trigger="\([^"]*\)" result="\([^"]*\)" elapsed_ms=\([0-9]*\).*/        \1: \3 in \4 ms (\2)/p' "$dir/daemon.log"
[[ "$failed" -eq 0 ]] && say "no request lost" || say "$failed request(s) failed"
