package dav

import (
	"bytes"
	"encoding/xml"

	"github.com/threadbox/threadbox/api/apierr"
)

// errEmptyPrefix is a body that binds a namespace prefix to the empty name,
// which Namespaces in XML 1.0 forbids (§3, "xmlns:p=”" is an error; only
// the default namespace may be undeclared). encoding/xml accepts it, so the
// engine would answer such a PROPFIND (litmus propfind_invalid2).
var errEmptyPrefix = apierr.BadRequest("invalid_xml", "a namespace prefix is bound to the empty name (xmlns:prefix=\"\")")

// checkNamespaces refuses an XML body with a prefix bound to the empty
// name. Other malformations are left to the engine, which answers 400.
func checkNamespaces(body []byte) error {
	if len(body) == 0 {
		return nil
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := d.RawToken()
		if err != nil { // io.EOF, or a malformation the engine answers
			return nil
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Space == "xmlns" && a.Value == "" {
					return errEmptyPrefix
				}
			}
		}
	}
}
