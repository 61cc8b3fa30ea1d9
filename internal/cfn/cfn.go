// Package cfn reads CloudFormation templates (template.yaml,
// member-role.yaml) for the tests that check them against the code: the
// YAML nodes with CloudFormation's short-form tags kept, and the few
// lookups those tests share. Only tests import it.
package cfn

import (
	"encoding/json"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Template is a CloudFormation template as yaml.v3 nodes: CloudFormation's short-form
// tags (!Ref, !Sub, !GetAtt, !If) stay on the nodes as custom tags.
type Template struct {
	Root *yaml.Node
}

// Load reads the template at path.
func Load(t testing.TB, path string) Template {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s is not a YAML mapping", path)
	}
	return Template{Root: doc.Content[0]}
}

// Get follows a path of mapping keys and returns nil where one is missing.
func Get(n *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

// Keys returns the keys of a mapping node in template order.
func Keys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// Ref returns the target of !Ref X or {Ref: X}.
func Ref(n *yaml.Node) (string, bool) {
	switch {
	case n == nil:
		return "", false
	case n.Kind == yaml.ScalarNode && n.Tag == "!Ref":
		return n.Value, true
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Ref":
		return n.Content[1].Value, true
	}
	return "", false
}

// GetAtt returns the logical id of !GetAtt X.Arn or {Fn::GetAtt: [X, Arn]}.
func GetAtt(n *yaml.Node, attribute string) (string, bool) {
	switch {
	case n == nil:
		return "", false
	case n.Kind == yaml.ScalarNode && n.Tag == "!GetAtt":
		id, attr, ok := strings.Cut(n.Value, ".")
		return id, ok && attr == attribute
	case n.Kind == yaml.SequenceNode && n.Tag == "!GetAtt" && len(n.Content) == 2:
		return n.Content[0].Value, n.Content[1].Value == attribute
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Fn::GetAtt":
		return GetAtt(&yaml.Node{Kind: n.Content[1].Kind, Tag: "!GetAtt", Value: n.Content[1].Value, Content: n.Content[1].Content}, attribute)
	}
	return "", false
}

// Plain turns a node into Go values for comparison: intrinsic functions
// become readable strings ("!GetAtt X.Arn", "!Ref X"); !Sub becomes its
// template string, as it stands in a JSON policy document.
func Plain(n *yaml.Node) any {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		switch k := n.Content[0].Value; k {
		case "Ref", "Fn::GetAtt", "Fn::Sub":
			inner := *n.Content[1]
			inner.Tag = "!" + strings.TrimPrefix(k, "Fn::")
			return Plain(&inner)
		}
	}
	// Custom tags are "!Name"; YAML's own are "!!str", "!!map" and so on.
	intrinsic := strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!")
	switch {
	case n.Tag == "!Sub" && n.Kind == yaml.ScalarNode:
		return n.Value
	case n.Tag == "!GetAtt" && n.Kind == yaml.SequenceNode && len(n.Content) == 2:
		return "!GetAtt " + n.Content[0].Value + "." + n.Content[1].Value
	case intrinsic && n.Kind == yaml.ScalarNode:
		return n.Tag + " " + n.Value
	case intrinsic:
		items := make([]any, len(n.Content))
		for i, c := range n.Content {
			items[i] = Plain(c)
		}
		b, _ := json.Marshal(items)
		return n.Tag + " " + string(b)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = Plain(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		items := make([]any, len(n.Content))
		for i, c := range n.Content {
			items[i] = Plain(c)
		}
		return items
	case yaml.AliasNode:
		return Plain(n.Alias)
	}
	return n.Value
}

// Function returns the logical id and node of the template's only function.
func (tpl Template) Function(t testing.TB) (string, *yaml.Node) {
	t.Helper()
	var ids []string
	resources := Get(tpl.Root, "Resources")
	for _, id := range Keys(resources) {
		if Get(resources, id, "Type").Value == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("template.yaml has %d AWS::Serverless::Function resources %v, want exactly one", len(ids), ids)
	}
	return ids[0], Get(resources, ids[0])
}

// Resource is the resource of logical id id, nil when there is none.
func (tpl Template) Resource(id string) *yaml.Node {
	return Get(tpl.Root, "Resources", id)
}

// EnvParameter returns the parameter that the function's variable name is
// set from.
func (tpl Template) EnvParameter(t testing.TB, name string) string {
	t.Helper()
	_, fn := tpl.Function(t)
	param, ok := Ref(Get(fn, "Properties", "Environment", "Variables", name))
	if !ok {
		t.Fatalf("the function's environment does not set %s from a parameter (!Ref)", name)
	}
	return param
}

// LambdaLevels are Lambda's application log levels, lowest first.
var LambdaLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// ApplicationLogLevel resolves the function's LoggingConfig.ApplicationLogLevel
// for one value of the LOG_LEVEL parameter: a literal, or !FindInMap with
// the parameter as its first key.
func (tpl Template) ApplicationLogLevel(t testing.TB, param, value string) string {
	t.Helper()
	_, fn := tpl.Function(t)
	n := Get(fn, "Properties", "LoggingConfig", "ApplicationLogLevel")
	switch {
	case n == nil:
		// Lambda's default with the JSON format.
		return "INFO"
	case n.Kind == yaml.ScalarNode && (n.Tag == "" || n.Tag == "!!str"):
		return n.Value
	case n.Tag == "!FindInMap" && len(n.Content) == 3:
		if got, ok := Ref(n.Content[1]); !ok || got != param {
			t.Fatalf("ApplicationLogLevel looks up %v, want !Ref %s (the parameter of LOG_LEVEL)", Plain(n.Content[1]), param)
		}
		v := Get(tpl.Root, "Mappings", n.Content[0].Value, value, n.Content[2].Value)
		if v == nil {
			t.Fatalf("drift: LOG_LEVEL accepts %q but Mappings.%s has no %s.%s for it", value, n.Content[0].Value, value, n.Content[2].Value)
		}
		return v.Value
	}
	t.Fatalf("LoggingConfig.ApplicationLogLevel is %v: the test understands a literal or !FindInMap [MAP, !Ref %s, KEY]", Plain(n), param)
	return ""
}

// Accepts tells whether CloudFormation accepts value for the parameter
// param (its node under Parameters): its Type (a Number parses as one),
// AllowedValues, AllowedPattern (matching the whole value),
// MinLength/MaxLength (in characters) and MinValue/MaxValue.
func Accepts(param *yaml.Node, value string) bool {
	typ := ""
	if n := Get(param, "Type"); n != nil {
		typ = n.Value
	}
	if typ == "Number" {
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
		if n := Get(param, "MinValue"); n != nil {
			if lo, err := strconv.ParseFloat(n.Value, 64); err == nil && f < lo {
				return false
			}
		}
		if n := Get(param, "MaxValue"); n != nil {
			if hi, err := strconv.ParseFloat(n.Value, 64); err == nil && f > hi {
				return false
			}
		}
	}
	if n := Get(param, "AllowedValues"); n != nil {
		found := false
		for _, v := range n.Content {
			found = found || v.Value == value
		}
		if !found {
			return false
		}
	}
	if n := Get(param, "AllowedPattern"); n != nil && !regexp.MustCompile(`^(?:`+n.Value+`)$`).MatchString(value) {
		return false
	}
	chars := utf8.RuneCountInString(value)
	if n := Get(param, "MinLength"); n != nil {
		if lo, err := strconv.Atoi(n.Value); err == nil && chars < lo {
			return false
		}
	}
	if n := Get(param, "MaxLength"); n != nil {
		if hi, err := strconv.Atoi(n.Value); err == nil && chars > hi {
			return false
		}
	}
	return true
}
