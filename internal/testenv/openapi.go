package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/threadbox/threadbox/api/openapi"
)

// The API's OpenAPI document is 3.1. kin-openapi (already the emulator's
// validator against Daytona's documents, so the repository has one way to
// check OpenAPI) reads 3.1 and, for a 3.1 document, validates schemas with
// santhosh-tekuri/jsonschema in draft 2020-12: type arrays with "null",
// const, propertyNames, contentEncoding are enforced, not ignored.

// apiSpec is the parsed document and its router, built once per test binary
// (read-only afterwards).
type apiSpec struct {
	doc    *openapi3.T
	router routers.Router
}

var loadAPISpec = sync.OnceValues(func() (*apiSpec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.YAML())
	if err != nil {
		return nil, fmt.Errorf("loading api/openapi/openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api/openapi/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	doc.Servers = nil // route on paths alone: the test server's address varies
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing api/openapi/openapi.yaml: %w", err)
	}
	openapi3filter.RegisterBodyDecoder("application/offset+octet-stream", openapi3filter.FileBodyDecoder)
	return &apiSpec{doc: doc, router: router}, nil
})

// APIDocument is the parsed OpenAPI document (for the coverage test).
func APIDocument(t testing.TB) *openapi3.T {
	t.Helper()
	sp, err := loadAPISpec()
	if err != nil {
		t.Fatal(err)
	}
	return sp.doc
}

// APIClient is an HTTP client for the API under test whose every request and
// response is checked against the OpenAPI document; a violation fails t.
func APIClient(t testing.TB) *http.Client {
	t.Helper()
	return &http.Client{Timeout: 3 * time.Minute, Transport: NewAPIValidator(t, http.DefaultTransport)}
}

// NewAPIValidator wraps base: see APIValidator.
func NewAPIValidator(t testing.TB, base http.RoundTripper) *APIValidator {
	t.Helper()
	sp, err := loadAPISpec()
	if err != nil {
		t.Fatal(err)
	}
	return &APIValidator{t: t, spec: sp, base: base}
}

// APIValidator is an http.RoundTripper that holds the API to its OpenAPI
// document. For every exchange:
//   - a request the document describes must have a documented answer: its
//     status listed for the operation, its headers and body matching, and for
//     an error the code among those listed for that status;
//   - a request that violates the document must be refused with a documented
//     4xx (a server that accepts it, the document is too strict or the server
//     too lax: either is a bug);
//   - a path or method the document does not describe must be answered 404
//     not_found, 405 method_not_allowed, 401 or 403, with the error body.
//
// WebDAV (/dav) is not described by the document (see its description) and
// passes through unchecked. Violations fail the test with Errorf.
type APIValidator struct {
	t    testing.TB
	spec *apiSpec
	base http.RoundTripper
}

// maxCheckedBody bounds the request bodies held for checking; a larger body
// is passed through and the request is checked without it.
const maxCheckedBody = 16 << 20

// streamed are media types of answers produced over time (a command's output
// as it comes): they are handed on as they arrive, so a test can follow them,
// and only their status and headers are checked.
var streamed = []string{"text/event-stream", "application/x-ndjson", "application/jsonl"}

func isStreamed(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return slices.Contains(streamed, strings.TrimSpace(strings.ToLower(mt)))
}

