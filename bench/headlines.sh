#!/bin/bash
# headlines.sh LINES DRIVER CMD...: run one benchmark driver, its output
# shown as it comes, and append its closing "bench: NAME VALUE" lines to
# LINES, each prefixed with DRIVER; exits with the driver's status.
# headlines.sh --publish LINES README: write LINES as the table between
# README's <!-- bench-headlines:start/end --> markers, stamped with the
# commit the binaries were built from. Used by `make bench`, so that every
# headline of one run, from one build, is in one place.
set -euo pipefail
if [ "$1" = --publish ]; then
	lines=$2 readme=$3
	tmp=$(mktemp)
	{
		echo "Every driver of one \`make bench\` run, on one build (commit \`$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!*.md' ':!bench/results' || echo ', with uncommitted changes')\`), in the order they ran; each line is the driver's own closing \`bench: NAME VALUE\` output."
		echo
		echo "| driver | figure | value |"
		echo "| --- | --- | --- |"
		awk '{ printf "| %s | `%s` | %s |\n", $1, $3, $4 }' "$lines"
	} > "$tmp"
	"$(dirname "$0")/../provisioning/readme-section.sh" bench-headlines "$tmp" "$readme" '`make bench`'
	rm -f "$tmp"
	exit 0
fi
lines=$1 driver=$2
shift 2
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" 2>&1 | tee "$out"
grep '^bench: ' "$out" | sed "s/^/$driver /" >> "$lines" || true
