#!/usr/bin/env bash
# Install Debian's PostgreSQL server when it is missing: the tests start their own throwaway
# cluster with initdb + pg_ctl (enrich_assets_tests/postgres_server.py), never a system service.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
