#!/bin/bash
# Switch the running balancer to another routing mode: render, test, swap in, reload. The nodes keep
# running; nginx's old workers finish their requests. A bad mode or config leaves the current one in place.
set -eu
here=$(dirname "$(readlink -f "$0")")
target=/etc/session-lab/upstreams.conf
"$here/render-mode.sh" "${1:-}" > "$target.new" || { rm -f "$target.new"; exit 2; }
cp "$target" "$target.old"
mv "$target.new" "$target"
if ! nginx -t -q -c /etc/session-lab/nginx.conf; then
    mv "$target.old" "$target"
    echo "the rendered config for '$1' failed nginx -t; kept the current mode" >&2
    exit 1
fi
workers() {  # PIDs of nginx's worker processes, from their titles in /proc (the image has no ps)
    for cmdline in /proc/[0-9]*/cmdline; do
        title=$(tr '\0' ' ' < "$cmdline" 2>/dev/null) || continue
        case "$title" in "nginx: worker process"*) pid=${cmdline#/proc/}; echo "${pid%/cmdline}" ;; esac
    done
}
alive() {  # alive PID: running, not a zombie the master has yet to reap
    state=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

old_workers=$(workers)
nginx -s reload -c /etc/session-lab/nginx.conf

# A reload is asynchronous, and the old workers keep accepting connections until the master stops them;
# one that took a connection closes it after its current request, so a client's next request on it fails
# (seen in the e2e tests, mostly when the machine was busy). So wait until every old worker has exited:
# from then on every connection reaches a worker running the new mode.
for _ in $(seq 1 200); do  # at most 10 s: an old worker first finishes the requests it is serving
    remaining=0
    for pid in $old_workers; do alive "$pid" && remaining=$((remaining + 1)); done
    [ "$remaining" -eq 0 ] && break
    sleep 0.05
done
[ "$remaining" -eq 0 ] || echo "warning: $remaining old nginx worker(s) still finishing requests" >&2

# And check it: several new connections in a row answer in the new mode.
in_a_row=0
for _ in $(seq 1 100); do
    if "$here/healthcheck.sh" "\"mode\":\"$1\""; then
        in_a_row=$((in_a_row + 1))
        [ "$in_a_row" -ge 5 ] && { echo "routing mode: $1"; exit 0; }
    else
        in_a_row=0
        sleep 0.05
    fi
done
echo "nginx reloaded, but did not report mode '$1' within 5 s" >&2
exit 1
