#!/bin/sh
# Renders one of the stores' ACL files: render-acl.sh TEMPLATE OUT. Comments and blank lines are dropped
# (Redis refuses them in an ACL file), and every @NAME@ becomes the SHA-256 of the environment variable
# NAME, for a `#<hash>` password rule: the rendered file holds no password. Run by start.sh at every start
# (a password changed in .env takes effect at the next restart) and by the integration fixtures, so tests
# and containers load the same users.
set -eu
template=$1
out=$2
tmp=$out.tmp
grep -v -e '^#' -e '^[[:space:]]*$' "$template" > "$tmp"
for name in $(grep -o '@[A-Z_]*@' "$tmp" | tr -d @ | sort -u); do
    eval "value=\${$name:-}"
    if [ -z "$value" ]; then
        echo "render-acl: $name is not set (run \`make env\`)" >&2
        rm -f "$tmp"
        exit 1
    fi
    hash=$(printf '%s' "$value" | sha256sum | cut -c1-64)
    sed -i "s|@$name@|$hash|g" "$tmp"
done
chmod 600 "$tmp"
mv "$tmp" "$out"
