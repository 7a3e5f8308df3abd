#!/usr/bin/env bash
# The guide's storage-isolation check (section 5), for the shipped config files: no data
# path may be relative (a relative path like ./data/warm puts data in the checkout).
# legacy_warm_path is not a data path: it names where an old release kept its data.
# Usage: .github/scripts/verify-storage-isolation.sh [config files...] (default config/*.yaml)
set -euo pipefail
cd "$(dirname "$0")/../.."
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(config/*.yaml)
bad=0
for f in "${files[@]}"; do
  # A data path key whose value does not start with /, ~ or ${...}.
  if grep -nE '^[[:space:]]*(path|wal_path|data_dir):' "$f" | grep -vE '(path|data_dir):[[:space:]]*"?(/|~|\$\{)'; then
    echo "ERROR: $f: a data path above is relative; use an absolute path, ~/..., or \${AKOSHA_WARM_PATH}-style variables" >&2
    bad=1
  fi
done
[ "$bad" = 0 ] || exit 1
echo "storage configuration verified: ${files[*]}"
