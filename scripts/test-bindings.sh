#!/usr/bin/env bash
# make test-bindings: the generated clients' tests (see bindings/test.sh).
exec "$(dirname "$0")/../bindings/test.sh" "$@"
