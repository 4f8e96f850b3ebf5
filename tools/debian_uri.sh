#!/usr/bin/env bash
# Prints the Debian archive URI this machine's apt sources already use (deb822
# debian.sources first, else the first non-security `deb` line of sources.list), so that
# scripts can add a suite (bookworm-backports, trixie) without writing a mirror's host name
# into the repository. Exits 1, saying so, when there is none.
set -euo pipefail
uri=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '/^deb / && $3 !~ /-security$/ {print $2; exit}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || { echo "debian_uri: no Debian apt source found" >&2; exit 1; }
echo "$uri"
