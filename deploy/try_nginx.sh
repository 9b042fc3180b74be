#!/usr/bin/env bash
# Run deploy/nginx.conf for real, on loopback only: two gle-lab processes behind nginx with TLS
# (a throw-away self-signed certificate), sticky sessions and websocket upgrade, measured with
# gle_lab.loadclient through the proxy. Everything it starts is stopped at the end.
#
#     bash deploy/try_nginx.sh [SESSIONS] [SECONDS]        # default 10 sessions, 15 s
#
# Needs nginx and openssl (Debian: apt-get install -y nginx). Run from anywhere.
set -euo pipefail
SESSIONS=${1:-10}
SECONDS_=${2:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
TMP=$(mktemp -d /tmp/gle-nginx.XXXXXX)
PIDS=()

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
    [ -f "$TMP/nginx.pid" ] && kill "$(cat "$TMP/nginx.pid")" 2>/dev/null || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
}
trap cleanup EXIT

HTTP_PORT=$(free_port); HTTPS_PORT=$(free_port); A=$(free_port); B=$(free_port)

# 1. a self-signed certificate for 127.0.0.1
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
    >/dev/null 2>&1

# 2. the shipped config with loopback ports, the test certificate and logs in $TMP
sed -e "s#listen 80;#listen 127.0.0.1:$HTTP_PORT;#" \
    -e "s#listen 443 ssl;#listen 127.0.0.1:$HTTPS_PORT ssl;#" \
    -e "s#/etc/letsencrypt/live/lab.example.org/fullchain.pem#$TMP/cert.pem#" \
    -e "s#/etc/letsencrypt/live/lab.example.org/privkey.pem#$TMP/key.pem#" \
    -e "s#/var/log/nginx/#$TMP/#g" \
    -e "s#server 127.0.0.1:5101#server 127.0.0.1:$A#" \
    -e "s#server 127.0.0.1:5102#server 127.0.0.1:$B#" \
    "$ROOT/deploy/nginx.conf" > "$TMP/nginx.conf"
grep -q "127.0.0.1:$A" "$TMP/nginx.conf" && grep -q "$TMP/cert.pem" "$TMP/nginx.conf"

# 3. two gle-lab processes (what a deployer runs, ports swapped)
for PORT in $A $B; do
    (cd "$ROOT" && exec "$PY" -m gle_lab.serve --address 127.0.0.1 --port "$PORT" --use-xheaders \
        --allow-websocket-origin "127.0.0.1:$HTTPS_PORT" --max-sessions 20 --idle-timeout 0 \
        > "$TMP/gle-$PORT.log" 2>&1) &
    PIDS+=($!)
done
for PORT in $A $B; do
    for _ in $(seq 1 300); do grep -q "GLE Lab running" "$TMP/gle-$PORT.log" && break; sleep 0.2; done
    grep -q "GLE Lab running" "$TMP/gle-$PORT.log" || { cat "$TMP/gle-$PORT.log"; exit 1; }
done

# 4. nginx with that config
nginx -t -p "$TMP" -c "$TMP/nginx.conf" -g "pid $TMP/nginx.pid;" 2>&1 | tail -1
nginx -p "$TMP" -c "$TMP/nginx.conf" -g "pid $TMP/nginx.pid;"
for _ in $(seq 1 50); do [ -s "$TMP/nginx.pid" ] && break; sleep 0.1; done
echo "# nginx $(nginx -v 2>&1 | cut -d/ -f2): http 127.0.0.1:$HTTP_PORT -> https 127.0.0.1:$HTTPS_PORT -> gle-lab :$A, :$B"

# 5. plain HTTP redirects to HTTPS
code=$(curl -s -o /dev/null -w "%{http_code} %{redirect_url}" "http://127.0.0.1:$HTTP_PORT/gle-lab")
echo "# http -> $code"
[[ "$code" == 301\ https://* ]]

# 6. sessions through the proxy (TLS, websocket upgrade)
echo "# $SESSIONS sessions through nginx for $SECONDS_ s:"
NGINX_CPU0=$("$PY" -c "from gle_lab.loadclient import proc_sample; print(proc_sample($(cat "$TMP/nginx.pid"))[0])")
T0=$(date +%s.%N)
"$PY" -m gle_lab.loadclient "https://127.0.0.1:$HTTPS_PORT/gle-lab" \
    -n "$SESSIONS" -d "$SECONDS_" --insecure --server-pid "${PIDS[0]}" --server-pid "${PIDS[1]}" \
    | tee "$TMP/load.txt"
"$PY" -c "import time; from gle_lab.loadclient import proc_sample
c, r = proc_sample($(cat "$TMP/nginx.pid")); print(f'# nginx (master + workers): {(c - $NGINX_CPU0) / (time.time() - $T0):.3f} cores, RSS {r / 2**20:.0f} MB')"

# 7. stickiness: each visitor's page and websocket went to the same gle-lab process
"$PY" - "$TMP/gle-lab.routes.log" "$SESSIONS" <<'EOF'
import re, sys, collections
routes = collections.defaultdict(set)
kinds = collections.Counter()
for line in open(sys.argv[1]):
    m = re.search(r'"GET (/gle-lab(?:/ws)?)\S* HTTP/1.1" (\d+) route=(\S+) upstream=(\S+)', line)
    if m:
        path, status, route, up = m.groups()
        kinds[(path, status)] += 1
        routes[route].add(up)
# the first request of a visitor is hashed on its request id, later ones on the cookie
# holding that id: both keys are the same string, so group by it
split = {r: u for r, u in routes.items() if len(u) > 1}
per_up = collections.Counter(next(iter(u)) for u in routes.values())
print(f"# requests: {dict(kinds)}")
print(f"# visitors: {len(routes)}, on upstreams {dict(per_up)}; split across processes: {len(split)}")
assert kinds[("/gle-lab/ws", "101")] >= int(sys.argv[2]), kinds
assert not split, split
assert len(per_up) == 2, "all visitors on one process: the hash does not spread them"
EOF
echo "# OK: TLS, redirect, websocket upgrade and sticky sessions over two gle-lab processes"
