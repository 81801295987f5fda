// Package ansible holds no Go code: the folder is shortfleet's Ansible for
// the bare-metal fleet (playbooks, roles, an example inventory; see
// README.md), and this package's tests are what `make test` checks it with
// (package roles embeds the files the local fleet uses as they are):
//
//   - every playbook passes ansible-playbook --syntax-check with the example
//     inventory, and the tree passes ansible-lint (production profile);
//   - the HAProxy and Postgres templates, rendered by Ansible itself, equal
//     byte for byte what provisioning/settings renders for the local fleet
//     from the same settings files, and HAProxy accepts the result;
//   - promtool accepts the alert rules and a rendered scrape configuration,
//     the rules fire when they should, and the rules and the Grafana
//     dashboard name only metrics the binaries export; amtool accepts the
//     rendered Alertmanager configurations, a real Alertmanager holds back
//     what the inhibit rules say, and Prometheus's and Alertmanager's
//     configurations rendered by Ansible equal provisioning/monitoring's;
//   - the apps' environment files set exactly the variables the binaries
//     read, and their systemd units are sandboxed.
//
// The tools (ansible, ansible-lint, haproxy, promtool, amtool) are installed by
// provisioning/deps.sh; a test fails, never skips, when one is missing.
package ansible
