// Package apidoc renders the OpenAPI document as docs/API.md: one section per
// tag, one entry per operation (parameters, body, every status with its
// error codes and headers), then the schemas. The Markdown is generated, never
// edited: `go generate ./api/openapi` rewrites it, and a test fails when the
// committed file differs from what the document renders to.
package apidoc

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"
)

// Render turns the OpenAPI document (YAML) into Markdown.
func Render(spec []byte) ([]byte, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("loading the document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the document is invalid: %w", err)
	}
	order, err := readOrder(spec)
	if err != nil {
		return nil, err
	}
	r := &renderer{doc: doc, order: order}
	r.render()
	return r.buf.Bytes(), nil
}

// order is the document's own order of paths, methods and schemas (the
// loader keeps them in maps), so the Markdown reads in the order written.
type order struct {
	paths   []string
	methods map[string][]string
	schemas []string
}

func readOrder(spec []byte) (order, error) {
	var raw struct {
		Paths      yaml.Node `yaml:"paths"`
		Components struct {
			Schemas yaml.Node `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(spec, &raw); err != nil {
		return order{}, fmt.Errorf("reading the document's order: %w", err)
	}
	o := order{methods: map[string][]string{}}
	for i := 0; i+1 < len(raw.Paths.Content); i += 2 {
		p := raw.Paths.Content[i].Value
		o.paths = append(o.paths, p)
		item := raw.Paths.Content[i+1]
		for j := 0; j+1 < len(item.Content); j += 2 {
			if k := item.Content[j].Value; isMethod(k) {
				o.methods[p] = append(o.methods[p], strings.ToUpper(k))
			}
		}
	}
	for i := 0; i+1 < len(raw.Components.Schemas.Content); i += 2 {
		o.schemas = append(o.schemas, raw.Components.Schemas.Content[i].Value)
	}
	return o, nil
}

func isMethod(k string) bool {
	return slices.Contains([]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}, k)
}

type renderer struct {
	doc   *openapi3.T
	order order
	buf   bytes.Buffer
}

func (r *renderer) p(format string, args ...any) { fmt.Fprintf(&r.buf, format, args...) }

type operation struct {
	method, path string
	op           *openapi3.Operation
	item         *openapi3.PathItem
}

func (r *renderer) operations() []operation {
	var out []operation
	for _, p := range r.order.paths {
		item := r.doc.Paths.Value(p)
		for _, m := range r.order.methods[p] {
			out = append(out, operation{method: m, path: p, op: item.GetOperation(m), item: item})
		}
	}
	return out
}

func (r *renderer) render() {
	r.p("# threadbox REST API\n\n")
	r.p("<!-- Generated from api/openapi/openapi.yaml by `go generate ./api/openapi`. Do not edit: edit the document. -->\n\n")
	r.p("The OpenAPI %s document is `api/openapi/openapi.yaml`; a running server serves it at\n", r.doc.OpenAPI)
	r.p("`/v1/openapi.yaml` and `/v1/openapi.json`. Version %s.\n\n", r.doc.Info.Version)
	r.p("%s\n", strings.TrimSpace(r.doc.Info.Description))
	ops := r.operations()
	r.p("\n## Operations\n\n| method and path | summary |\n|---|---|\n")
	for _, tag := range r.doc.Tags {
		for _, o := range ops {
			if slices.Contains(o.op.Tags, tag.Name) {
				r.p("| [`%s %s`](#%s) | %s |\n", o.method, o.path, anchor(o.op.OperationID), cell(o.op.Summary))
			}
		}
	}
	for _, tag := range r.doc.Tags {
		r.p("\n## %s\n\n", tag.Name)
		if tag.Description != "" {
			r.p("%s\n\n", strings.TrimSpace(tag.Description))
		}
		for _, o := range ops {
			if slices.Contains(o.op.Tags, tag.Name) {
				r.operation(o)
			}
		}
	}
	r.p("\n## Schemas\n")
	for _, name := range r.order.schemas {
		r.schema(name, r.doc.Components.Schemas[name])
	}
}

func anchor(id string) string { return "op-" + strings.ToLower(id) }

func schemaAnchor(name string) string { return "schema-" + strings.ToLower(name) }

// cell makes text safe for one table cell.
func cell(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func (r *renderer) operation(o operation) {
	op := o.op
	r.p("<a id=\"%s\"></a>\n### `%s %s`\n\n", anchor(op.OperationID), o.method, o.path)
	r.p("%s. ", strings.TrimSuffix(strings.TrimSpace(op.Summary), "."))
	auth := "API key (Bearer, or Basic with the key as password)"
	if op.Security != nil && len(*op.Security) == 0 {
		auth = "none"
	}
	r.p("Operation `%s`; authentication: %s.\n\n", op.OperationID, auth)
	if op.Description != "" {
		r.p("%s\n\n", strings.TrimSpace(op.Description))
	}
	params := append(openapi3.Parameters{}, o.item.Parameters...)
	params = append(params, op.Parameters...)
	if len(params) > 0 {
		r.p("| parameter | in | type | required | description |\n|---|---|---|---|---|\n")
		for _, pr := range params {
			p := pr.Value
			r.p("| `%s` | %s | %s | %s | %s |\n", p.Name, p.In, r.typeOf(p.Schema), yesNo(p.Required), cell(p.Description))
		}
		r.p("\n")
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		req := "optional"
		if rb.Value.Required {
			req = "required"
		}
		for _, mt := range sortedKeys(rb.Value.Content) {
			r.p("Request body (%s): `%s` %s.\n", req, mt, r.typeOf(rb.Value.Content[mt].Schema))
		}
		r.p("\n")
	}
	r.p("| status | body | error codes | headers | meaning |\n|---|---|---|---|---|\n")
	codes := op.Responses.Map()
	for _, status := range sortedKeys(codes) {
		resp := codes[status].Value
		var bodies []string
		var errCodes []string
		for _, mt := range sortedKeys(resp.Content) {
			s := resp.Content[mt].Schema
			if ec := errorCodes(s); len(ec) > 0 {
				errCodes = ec
				bodies = append(bodies, "[Error](#"+schemaAnchor("Error")+")")
				continue
			}
			bodies = append(bodies, fmt.Sprintf("`%s` %s", mt, r.typeOf(s)))
		}
		var headers []string
		for _, h := range sortedKeys(resp.Headers) {
			headers = append(headers, "`"+h+"`")
		}
		r.p("| %s | %s | %s | %s | %s |\n", status, strings.Join(bodies, "; "), codeList(errCodes),
			strings.Join(headers, ", "), cell(deref(resp.Description)))
	}
	r.p("\n")
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func codeList(codes []string) string {
	out := make([]string, len(codes))
	for i, c := range codes {
		out[i] = "`" + c + "`"
	}
	return strings.Join(out, ", ")
}

// errorCodes are the codes an error schema (Error, narrowed with an allOf
// enum) lists.
func errorCodes(s *openapi3.SchemaRef) []string {
	if s == nil || s.Value == nil {
		return nil
	}
	var out []string
	isError := s.Ref == "#/components/schemas/Error"
	for _, part := range s.Value.AllOf {
		if part.Ref == "#/components/schemas/Error" {
			isError = true
		}
		if e := part.Value.Properties["error"]; e != nil && e.Value != nil {
			if c := e.Value.Properties["code"]; c != nil && c.Value != nil {
				for _, v := range c.Value.Enum {
					out = append(out, fmt.Sprint(v))
				}
			}
		}
	}
	if !isError {
		return nil
	}
	if len(out) == 0 {
		out = []string{"(any)"}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// typeOf is a schema in a few words, linking named schemas.
func (r *renderer) typeOf(s *openapi3.SchemaRef) string {
	if s == nil {
		return "any"
	}
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		return fmt.Sprintf("[%s](#%s)", name, schemaAnchor(name))
	}
	v := s.Value
	if v == nil {
		return "any"
	}
	if len(v.AllOf) > 0 {
		parts := make([]string, 0, len(v.AllOf))
		for _, a := range v.AllOf {
			if a.Ref != "" {
				parts = append(parts, r.typeOf(a))
			}
		}
		if len(parts) > 0 {
			return strings.Join(parts, " and ")
		}
	}
	var t string
	switch {
	case v.Const != nil:
		return fmt.Sprintf("`%v`", v.Const)
	case len(v.Enum) > 0:
		vals := make([]string, len(v.Enum))
		for i, e := range v.Enum {
			vals[i] = fmt.Sprintf("`%v`", e)
		}
		return "one of " + strings.Join(vals, ", ")
	case v.Type == nil:
		t = "any"
	default:
		types := slices.Clone(v.Type.Slice())
		for i, ty := range types {
			switch ty {
			case "array":
				types[i] = "array of " + r.typeOf(v.Items)
			case "object":
				if ap := v.AdditionalProperties.Schema; ap != nil && len(v.Properties) == 0 {
					types[i] = "map of " + r.typeOf(ap)
				}
			case "string":
				switch {
				case v.Format != "":
					types[i] = "string (" + v.Format + ")"
				case v.ContentEncoding != "":
					types[i] = "string (" + v.ContentEncoding + ")"
				case v.ContentMediaType != "":
					types[i] = "bytes"
				}
			}
		}
		t = strings.Join(types, " or ")
	}
	var limits []string
	if v.Pattern != "" {
		limits = append(limits, "pattern `"+v.Pattern+"`")
	}
	if v.Min != nil {
		limits = append(limits, "≥ "+strconv.FormatFloat(*v.Min, 'f', -1, 64))
	}
	if v.Max != nil {
		limits = append(limits, "≤ "+strconv.FormatFloat(*v.Max, 'f', -1, 64))
	}
	if v.MinLength > 0 {
		limits = append(limits, fmt.Sprintf("at least %d characters", v.MinLength))
	}
	if len(limits) > 0 {
		t += ", " + strings.Join(limits, ", ")
	}
	return t
}

func (r *renderer) schema(name string, s *openapi3.SchemaRef) {
	v := s.Value
	r.p("\n<a id=\"%s\"></a>\n### %s\n\n", schemaAnchor(name), name)
	if v.Description != "" {
		r.p("%s\n\n", strings.TrimSpace(v.Description))
	}
	if len(v.Properties) == 0 {
		r.p("%s.\n", r.typeOf(&openapi3.SchemaRef{Value: v}))
		return
	}
	r.p("| field | type | required | description |\n|---|---|---|---|\n")
	r.fields("", v)
	if ap := v.AdditionalProperties.Has; ap != nil && !*ap {
		r.p("\nNo other fields are sent.\n")
	}
}

// fields writes one row per property, and the properties of inline objects
// (and of arrays of them) under dotted names.
func (r *renderer) fields(prefix string, v *openapi3.Schema) {
	for _, f := range sortedKeys(v.Properties) {
		fs := v.Properties[f]
		desc := ""
		if fs.Value != nil {
			desc = fs.Value.Description
		}
		r.p("| `%s%s` | %s | %s | %s |\n", prefix, f, cell(r.typeOf(fs)), yesNo(slices.Contains(v.Required, f)), cell(desc))
		if fs.Ref != "" || fs.Value == nil {
			continue
		}
		if len(fs.Value.Properties) > 0 {
			r.fields(prefix+f+".", fs.Value)
		}
		if it := fs.Value.Items; it != nil && it.Ref == "" && it.Value != nil && len(it.Value.Properties) > 0 {
			r.fields(prefix+f+"[].", it.Value)
		}
	}
}
