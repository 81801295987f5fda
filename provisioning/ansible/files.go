package ansible

import _ "embed"

// The monitoring role's files that the local fleet uses as they are
// (provisioning/monitoring renders the rest), so that what `make up` and
// the alert test run is what the role deploys.
var (
	// Rules is the Prometheus alert rules file.
	//
	//go:embed roles/monitoring/files/shortfleet.rules.yml
	Rules []byte
	// AlertmanagerInhibit is the end of Alertmanager's configuration,
	// its inhibit rules, which alertmanager.yml.j2 includes.
	//
	//go:embed roles/monitoring/templates/alertmanager-inhibit.yml
	AlertmanagerInhibit []byte
	// Dashboard is the Grafana dashboard.
	//
	//go:embed roles/monitoring/files/shortfleet-dashboard.json
	Dashboard []byte
)
