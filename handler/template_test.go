package handler_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
)

// These tests keep template.yaml and the code in step: the configuration
// contract (handler.EnvVars), the function's IAM permissions and the build.
// Each failure names the drift it found.

const templatePath = "../template.yaml"

// cfnTemplate is template.yaml as yaml.v3 nodes: CloudFormation's short-form
// tags (!Ref, !Sub, !GetAtt, !If) stay on the nodes as custom tags.
type cfnTemplate struct {
	root *yaml.Node
}

func loadTemplate(t *testing.T) cfnTemplate {
	t.Helper()
	data, err := os.ReadFile(templatePath)
	if err != nil {
		t.Fatalf("read template: %v", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", templatePath, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		t.Fatalf("%s is not a YAML mapping", templatePath)
	}
	return cfnTemplate{root: doc.Content[0]}
}

// get follows a path of mapping keys and returns nil where one is missing.
func get(n *yaml.Node, path ...string) *yaml.Node {
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

// keys returns the keys of a mapping node in template order.
func keys(n *yaml.Node) []string {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i < len(n.Content); i += 2 {
		out = append(out, n.Content[i].Value)
	}
	return out
}

// ref returns the target of !Ref X or {Ref: X}.
func ref(n *yaml.Node) (string, bool) {
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

// getAtt returns the logical id of !GetAtt X.Arn or {Fn::GetAtt: [X, Arn]}.
func getAtt(n *yaml.Node, attribute string) (string, bool) {
	switch {
	case n == nil:
		return "", false
	case n.Kind == yaml.ScalarNode && n.Tag == "!GetAtt":
		id, attr, ok := strings.Cut(n.Value, ".")
		return id, ok && attr == attribute
	case n.Kind == yaml.SequenceNode && n.Tag == "!GetAtt" && len(n.Content) == 2:
		return n.Content[0].Value, n.Content[1].Value == attribute
	case n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == "Fn::GetAtt":
		return getAtt(&yaml.Node{Kind: n.Content[1].Kind, Tag: "!GetAtt", Value: n.Content[1].Value, Content: n.Content[1].Content}, attribute)
	}
	return "", false
}

// plain turns a node into Go values for comparison: intrinsic functions
// become readable strings ("!GetAtt X.Arn", "!Ref X"); !Sub becomes its
// template string, as it stands in a JSON policy document.
func plain(n *yaml.Node) any {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		switch k := n.Content[0].Value; k {
		case "Ref", "Fn::GetAtt", "Fn::Sub":
			inner := *n.Content[1]
			inner.Tag = "!" + strings.TrimPrefix(k, "Fn::")
			return plain(&inner)
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
			items[i] = plain(c)
		}
		b, _ := json.Marshal(items)
		return n.Tag + " " + string(b)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = plain(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		items := make([]any, len(n.Content))
		for i, c := range n.Content {
			items[i] = plain(c)
		}
		return items
	case yaml.AliasNode:
		return plain(n.Alias)
	}
	return n.Value
}

// function returns the logical id and node of the template's only function.
func (tpl cfnTemplate) function(t *testing.T) (string, *yaml.Node) {
	t.Helper()
	var ids []string
	resources := get(tpl.root, "Resources")
	for _, id := range keys(resources) {
		if get(resources, id, "Type").Value == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("template.yaml has %d AWS::Serverless::Function resources %v, want exactly one", len(ids), ids)
	}
	return ids[0], get(resources, ids[0])
}

func (tpl cfnTemplate) resource(id string) *yaml.Node {
	return get(tpl.root, "Resources", id)
}

// envParameter returns the parameter that the function's variable name is
// set from.
func (tpl cfnTemplate) envParameter(t *testing.T, name string) string {
	t.Helper()
	_, fn := tpl.function(t)
	param, ok := ref(get(fn, "Properties", "Environment", "Variables", name))
	if !ok {
		t.Fatalf("the function's environment does not set %s from a parameter (!Ref)", name)
	}
	return param
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestTemplateEnvironmentIsTheConfigurationContract(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, fn := tpl.function(t)

	variables := get(fn, "Properties", "Environment", "Variables")
	set := keys(variables)
	// Globals would add variables to every function.
	set = append(set, keys(get(tpl.root, "Globals", "Function", "Environment", "Variables"))...)

	contract := handler.EnvVars()
	var names []string
	for _, v := range contract {
		names = append(names, v.Name)
		if !slices.Contains(set, v.Name) {
			t.Errorf("drift: the code reads %s (handler.EnvVars) but template.yaml does not set it in %s's Environment", v.Name, fnID)
		}
	}
	for _, name := range set {
		if !slices.Contains(names, name) {
			t.Errorf("drift: template.yaml sets %s in the function's environment, but the code reads no such variable (not in handler.EnvVars)", name)
		}
	}

	params := get(tpl.root, "Parameters")
	for _, v := range contract {
		node := get(variables, v.Name)
		if node == nil {
			continue // reported above
		}
		paramName, ok := ref(node)
		if cond, p, conditional := conditionalRef(node); conditional {
			// Organization mode's variables: set only in that mode
			// (template_org_test.go checks which ones).
			if cond != orgCondition {
				t.Errorf("%s: set under condition %s, want %s or none", v.Name, cond, orgCondition)
			}
			paramName, ok = p, true
		}
		if !ok {
			t.Errorf("%s: set to %v, want !Ref of a parameter, so that it is configured at deploy time", v.Name, plain(node))
			continue
		}
		if v.Name == "NOTIFY_TOPIC_ARN" {
			// The stack's own topic, not a parameter: notifications are on
			// in every deployment, and the role may publish to it only.
			if r := tpl.resource(paramName); r == nil || get(r, "Type").Value != "AWS::SNS::Topic" {
				t.Errorf("NOTIFY_TOPIC_ARN: !Ref %s, want !Ref of the stack's AWS::SNS::Topic", paramName)
			} else if get(r, "Properties", "KmsMasterKeyId") == nil {
				t.Errorf("NOTIFY_TOPIC_ARN: topic %s is not encrypted (KmsMasterKeyId)", paramName)
			}
			continue
		}
		param := get(params, paramName)
		if param == nil {
			t.Errorf("%s: !Ref %s names no parameter of template.yaml", v.Name, paramName)
			continue
		}
		checkParameter(t, v, paramName, param)
	}
}

// checkParameter compares one parameter with its entry of the contract.
func checkParameter(t *testing.T, v handler.EnvVar, name string, param *yaml.Node) {
	t.Helper()
	where := fmt.Sprintf("%s (parameter %s)", v.Name, name)
	typ := ""
	if n := get(param, "Type"); n != nil {
		typ = n.Value
	}

	def := get(param, "Default")
	switch {
	case def == nil:
		t.Errorf("%s: the parameter has no Default; the code's default is %q", where, v.Default)
	case v.Numeric:
		got, err := strconv.ParseFloat(def.Value, 64)
		want, _ := strconv.ParseFloat(v.Default, 64)
		if err != nil || got != want {
			t.Errorf("drift: %s: template Default is %q, the code's default is %q", where, def.Value, v.Default)
		}
	case def.Value != v.Default:
		t.Errorf("drift: %s: template Default is %q, the code's default is %q", where, def.Value, v.Default)
	}

	var allowed []string
	if n := get(param, "AllowedValues"); n != nil {
		if n.Kind != yaml.SequenceNode {
			t.Errorf("%s: AllowedValues is not a list", where)
		}
		for _, item := range n.Content {
			allowed = append(allowed, item.Value)
		}
	}
	gotAllowed, wantAllowed := slices.Sorted(slices.Values(allowed)), slices.Sorted(slices.Values(v.Allowed))
	if !slices.Equal(gotAllowed, wantAllowed) {
		t.Errorf("drift: %s: template AllowedValues are %q, the code accepts %q", where, gotAllowed, wantAllowed)
	}

	minNode, maxNode := get(param, "MinValue"), get(param, "MaxValue")
	if !v.Numeric {
		if typ != "String" {
			t.Errorf("%s: parameter Type is %q, want String", where, typ)
		}
		if minNode != nil || maxNode != nil {
			t.Errorf("drift: %s: the template bounds a value that the code does not read as a number (MinValue/MaxValue)", where)
		}
		return
	}
	if typ != "Number" {
		t.Errorf("%s: parameter Type is %q, want Number (the code reads a number)", where, typ)
	}
	for _, b := range []struct {
		key  string
		node *yaml.Node
		want float64
	}{{"MinValue", minNode, v.Min}, {"MaxValue", maxNode, v.Max}} {
		if b.node == nil {
			t.Errorf("drift: %s: the template has no %s, the code accepts %s", where, b.key, formatNumber(b.want))
			continue
		}
		got, err := strconv.ParseFloat(b.node.Value, 64)
		if err != nil || got != b.want {
			t.Errorf("drift: %s: template %s is %q, the code's bound is %s", where, b.key, b.node.Value, formatNumber(b.want))
		}
	}
	if v.Integer && def != nil {
		if f, err := strconv.ParseFloat(def.Value, 64); err == nil && f != float64(int64(f)) {
			t.Errorf("%s: template Default %q is not an integer, the code refuses fractions", where, def.Value)
		}
	}
}

// lambdaLevels are Lambda's application log levels, lowest first.
var lambdaLevels = []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// applicationLogLevel resolves the function's LoggingConfig.ApplicationLogLevel
// for one value of the LOG_LEVEL parameter: a literal, or !FindInMap with
// the parameter as its first key.
func (tpl cfnTemplate) applicationLogLevel(t *testing.T, param, value string) string {
	t.Helper()
	_, fn := tpl.function(t)
	n := get(fn, "Properties", "LoggingConfig", "ApplicationLogLevel")
	switch {
	case n == nil:
		// Lambda's default with the JSON format.
		return "INFO"
	case n.Kind == yaml.ScalarNode && (n.Tag == "" || n.Tag == "!!str"):
		return n.Value
	case n.Tag == "!FindInMap" && len(n.Content) == 3:
		if got, ok := ref(n.Content[1]); !ok || got != param {
			t.Fatalf("ApplicationLogLevel looks up %v, want !Ref %s (the parameter of LOG_LEVEL)", plain(n.Content[1]), param)
		}
		v := get(tpl.root, "Mappings", n.Content[0].Value, value, n.Content[2].Value)
		if v == nil {
			t.Fatalf("drift: LOG_LEVEL accepts %q but Mappings.%s has no %s.%s for it", value, n.Content[0].Value, value, n.Content[2].Value)
		}
		return v.Value
	}
	t.Fatalf("LoggingConfig.ApplicationLogLevel is %v: the test understands a literal or !FindInMap [MAP, !Ref %s, KEY]", plain(n), param)
	return ""
}

// Lambda filters the function's JSON lines by their "level" key
// (AWS-FACTS: Logs that Lambda understands). The function filters its own
// lines by LOG_LEVEL and writes the audit trail at every level; Lambda must
// not drop any line the function chose to write, least of all the audit
// trail, for any LOG_LEVEL the code accepts.
func TestTemplateLambdaKeepsTheAuditTrail(t *testing.T) {
	tpl := loadTemplate(t)
	_, fn := tpl.function(t)
	param := tpl.envParameter(t, "LOG_LEVEL")
	if format := get(fn, "Properties", "LoggingConfig", "LogFormat"); format == nil || format.Value != "JSON" {
		t.Errorf("LoggingConfig.LogFormat is %v, want JSON (Lambda reads the level of JSON lines only)", plain(format))
	}
	for _, level := range auditLogLevels(t) {
		lambda := tpl.applicationLogLevel(t, param, level)
		floor := slices.Index(lambdaLevels, lambda)
		if floor < 0 {
			t.Fatalf("LOG_LEVEL=%s: ApplicationLogLevel %q is not one of Lambda's levels %v", level, lambda, lambdaLevels)
		}
		// Every line of every audit scenario, and a line at each level
		// from an ordinary logger: what the function writes.
		var lines []map[string]any
		for _, c := range auditCases() {
			lines = append(lines, auditRun(t, c, level)...)
		}
		tl := &timeline{}
		logger, err := handler.NewLogger(level, tl)
		if err != nil {
			t.Fatal(err)
		}
		logger.Debug("debug line")
		logger.Info("info line")
		logger.Warn("warn line")
		logger.Error("error line")
		lines = append(lines, tl.logLines()...)

		audit := 0
		for _, l := range lines {
			lvl, _ := l["level"].(string)
			ts, _ := l["timestamp"].(string)
			if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
				// Lambda would then assign INFO: the level is lost.
				t.Errorf("LOG_LEVEL=%s: %q line's timestamp %q is not RFC 3339", level, l["msg"], ts)
			}
			if l["logger"] == handler.AuditLogger {
				audit++
			}
			if at := slices.Index(lambdaLevels, strings.ToUpper(lvl)); at < floor {
				t.Errorf("LOG_LEVEL=%s: Lambda's filter (ApplicationLogLevel %s) drops the %s line %q (logger %v)", level, lambda, lvl, l["msg"], l["logger"])
			}
		}
		if audit == 0 {
			t.Fatalf("LOG_LEVEL=%s: no audit line written", level)
		}
	}
}

// grant is one action on one resource under one condition: policies are
// compared grant by grant, so how statements are grouped does not matter.
type grant struct {
	Effect, Action, Resource, Condition string
}

func (g grant) String() string {
	s := fmt.Sprintf("%s %s on %s", g.Effect, g.Action, g.Resource)
	if g.Condition != "" {
		s += " if " + g.Condition
	}
	return s
}

func stringList(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		var out []string
		for _, item := range v {
			s, ok := item.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// grants expands a policy document (YAML or a !Sub JSON string) into grants.
func grants(t *testing.T, where string, doc *yaml.Node) []grant {
	t.Helper()
	var policy any
	if doc.Kind == yaml.ScalarNode {
		text := doc.Value
		if doc.Tag != "!Sub" && !strings.HasPrefix(strings.TrimSpace(text), "{") {
			t.Errorf("%s: the policy document is %v, want a mapping or a JSON string", where, plain(doc))
			return nil
		}
		if err := json.Unmarshal([]byte(text), &policy); err != nil {
			t.Errorf("%s: the policy document is not JSON: %v", where, err)
			return nil
		}
	} else {
		policy = plain(doc)
	}
	statements := policy.(map[string]any)["Statement"]
	if m, ok := statements.(map[string]any); ok {
		statements = []any{m}
	}
	var out []grant
	for _, s := range statements.([]any) {
		st := s.(map[string]any)
		for k := range st {
			if !slices.Contains([]string{"Sid", "Effect", "Action", "Resource", "Condition"}, k) {
				t.Errorf("%s: a statement uses %s; the test understands only Sid, Effect, Action, Resource, Condition", where, k)
			}
		}
		actions, ok1 := stringList(st["Action"])
		resources, ok2 := stringList(st["Resource"])
		if !ok1 || !ok2 {
			t.Errorf("%s: statement %v: Action and Resource must be strings or lists of strings", where, st)
			continue
		}
		cond := ""
		if c, ok := st["Condition"]; ok {
			b, _ := json.Marshal(c) // map keys come out sorted
			cond = string(b)
		}
		effect, _ := st["Effect"].(string)
		for _, a := range actions {
			for _, r := range resources {
				out = append(out, grant{Effect: effect, Action: a, Resource: r, Condition: cond})
			}
		}
	}
	return out
}

// The function's role, in each mode: organization mode adds the listing of
// the targets and the member role, nothing else.
func TestTemplateFunctionRoleIsLeastPrivilege(t *testing.T) {
	for _, org := range []bool{false, true} {
		t.Run(fmt.Sprintf("OrganizationMode=%v", org), func(t *testing.T) {
			tpl := loadTemplate(t).resolved(t, map[string]bool{orgCondition: org})
			checkFunctionRole(t, tpl, org)
		})
	}
}

// functionRoleGrants expands every policy of the function's role (of a
// template whose conditions on the role are resolved).
func (tpl cfnTemplate) functionRoleGrants(t *testing.T) (roleID string, got []grant) {
	t.Helper()
	fnID, fn := tpl.function(t)
	roleID, ok := getAtt(get(fn, "Properties", "Role"), "Arn")
	if !ok {
		t.Fatalf("%s.Role is %v, want !GetAtt ROLE.Arn", fnID, plain(get(fn, "Properties", "Role")))
	}
	policies := get(tpl.resource(roleID), "Properties", "Policies")
	if policies == nil {
		t.Fatalf("%s has no Policies", roleID)
	}
	for i, p := range policies.Content {
		name := fmt.Sprintf("%s policy %d", roleID, i)
		if n := get(p, "PolicyName"); n != nil {
			name = fmt.Sprintf("%s policy %s", roleID, n.Value)
		}
		doc := get(p, "PolicyDocument")
		if doc == nil {
			t.Errorf("%s has no PolicyDocument", name)
			continue
		}
		got = append(got, grants(t, name, doc)...)
	}
	return roleID, got
}

func checkFunctionRole(t *testing.T, tpl cfnTemplate, org bool) {
	fnID, fn := tpl.function(t)
	props := get(fn, "Properties")

	if get(props, "Policies") != nil {
		t.Errorf("%s sets Policies: with an explicit Role they would be ignored or widen SAM's generated role; grant in the role", fnID)
	}
	roleID, ok := getAtt(get(props, "Role"), "Arn")
	if !ok {
		t.Fatalf("%s.Role is %v, want !GetAtt ROLE.Arn of the role in template.yaml (SAM's generated role adds logs:* on *)", fnID, plain(get(props, "Role")))
	}
	role := tpl.resource(roleID)
	if role == nil || get(role, "Type").Value != "AWS::IAM::Role" {
		t.Fatalf("the function's role %s is not an AWS::IAM::Role of template.yaml", roleID)
	}
	if get(role, "Properties", "ManagedPolicyArns") != nil {
		t.Errorf("%s has ManagedPolicyArns: managed policies grant more than the function needs", roleID)
	}
	trust, _ := json.Marshal(plain(get(role, "Properties", "AssumeRolePolicyDocument", "Statement")))
	wantTrust := `[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"}}]`
	if string(trust) != wantTrust {
		t.Errorf("%s's trust policy is %s, want %s: only Lambda may assume it", roleID, trust, wantTrust)
	}
	// No policy resource may attach more to the role.
	resources := get(tpl.root, "Resources")
	for _, id := range keys(resources) {
		switch get(resources, id, "Type").Value {
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy":
			t.Errorf("template.yaml has %s (%s): the function's permissions must all be in %s's Policies", id, get(resources, id, "Type").Value, roleID)
		}
	}

	_, got := tpl.functionRoleGrants(t)

	protectParam := tpl.envParameter(t, "PROTECT_TAG_KEY")
	logGroup, ok := ref(get(props, "LoggingConfig", "LogGroup"))
	if !ok {
		t.Errorf("LoggingConfig.LogGroup is %v, want !Ref of the function's own log group", plain(get(props, "LoggingConfig", "LogGroup")))
	}
	queue, ok := getAtt(get(props, "EventInvokeConfig", "DestinationConfig", "OnFailure", "Destination"), "Arn")
	if !ok {
		t.Errorf("EventInvokeConfig's OnFailure Destination is not !GetAtt QUEUE.Arn")
	}
	cancelARN := "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:capacity-reservation/*"
	markTagsOnly := `{"ForAllValues:StringEquals":{"aws:TagKeys":["odcr-autocancel:idle-since","odcr-autocancel:cancel-after","odcr-autocancel:rightsize-to","odcr-autocancel:rightsize-since","odcr-autocancel:rightsize-after"]},"Null":{"aws:TagKeys":"false"}}`
	topic, ok := ref(get(props, "Environment", "Variables", "NOTIFY_TOPIC_ARN"))
	if !ok {
		t.Errorf("NOTIFY_TOPIC_ARN is not !Ref of the stack's topic")
	}
	want := []grant{
		{"Allow", "ec2:DescribeCapacityReservations", "*", ""},
		{"Allow", "ec2:DescribeInstances", "*", ""},
		{"Allow", "cloudwatch:GetMetricData", "*", ""},
		{"Allow", "ram:ListResources", "*", ""},
		{"Allow", "pricing:GetProducts", "*", ""},
		{"Allow", "ec2:GetGroupsForCapacityReservation", cancelARN, ""},
		// IAM itself refuses to cancel a reservation that carries the protect tag.
		{"Allow", "ec2:CancelCapacityReservation", cancelARN, `{"Null":{"aws:ResourceTag/${` + protectParam + `}":"true"}}`},
		// Shrinks likewise: never a protected reservation.
		{"Allow", "ec2:ModifyCapacityReservation", cancelARN, `{"Null":{"aws:ResourceTag/${` + protectParam + `}":"true"}}`},
		{"Allow", "logs:CreateLogStream", "!GetAtt " + logGroup + ".Arn", ""},
		{"Allow", "logs:PutLogEvents", "!GetAtt " + logGroup + ".Arn", ""},
		{"Allow", "sqs:SendMessage", "!GetAtt " + queue + ".Arn", ""},
		// Only the two mark keys, never the protect key nor anyone's tags.
		{"Allow", "ec2:CreateTags", cancelARN, markTagsOnly},
		{"Allow", "ec2:DeleteTags", cancelARN, markTagsOnly},
		{"Allow", "sns:Publish", "!Ref " + topic, ""},
	}
	if org {
		want = append(want, organizationGrants...)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("the function's role lacks: %s", w)
		}
	}
	seen := map[grant]bool{}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("the function's role grants more than expected: %s", g)
		}
		if seen[g] {
			t.Errorf("the function's role grants twice: %s", g)
		}
		seen[g] = true
	}
}

// sam build runs the Makefile's build-<function id> target (BuildMethod
// makefile). It must exist, build the command with every flag of the shipped
// binary, and the function must be the arm64 custom runtime it targets.
func TestTemplateBuildsTheCommand(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, fn := tpl.function(t)
	if m := get(fn, "Metadata", "BuildMethod"); m == nil || m.Value != "makefile" {
		t.Fatalf("%s Metadata.BuildMethod is %v, want makefile", fnID, plain(m))
	}
	for key, want := range map[string]string{"CodeUri": ".", "Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if n := get(fn, "Properties", key); n == nil || n.Value != want {
			t.Errorf("%s.%s is %v, want %q", fnID, key, plain(n), want)
		}
	}
	if a := get(fn, "Properties", "Architectures"); a == nil || len(a.Content) != 1 || a.Content[0].Value != "arm64" {
		t.Errorf("%s.Architectures is %v, want [arm64]", fnID, plain(a))
	}

	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	target := "build-" + fnID + ":"
	_, recipe, ok := strings.Cut(string(makefile), "\n"+target)
	if !ok {
		t.Fatalf("Makefile has no %s target", target)
	}
	recipe, _, _ = strings.Cut(recipe, "\n\n")
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "go build", "$(GOFLAGS_BOOTSTRAP)", `"$(ARTIFACTS_DIR)/bootstrap"`, "./cmd/odcr-autocancel"} {
		if !strings.Contains(recipe, want) {
			t.Errorf("Makefile target %s lacks %q:%s", target, want, recipe)
		}
	}
	for _, want := range []string{"-trimpath", "-tags lambda.norpc", `-ldflags "-s -w"`} {
		if !strings.Contains(string(makefile), want) {
			t.Errorf("Makefile lacks %q in GOFLAGS_BOOTSTRAP", want)
		}
	}
	if _, err := os.Stat("../cmd/odcr-autocancel/main.go"); err != nil {
		t.Fatalf("the command the Makefile builds: %v", err)
	}
}

