#!/bin/sh
# Build stage only: run the command trusting deploy/docker/build-ca/*.pem when one is there.
set -eu
for pem in /tmp/build-ca/*.pem; do
    if [ -f "$pem" ]; then
        export SSL_CERT_FILE="$pem" PIP_CERT="$pem"
    fi
done
exec "$@"
