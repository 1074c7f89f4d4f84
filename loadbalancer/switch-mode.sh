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
nginx -s reload -c /etc/session-lab/nginx.conf

# A reload is asynchronous: return only once new connections reach workers running the new mode
# (several answers in a row, since old workers may still take a connection or two while they close).
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