// The IAM condition of the cancel grant names the protect tag key exactly as
// the ProtectTagKey parameter holds it, while the code reads PROTECT_TAG_KEY.
// Both must protect the same key: the parameter refuses what the code
// refuses (surrounding whitespace, a length outside 1-128), and every key
// the parameter lets through, the code loads unchanged. Interior spaces stay
// legal: tag keys may contain them.
func TestTemplateProtectTagKeyIsTheCodesKey(t *testing.T) {
	tpl := loadTemplate(t)
	name := tpl.envParameter(t, "PROTECT_TAG_KEY")
	param := get(tpl.root, "Parameters", name)
	if n := get(param, "MinLength"); n == nil || n.Value != "1" {
		t.Errorf("parameter %s: MinLength %v, want 1 (the code refuses an empty key)", name, plain(n))
	}
	if n := get(param, "MaxLength"); n == nil || n.Value != "128" {
		t.Errorf("parameter %s: MaxLength %v, want 128 (the code refuses longer keys)", name, plain(n))
	}
	patternNode := get(param, "AllowedPattern")
	if patternNode == nil {
		t.Fatalf("parameter %s has no AllowedPattern: it would let through keys with surrounding whitespace, which IAM would use as written", name)
	}
	// CloudFormation matches the whole value (Java's String.matches).
	pattern, err := regexp.Compile(`^(?:` + patternNode.Value + `)$`)
	if err != nil {
		t.Fatalf("parameter %s: AllowedPattern %q: %v", name, patternNode.Value, err)
	}
	templateAccepts := func(key string) bool {
		n := utf8.RuneCountInString(key)
		return n >= 1 && n <= 128 && pattern.MatchString(key)
	}

	keys := []string{
		"odcr-autocancel:protect", "keep", "keep me", "a b c", "k", "team/ml=x+y-z@a.b_c",
		"été", "保護", strings.Repeat("k", 128), "k" + strings.Repeat(" ", 126) + "k",
	}
	// Every whitespace rune, and every separator (\p{Z}), at each end and
	// inside.
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsSpace(r) || unicode.Is(unicode.Z, r) {
			keys = append(keys, string(r)+"keep", "keep"+string(r), "ke"+string(r)+"ep", string(r))
		}
	}
	for _, key := range keys {
		s, err := handler.LoadSettings(func(n string) (string, bool) {
			if n == "PROTECT_TAG_KEY" {
				return key, true
			}
			return "", false
		})
		codeAccepts := err == nil
		surrounded := strings.TrimSpace(key) != key
		switch {
		case templateAccepts(key) && !codeAccepts:
			t.Errorf("drift: parameter %s accepts %q, the code refuses it: %v", name, key, err)
		case templateAccepts(key) && s.ProtectTagKey != key:
			t.Errorf("drift: parameter %s accepts %q, which IAM uses as written, but the code protects %q", name, key, s.ProtectTagKey)
		case surrounded && templateAccepts(key):
			t.Errorf("parameter %s accepts %q, with surrounding whitespace", name, key)
		case surrounded && codeAccepts:
			t.Errorf("PROTECT_TAG_KEY=%q accepted, with surrounding whitespace (loaded as %q)", key, s.ProtectTagKey)
		}
	}
	for _, key := range []string{"keep me", "a b c", "ke\u00a0ep", "odcr-autocancel:protect"} {
		if !templateAccepts(key) {
			t.Errorf("parameter %s refuses %q: tag keys may contain spaces", name, key)
		}
	}
	def := get(param, "Default")
	if def == nil || !templateAccepts(def.Value) {
		t.Errorf("parameter %s: Default %v does not match its own AllowedPattern", name, plain(def))
	}
}

