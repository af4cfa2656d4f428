package activities

import (
	"context"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestEveryActivityHasAnExplicitName: an exported method left out of all()
// would never be registered, and one registered by its Go name would change
// histories when renamed.
func TestEveryActivityHasAnExplicitName(t *testing.T) {
	a := &Activities{}
	listed := map[string]string{} // method name -> activity name
	names := map[string]bool{}
	for _, act := range a.all() {
		fn := runtime.FuncForPC(reflect.ValueOf(act.fn).Pointer()).Name()
		method := strings.TrimSuffix(fn[strings.LastIndexByte(fn, '.')+1:], "-fm")
		if _, dup := listed[method]; dup {
			t.Errorf("method %s listed twice", method)
		}
		if names[act.name] {
			t.Errorf("activity name %s used twice", act.name)
		}
		listed[method], names[act.name] = act.name, true
	}
	ctxType := reflect.TypeFor[context.Context]()
	typ := reflect.TypeOf(a)
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if m.Type.NumIn() < 2 || m.Type.In(1) != ctxType {
			continue // not an activity (e.g. Register)
		}
		if _, ok := listed[m.Name]; !ok {
			t.Errorf("activity method %s has no explicit name in all()", m.Name)
		}
	}
	if len(listed) == 0 {
		t.Fatal("no activities listed")
	}
}
