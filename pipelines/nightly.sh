#!/usr/bin/env bash
# The nightly job: load the newest export drops, then explain, score and flag.
#
#   pipelines/nightly.sh EXPORT_ROOT [HOME]
#
# EXPORT_ROOT holds one folder per drop (YYYY-MM-DD/...). The newest CATCH_UP drops (default 7)
# are passed every night: drops already loaded are skipped file by file, so a missed night is
# caught up and a re-run changes nothing. Exit status: 0 all loaded, 1 a drop failed (the others
# were still loaded), 2 a usage or configuration error. Output holds counts, never names.
set -euo pipefail

export_root=${1:?usage: nightly.sh EXPORT_ROOT [HOME]}
home=${2:-${ACCESS_AUDIT_HOME:-/var/lib/access-audit}}
catch_up=${CATCH_UP:-7}
here=$(cd "$(dirname "$0")/.." && pwd)
cli=${ACCESS_AUDIT_BIN:-$here/.venv/bin/access-audit}

mapfile -t drops < <(find "$export_root" -mindepth 1 -maxdepth 1 -type d -name '[0-9]*' | sort | tail -n "$catch_up")
if [ "${#drops[@]}" -eq 0 ]; then
  echo "nightly: no drops under $export_root" >&2
  exit 2
fi
umask 077
exec "$cli" --home "$home" nightly --no-progress "${drops[@]}"
