#!/usr/bin/env bash
# System packages for the service tests: PostgreSQL (DB tests, two-replica test) and Debian's
# Chromium (dashboard test through Playwright). Idempotent: apt-get skips what is installed.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y postgresql chromium redis-server
