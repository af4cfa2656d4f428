package daytona

import (
	"context"
	"fmt"
	"net/http"
)

// Health checks that the Daytona API answers its liveness route (GET /health
// under the API base), for readiness probes. It does not touch any sandbox.
// (Added by the API change for /readyz.)
func (g *Gateway) Health(ctx context.Context) error {
	resp, err := g.api.HealthAPI.HealthControllerLive(g.actx(ctx)).Execute()
	if err != nil {
		return mapErr("health", classLifecycle, resp, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("daytona health: %s", http.StatusText(resp.StatusCode))
	}
	return nil
}
