package skills

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Manifest is what threadbox reads from a skill's SKILL.md front matter, plus
// the dependency files it found. Unknown front matter keys (license,
// allowed-tools, ...) are allowed and ignored, so skills written for other
// agent runtimes upload unchanged.
type Manifest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Check is an optional shell command run in the skill folder after the
	// dependencies are installed; a non-zero exit makes the skill invalid.
	Check string `json:"check,omitempty"`
	// CheckTimeout bounds Check (default DefaultCheckTimeout).
	CheckTimeout time.Duration `json:"check_timeout,omitempty"`
	// PythonRequirements is true when the skill has a requirements.txt.
	PythonRequirements bool `json:"python_requirements,omitempty"`
	// NodePackage is true when the skill has a package.json.
	NodePackage bool `json:"node_package,omitempty"`
}

// Bounds of the check command's timeout.
const (
	DefaultCheckTimeout = time.Minute
	MaxCheckTimeout     = 10 * time.Minute
	maxDescription      = 1024
	maxNameLen          = 64
)

// nameRe is the safe identifier a skill name must be: it becomes a folder
// name, part of workflow ids and of sandbox names.
var nameRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidName reports whether name is a safe skill identifier: lowercase
// letters, digits and single hyphens between them, at most 64 characters.
func ValidName(name string) bool {
	return len(name) <= maxNameLen && nameRe.MatchString(name)
}

type frontMatter struct {
	Name         string    `yaml:"name"`
	Description  string    `yaml:"description"`
	Check        string    `yaml:"check"`
	CheckTimeout yaml.Node `yaml:"check_timeout"`
}

// ParseManifest reads SKILL.md: a YAML front matter block between two "---"
// lines, with at least name and description, followed by the instructions.
func ParseManifest(data []byte) (Manifest, error) {
	text := string(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
	text = strings.ReplaceAll(text, "\r\n", "\n")
	if !strings.HasPrefix(text, "---\n") {
		return Manifest{}, invalid("bad_manifest", "%s must start with a YAML front matter block opened by a '---' line", ManifestFile)
	}
	rest := text[len("---\n"):]
	var yamlText string
	switch {
	case strings.HasPrefix(rest, "---\n") || rest == "---":
		yamlText = ""
	default:
		end := strings.Index(rest, "\n---\n")
		if end < 0 {
			if strings.HasSuffix(rest, "\n---") {
				end = len(rest) - len("\n---")
			} else {
				return Manifest{}, invalid("bad_manifest", "%s front matter is not closed by a '---' line", ManifestFile)
			}
		}
		yamlText = rest[:end]
	}
	var fm frontMatter
	if err := yaml.Unmarshal([]byte(yamlText), &fm); err != nil {
		return Manifest{}, invalid("bad_manifest", "%s front matter is not valid YAML: %v", ManifestFile, err)
	}
	m := Manifest{
		Name:        strings.TrimSpace(fm.Name),
		Description: strings.TrimSpace(fm.Description),
		Check:       strings.TrimSpace(fm.Check),
	}
	switch {
	case m.Name == "":
		return Manifest{}, invalid("bad_manifest", "%s front matter has no name", ManifestFile)
	case !ValidName(m.Name):
		return Manifest{}, invalid("bad_skill_name", "skill name %q must be lowercase letters, digits and single hyphens, at most %d characters", m.Name, maxNameLen)
	case m.Description == "":
		return Manifest{}, invalid("bad_manifest", "%s front matter has no description", ManifestFile)
	case len(m.Description) > maxDescription:
		return Manifest{}, invalid("bad_manifest", "the description is longer than %d characters", maxDescription)
	}
	d, err := parseTimeout(fm.CheckTimeout)
	if err != nil {
		return Manifest{}, err
	}
	m.CheckTimeout = d
	return m, nil
}

// parseTimeout accepts a number of seconds or a Go duration ("90s", "2m").
func parseTimeout(n yaml.Node) (time.Duration, error) {
	if n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return DefaultCheckTimeout, nil
	}
	if n.Kind != yaml.ScalarNode {
		return 0, invalid("bad_manifest", "check_timeout must be seconds or a duration like 90s")
	}
	var d time.Duration
	if secs, err := strconv.Atoi(n.Value); err == nil {
		d = time.Duration(secs) * time.Second
	} else if pd, err := time.ParseDuration(n.Value); err == nil {
		d = pd
	} else {
		return 0, invalid("bad_manifest", "check_timeout %q must be seconds or a duration like 90s", n.Value)
	}
	if d <= 0 || d > MaxCheckTimeout {
		return 0, invalid("bad_manifest", "check_timeout must be between 1s and %s", MaxCheckTimeout)
	}
	return d, nil
}
