package workflows_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/workflow"

	"github.com/threadbox/threadbox/activities"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/workflows"
)

// registry records what is registered, to walk the types that travel in
// histories.
type registry struct{ fns []any }

func (r *registry) RegisterWorkflow(w any) { r.fns = append(r.fns, w) }
func (r *registry) RegisterWorkflowWithOptions(w any, _ workflow.RegisterOptions) {
	r.fns = append(r.fns, w)
}
func (r *registry) RegisterDynamicWorkflow(w any, _ workflow.DynamicRegisterOptions) {
	r.fns = append(r.fns, w)
}
func (r *registry) RegisterActivityWithOptions(a any, _ activity.RegisterOptions) {
	r.fns = append(r.fns, a)
}

// TestHistoryPayloadsHaveFrozenJSONNames: every struct that travels in a
// history (workflow and activity arguments and results, message payloads,
// query answers) names its JSON fields explicitly. Open workflows replay old
// payloads and carry state across ContinueAsNew, so renaming a Go field must
// not rename (and silently drop) what is on the wire.
func TestHistoryPayloadsHaveFrozenJSONNames(t *testing.T) {
	r := &registry{}
	workflows.Register(r)
	(&activities.Activities{}).Register(r)
	var roots []reflect.Type
	for _, fn := range r.fns {
		ft := reflect.TypeOf(fn)
		for i := range ft.NumIn() {
			roots = append(roots, ft.In(i))
		}
		for i := range ft.NumOut() {
			roots = append(roots, ft.Out(i))
		}
	}
	// Message payloads and query answers, which no function signature names.
	for _, v := range []any{
		entity.EnsureRequest{}, entity.EnsureResult{}, entity.TouchSignal{}, entity.ReleaseLeaseSignal{},
		entity.DeleteRequest{}, entity.State{}, workflows.BuildRequest{}, workflows.SkillValidationStatus{},
		workflows.BuilderStatus{}, workflows.BuildStatus{}, workflows.ActivationStatus{},
	} {
		roots = append(roots, reflect.TypeOf(v))
	}
	seen := map[reflect.Type]bool{}
	checked := 0
	var walk func(reflect.Type)
	walk = func(t0 reflect.Type) {
		for t0.Kind() == reflect.Pointer || t0.Kind() == reflect.Slice || t0.Kind() == reflect.Map {
			if t0.Kind() == reflect.Map {
				walk(t0.Key())
			}
			t0 = t0.Elem()
		}
		if t0.Kind() != reflect.Struct || seen[t0] || !strings.HasPrefix(t0.PkgPath(), "github.com/threadbox/") {
			return
		}
		seen[t0] = true
		for i := range t0.NumField() {
			f := t0.Field(i)
			if !f.IsExported() {
				continue
			}
			checked++
			if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name == "" {
				t.Errorf("%s.%s has no explicit JSON name", t0, f.Name)
			}
			walk(f.Type)
		}
	}
	ctxType := reflect.TypeFor[context.Context]()
	for _, t0 := range roots {
		if t0 != ctxType {
			walk(t0)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d fields checked: the walk misses history types", checked)
	}
}