// subReference matches ${NAME} in a !Sub string; ${!Literal} is no
// reference.
var subReference = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// subTarget tells whether a !Sub string may reference name: a parameter, a
// resource or a resource's attribute, or a pseudo parameter.
func (tpl cfnTemplate) subTarget(name string) bool {
	id, _, _ := strings.Cut(name, ".")
	return strings.HasPrefix(name, "AWS::") || get(tpl.root, "Parameters", name) != nil || tpl.resource(id) != nil
}

// render evaluates a string-valued intrinsic the way CloudFormation would,
// with every reference to the stack (a parameter, a resource, an attribute,
// a pseudo parameter) rendered as "<<NAME>>", and every !If taking its
// true branch. ok is false for AWS::NoValue.
func (tpl cfnTemplate) render(t *testing.T, n *yaml.Node, vars map[string]*yaml.Node) (s string, ok bool) {
	t.Helper()
	switch {
	case n.Tag == "!Sub" && n.Kind == yaml.SequenceNode && len(n.Content) == 2:
		own := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content[1].Content); i += 2 {
			own[n.Content[1].Content[i].Value] = n.Content[1].Content[i+1]
		}
		return tpl.render(t, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!Sub", Value: n.Content[0].Value}, own)
	case n.Tag == "!Sub" && n.Kind == yaml.ScalarNode:
		return subReference.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				s, _ := tpl.render(t, v, nil)
				return s
			}
			if !tpl.subTarget(name) {
				t.Errorf("!Sub references ${%s}: no parameter, resource or pseudo parameter of that name", name)
			}
			return "<<" + name + ">>"
		}), true
	case n.Tag == "!Join" && len(n.Content) == 2:
		var parts []string
		for _, item := range n.Content[1].Content {
			if s, ok := tpl.render(t, item, vars); ok {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, n.Content[0].Value), true
	case n.Tag == "!If" && len(n.Content) == 3:
		if get(tpl.root, "Conditions", n.Content[0].Value) == nil {
			t.Errorf("!If on %q: no such condition", n.Content[0].Value)
		}
		return tpl.render(t, n.Content[1], vars)
	case n.Tag == "!Ref" && n.Value == "AWS::NoValue":
		return "", false
	case n.Tag == "!Ref", n.Tag == "!GetAtt" && n.Kind == yaml.ScalarNode:
		return "<<" + n.Value + ">>", true
	case n.Kind == yaml.ScalarNode && (n.Tag == "" || n.Tag == "!!str"):
		return n.Value, true
	}
	t.Fatalf("render: the test understands !Sub, !Join, !If, !Ref and !GetAtt, not %v", plain(n))
	return "", false
}

