package localfleet

import (
	"context"

	"shortfleet/provisioning/failover"
	"shortfleet/provisioning/pgcluster"
	"shortfleet/provisioning/settings"
)

// Promote makes the most advanced replica the primary and the others follow
// it, through the same code as the Ansible playbook promote_replica.yml
// (package failover, which `fleet promote` runs there). The old primary
// must be down: nothing here fences it. The apps find the new primary by
// themselves (PrimaryDSN); unless the fleet is asynchronous, the new
// primary waits for a standby at each commit too.
func (f *Fleet) Promote(ctx context.Context) (failover.Result, error) {
	cfg := failover.Config{Password: f.Secrets.PGPassword}
	if !f.cfg.Asynchronous {
		cfg.SynchronousStandbyNames = settings.LoadPostgres().SynchronousStandbyNames
	}
	for _, r := range f.Replicas {
		cfg.Candidates = append(cfg.Candidates, r.Addr())
	}
	res, err := failover.Promote(ctx, cfg, f.logger)
	if res.Primary != "" {
		f.Primary = f.replicaAt(res.Primary)
	}
	return res, err
}

func (f *Fleet) replicaAt(addr string) *pgcluster.Cluster {
	for _, r := range f.Replicas {
		if r.Addr() == addr {
			return r
		}
	}
	return f.Primary
}
