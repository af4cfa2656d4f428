package daytona

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

type wireExec struct {
	ExitCode int    `json:"exitCode"`
	Result   string `json:"result"`
}

func TestDecodeExecResponseMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		`{"exitCode":0,"result":"hello\n"}`,
		`{"result":"a\"b\\c\/d\b\f\n\r\t","exitCode":3}`,
		` { "exitCode" : -1 , "result" : "x" } `,
		`{"result":"\u00e9\u4e2d\ud83d\ude00 and a lone \ud800 surrogate \udc00!"}`,
		`{"result":"raw é 中 😀","exitCode":null}`,
		`{"exitCode":2,"artifacts":{"stdout":"s","charts":[1,2,{"a":[true,false,null]}]},"result":"ok"}`,
		`{"result":""}`,
	}
	for _, in := range cases {
		var want wireExec
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("bad case %q: %v", in, err)
		}
		got, cut, err := decodeExecResponse(strings.NewReader(in), 0)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if cut || got.Output != want.Result || got.ExitCode != want.ExitCode {
			t.Errorf("%q: got %+v cut=%v, want %+v", in, got, cut, want)
		}
	}
}

func TestDecodeExecResponseRejectsMalformed(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{"result":"unterminated`, `{"result":"bad \x escape"}`, `{"exitCode":1}`,
		`{"result":"x" "exitCode":1}`, `{"exitCode":abc,"result":"x"}`, "{\"result\":\"ctl\x01\"}",
	} {
		if _, _, err := decodeExecResponse(strings.NewReader(in), 0); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

// The output is cut at the limit without splitting a UTF-8 sequence, the rest is read
// and dropped, and the cut is reported.
func TestDecodeExecResponseCapsOutput(t *testing.T) {
	big := strings.Repeat("é", 1000) // 2000 bytes
	b, _ := json.Marshal(wireExec{ExitCode: 7, Result: big})
	got, cut, err := decodeExecResponse(strings.NewReader(string(b)), 101)
	if err != nil {
		t.Fatal(err)
	}
	if !cut || got.ExitCode != 7 || len(got.Output) != 100 || !utf8.ValidString(got.Output) || !strings.HasPrefix(big, got.Output) {
		t.Fatalf("got %d bytes cut=%v exit=%d", len(got.Output), cut, got.ExitCode)
	}
	got, cut, err = decodeExecResponse(strings.NewReader(string(b)), 2000)
	if err != nil || cut || got.Output != big {
		t.Fatalf("exactly at the limit: %d bytes cut=%v err=%v", len(got.Output), cut, err)
	}
}

func FuzzDecodeExecResponse(f *testing.F) {
	f.Add("hello", 0, 3)
	f.Add("\u00e9\u4e2d\U0001F600\xff\x00\"\\", 255, 4)
	f.Add(strings.Repeat("ab\n", 50), -1, 0)
	f.Fuzz(func(t *testing.T, s string, code, max int) {
		b, err := json.Marshal(wireExec{ExitCode: code, Result: s})
		if err != nil {
			t.Skip()
		}
		var want wireExec
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, cut, err := decodeExecResponse(strings.NewReader(string(b)), max)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.ExitCode != want.ExitCode {
			t.Fatalf("exit %d, want %d", got.ExitCode, want.ExitCode)
		}
		if !strings.HasPrefix(want.Result, got.Output) || cut != (got.Output != want.Result) {
			t.Fatalf("output %q (cut=%v) is not the kept prefix of %q", got.Output, cut, want.Result)
		}
		if max > 0 && (len(got.Output) > max || (cut && len(got.Output)+utf8.UTFMax <= max)) {
			t.Fatalf("kept %d bytes with limit %d (cut=%v)", len(got.Output), max, cut)
		}
	})
}

// Exec with MaxOutput holds only that much of a huge output: a stub daemon streams 64 MiB
// of output and the call allocates a small fraction of it (≈ 3.5 MiB, 5.5 MiB with -race).
func TestExecOutputIsBoundedInMemory(t *testing.T) {
	const size = 64 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/process/execute") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"exitCode":0,"result":"`)
		chunk := strings.Repeat("ab\\n", 16<<10)
		for written := 0; written < size; written += len(chunk) {
			io.WriteString(w, chunk)
		}
		io.WriteString(w, `"}`)
	}))
	defer srv.Close()
	g, err := New(Config{APIURL: srv.URL + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	tb := g.Toolbox("sb", srv.URL+"/toolbox/sb")
	var res ExecResult
	var execErr error
	alloc := allocDuring(func() {
		res, execErr = tb.Exec(context.Background(), ExecRequest{Command: "yes", MaxOutput: 1 << 20})
	})
	if execErr != nil {
		t.Fatal(execErr)
	}
	if !res.Truncated || len(res.Output) != 1<<20 || !strings.HasPrefix(res.Output, "ab\nab\n") {
		t.Fatalf("got %d bytes, truncated=%v", len(res.Output), res.Truncated)
	}
	t.Logf("allocated %.1f MiB for a 64 MiB output capped at 1 MiB", float64(alloc)/(1<<20))
	// Decoding it whole would allocate well over 128 MiB (the body, then the string);
	// the budget leaves room for the race detector's dropped sync.Pool buffers.
	if alloc > 16<<20 {
		t.Errorf("a 64 MiB output with a 1 MiB cap allocated %d MiB", alloc>>20)
	}
}