// conditionalReferences checks that every reference under n to a resource
// that has a Condition is made under an !If on that condition: otherwise
// the stack fails whenever the condition is false.
func (tpl cfnTemplate) conditionalReferences(t *testing.T, where string, n *yaml.Node, holding []string) {
	t.Helper()
	check := func(name string) {
		id, _, _ := strings.Cut(name, ".")
		if c := get(tpl.resource(id), "Condition"); c != nil && !slices.Contains(holding, c.Value) {
			t.Errorf("%s references %s, which exists only under condition %s, outside an !If on it", where, name, c.Value)
		}
	}
	switch {
	case n.Tag == "!If" && len(n.Content) == 3:
		tpl.conditionalReferences(t, where, n.Content[1], append(slices.Clone(holding), n.Content[0].Value))
		tpl.conditionalReferences(t, where, n.Content[2], holding)
		return
	case n.Tag == "!Sub" && n.Kind == yaml.ScalarNode:
		for _, m := range subReference.FindAllStringSubmatch(n.Value, -1) {
			check(m[1])
		}
	case n.Tag == "!Ref", n.Tag == "!GetAtt" && n.Kind == yaml.ScalarNode:
		check(n.Value)
	case n.Tag == "!Sub" && n.Kind == yaml.SequenceNode && len(n.Content) == 2:
		own := keys(n.Content[1])
		for _, m := range subReference.FindAllStringSubmatch(n.Content[0].Value, -1) {
			if !slices.Contains(own, m[1]) {
				check(m[1])
			}
		}
		tpl.conditionalReferences(t, where, n.Content[1], holding)
		return
	}
	for _, c := range n.Content {
		tpl.conditionalReferences(t, where, c, holding)
	}
}

