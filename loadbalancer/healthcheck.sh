#!/bin/bash
# GET /nginx-health with no curl needed (the official nginx image may not ship it), via bash's /dev/tcp.
# healthcheck.sh [TEXT]: succeed when the answer is 200 (and contains TEXT, when given).
exec 3<>/dev/tcp/127.0.0.1/8080
printf 'GET /nginx-health HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
answer=$(cat <&3)
case "$answer" in "HTTP/1.1 200"*) ;; *) exit 1 ;; esac
[ -z "${1:-}" ] || [[ "$answer" == *"$1"* ]]
