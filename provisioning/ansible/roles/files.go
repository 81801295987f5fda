// Package roles embeds the files of the Ansible roles that the local fleet
// uses as they are (provisioning/monitoring renders the rest), so that
// what `make up` and the alert test run is what the roles deploy. It is
// a package of its own, not package ansible, whose tests start local
// fleets.
package roles

import _ "embed"

var (
	// Rules is the monitoring role's Prometheus alert rules.
	//
	//go:embed monitoring/files/shortfleet.rules.yml
	Rules []byte
	// AlertmanagerInhibit is the end of the monitoring role's
	// Alertmanager configuration, its inhibit rules, which
	// alertmanager.yml.j2 includes.
	//
	//go:embed monitoring/templates/alertmanager-inhibit.yml
	AlertmanagerInhibit []byte
	// Dashboard is the monitoring role's Grafana dashboard.
	//
	//go:embed monitoring/files/shortfleet-dashboard.json
	Dashboard []byte
)
