package emulator

import (
	"net/http"
	"sync"
	"testing"

	apiclient "github.com/daytonaio/daytona/libs/api-client-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConcurrentCreatesAndTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})

	// Racing creates with one name: exactly one wins, the rest get 409.
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, resp, err := e.api.SandboxAPI.CreateSandbox(e.ctx).CreateSandbox(apiclient.CreateSandbox{Name: apiclient.PtrString("same")}).Execute()
			if err == nil {
				codes[i] = http.StatusOK
			} else if resp != nil {
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	assert.Equal(t, map[int]int{http.StatusOK: 1, http.StatusConflict: n - 1}, count)

	// Racing stops: one 200, the others 409 (transition) or 400 (already stopped).
	sb, _, err := e.api.SandboxAPI.GetSandbox(e.ctx, "same").Execute()
	require.NoError(t, err)
	codes = make([]int, n)
	for i := range n {
		wg.Go(func() {
			_, resp, err := e.api.SandboxAPI.StopSandbox(e.ctx, sb.Id).Execute()
			if err == nil {
				codes[i] = http.StatusOK
			} else if resp != nil {
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	ok := 0
	for _, c := range codes {
		if c == http.StatusOK {
			ok++
		} else {
			assert.Contains(t, []int{http.StatusConflict, http.StatusBadRequest}, c)
		}
	}
	assert.Equal(t, 1, ok)
	e.waitState(sb.Id, apiclient.SANDBOXSTATE_STOPPED)
}
