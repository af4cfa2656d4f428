// Command gen writes docs/API.md from the OpenAPI document:
// `go generate ./api/openapi` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/threadbox/threadbox/api/openapi"
	"github.com/threadbox/threadbox/api/openapi/apidoc"
)

func main() {
	out := flag.String("o", "docs/API.md", "the Markdown file to write")
	flag.Parse()
	md, err := apidoc.Render(openapi.YAML())
	if err == nil {
		err = os.WriteFile(*out, md, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apidoc:", err)
		os.Exit(1)
	}
}
