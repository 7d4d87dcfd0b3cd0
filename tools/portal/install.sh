#!/usr/bin/env bash
# Install the portal tools' node modules (tools/portal/node_modules: axe-core for the browser
# tests, htmx and ECharts for vendor.sh) exactly as package-lock.json pins them; does nothing
# when they are already installed from this very lockfile.
# Usage: bash tools/portal/install.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "portal tools: \`$tool\` not found; install Debian's nodejs and npm" >&2
    exit 1
  }
done

# The stamp records which lockfile node_modules was installed from: a changed lockfile (or a
# half-finished install, which writes no stamp) means install again.
stamp=node_modules/.yiyun-lockfile.sha256
wanted="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f node_modules/axe-core/axe.min.js ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error >&2 || {
  echo "portal tools: npm ci failed in $here" >&2
  exit 1
}
echo "$wanted" >"$stamp"
