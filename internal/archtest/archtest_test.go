package archtest

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/internal/testenv"
)

const module = "github.com/threadbox/threadbox/"

// layers ranks every package: a package may import only packages of a lower
// rank. A new package must be placed here (the test fails until it is), so
// its place in the flow is a decision, not an accident.
var layers = map[string]int{
	// Leaves: the vocabulary, configuration, pure logic, small shared formats.
	"entity": 0, "config": 0, "skills": 0, "skills/skilltest": 0, "api/dav/davtest": 0,
	"internal/httpserve": 0, "internal/sessionlog": 0, "internal/shell": 0,
	// Storage, the Daytona gateway, and the stand-ins and tools that are not
	// threadbox itself.
	"db": 1, "daytona": 1, "emulator": 1, "devstack": 1, "temporalrpc": 1,
	// Building blocks over them.
	"clientpath": 2, "auth": 2, "sandboxfs": 2, "metrics": 2, "davlock": 2, "usage": 2, "uploadspool": 2, "guardcache": 2,
	"activities": 3, "admission": 3,
	// Lifecycle (workflows over activities) and access to running sandboxes.
	"workflows": 4, "sandbox": 4,
	"volume": 5, "command": 5, "worker": 5,
	// The HTTP edge: the one error mapping, shared conventions, route groups,
	// the server that wires them.
	"api/apierr": 6, "api/httpio": 7, "api/openapi": 7,
	"api/dav": 8, "api/files": 8, "api/threads": 8, "api/uploads": 8, "api/admin": 8,
	"api": 9,
	// The OpenAPI document's Markdown rendering and its generator.
	"api/openapi/apidoc": 8, "api/openapi/apidoc/gen": 9,
	"cmd/threadbox": 10, "internal/testenv": 10,
	"internal/archtest": 11, "internal/deploycheck": 11,
}

// forbidden are edges the ranks would allow but the design does not: the
// hot path never talks to the workflow implementations (only to entity's
// vocabulary), and workflows never touch storage or Daytona themselves.
var forbidden = map[string][]string{
	"workflows":   {"db", "daytona"},
	"sandbox":     {"workflows", "activities", "db"},
	"volume":      {"workflows", "activities"},
	"command":     {"workflows", "activities"},
	"api/threads": {"workflows", "activities"},
	"api/files":   {"workflows", "activities", "sandbox"},
	"api/dav":     {"workflows", "activities", "sandbox", "db"},
	"api/uploads": {"workflows", "activities", "sandbox"},
	"api":         {"workflows", "activities"},
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// listPackages runs `go list -json ./...` at the module root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportsFlowOneWay(t *testing.T) {
	for _, p := range listPackages(t) {
		name := strings.TrimPrefix(p.ImportPath, module)
		if strings.HasPrefix(name, "tests/") {
			continue // end-to-end suites and benchmarks may use anything
		}
		rank, ok := layers[name]
		if !ok {
			t.Errorf("package %s has no layer: place it in internal/archtest's layers", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if r, ok := layers[dep]; ok && r >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must flow down", name, rank, dep, r)
			}
			for _, f := range forbidden[name] {
				if dep == f {
					t.Errorf("%s must not import %s", name, dep)
				}
			}
		}
	}
}

// vocabulary are the literal values only package entity may spell: workflow
// id prefixes, message and type names, search attributes and sandbox paths.
func vocabulary() map[string]string {
	return map[string]string{
		"thread:":                         "entity.Ref.WorkflowID",
		"files:":                          "entity.Ref.WorkflowID",
		entity.UpdateEnsureRunning:        "entity.UpdateEnsureRunning",
		entity.SignalReleaseLease:         "entity.SignalReleaseLease",
		entity.ThreadWorkflowName:         "entity.ThreadWorkflowName",
		entity.FilesWorkflowName:          "entity.FilesWorkflowName",
		entity.AttrThreadID.GetName():     "entity.AttrThreadID",
		entity.AttrUserID.GetName():       "entity.AttrUserID",
		entity.AttrSandboxID.GetName():    "entity.AttrSandboxID",
		entity.AttrSandboxState.GetName(): "entity.AttrSandboxState",
	}
}

// messageCalls take a workflow message name as an argument: it must be one
// of entity's (or workflows' own skills) constants, never a literal.
var messageCalls = map[string]bool{
	"SignalWorkflow": true, "QueryWorkflow": true, "SetQueryHandler": true, "SetUpdateHandler": true,
	"SetUpdateHandlerWithOptions": true, "GetSignalChannel": true, "SignalWithStartWorkflow": true,
}

// TestVocabularyDeclaredOnce fails when a package other than entity spells a
// workflow id format, a message name, a search attribute or a sandbox path
// of the entity vocabulary. The emulator is exempt: it stands for Daytona,
// whose own paths it serves.
func TestVocabularyDeclaredOnce(t *testing.T) {
	root := testenv.RepoRoot(t)
	words := vocabulary()
	fset := token.NewFileSet()
	for _, p := range listPackages(t) {
		name := strings.TrimPrefix(p.ImportPath, module)
		if name == "entity" || name == "emulator" || strings.HasPrefix(name, "tests/") || name == "internal/archtest" {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(root, filepath.FromSlash(name), "*.go"))
		for _, file := range files {
			if strings.HasSuffix(file, "_test.go") || strings.HasSuffix(file, ".gen.go") {
				continue
			}
			f, err := parser.ParseFile(fset, file, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if n.Kind != token.STRING {
						return true
					}
					s, err := strconv.Unquote(n.Value)
					if err != nil {
						return true
					}
					if use, ok := words[s]; ok {
						t.Errorf("%s: spells %q; use %s", fset.Position(n.Pos()), s, use)
					}
					if strings.HasPrefix(s, entity.HomeDir) || strings.Contains(s, " "+entity.HomeDir) {
						t.Errorf("%s: spells a sandbox path %q; use entity.HomeDir, VolumeMountPath or SkillsDir", fset.Position(n.Pos()), s)
					}
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || !messageCalls[sel.Sel.Name] {
						return true
					}
					for _, a := range n.Args {
						if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING && lit.Value != `""` {
							t.Errorf("%s: %s with the literal message name %s; use a constant", fset.Position(lit.Pos()), sel.Sel.Name, lit.Value)
						}
					}
				}
				return true
			})
		}
	}
}