// resourcesOfType lists the logical ids of the resources of one type.
func (tpl cfnTemplate) resourcesOfType(typ string) []string {
	var ids []string
	resources := get(tpl.root, "Resources")
	for _, id := range keys(resources) {
		if get(resources, id, "Type").Value == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// emfMetricNames are the names of the metrics the code's EMF record
// declares.
func emfMetricNames() []string {
	var names []string
	for _, m := range handler.EMFMetrics() {
		names = append(names, m.Name)
	}
	return names
}

// emfDimensionSet tells whether names (in any order) are exactly one of the
// record's dimension sets: a metric is identified by its whole dimension
// set, so a graph or an alarm on any other finds no data.
func emfDimensionSet(names []string) bool {
	got := slices.Sorted(slices.Values(names))
	for _, set := range handler.EMFDimensionSets() {
		if slices.Equal(got, slices.Sorted(slices.Values(set))) {
			return true
		}
	}
	return false
}

// The dashboard: its body is JSON once CloudFormation substitutes it; its
// metric widgets graph the metrics the code's EMF record declares, in its
// namespace and with its dimension set; the alarm widget lists every alarm
// of the stack; the log widget's query reads the function's log group and
// names fields a decision line has.
func TestTemplateDashboardShowsTheRunMetrics(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, fn := tpl.function(t)
	dashboards := tpl.resourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("template.yaml has %d dashboards %v, want one", len(dashboards), dashboards)
	}
	bodyNode := get(tpl.resource(dashboards[0]), "Properties", "DashboardBody")
	if bodyNode == nil || bodyNode.Tag != "!Sub" {
		t.Fatalf("%s's DashboardBody is %v, want a !Sub JSON string", dashboards[0], plain(bodyNode))
	}
	tpl.conditionalReferences(t, dashboards[0], bodyNode, nil)
	text, _ := tpl.render(t, bodyNode, nil)
	var body struct {
		Widgets []struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		} `json:"widgets"`
	}
	if err := json.Unmarshal([]byte(text), &body); err != nil {
		t.Fatalf("DashboardBody is not JSON once substituted: %v\n%s", err, text)
	}

	function := "<<" + fnID + ">>"
	metricNames := emfMetricNames()
	graphed := map[string]bool{} // metric/DryRun
	var alarms []string
	var queries []string
	for i, w := range body.Widgets {
		where := fmt.Sprintf("dashboard widget %d (%v)", i, w.Properties["title"])
		switch w.Type {
		case "metric":
			if w.Properties["region"] != "<<AWS::Region>>" {
				t.Errorf("%s: region %v, want ${AWS::Region}", where, w.Properties["region"])
			}
			rows, _ := w.Properties["metrics"].([]any)
			if len(rows) == 0 {
				t.Errorf("%s: no metrics", where)
			}
			for _, r := range rows {
				row, _ := r.([]any)
				var parts []string
				for _, item := range row {
					if s, ok := item.(string); ok {
						parts = append(parts, s)
					} else if _, ok := item.(map[string]any); !ok {
						t.Errorf("%s: metric row %v: items are strings and a trailing object", where, row)
					}
				}
				if len(parts) < 2 || len(parts)%2 != 0 || slices.Contains(parts, ".") {
					t.Errorf("%s: metric row %v: want namespace, name and dimension name/value pairs in full (no \".\")", where, row)
					continue
				}
				ns, name := parts[0], parts[1]
				if ns != handler.EMFNamespace {
					t.Errorf("%s: metric %s in namespace %q, the code writes %q", where, name, ns, handler.EMFNamespace)
				}
				if !slices.Contains(metricNames, name) {
					t.Errorf("%s: metric %q is not one the code writes (handler.EMFMetrics: %v)", where, name, metricNames)
				}
				dims := map[string]string{}
				var dimNames []string
				for j := 2; j+1 < len(parts); j += 2 {
					dims[parts[j]] = parts[j+1]
					dimNames = append(dimNames, parts[j])
				}
				if !emfDimensionSet(dimNames) {
					t.Errorf("%s: metric %s with dimensions %v, the code writes the sets %v", where, name, dimNames, handler.EMFDimensionSets())
				}
				if dims[handler.DimensionFunctionName] != function {
					t.Errorf("%s: metric %s of function %q, want ${%s}", where, name, dims[handler.DimensionFunctionName], fnID)
				}
				if v := dims[handler.DimensionDryRun]; v != "true" && v != "false" {
					t.Errorf("%s: metric %s with DryRun %q, the code writes \"true\" or \"false\"", where, name, v)
				}
				graphed[name+"/"+dims[handler.DimensionDryRun]] = true
			}
		case "alarm":
			for _, a := range w.Properties["alarms"].([]any) {
				alarms = append(alarms, a.(string))
			}
		case "log":
			q, _ := w.Properties["query"].(string)
			queries = append(queries, q)
		}
	}
	// What the dashboard is for: what was done, what failed, what was found.
	for _, want := range []string{"Cancelled/false", "Marked/false", "Shrunk/false", handler.MetricCancelsFailed + "/false", "IdleFound/false", "IdleFound/true"} {
		if !graphed[want] {
			t.Errorf("the dashboard does not graph %s (metric/DryRun)", want)
		}
	}

	var wantAlarms []string
	for _, id := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		wantAlarms = append(wantAlarms, "<<"+id+".Arn>>")
	}
	slices.Sort(alarms)
	slices.Sort(wantAlarms)
	if !slices.Equal(alarms, wantAlarms) {
		t.Errorf("the dashboard's alarm widgets list %v, the stack's alarms are %v", alarms, wantAlarms)
	}

	if len(queries) != 1 {
		t.Fatalf("%d log widgets, want one (the last decisions)", len(queries))
	}
	logGroup, _ := ref(get(fn, "Properties", "LoggingConfig", "LogGroup"))
	q := queries[0]
	if !strings.HasPrefix(q, "SOURCE '<<"+logGroup+">>' |") {
		t.Errorf("log widget query %q does not read the function's log group ${%s}", q, logGroup)
	}
	if !strings.Contains(q, `filter logger = "`+handler.AuditLogger+`" and msg = "decision"`) {
		t.Errorf("log widget query %q does not select the audit trail's decision lines", q)
	}
	// The fields it shows are on every decision line the code writes.
	hs := newHarness(t)
	hs.fake.addIdle(crID(1))
	if _, err := hs.run(t, `{}`); err != nil {
		t.Fatal(err)
	}
	var decision map[string]any
	for _, l := range hs.tl.logLines() {
		if l["logger"] == handler.AuditLogger && l["msg"] == "decision" {
			decision = l
		}
	}
	if decision == nil {
		t.Fatal("no decision line written")
	}
	fieldsClause := regexp.MustCompile(`\|\s*fields ([^|]+)`).FindStringSubmatch(q)
	if fieldsClause == nil {
		t.Fatalf("log widget query %q has no fields clause", q)
	}
	for _, f := range strings.Split(fieldsClause[1], ",") {
		f = strings.TrimSpace(f)
		if _, ok := decision[f]; !ok && !strings.HasPrefix(f, "@") {
			t.Errorf("log widget query shows %q, which a decision line does not have (%v)", f, slices.Sorted(maps.Keys(decision)))
		}
	}

	outputs := get(tpl.root, "Outputs")
	if id, ok := ref(get(outputs, "DashboardName", "Value")); !ok || id != dashboards[0] {
		t.Errorf("output DashboardName is %v, want !Ref %s", plain(get(outputs, "DashboardName", "Value")), dashboards[0])
	}
	if url := get(outputs, "DashboardUrl", "Value"); url == nil || url.Tag != "!Sub" || !strings.Contains(url.Value, "${"+dashboards[0]+"}") {
		t.Errorf("output DashboardUrl is %v, want a !Sub naming ${%s}", plain(url), dashboards[0])
	}
}

