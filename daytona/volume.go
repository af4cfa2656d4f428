package daytona

import (
	"context"
	"errors"
	"fmt"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
)

func fromVolumeDto(v *apiclient.VolumeDto) Volume {
	return Volume{ID: v.Id, Name: v.Name, State: string(v.State)}
}

// GetVolume fetches a volume by name (ErrNotFound when absent or deleted).
func (g *Gateway) GetVolume(ctx context.Context, name string) (Volume, error) {
	v, resp, err := g.api.VolumesAPI.GetVolumeByName(g.actx(ctx), name).Execute()
	if err != nil {
		return Volume{}, mapErr("get volume", classPlain, resp, err)
	}
	return fromVolumeDto(v), nil
}

// EnsureVolume gets or creates the volume called name and waits until it is ready (a
// sandbox cannot mount a volume that is not ready). It is the SDK's
// volume.get(name, create=true): GET by name; on 404 create; a create refused because the
// name already exists (Daytona answers 400, not 409, for that race) is resolved by
// re-reading. A create refused because the organisation has as many volumes as it may is
// ErrVolumeQuota, unless the volume turns out to exist (Daytona checks the quota before
// the name, so a concurrent create of this very name at the limit reads as over quota). Any
// other refusal is returned as it is. A volume in state error is ErrInvalidState.
func (g *Gateway) EnsureVolume(ctx context.Context, name string) (Volume, error) {
	const op = "ensure volume"
	vol, err := g.GetVolume(ctx, name)
	if errors.Is(err, ErrNotFound) {
		vol, err = g.createVolume(ctx, name)
	}
	if err != nil {
		return Volume{}, err
	}
	first := true
	err = g.poll(ctx, op, "volume ready", func(ctx context.Context) error {
		if !first {
			cur, err := g.GetVolume(ctx, name)
			if err != nil {
				return err
			}
			vol = cur
		}
		first = false
		switch vol.State {
		case VolumeReady:
			return errStop
		case VolumeError:
			return &Error{Kind: ErrInvalidState, Op: op, Message: fmt.Sprintf("volume %s is in state error", name)}
		case "deleted", "deleting", "pending_delete":
			return &Error{Kind: ErrConflict, Op: op, Message: fmt.Sprintf("volume %s is being deleted (%s)", name, vol.State)}
		}
		return nil
	})
	return vol, err
}

// createVolume creates the volume, resolving a lost name race by re-reading it.
func (g *Gateway) createVolume(ctx context.Context, name string) (Volume, error) {
	v, resp, err := g.api.VolumesAPI.CreateVolume(g.actx(ctx)).CreateVolume(apiclient.CreateVolume{Name: name}).Execute()
	if err == nil {
		vol := fromVolumeDto(v)
		g.log.InfoContext(ctx, "daytona: created volume", "name", name, "id", vol.ID)
		return vol, nil
	}
	err = mapErr("create volume", classPlain, resp, err)
	quota := errors.Is(err, ErrVolumeQuota)
	if !quota && !volumeNameTaken(err) {
		return Volume{}, err
	}
	vol, gerr := g.GetVolume(ctx, name)
	switch {
	case gerr == nil:
		return vol, nil
	case quota && errors.Is(gerr, ErrNotFound):
		return Volume{}, err
	default:
		return Volume{}, fmt.Errorf("%w (after create failed: %v)", gerr, err)
	}
}

// DeleteVolume deletes a volume by id; missing is success. Daytona refuses (409) while any
// non-destroyed sandbox, even a stopped one, references it.
func (g *Gateway) DeleteVolume(ctx context.Context, id string) error {
	resp, err := g.api.VolumesAPI.DeleteVolume(g.actx(ctx), id).Execute()
	err = mapErr("delete volume", classLifecycle, resp, err)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
