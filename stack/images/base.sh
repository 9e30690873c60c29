#!/usr/bin/env bash
# Builds the offline base of every stand-in image: a Debian bookworm root made with
#   debootstrap --variant=minbase bookworm <dir> <the host's Debian mirror>
# plus the host's CA bundle, imported with `docker import` as $BASE_IMAGE.
# Usage: stack/images/base.sh   (needs root for debootstrap; skips when the image exists)
set -euo pipefail
# shellcheck source=stack/images/lib.sh
. "$(dirname "$0")/lib.sh"

image_present "$BASE_IMAGE" && { ilog "$BASE_IMAGE present"; exit 0; }
ensure_packages debootstrap=debootstrap

host_mirror() {  # first http(s) Debian mirror of the host's apt sources carrying bookworm
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      /^[[:space:]]*deb[[:space:]]/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }
      /^URIs:/ { for (i = 2; i <= NF; i++) print $i }
    ' "$f"
  done | grep -E '/debian/?$' | grep -v security | head -n1
}
mirror="${DEBIAN_MIRROR:-$(host_mirror)}"
mirror="${mirror:-http://deb.debian.org/debian}"

t=$(now)
work="$(mktemp -d /var/tmp/safeguard-debootstrap.XXXXXX)"
trap 'as_root rm -rf "$work"' EXIT
root="$work/root"
ilog "debootstrap --variant=minbase bookworm from $mirror (a minute or two) ..."
as_root debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1 || { tail -n 30 "$work/debootstrap.log" >&2; idie "debootstrap failed"; }

# the host's CA bundle (it may hold a proxy's CA that apt/pip/go inside builds need)
as_root cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
as_root sh -c "cat > '$root/etc/apt/sources.list'" <<SRC
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
SRC
# slim like the official debian:bookworm-slim: no docs, man pages or locales, no apt lists
as_root sh -c "cat > '$root/etc/dpkg/dpkg.cfg.d/docker-slim'" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
as_root sh -c "printf 'APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n' > '$root/etc/apt/apt.conf.d/90docker-slim'"
as_root sh -c "rm -rf '$root'/var/lib/apt/lists/* '$root'/var/cache/apt/*.bin '$root'/var/cache/apt/archives/*.deb \
  '$root'/usr/share/doc/* '$root'/usr/share/man/* '$root'/usr/share/info/* '$root'/var/log/*.log '$root'/tmp/* && mkdir -p '$root'/usr/share/man/man1"

ilog "docker import -> $BASE_IMAGE"
as_root tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c "LABEL $STANDIN_LABEL=true" \
  -c 'CMD ["bash"]' \
  -m "Safeguard offline stand-in: debootstrap minbase bookworm ($mirror)" - "$BASE_IMAGE" >/dev/null
ilog "$BASE_IMAGE built in $(elapsed "$t")s ($(image_size "$BASE_IMAGE"))"
