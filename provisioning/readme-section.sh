#!/bin/sh
# readme-section.sh NAME FILE README: replace what lies between the
# markers <!-- NAME:start --> and <!-- NAME:end --> in README with FILE,
# stamped with the date and the machine. Used by `make fault-report`.
set -eu
name=$1 file=$2 readme=$3
grep -q "<!-- $name:start -->" "$readme" || { echo "$readme has no <!-- $name:start --> marker" >&2; exit 1; }
stamp="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), by \`make fault-report\` (TestFaultsUnderLoad)."
tmp=$(mktemp)
awk -v name="$name" -v file="$file" -v stamp="$stamp" '
  $0 == "<!-- " name ":start -->" { print; print stamp; print ""; while ((getline line < file) > 0) print line; skip = 1; next }
  $0 == "<!-- " name ":end -->" { skip = 0 }
  !skip { print }
' "$readme" > "$tmp"
cat "$tmp" > "$readme"
rm -f "$tmp"
