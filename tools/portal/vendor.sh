#!/usr/bin/env bash
# Copy the portal's browser assets from the npm packages package-lock.json pins into
# service/portal/static/vendor/, with their licences, and rewrite that directory's README.md
# (file, package, version, SPDX licence, sha256). The extranet has no internet and the CSP
# says script-src 'self', so the portal serves these files itself and nothing comes from a CDN.
# Usage: bash tools/portal/vendor.sh   (then commit service/portal/static/vendor/)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
vendor="$repo/service/portal/static/vendor"
cd "$here"

for tool in node npm sha256sum; do
  command -v "$tool" >/dev/null || {
    echo "portal assets: \`$tool\` not found; install Debian's nodejs and npm" >&2
    exit 1
  }
done

# Always from the lockfile, never a resolve: the vendored bytes must be what was reviewed.
npm ci --no-audit --no-fund --loglevel=error >&2
# npm ci replaced node_modules, so install.sh's stamp is gone; write it so install.sh stays a no-op.
sha256sum package-lock.json | cut -d' ' -f1 >node_modules/.yiyun-lockfile.sha256

mkdir -p "$vendor"
# Each line: vendored name, package, path inside the package, and the licence when it is not
# the package's own. echarts.min.js bundles zrender, tslib's helpers and parts of d3, so their
# licences travel with it.
manifest="htmx.min.js htmx.org dist/htmx.min.js
htmx.LICENSE htmx.org LICENSE
echarts.min.js echarts dist/echarts.min.js
echarts.LICENSE echarts LICENSE
echarts.NOTICE echarts NOTICE
echarts.LICENSE-d3 echarts licenses/LICENSE-d3 BSD-3-Clause
zrender.LICENSE zrender LICENSE
tslib.LICENSE tslib LICENSE.txt"

rows=""
while read -r name package source licence; do
  from="node_modules/$package/$source"
  if [ ! -f "$from" ]; then
    # echarts' NOTICE is optional upstream; every other file must be there.
    [ "$name" = echarts.NOTICE ] && continue
    echo "portal assets: $from missing after npm ci" >&2
    exit 1
  fi
  cp "$from" "$vendor/$name"
  version="$(node -p "require('./node_modules/$package/package.json').version")"
  [ -n "$licence" ] || licence="$(node -p "require('./node_modules/$package/package.json').license")"
  digest="$(sha256sum "$vendor/$name" | cut -d' ' -f1)"
  rows+="| \`$name\` | \`$package\` | $version | $licence | \`$source\` | \`$digest\` |"$'\n'
done <<<"$manifest"

cat >"$vendor/README.md" <<MD
# Vendored browser assets

Written by \`tools/portal/vendor.sh\` from \`tools/portal/package-lock.json\`; do not edit by
hand. To upgrade: change the version in \`tools/portal/package.json\`, \`npm install\` there to
update the lockfile, run \`bash tools/portal/vendor.sh\`, and commit both directories.

| File | npm package | Version | Licence (SPDX) | From | sha256 |
|---|---|---|---|---|---|
${rows}
\`echarts.min.js\` is ECharts' full build; it bundles \`zrender\` (BSD-3-Clause), \`tslib\`'s
helpers (0BSD) and parts of d3 (BSD-3-Clause, \`echarts.LICENSE-d3\`), hence their licences
here. How the portal must configure both under its CSP: \`tools/portal/README.md\`.
MD
echo "portal assets: vendored into ${vendor#"$repo"/}" >&2
