#!/usr/bin/env bash
# Captures seed corpora from the real things on this machine: a HAProxy 2.6 (show stat / show
# servers state / show info and command replies on admin, operator and user sockets) and a real
# test container (docker inspect, docker ps JSON and its events). Re-run after a HAProxy or
# Docker upgrade; the files are committed under fuzz/seeds/.
set -euo pipefail
cd "$(dirname "$0")"
SEEDS=$PWD/seeds
T=$(mktemp -d /tmp/hdt-fuzzseed-XXXXXX)
NAME=hdt-fuzzseed-$$
cleanup() {
  [ -f "$T/haproxy.pid" ] && kill "$(cat "$T/haproxy.pid")" 2>/dev/null || true
  docker rm -f "$NAME" "$NAME-b" >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$SEEDS"/{haproxy_stat,haproxy_servers_state,haproxy_info,haproxy_reply,haproxy_prompt_stream,labels_mapping,config_toml,control_api,docker_event,docker_inspect}

# --- HAProxy -------------------------------------------------------------------------------
docker run -d --name "$NAME" --label hdt.test=1 --label haproxy-drain.backend=be \
  --label haproxy-drain.server=web1 --label haproxy-drain.port=8080 haproxy-drain-testapp:hc >/dev/null
IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$NAME")
cat > "$T/haproxy.cfg" <<CFG
global
    stats socket $T/admin.sock mode 600 level admin
    stats socket $T/op.sock mode 600 level operator
    stats socket $T/user.sock mode 600 level user
    pidfile $T/haproxy.pid
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /
    default-server inter 500ms fall 2 rise 2
    server web1 $IP:8080 check weight 100
    server web2 127.0.0.1:1 check weight 50
    server web3 127.0.0.1:2 check disabled
backend be_static
    balance static-rr
    server s1 127.0.0.1:3 weight 10
CFG
haproxy -D -f "$T/haproxy.cfg"
for _ in $(seq 50); do [ -S "$T/admin.sock" ] && break; sleep 0.1; done
cli() { echo "$2" | socat stdio "$T/$1.sock"; }
sleep 2  # let the checks settle into UP / DOWN
cli admin 'set server be/web2 state drain' >/dev/null
cli admin 'show stat' > "$SEEDS/haproxy_stat/show_stat.csv"
cli admin 'show stat be 4 -1' > "$SEEDS/haproxy_stat/show_stat_be.csv"
cli admin 'show servers state' > "$SEEDS/haproxy_servers_state/all.txt"
cli admin 'show servers state be' > "$SEEDS/haproxy_servers_state/be.txt"
cli admin 'show servers state nobe' > "$SEEDS/haproxy_servers_state/no_backend.txt"
cli admin 'show info' > "$SEEDS/haproxy_info/show_info.txt"
cli admin 'get weight be/web1' > "$SEEDS/haproxy_info/get_weight.txt"
cli admin 'show backend' > "$SEEDS/haproxy_info/show_backend.txt"
# Command replies, prefixed by the haproxy_reply target's two selector bytes (command, terminated).
reply() { { printf "\\x$(printf %02x "$2")\\x01"; cli "$1" "$3"; } > "$SEEDS/haproxy_reply/$4"; }
reply admin 0 'show info' show_info
reply admin 5 'set weight be/web1 100' set_weight_ok
reply admin 5 'set weight be/web1 abc' set_weight_garbage
reply admin 5 'set weight be/nosrv 1' set_weight_no_server
reply admin 5 'set weight be_static/s1 50' set_weight_static
reply op 5 'set weight be/web1 1' set_weight_denied
reply admin 6 'set server nobe/x state drain' set_state_no_backend
reply admin 7 "set server be/web1 addr $IP port 8080" set_addr_same
reply admin 7 'set server be/web1 addr foo' set_addr_invalid
reply admin 10 'add server be/dyn1 127.0.0.1:4' add_server
reply admin 10 'add server be/dyn1 127.0.0.1:4' add_server_exists
reply admin 11 'del server be/dyn1' del_server
reply admin 11 'del server be/web1' del_server_not_maint
reply user 13 'show cli level' cli_level
reply admin 13 'foo' unknown_command
# A whole prompt-mode exchange (selector bytes: 3 replies expected, 7-byte chunks).
{ printf '\x03\x07'; printf 'prompt\nshow info\nget weight be/web1\nset weight be/web1 abc\nquit\n' | socat stdio "$T/admin.sock"; } \
  > "$SEEDS/haproxy_prompt_stream/three_replies"

# --- Docker --------------------------------------------------------------------------------
docker inspect "$NAME" | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)[0], sys.stdout)' \
  > "$SEEDS/docker_inspect/inspect_running.json"
curl -s --unix-socket /var/run/docker.sock "http://d/v1.41/containers/json?filters=%7B%22name%22%3A%5B%22$NAME%22%5D%7D" \
  > "$SEEDS/docker_inspect/list.json"
SINCE=$(date +%s)
docker run -d --name "$NAME-b" --label hdt.test=1 haproxy-drain-testapp:hc >/dev/null
docker stop -t 2 "$NAME" >/dev/null
docker kill "$NAME-b" >/dev/null
docker inspect "$NAME" | python3 -c 'import json,sys; json.dump(json.load(sys.stdin)[0], sys.stdout)' \
  > "$SEEDS/docker_inspect/inspect_exited.json"
docker events --since "$SINCE" --until "$(($(date +%s) + 1))" --format '{{json .}}' \
  --filter "container=$NAME" --filter "container=$NAME-b" > "$T/events"
i=0; while IFS= read -r line; do i=$((i+1)); printf '%s' "$line" > "$SEEDS/docker_event/event_$i.json"; done < "$T/events"
docker inspect -f '{{.Name}}{{range $k, $v := .Config.Labels}}{{"\n"}}{{$k}}={{$v}}{{end}}' "$NAME" \
  | sed 's#^/##' > "$SEEDS/labels_mapping/labelled"
printf 'pxApp_12\ncom.example=x' > "$SEEDS/labels_mapping/rule_number"
printf 'shopweb1\nhaproxy-drain.enable=true\nhaproxy-drain.drain-timeout=5s\nhaproxy-drain.mode=maint\nhaproxy-drain.weight=20' \
  > "$SEEDS/labels_mapping/rule_name"

# --- Config and control API (the shapes the docs and the CLI produce) ------------------------
cp ../docs/config.example.toml "$SEEDS/config_toml/example.toml" 2>/dev/null || true
printf 'budget = "keep-one"\n[defaults]\nmode = "drain"\ndrain_timeout = "30s"\n\n[[rules]]\nmatch = "pxApp_*"\nbackend = "pxapp_cluster"\nserver = "app_{number}"\nport = 8080\n\n[backend_budgets]\nbe = "50%%"\n' \
  > "$SEEDS/config_toml/rules.toml"
printf '{"target":"be/web1","wait":true,"timeout_ms":30000,"force":false}' > "$SEEDS/control_api/drain.json"
printf '{"target":"web1","wait":true}' > "$SEEDS/control_api/ready.json"
printf '{"containers":["web1","web2"],"image":"app:v2","pull":false,"max_unavailable":1,"timeout_ms":60000}' > "$SEEDS/control_api/roll.json"
echo "seeds written to $SEEDS: $(find "$SEEDS" -type f | wc -l) files"
