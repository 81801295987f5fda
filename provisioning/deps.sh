#!/bin/sh
# Installs, with apt-get, what shortfleet needs and this machine lacks. It
# installs only as root; otherwise it says what is missing.
#
#   deps.sh fleet   what the local fleet runs (make up): Postgres, HAProxy
#   deps.sh         that, and what the tests need (make test)
#
# BENCH=1 adds the benchmarks' baseline (nginx); DEPS_DRY_RUN=1 prints what
# would be installed and installs nothing.
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

if [ "$what" = test ]; then
	# The browser test drives Debian's Chromium.
	command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
	# The provisioning tests (provisioning/ansible) run Ansible and
	# ansible-lint, and check the Prometheus rules and configuration with
	# promtool (Debian's prometheus package).
	command -v ansible-playbook >/dev/null 2>&1 || missing="$missing ansible"
	command -v ansible-lint >/dev/null 2>&1 || missing="$missing ansible-lint"
	command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
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
# Benchmarks also need nginx, their baseline.
if [ "${BENCH:-}" = 1 ]; then
	command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
fi

if [ -z "$missing" ]; then
	exit 0
fi
if [ -n "${DEPS_DRY_RUN:-}" ]; then
	echo "would install:$missing"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "missing:$missing; install them (apt-get install$missing) or run as root" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
