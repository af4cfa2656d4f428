package api

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/threadbox/threadbox/api/dav"
	"github.com/threadbox/threadbox/daytona"
	"github.com/threadbox/threadbox/entity"
)

// openVolume makes sure the user's files sandbox runs and returns the volume
// over it. transfer takes a lease for the duration of a long request. The
// caller must call release when the request ends (it reports the use, so
// the idle timer restarts from then, and ends the lease).
func (f *filesAPI) openVolume(ctx context.Context, userID string, transfer bool) (*dav.Volume, func(), error) {
	sb, err := f.sb.Ensure(ctx, entity.Ref{Kind: entity.KindFiles, UserID: userID}, 0, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("files sandbox of %s: %w", userID, err)
	}
	if !transfer {
		return f.volume(userID, sb.Toolbox), func() { f.sb.Done(sb) }, nil
	}
	// A transfer may outlast the window the cache guarantees: hold the
	// sandbox (a lease only if it does) so it never stops mid-transfer.
	stop := f.sb.Hold(sb)
	return f.volume(userID, sb.Toolbox), func() { stop(); f.sb.Done(sb) }, nil
}

// volume builds the quota- and property-aware view of a user's volume.
func (f *filesAPI) volume(userID string, tb *daytona.Toolbox) *dav.Volume {
	return &dav.Volume{
		TB:   tb,
		Root: entity.VolumeMountPath,
		Quota: &dav.Quota{
			Queries: f.s.q,
			UserID:  userID,
			Limit:   f.s.cfg.VolumeQuotaBytes(),
			MaxAge:  usageMaxAge,
			Measure: func(ctx context.Context) (int64, error) { return measureVolume(ctx, tb) },
		},
		Props: &dav.PropStore{Pool: f.s.pool, UserID: userID},
	}
}

// measureCommand sums the sizes of the volume's regular files: the bytes the
// quota counts (du would add directory blocks).
const measureCommand = `find ` + entity.VolumeMountPath + ` -type f -printf '%s\n' | awk '{s+=$1} END {printf "%d\n", s}'`

// measureVolume runs measureCommand in the files sandbox.
func measureVolume(ctx context.Context, tb *daytona.Toolbox) (int64, error) {
	res, err := tb.Exec(ctx, daytona.ExecRequest{Command: measureCommand, Timeout: 2 * time.Minute})
	if err != nil {
		return 0, fmt.Errorf("measuring the volume: %w", err)
	}
	fields := strings.Fields(res.Output)
	if res.ExitCode != 0 || len(fields) == 0 {
		return 0, fmt.Errorf("measuring the volume: exit %d: %q", res.ExitCode, res.Output)
	}
	n, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("measuring the volume: %q: %w", res.Output, err)
	}
	return n, nil
}