// Alarms on the run metrics name a metric the code writes, in its
// namespace, with exactly one of its dimension sets (an alarm on an EMF
// metric must name the whole set), for this stack's function. The cancels
// failed alarm counts live runs over the schedule period and notifies like
// the other alarms.
func TestTemplateAlarmsOnRunMetrics(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, _ := tpl.function(t)
	metricNames := emfMetricNames()
	var cancelsFailed []string
	for _, id := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		props := get(tpl.resource(id), "Properties")
		if ns := get(props, "Namespace"); ns == nil || ns.Value != handler.EMFNamespace {
			continue
		}
		name := get(props, "MetricName").Value
		if !slices.Contains(metricNames, name) {
			t.Errorf("alarm %s: metric %q is not one the code writes (handler.EMFMetrics: %v)", id, name, metricNames)
		}
		dims := map[string]*yaml.Node{}
		var dimNames []string
		if d := get(props, "Dimensions"); d != nil {
			for _, item := range d.Content {
				n := get(item, "Name").Value
				dims[n] = get(item, "Value")
				dimNames = append(dimNames, n)
			}
		}
		if !emfDimensionSet(dimNames) {
			t.Errorf("alarm %s: dimensions %v, the code writes the sets %v: the alarm would find no data", id, dimNames, handler.EMFDimensionSets())
		}
		if got, ok := ref(dims[handler.DimensionFunctionName]); !ok || got != fnID {
			t.Errorf("alarm %s: FunctionName %v, want !Ref %s", id, plain(dims[handler.DimensionFunctionName]), fnID)
		}
		dry := dims[handler.DimensionDryRun]
		if dry == nil || (dry.Value != "true" && dry.Value != "false") {
			t.Errorf("alarm %s: DryRun %v, want \"true\" or \"false\"", id, plain(dry))
		}
		if name == handler.MetricCancelsFailed && dry != nil && dry.Value == "false" {
			cancelsFailed = append(cancelsFailed, id)
		}
	}
	if len(cancelsFailed) != 1 {
		t.Fatalf("alarms on %s of live runs: %v, want one", handler.MetricCancelsFailed, cancelsFailed)
	}
	props := get(tpl.resource(cancelsFailed[0]), "Properties")
	for key, want := range map[string]string{
		"Statistic": "Sum", "Threshold": "1", "EvaluationPeriods": "1",
		"ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
	} {
		if n := get(props, key); n == nil || n.Value != want {
			t.Errorf("alarm %s: %s is %v, want %s", cancelsFailed[0], key, plain(n), want)
		}
	}
	errorsAlarm := get(tpl.resource("ErrorsAlarm"), "Properties")
	for _, key := range []string{"AlarmActions", "OKActions"} {
		got, _ := json.Marshal(plain(get(props, key)))
		want, _ := json.Marshal(plain(get(errorsAlarm, key)))
		if string(got) != string(want) || get(props, key) == nil {
			t.Errorf("alarm %s: %s %s, want the other alarms' %s", cancelsFailed[0], key, got, want)
		}
	}
	// One period is one schedule period, as the missed-run alarm's.
	got, _ := json.Marshal(plain(get(props, "Period")))
	want, _ := json.Marshal(plain(get(tpl.resource("MissedRunAlarm"), "Properties", "Period")))
	if string(got) != string(want) {
		t.Errorf("alarm %s: Period %s, want the schedule period %s", cancelsFailed[0], got, want)
	}
}
