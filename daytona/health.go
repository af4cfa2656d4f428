package daytona

import (
	"context"
)

// Health checks that the Daytona API answers its liveness route (GET {APIURL}/health), for
// readiness probes (/readyz). It touches no sandbox. Failures are typed like every other
// call (ErrUnavailable when Daytona is down).
func (g *Gateway) Health(ctx context.Context) error {
	resp, err := g.api.HealthAPI.HealthControllerLive(g.actx(ctx)).Execute()
	return mapErr("health", classPlain, resp, err)
}
