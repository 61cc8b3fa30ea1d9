package deploy_test

import (
	"bytes"
	"context"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ram"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"

	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/cfn"
	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

// These tests keep template.yaml and the code in step: the configuration
// contract (handler.EnvVars), the function's IAM permissions and the build.
// Each failure names the drift it found.

const templatePath = "template.yaml"

// cfnTemplate is template.yaml (or member-role.yaml) with the checks of
// these tests as methods.
type cfnTemplate struct {
	cfn.Template
}

func loadTemplate(t *testing.T) cfnTemplate {
	t.Helper()
	return cfnTemplate{cfn.Load(t, templatePath)}
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestTemplateEnvironmentIsTheConfigurationContract(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, fn := tpl.Function(t)

	variables := cfn.Get(fn, "Properties", "Environment", "Variables")
	set := cfn.Keys(variables)
	// Globals would add variables to every function.
	set = append(set, cfn.Keys(cfn.Get(tpl.Root, "Globals", "Function", "Environment", "Variables"))...)

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

	params := cfn.Get(tpl.Root, "Parameters")
	for _, v := range contract {
		node := cfn.Get(variables, v.Name)
		if node == nil {
			continue // reported above
		}
		if key, isKey := cfn.GetAtt(node, "Arn"); v.Name == "MARK_KEY_ID" && isKey {
			// The stack's own key, not a parameter: every deployment
			// signs its marks (checkMarkKey checks the key).
			if r := tpl.Resource(key); r == nil || cfn.Get(r, "Type").Value != "AWS::KMS::Key" {
				t.Errorf("MARK_KEY_ID: !GetAtt %s.Arn, want the ARN of the stack's AWS::KMS::Key", key)
			}
			continue
		}
		paramName, ok := cfn.Ref(node)
		if cond, p, conditional := conditionalRef(node); conditional {
			// Organization mode's variables: set only in that mode
			// (template_org_test.go checks which ones).
			if cond != orgCondition {
				t.Errorf("%s: set under condition %s, want %s or none", v.Name, cond, orgCondition)
			}
			paramName, ok = p, true
		}
		if !ok {
			t.Errorf("%s: set to %v, want !Ref of a parameter, so that it is configured at deploy time", v.Name, cfn.Plain(node))
			continue
		}
		if v.Name == "NOTIFY_TOPIC_ARN" {
			// The stack's own topic, not a parameter: notifications are on
			// in every deployment, and the role may publish to it only.
			if r := tpl.Resource(paramName); r == nil || cfn.Get(r, "Type").Value != "AWS::SNS::Topic" {
				t.Errorf("NOTIFY_TOPIC_ARN: !Ref %s, want !Ref of the stack's AWS::SNS::Topic", paramName)
			} else if cfn.Get(r, "Properties", "KmsMasterKeyId") == nil {
				t.Errorf("NOTIFY_TOPIC_ARN: topic %s is not encrypted (KmsMasterKeyId)", paramName)
			}
			continue
		}
		param := cfn.Get(params, paramName)
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
	if n := cfn.Get(param, "Type"); n != nil {
		typ = n.Value
	}

	def := cfn.Get(param, "Default")
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
	if n := cfn.Get(param, "AllowedValues"); n != nil {
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

	minNode, maxNode := cfn.Get(param, "MinValue"), cfn.Get(param, "MaxValue")
	if !v.Numeric {
		if typ != "String" {
			t.Errorf("%s: parameter Type is %q, want String", where, typ)
		}
		if minNode != nil || maxNode != nil {
			t.Errorf("drift: %s: the template bounds a value that the code does not read as a number (MinValue/MaxValue)", where)
		}
		return
	}
	if v.Integer {
		// Issue 22: a Number takes fractions, which the code refuses: an
		// integer is a String whose pattern accepts exactly the integers
		// of the code's range.
		if typ != "String" || cfn.Get(param, "AllowedPattern") == nil {
			t.Errorf("%s: parameter Type %q without an AllowedPattern: want a String whose pattern takes integers only", where, typ)
			return
		}
		for _, n := range integersAround(int(v.Min), int(v.Max)) {
			if got, want := cfn.Accepts(param, strconv.Itoa(n)), n >= int(v.Min) && n <= int(v.Max); got != want {
				t.Errorf("drift: %s: the template accepts %d: %v, the code: %v", where, n, got, want)
			}
		}
		for _, bad := range []string{"", "1.5", "24.5", "+1", "01", " 1", "1 ", "1e2", "-0"} {
			if cfn.Accepts(param, bad) {
				t.Errorf("%s: the template accepts %q, which is not an integer as the code reads one", where, bad)
			}
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
			t.Errorf("%s: the policy document is %v, want a mapping or a JSON string", where, cfn.Plain(doc))
			return nil
		}
		if err := json.Unmarshal([]byte(text), &policy); err != nil {
			t.Errorf("%s: the policy document is not JSON: %v", where, err)
			return nil
		}
	} else {
		policy = cfn.Plain(doc)
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
	fnID, fn := tpl.Function(t)
	roleID, ok := cfn.GetAtt(cfn.Get(fn, "Properties", "Role"), "Arn")
	if !ok {
		t.Fatalf("%s.Role is %v, want !GetAtt ROLE.Arn", fnID, cfn.Plain(cfn.Get(fn, "Properties", "Role")))
	}
	policies := cfn.Get(tpl.Resource(roleID), "Properties", "Policies")
	if policies == nil {
		t.Fatalf("%s has no Policies", roleID)
	}
	for i, p := range policies.Content {
		name := fmt.Sprintf("%s policy %d", roleID, i)
		if n := cfn.Get(p, "PolicyName"); n != nil {
			name = fmt.Sprintf("%s policy %s", roleID, n.Value)
		}
		doc := cfn.Get(p, "PolicyDocument")
		if doc == nil {
			t.Errorf("%s has no PolicyDocument", name)
			continue
		}
		got = append(got, grants(t, name, doc)...)
	}
	return roleID, got
}

func checkFunctionRole(t *testing.T, tpl cfnTemplate, org bool) {
	fnID, fn := tpl.Function(t)
	props := cfn.Get(fn, "Properties")

	if cfn.Get(props, "Policies") != nil {
		t.Errorf("%s sets Policies: with an explicit Role they would be ignored or widen SAM's generated role; grant in the role", fnID)
	}
	roleID, ok := cfn.GetAtt(cfn.Get(props, "Role"), "Arn")
	if !ok {
		t.Fatalf("%s.Role is %v, want !GetAtt ROLE.Arn of the role in template.yaml (SAM's generated role adds logs:* on *)", fnID, cfn.Plain(cfn.Get(props, "Role")))
	}
	role := tpl.Resource(roleID)
	if role == nil || cfn.Get(role, "Type").Value != "AWS::IAM::Role" {
		t.Fatalf("the function's role %s is not an AWS::IAM::Role of template.yaml", roleID)
	}
	if cfn.Get(role, "Properties", "ManagedPolicyArns") != nil {
		t.Errorf("%s has ManagedPolicyArns: managed policies grant more than the function needs", roleID)
	}
	trust, _ := json.Marshal(cfn.Plain(cfn.Get(role, "Properties", "AssumeRolePolicyDocument", "Statement")))
	// Safety III, item 5: Lambda of this account only, so that the member
	// roles' trust in this role cannot be borrowed.
	wantTrust := `[{"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"!Ref AWS::AccountId"}},"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"}}]`
	if string(trust) != wantTrust {
		t.Errorf("%s's trust policy is %s, want %s: only Lambda, for this account, may assume it", roleID, trust, wantTrust)
	}
	// No policy resource may attach more to the role, but the one that
	// lets it sign marks with the key whose policy names the role (in the
	// role's own Policies it would make a cycle).
	_, got := tpl.functionRoleGrants(t)
	resources := cfn.Get(tpl.Root, "Resources")
	for _, id := range cfn.Keys(resources) {
		switch typ := cfn.Get(resources, id, "Type").Value; {
		case id == "SignMarksPolicy" && typ == "AWS::IAM::RolePolicy":
			if role, ok := cfn.Ref(cfn.Get(resources, id, "Properties", "RoleName")); !ok || role != roleID {
				t.Errorf("%s is not attached to %s", id, roleID)
			}
			got = append(got, grants(t, id, cfn.Get(resources, id, "Properties", "PolicyDocument"))...)
		case typ == "AWS::IAM::Policy", typ == "AWS::IAM::ManagedPolicy", typ == "AWS::IAM::RolePolicy":
			t.Errorf("template.yaml has %s (%s): the function's permissions must all be in %s's Policies", id, typ, roleID)
		}
	}
	markKey, ok := cfn.GetAtt(cfn.Get(props, "Environment", "Variables", "MARK_KEY_ID"), "Arn")
	if !ok || cfn.Get(resources, markKey, "Type").Value != "AWS::KMS::Key" {
		t.Fatalf("MARK_KEY_ID is not !GetAtt of a KMS key of the template")
	}
	checkMarkKey(t, cfn.Get(resources, markKey, "Properties"), roleID)

	protectParam := tpl.EnvParameter(t, "PROTECT_TAG_KEY")
	logGroup, ok := cfn.Ref(cfn.Get(props, "LoggingConfig", "LogGroup"))
	if !ok {
		t.Errorf("LoggingConfig.LogGroup is %v, want !Ref of the function's own log group", cfn.Plain(cfn.Get(props, "LoggingConfig", "LogGroup")))
	}
	queue, ok := cfn.GetAtt(cfn.Get(props, "EventInvokeConfig", "DestinationConfig", "OnFailure", "Destination"), "Arn")
	if !ok {
		t.Errorf("EventInvokeConfig's OnFailure Destination is not !GetAtt QUEUE.Arn")
	}
	cancelARN := "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:capacity-reservation/*"
	markTagsOnly := `{"ForAllValues:StringEqualsIgnoreCase":{"aws:TagKeys":["odcr-autocancel:idle-since","odcr-autocancel:cancel-after","odcr-autocancel:mark-signature","odcr-autocancel:rightsize-to","odcr-autocancel:rightsize-since","odcr-autocancel:rightsize-after","odcr-autocancel:rightsize-signature"]},"Null":{"aws:TagKeys":"false"}}`
	topic, ok := cfn.Ref(cfn.Get(props, "Environment", "Variables", "NOTIFY_TOPIC_ARN"))
	if !ok {
		t.Errorf("NOTIFY_TOPIC_ARN is not !Ref of the stack's topic")
	}
	want := []grant{
		{"Allow", "ec2:DescribeCapacityReservations", "*", ""},
		{"Allow", "ec2:DescribeInstances", "*", ""},
		// What would launch into a reservation (issue 20): read only.
		{"Allow", "ec2:DescribeLaunchTemplateVersions", "*", ""},
		{"Allow", "autoscaling:DescribeAutoScalingGroups", "*", ""},
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
		// The marks' signatures, with the stack's key only.
		{"Allow", "kms:GenerateMac", "!GetAtt " + markKey + ".Arn", `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_256"}}`},
		{"Allow", "kms:VerifyMac", "!GetAtt " + markKey + ".Arn", `{"StringEquals":{"kms:MacAlgorithm":"HMAC_SHA_256"}}`},
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
	fnID, fn := tpl.Function(t)
	if m := cfn.Get(fn, "Metadata", "BuildMethod"); m == nil || m.Value != "makefile" {
		t.Fatalf("%s Metadata.BuildMethod is %v, want makefile", fnID, cfn.Plain(m))
	}
	for key, want := range map[string]string{"CodeUri": ".", "Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if n := cfn.Get(fn, "Properties", key); n == nil || n.Value != want {
			t.Errorf("%s.%s is %v, want %q", fnID, key, cfn.Plain(n), want)
		}
	}
	if a := cfn.Get(fn, "Properties", "Architectures"); a == nil || len(a.Content) != 1 || a.Content[0].Value != "arm64" {
		t.Errorf("%s.Architectures is %v, want [arm64]", fnID, cfn.Plain(a))
	}

	makefile, err := os.ReadFile("Makefile")
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
	for _, want := range []string{"-trimpath", "-tags lambda.norpc", `-ldflags "-s -w `, "-X github.com/odcr-autocancel/odcr-autocancel/internal/version.Version=$(VERSION)"} {
		if !strings.Contains(string(makefile), want) {
			t.Errorf("Makefile lacks %q in GOFLAGS_BOOTSTRAP", want)
		}
	}
	if _, err := os.Stat("cmd/odcr-autocancel/main.go"); err != nil {
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
	name := tpl.EnvParameter(t, "PROTECT_TAG_KEY")
	param := cfn.Get(tpl.Root, "Parameters", name)
	if n := cfn.Get(param, "MinLength"); n == nil || n.Value != "1" {
		t.Errorf("parameter %s: MinLength %v, want 1 (the code refuses an empty key)", name, cfn.Plain(n))
	}
	if n := cfn.Get(param, "MaxLength"); n == nil || n.Value != "128" {
		t.Errorf("parameter %s: MaxLength %v, want 128 (the code refuses longer keys)", name, cfn.Plain(n))
	}
	patternNode := cfn.Get(param, "AllowedPattern")
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
	def := cfn.Get(param, "Default")
	if def == nil || !templateAccepts(def.Value) {
		t.Errorf("parameter %s: Default %v does not match its own AllowedPattern", name, cfn.Plain(def))
	}
}

// subReference matches ${NAME} in a !Sub string; ${!Literal} is no
// reference.
var subReference = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// subTarget tells whether a !Sub string may reference name: a parameter, a
// resource or a resource's attribute, or a pseudo parameter.
func (tpl cfnTemplate) subTarget(name string) bool {
	id, _, _ := strings.Cut(name, ".")
	return strings.HasPrefix(name, "AWS::") || cfn.Get(tpl.Root, "Parameters", name) != nil || tpl.Resource(id) != nil
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
		if cfn.Get(tpl.Root, "Conditions", n.Content[0].Value) == nil {
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
	t.Fatalf("render: the test understands !Sub, !Join, !If, !Ref and !GetAtt, not %v", cfn.Plain(n))
	return "", false
}

// conditionalReferences checks that every reference under n to a resource
// that has a Condition is made under an !If on that condition: otherwise
// the stack fails whenever the condition is false.
func (tpl cfnTemplate) conditionalReferences(t *testing.T, where string, n *yaml.Node, holding []string) {
	t.Helper()
	check := func(name string) {
		id, _, _ := strings.Cut(name, ".")
		if c := cfn.Get(tpl.Resource(id), "Condition"); c != nil && !slices.Contains(holding, c.Value) {
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
		own := cfn.Keys(n.Content[1])
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
	resources := cfn.Get(tpl.Root, "Resources")
	for _, id := range cfn.Keys(resources) {
		if cfn.Get(resources, id, "Type").Value == typ {
			ids = append(ids, id)
		}
	}
	return ids
}

// emfMetricNames are the names of the metrics the code's EMF record
// declares.
func emfMetricNames() []string {
	var names []string
	for _, m := range emf.Metrics() {
		names = append(names, m.Name)
	}
	return names
}

// emfDimensionSet tells whether names (in any order) are exactly one of the
// record's dimension sets: a metric is identified by its whole dimension
// set, so a graph or an alarm on any other finds no data.
func emfDimensionSet(names []string) bool {
	got := slices.Sorted(slices.Values(names))
	for _, set := range emf.DimensionSets() {
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
	fnID, fn := tpl.Function(t)
	dashboards := tpl.resourcesOfType("AWS::CloudWatch::Dashboard")
	if len(dashboards) != 1 {
		t.Fatalf("template.yaml has %d dashboards %v, want one", len(dashboards), dashboards)
	}
	bodyNode := cfn.Get(tpl.Resource(dashboards[0]), "Properties", "DashboardBody")
	if bodyNode == nil || bodyNode.Tag != "!Sub" {
		t.Fatalf("%s's DashboardBody is %v, want a !Sub JSON string", dashboards[0], cfn.Plain(bodyNode))
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
				if ns != emf.Namespace {
					t.Errorf("%s: metric %s in namespace %q, the code writes %q", where, name, ns, emf.Namespace)
				}
				if !slices.Contains(metricNames, name) {
					t.Errorf("%s: metric %q is not one the code writes (emf.Metrics: %v)", where, name, metricNames)
				}
				dims := map[string]string{}
				var dimNames []string
				for j := 2; j+1 < len(parts); j += 2 {
					dims[parts[j]] = parts[j+1]
					dimNames = append(dimNames, parts[j])
				}
				if !emfDimensionSet(dimNames) {
					t.Errorf("%s: metric %s with dimensions %v, the code writes the sets %v", where, name, dimNames, emf.DimensionSets())
				}
				if dims[emf.DimensionFunctionName] != function {
					t.Errorf("%s: metric %s of function %q, want ${%s}", where, name, dims[emf.DimensionFunctionName], fnID)
				}
				if v := dims[emf.DimensionDryRun]; v != "true" && v != "false" {
					t.Errorf("%s: metric %s with DryRun %q, the code writes \"true\" or \"false\"", where, name, v)
				}
				graphed[name+"/"+dims[emf.DimensionDryRun]] = true
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
	for _, want := range []string{"Cancelled/false", "Marked/false", "Shrunk/false", emf.MetricCancelsFailed + "/false", "IdleFound/false", "IdleFound/true"} {
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
	logGroup, _ := cfn.Ref(cfn.Get(fn, "Properties", "LoggingConfig", "LogGroup"))
	q := queries[0]
	if !strings.HasPrefix(q, "SOURCE '<<"+logGroup+">>' |") {
		t.Errorf("log widget query %q does not read the function's log group ${%s}", q, logGroup)
	}
	if !strings.Contains(q, `filter logger = "`+handler.AuditLogger+`" and msg = "decision"`) {
		t.Errorf("log widget query %q does not select the audit trail's decision lines", q)
	}
	// The fields it shows are on every decision line the code writes.
	decision := decisionLine(t)
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

	outputs := cfn.Get(tpl.Root, "Outputs")
	if id, ok := cfn.Ref(cfn.Get(outputs, "DashboardName", "Value")); !ok || id != dashboards[0] {
		t.Errorf("output DashboardName is %v, want !Ref %s", cfn.Plain(cfn.Get(outputs, "DashboardName", "Value")), dashboards[0])
	}
	if url := cfn.Get(outputs, "DashboardUrl", "Value"); url == nil || url.Tag != "!Sub" || !strings.Contains(url.Value, "${"+dashboards[0]+"}") {
		t.Errorf("output DashboardUrl is %v, want a !Sub naming ${%s}", cfn.Plain(url), dashboards[0])
	}
}

// Alarms on the run metrics name a metric the code writes, in its
// namespace, with exactly one of its dimension sets (an alarm on an EMF
// metric must name the whole set), for this stack's function. The cancels
// failed alarm counts live runs over the schedule period and notifies like
// the other alarms.
func TestTemplateAlarmsOnRunMetrics(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, _ := tpl.Function(t)
	metricNames := emfMetricNames()
	var cancelsFailed []string
	for _, id := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		props := cfn.Get(tpl.Resource(id), "Properties")
		if ns := cfn.Get(props, "Namespace"); ns == nil || ns.Value != emf.Namespace {
			continue
		}
		name := cfn.Get(props, "MetricName").Value
		if !slices.Contains(metricNames, name) {
			t.Errorf("alarm %s: metric %q is not one the code writes (emf.Metrics: %v)", id, name, metricNames)
		}
		dims := map[string]*yaml.Node{}
		var dimNames []string
		if d := cfn.Get(props, "Dimensions"); d != nil {
			for _, item := range d.Content {
				n := cfn.Get(item, "Name").Value
				dims[n] = cfn.Get(item, "Value")
				dimNames = append(dimNames, n)
			}
		}
		if !emfDimensionSet(dimNames) {
			t.Errorf("alarm %s: dimensions %v, the code writes the sets %v: the alarm would find no data", id, dimNames, emf.DimensionSets())
		}
		if got, ok := cfn.Ref(dims[emf.DimensionFunctionName]); !ok || got != fnID {
			t.Errorf("alarm %s: FunctionName %v, want !Ref %s", id, cfn.Plain(dims[emf.DimensionFunctionName]), fnID)
		}
		dry := dims[emf.DimensionDryRun]
		if dry == nil || (dry.Value != "true" && dry.Value != "false") {
			t.Errorf("alarm %s: DryRun %v, want \"true\" or \"false\"", id, cfn.Plain(dry))
		}
		if name == emf.MetricCancelsFailed && dry != nil && dry.Value == "false" {
			cancelsFailed = append(cancelsFailed, id)
		}
	}
	if len(cancelsFailed) != 1 {
		t.Fatalf("alarms on %s of live runs: %v, want one", emf.MetricCancelsFailed, cancelsFailed)
	}
	props := cfn.Get(tpl.Resource(cancelsFailed[0]), "Properties")
	for key, want := range map[string]string{
		"Statistic": "Sum", "Threshold": "1", "EvaluationPeriods": "1",
		"ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "notBreaching",
	} {
		if n := cfn.Get(props, key); n == nil || n.Value != want {
			t.Errorf("alarm %s: %s is %v, want %s", cancelsFailed[0], key, cfn.Plain(n), want)
		}
	}
	errorsAlarm := cfn.Get(tpl.Resource("ErrorsAlarm"), "Properties")
	for _, key := range []string{"AlarmActions", "OKActions"} {
		got, _ := json.Marshal(cfn.Plain(cfn.Get(props, key)))
		want, _ := json.Marshal(cfn.Plain(cfn.Get(errorsAlarm, key)))
		if string(got) != string(want) || cfn.Get(props, key) == nil {
			t.Errorf("alarm %s: %s %s, want the other alarms' %s", cancelsFailed[0], key, got, want)
		}
	}
	// One period is one schedule period, as the missed-run alarm's.
	got, _ := json.Marshal(cfn.Plain(cfn.Get(props, "Period")))
	want, _ := json.Marshal(cfn.Plain(cfn.Get(tpl.Resource("MissedRunAlarm"), "Properties", "Period")))
	if string(got) != string(want) {
		t.Errorf("alarm %s: Period %s, want the schedule period %s", cancelsFailed[0], got, want)
	}
}

// decisionLine runs the function once, through the real SDK clients,
// against a fake account with one idle reservation, and returns the audit
// trail's decision line.
func decisionLine(t *testing.T) map[string]any {
	t.Helper()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	acct := fakeaws.New("111122223333")
	acct.SetClock(func() time.Time { return now })
	acct.Start()
	t.Cleanup(acct.Close)
	acct.AddReservation(fakeaws.Reservation{
		ID: "cr-00000000000000001", InstanceType: "m5.large", AvailabilityZone: "us-east-1a",
		TotalInstanceCount: 2, AvailableInstanceCount: 2, CreateDate: now.Add(-30 * 24 * time.Hour),
	})
	acct.SetUsedInstancesRegular("cr-00000000000000001", fakeaws.RegularSeries{From: now.Add(-8 * 24 * time.Hour), To: now, Value: 0})
	settings, err := handler.LoadSettings(func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger, err := handler.NewLogger("info", zapcore.AddSync(&logs))
	if err != nil {
		t.Fatal(err)
	}
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRET", "")}
	endpoint := aws.String(acct.URL())
	h := &handler.Handler{
		EC2:           ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = endpoint }),
		CloudWatch:    cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = endpoint }),
		RAM:           ram.NewFromConfig(cfg, func(o *ram.Options) { o.BaseEndpoint = endpoint }),
		AutoScaling:   autoscaling.NewFromConfig(cfg, func(o *autoscaling.Options) { o.BaseEndpoint = endpoint }),
		Region:        "us-east-1",
		Settings:      settings,
		Logger:        logger,
		Now:           func() time.Time { return now },
		CallerAccount: func(context.Context) (string, error) { return "111122223333", nil },
	}
	if _, err := h.Run(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var decision map[string]any
	for _, line := range bytes.Split(logs.Bytes(), []byte("\n")) {
		var l map[string]any
		if json.Unmarshal(line, &l) == nil && l["logger"] == handler.AuditLogger && l["msg"] == "decision" {
			decision = l
		}
	}
	if decision == nil {
		t.Fatalf("no decision line written:\n%s", logs.String())
	}
	return decision
}

// acceptanceProbes are values tried for every parameter the function reads:
// each one the template accepts must load. Boundaries, just inside and just
// outside, fractions, blanks and lists that end in a comma.
var acceptanceProbes = []string{
	"", " ", "0", "1", "1.5", "24.5", "49.99", "50", "50.5", "72", "90", "99.5", "100", "168", "999", "1000", "1001",
	"1511", "1512", "1513", "2159", "2160", "2161", "-1", "01", "+1", "1e2",
	"true", "false", "TRUE", "on", "off", "debug", "INFO", "verbose",
	"a", strings.Repeat("x", 128), strings.Repeat("x", 129), "é", "keep me", " keep", "keep ",
	"Name", "Name, ", "Name,,Owner", "Name, Owner", " Name", "Name ", "cost center", ",", "Name, cost center, Team",
	"=v", "k=v", "k=", "k= v", "k =v", "key=" + strings.Repeat("v", 256), "key=" + strings.Repeat("v", 257),
	strings.Repeat("k", 128) + "=v", strings.Repeat("k", 129) + "=v",
	"self", "organization", "all", "SELF", "111122223333", "111122223333, 444455556666", "111122223333,", "11112222333",
	"eu-west-1", "eu-west-1,us-east-1", "us-gov-west-1", "eu-west-1,eu-west-1",
	"ou-ab12-cdef3456", "r-ab12", "ou-ab12-cdef3456, r-ab12", "ou-ab12",
	"m5.large", "m5.large, c6g.xlarge", "m5", "us-east-1a", "us-east-1a, us-west-2-lax-1a",
	"odcr-autocancel:protect", "odcr-autocancel-member", "role/x", strings.Repeat("r", 64), strings.Repeat("r", 65),
}

// Issue 22: every value the stack accepts, the function accepts. For each
// parameter the function reads, every probe the template accepts (its
// type, allowed values, pattern, lengths, bounds) loads with LoadSettings;
// and every combination of the parameters the code checks together loads
// when the template's Rules accept it, but for the one pair CloudFormation
// cannot compare (GraceHours over LookbackHours), which the function refuses
// at start naming both.
func TestEveryValueTheStackAcceptsTheFunctionAccepts(t *testing.T) {
	// Organization mode on: every variable is set from its parameter.
	tpl := loadTemplate(t).resolved(t, map[string]bool{orgCondition: true})
	_, fn := tpl.Function(t)
	variables := cfn.Get(fn, "Properties", "Environment", "Variables")
	params := cfn.Get(tpl.Root, "Parameters")
	paramOf := map[string]string{} // variable -> parameter
	for _, name := range cfn.Keys(variables) {
		if p, ok := cfn.Ref(cfn.Get(variables, name)); ok && cfn.Get(params, p) != nil {
			paramOf[name] = p
		}
	}
	for _, v := range []string{"ACCOUNTS", "ORGANIZATIONAL_UNITS", "LOOKBACK_HOURS", "GRACE_HOURS", "NOTIFY_TAGS", "REQUIRED_TAG"} {
		if paramOf[v] == "" {
			t.Fatalf("%s is not set from a parameter in organization mode", v)
		}
	}
	load := func(env map[string]string) error {
		_, err := handler.LoadSettings(func(k string) (string, bool) {
			if k == "MARK_KEY_ID" { // !GetAtt MarkKey.Arn: a key's ARN
				return "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", true
			}
			v, ok := env[k]
			return v, ok
		})
		return err
	}
	// graceOverLookback is the one pair CloudFormation cannot compare: the
	// function refuses it at start, naming both.
	graceOverLookback := func(env map[string]string) bool {
		get := func(k, def string) int {
			if v, ok := env[k]; ok {
				n, _ := strconv.Atoi(v)
				return n
			}
			n, _ := strconv.Atoi(def)
			return n
		}
		return get("GRACE_HOURS", "72") > get("LOOKBACK_HOURS", "168")
	}
	checkLoads := func(env map[string]string, what string) {
		t.Helper()
		err := load(env)
		if graceOverLookback(env) {
			if err == nil || !strings.Contains(err.Error(), "LOOKBACK_HOURS") || !strings.Contains(err.Error(), "GRACE_HOURS") {
				t.Errorf("%s: a grace over the lookback: %v, want refused at start naming both", what, err)
			}
			return
		}
		if err != nil {
			t.Errorf("the stack accepts %s, the function refuses it: %v", what, err)
		}
	}
	for _, variable := range slices.Sorted(maps.Keys(paramOf)) {
		param := cfn.Get(params, paramOf[variable])
		probes := slices.Clone(acceptanceProbes)
		if d := cfn.Get(param, "Default"); d != nil {
			probes = append(probes, d.Value, d.Value+", ", " "+d.Value, d.Value+",")
		}
		if allowed := cfn.Get(param, "AllowedValues"); allowed != nil {
			for _, v := range allowed.Content {
				probes = append(probes, v.Value)
			}
		}
		accepted := 0
		rules := cfn.Get(tpl.Root, "Rules")
		for _, p := range probes {
			// The others at their Default: the Rules must accept that too.
			if !cfn.Accepts(param, p) || !rulesAccept(t, rules, params, map[string]string{paramOf[variable]: p}) {
				continue
			}
			accepted++
			checkLoads(map[string]string{variable: p}, fmt.Sprintf("%s=%q", paramOf[variable], p))
		}
		if accepted < 2 {
			t.Errorf("%s: only %d probes accepted: the test checks too little", paramOf[variable], accepted)
		}
	}

	// member-role.yaml's parameters the code reads through its own
	// settings: the role's name and the protect tag key.
	member := cfn.Get(loadMemberRole(t).Root, "Parameters")
	for param, variable := range map[string]string{"RoleName": "MEMBER_ROLE_NAME", "ProtectTagKey": "PROTECT_TAG_KEY"} {
		node := cfn.Get(member, param)
		if node == nil {
			t.Errorf("member-role.yaml has no parameter %s", param)
			continue
		}
		probes := slices.Clone(acceptanceProbes)
		if d := cfn.Get(node, "Default"); d != nil {
			probes = append(probes, d.Value)
		}
		for _, p := range probes {
			if cfn.Accepts(node, p) {
				checkLoads(map[string]string{variable: p}, fmt.Sprintf("member-role.yaml %s=%q", param, p))
			}
		}
	}

	// The pairs the code checks together.
	rules := cfn.Get(tpl.Root, "Rules")
	if rules == nil {
		t.Error("template.yaml has no Rules: OrganizationalUnits without Accounts=organization would deploy, and every run fail")
	}
	for _, pair := range [][2]string{{"ACCOUNTS", "ORGANIZATIONAL_UNITS"}, {"LOOKBACK_HOURS", "GRACE_HOURS"}, {"ACCOUNTS", "EXCLUDED_ACCOUNTS"}} {
		a, b := cfn.Get(params, paramOf[pair[0]]), cfn.Get(params, paramOf[pair[1]])
		for _, va := range acceptanceProbes {
			for _, vb := range acceptanceProbes {
				if !cfn.Accepts(a, va) || !cfn.Accepts(b, vb) {
					continue
				}
				values := map[string]string{paramOf[pair[0]]: va, paramOf[pair[1]]: vb}
				if !rulesAccept(t, rules, params, values) {
					continue
				}
				checkLoads(map[string]string{pair[0]: va, pair[1]: vb}, fmt.Sprint(values))
			}
		}
	}
}

// rulesAccept evaluates the template's Rules for the parameter values given
// (the others at their Default): Fn::Equals, Fn::Not, Fn::And, Fn::Or and
// Fn::Contains over !Ref and literals, as the template uses them.
func rulesAccept(t *testing.T, rules, params *yaml.Node, values map[string]string) bool {
	t.Helper()
	value := func(n *yaml.Node) any {
		if name, ok := cfn.Ref(n); ok {
			if v, ok := values[name]; ok {
				return v
			}
			if d := cfn.Get(params, name, "Default"); d != nil {
				return d.Value
			}
			t.Fatalf("rule refers to %s, which has no value", name)
		}
		return cfn.Plain(n)
	}
	var eval func(n *yaml.Node) bool
	eval = func(n *yaml.Node) bool {
		fn, args := n.Tag, n.Content
		if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
			fn, args = "!"+strings.TrimPrefix(n.Content[0].Value, "Fn::"), n.Content[1].Content
		}
		switch fn {
		case "!Equals":
			return fmt.Sprint(value(args[0])) == fmt.Sprint(value(args[1]))
		case "!Not":
			return !eval(args[0])
		case "!And":
			for _, a := range args {
				if !eval(a) {
					return false
				}
			}
			return true
		case "!Or":
			for _, a := range args {
				if eval(a) {
					return true
				}
			}
			return false
		}
		t.Fatalf("a rule uses %s, which this test does not evaluate", fn)
		return false
	}
	for _, name := range cfn.Keys(rules) {
		r := cfn.Get(rules, name)
		if c := cfn.Get(r, "RuleCondition"); c != nil && !eval(c) {
			continue
		}
		for _, a := range cfn.Get(r, "Assertions").Content {
			if !eval(cfn.Get(a, "Assert")) {
				return false
			}
		}
	}
	return true
}

// Issue 24: the read-only policy a preview needs (docs/preview-policy.json)
// holds exactly the function role's reads: the Describe, Get and List
// actions it is granted.
func TestPreviewPolicyIsTheFunctionsReads(t *testing.T) {
	tpl := loadTemplate(t).resolved(t, map[string]bool{orgCondition: false})
	_, grants := tpl.functionRoleGrants(t)
	var want []string
	for _, g := range grants {
		_, op, _ := strings.Cut(g.Action, ":")
		if strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List") {
			want = append(want, g.Action)
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	data, err := os.ReadFile("docs/preview-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   []string
			Resource string
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != "2012-10-17" || len(doc.Statement) != 1 || doc.Statement[0].Effect != "Allow" {
		t.Fatalf("docs/preview-policy.json: %v %+v", err, doc)
	}
	got := slices.Sorted(slices.Values(doc.Statement[0].Action))
	if !slices.Equal(got, want) {
		t.Errorf("docs/preview-policy.json allows %v, the function role reads with %v", got, want)
	}
}

// integersAround is every integer from lo-5 to hi+5 when the range is
// small; for a wide one, those near each bound and each power of ten, and
// a spread between.
func integersAround(lo, hi int) []int {
	if hi-lo <= 20_000 {
		var out []int
		for n := lo - 5; n <= hi+5; n++ {
			out = append(out, n)
		}
		return out
	}
	var out []int
	for _, c := range []int{lo, hi} {
		for n := c - 5; n <= c+5; n++ {
			out = append(out, n)
		}
	}
	for p := 1; p <= hi*10; p *= 10 {
		out = append(out, p-1, p, p+1)
	}
	for n := lo; n <= hi; n += (hi - lo) / 997 {
		out = append(out, n)
	}
	return out
}

// checkMarkKey: the key that signs marks is an HMAC key, administered by
// the account, and no one but the function's role may sign with it.
func checkMarkKey(t *testing.T, props *yaml.Node, roleID string) {
	t.Helper()
	if spec, usage := cfn.Get(props, "KeySpec").Value, cfn.Get(props, "KeyUsage").Value; spec != "HMAC_256" || usage != "GENERATE_VERIFY_MAC" {
		t.Errorf("the mark key is %s/%s, want HMAC_256/GENERATE_VERIFY_MAC", spec, usage)
	}
	stmts, _ := json.Marshal(cfn.Plain(cfn.Get(props, "KeyPolicy", "Statement")))
	for _, want := range []string{
		`"Action":"kms:*","Effect":"Allow","Principal":{"AWS":"arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}`,
		`{"Action":"kms:GenerateMac","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"!GetAtt ` + roleID + `.Arn"}},"Effect":"Deny","Principal":"*","Resource":"*"`,
	} {
		if !strings.Contains(string(stmts), want) {
			t.Errorf("the mark key's policy %s lacks %s", stmts, want)
		}
	}
}
