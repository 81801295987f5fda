#!/bin/sh
# readme-section.sh NAME FILE README BY: replace what lies between the
# markers <!-- NAME:start --> and <!-- NAME:end --> in README with FILE,
# stamped with the date, the machine and BY, the command that measured it.
# Used by `make fault-report` and `make soak`.
set -eu
name=$1 file=$2 readme=$3 by=$4
grep -q "<!-- $name:start -->" "$readme" || { echo "$readme has no <!-- $name:start --> marker" >&2; exit 1; }
stamp="Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo), by $by."
tmp=$(mktemp)
awk -v name="$name" -v file="$file" -v stamp="$stamp" '
  $0 == "<!-- " name ":start -->" { print; print stamp; print ""; while ((getline line < file) > 0) print line; skip = 1; next }
  $0 == "<!-- " name ":end -->" { skip = 0 }
  !skip { print }
' "$readme" > "$tmp"
cat "$tmp" > "$readme"
rm -f "$tmp"
