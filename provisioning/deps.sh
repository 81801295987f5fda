#!/bin/sh
# Installs, with apt-get, what shortfleet's fleet and tests need and this
# machine lacks. It installs only as root; otherwise it says what is missing.
set -eu

missing=""
have_pg() {
	command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ] && return 0
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}
have_pg || missing="$missing postgresql"
getent passwd postgres >/dev/null 2>&1 || missing="$missing postgresql"
# The browser test drives Debian's Chromium.
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# The provisioning tests (provisioning/ansible) run Ansible and ansible-lint,
# check the rendered HAProxy configuration with haproxy and the Prometheus
# rules and configuration with promtool (Debian's prometheus package).
command -v ansible-playbook >/dev/null 2>&1 || missing="$missing ansible"
command -v ansible-lint >/dev/null 2>&1 || missing="$missing ansible-lint"
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
# The real apply (provisioning/ansible TestApply) makes hosts of this
# machine's own root: what the roles install there must be here already.
for pkg in acl python3-psycopg2; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
# The bench scripts' test runs bench/wrk/redirects.lua under wrk.
command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
# Benchmarks also need nginx, their baseline (BENCH=1).
if [ "${BENCH:-}" = 1 ]; then
	command -v nginx >/dev/null 2>&1 || missing="$missing nginx-light"
fi

if [ -z "$missing" ]; then
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
