#!/usr/bin/env bash
# Fetches the Zipkin server's executable jar (stack/zipkin/pom.xml) from Maven Central into a
# directory, once: again only when the pom changes. Prints the jar's path.
#   stack/zipkin/fetch.sh <dir>      (the native stack: .stack/zipkin)
set -euo pipefail
dir="$1"
pom="$(cd "$(dirname "$0")" && pwd -P)/pom.xml"
jar="$dir/zipkin-server-exec.jar"
sum="$(sha256sum "$pom" | cut -d' ' -f1)"
if [ "$(cat "$dir/.pom.sha256" 2>/dev/null)" != "$sum" ] || [ ! -s "$jar" ]; then
  command -v mvn >/dev/null || { echo "stack/zipkin/fetch.sh: mvn is missing (apt-get install maven)" >&2; exit 1; }
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  # stripVersion: a name the supervisord config and the Dockerfile can hold
  mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
      -Dmdep.stripVersion=true -DoutputDirectory="$dir.tmp" >"$dir.tmp/mvn.log" 2>&1 \
    || { tail -n 40 "$dir.tmp/mvn.log" >&2; echo "stack/zipkin/fetch.sh: mvn could not fetch the Zipkin jar" >&2; exit 1; }
  [ -s "$dir.tmp/zipkin-server-exec.jar" ] || { ls "$dir.tmp" >&2; echo "stack/zipkin/fetch.sh: no zipkin-server-exec.jar" >&2; exit 1; }
  rm -f "$dir.tmp/mvn.log"; echo "$sum" > "$dir.tmp/.pom.sha256"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
fi
echo "$jar"