// RoundTrip sends req unchanged (a streamed body stays streamed) and checks
// the exchange once the answer is in.
func (v *APIValidator) RoundTrip(req *http.Request) (*http.Response, error) {
	if isDAV(req.URL.Path) {
		return v.base.RoundTrip(req)
	}
	var sent *capture
	if req.Body != nil && req.Body != http.NoBody {
		sent = &capture{r: req.Body}
		req = req.Clone(req.Context())
		req.Body = sent
	}
	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var body []byte
	bodyKnown := !isStreamed(resp.Header.Get("Content-Type"))
	if bodyKnown {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	var reqBody []byte
	reqBodyKnown := true
	if sent != nil {
		reqBody, reqBodyKnown = sent.sent()
	}
	for _, problem := range v.check(req, reqBody, reqBodyKnown, resp, body, bodyKnown) {
		v.t.Errorf("openapi: %s %s -> %d: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, problem)
	}
	return resp, nil
}

func isDAV(p string) bool { return p == "/dav" || strings.HasPrefix(p, "/dav/") }

// capture keeps a copy of what the transport reads from a request body.
// The transport may still be sending the body when the answer arrives (a
// server that refuses early, e.g. 413 or 507): the copy is guarded, and a
// body not sent to its end is reported unknown.
type capture struct {
	r    io.ReadCloser
	mu   sync.Mutex
	buf  bytes.Buffer
	over bool
	eof  bool
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.over {
		if c.buf.Len()+n > maxCheckedBody {
			c.over = true
			c.buf = bytes.Buffer{}
		} else {
			c.buf.Write(p[:n])
		}
	}
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// sent is a copy of the body as sent so far, and whether that is all of it.
func (c *capture) sent() ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.buf.Bytes()), c.eof && !c.over
}

func (c *capture) Close() error { return c.r.Close() }

// check returns every way the exchange departs from the document.
func (v *APIValidator) check(req *http.Request, reqBody []byte, reqBodyKnown bool, resp *http.Response, body []byte, bodyKnown bool) []string {
	routeReq := req.Clone(context.Background())
	routeReq.Body = io.NopCloser(bytes.NewReader(reqBody))
	routeReq.ContentLength = int64(len(reqBody))
	route, params, err := v.spec.router.FindRoute(routeReq)
	if err != nil {
		return v.checkUndescribed(req, err, resp, body)
	}
	op := route.Operation.OperationID
	in := &openapi3filter.RequestValidationInput{
		Request:    routeReq,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
			MultiError:         true,
			ExcludeRequestBody: !reqBodyKnown,
		},
	}
	var problems []string
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		problems = append(problems, fmt.Sprintf("%s: the request violates the document but was answered %d, not refused with a 4xx: "+
			"make the document describe what the server accepts, or the server refuse it (%v)", op, resp.StatusCode, reqErr))
	}
	if len(route.Operation.Responses.Map()) > 0 && route.Operation.Responses.Status(resp.StatusCode) == nil {
		return append(problems, fmt.Sprintf("%s: status %d is not documented: add it to the operation's responses in api/openapi/openapi.yaml (body: %s)",
			op, resp.StatusCode, excerpt(body)))
	}
	if codes, code := documentedCodes(route.Operation.Responses.Status(resp.StatusCode)), ErrorCode(body); code != "" && len(codes) > 0 && !slices.Contains(codes, code) {
		return append(problems, fmt.Sprintf("%s: error code %q is not documented for status %d (documented: %v): add it to that response's code enum in api/openapi/openapi.yaml",
			op, code, resp.StatusCode, codes))
	}
	if r := route.Operation.Responses.Status(resp.StatusCode); !bodyKnown && r != nil && r.Value != nil &&
		len(r.Value.Content) > 0 && r.Value.Content.Get(resp.Header.Get("Content-Type")) == nil {
		problems = append(problems, fmt.Sprintf("%s: the streamed media type %q is not documented for status %d: add it to that response's content",
			op, resp.Header.Get("Content-Type"), resp.StatusCode))
	}
	header := resp.Header.Clone()
	if resp.Header.Get("Accept-Ranges") != "" {
		// A file's bytes, whatever their content type (a .json file is
		// application/json too): the document says Accept-Ranges marks them.
		header.Set("Content-Type", "application/octet-stream")
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			MultiError:            true,
			ExcludeResponseBody:   req.Method == http.MethodHead || !bodyKnown,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		problems = append(problems, fmt.Sprintf("%s: the response does not match the document: %v (body: %s)", op, err, excerpt(body)))
	}
	return problems
}

// checkUndescribed checks the answer to a request the document has no
// operation for: only refusals are allowed.
func (v *APIValidator) checkUndescribed(req *http.Request, routeErr error, resp *http.Response, body []byte) []string {
	want := map[int]string{
		http.StatusUnauthorized: "unauthorized",
		http.StatusForbidden:    "forbidden",
		http.StatusNotFound:     "not_found",
	}
	// The legacy router returns fresh RouteErrors: compare the reason.
	if routeErr.Error() == routers.ErrMethodNotAllowed.Error() {
		want[http.StatusMethodNotAllowed] = "method_not_allowed"
	}
	code, ok := want[resp.StatusCode]
	if !ok {
		return []string{fmt.Sprintf("the document describes no %s %s (%v), yet the server answered it: "+
			"add the operation to api/openapi/openapi.yaml (body: %s)", req.Method, req.URL.Path, routeErr, excerpt(body))}
	}
	if req.Method == http.MethodHead {
		return nil
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		return []string{fmt.Sprintf("undescribed route answered %d without the error body: %s", resp.StatusCode, excerpt(body))}
	}
	if e.Error.Code != code {
		return []string{fmt.Sprintf("undescribed route answered %d with code %q, want %q", resp.StatusCode, e.Error.Code, code)}
	}
	return nil
}

// documentedCodes are the error codes a response's schema lists (the enum of
// error.code in its allOf), or nil.
func documentedCodes(r *openapi3.ResponseRef) []string {
	if r == nil || r.Value == nil {
		return nil
	}
	mt := r.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	var out []string
	for _, part := range append(openapi3.SchemaRefs{mt.Schema}, mt.Schema.Value.AllOf...) {
		e := part.Value.Properties["error"]
		if e == nil || e.Value == nil {
			continue
		}
		if c := e.Value.Properties["code"]; c != nil && c.Value != nil {
			for _, v := range c.Value.Enum {
				out = append(out, fmt.Sprint(v))
			}
		}
	}
	return out
}

// ErrorCode is the code of an API error body ({"error":{"code":…}}), or "".
func ErrorCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.Error.Code
}

// excerpt is the start of a body, for messages.
func excerpt(b []byte) string {
	const n = 300
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}
