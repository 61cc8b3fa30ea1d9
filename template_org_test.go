package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/odcr-autocancel/odcr-autocancel/emf"
	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/internal/cfn"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

// Organization mode in template.yaml and member-role.yaml (issue 12): off,
// the stack is the single-account stack; on, the state machine runs the
// function once per target as the contract between them says, and the
// member role grants in every account what the function's role grants in
// its own.

const memberRolePath = "member-role.yaml"

// orgCondition is the condition of everything organization mode adds.
const orgCondition = "OrganizationMode"

// orgParameters are the parameters only organization mode reads.
var orgParameters = []string{"OrganizationMode", "Accounts", "Regions", "OrganizationalUnits", "ExcludedAccounts", "MemberRoleName", "MaxConcurrency"}

// orgVariables are the function's variables set only in organization mode.
var orgVariables = []string{"ACCOUNTS", "REGIONS", "ORGANIZATIONAL_UNITS", "EXCLUDED_ACCOUNTS", "MEMBER_ROLE_NAME", "MAX_CONCURRENCY"}

// organizationGrants are what organization mode adds to the function's
// role: list the targets, assume the member role, and act in every region
// of its own account (a target like any other, run with this role), with
// the same conditions as in its own region.
var organizationGrants = []grant{
	{"Allow", "sts:AssumeRole", "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}", ""},
	{"Allow", "organizations:ListAccounts", "*", ""},
	{"Allow", "organizations:ListAccountsForParent", "*", ""},
	{"Allow", "organizations:ListChildren", "*", ""},
	{"Allow", "ec2:DescribeRegions", "*", ""},
	{"Allow", "ec2:CancelCapacityReservation", ownAccountEveryRegion, `{"Null":{"aws:ResourceTag/${ProtectTagKey}":"true"}}`},
	{"Allow", "ec2:ModifyCapacityReservation", ownAccountEveryRegion, `{"Null":{"aws:ResourceTag/${ProtectTagKey}":"true"}}`},
	{"Allow", "ec2:CreateTags", ownAccountEveryRegion, markTagsOnlyCondition},
	{"Allow", "ec2:DeleteTags", ownAccountEveryRegion, markTagsOnlyCondition},
	{"Allow", "ec2:GetGroupsForCapacityReservation", ownAccountEveryRegion, ""},
}

const (
	ownAccountEveryRegion = "arn:${AWS::Partition}:ec2:*:${AWS::AccountId}:capacity-reservation/*"
	markTagsOnlyCondition = `{"ForAllValues:StringEqualsIgnoreCase":{"aws:TagKeys":["odcr-autocancel:idle-since","odcr-autocancel:cancel-after","odcr-autocancel:mark-signature","odcr-autocancel:rightsize-to","odcr-autocancel:rightsize-since","odcr-autocancel:rightsize-after","odcr-autocancel:rightsize-signature"]},"Null":{"aws:TagKeys":"false"}}`
)

// lambdaServiceErrors are the only errors a Lambda task of the state
// machine retries: Lambda's own, never the function's answer.
var lambdaServiceErrors = []string{
	"Lambda.TooManyRequestsException",
	"Lambda.ServiceException",
	"Lambda.AWSLambdaException",
	"Lambda.SdkClientException",
}

// conditionalRef recognizes !If [COND, !Ref PARAM, !Ref AWS::NoValue].
func conditionalRef(n *yaml.Node) (cond, param string, ok bool) {
	if n == nil || n.Tag != "!If" || n.Kind != yaml.SequenceNode || len(n.Content) != 3 {
		return "", "", false
	}
	p, ok1 := cfn.Ref(n.Content[1])
	none, ok2 := cfn.Ref(n.Content[2])
	if !ok1 || !ok2 || none != "AWS::NoValue" {
		return "", "", false
	}
	return n.Content[0].Value, p, true
}

// resolved returns a copy of the template with the given conditions
// decided: resources and outputs of a false condition removed, each !If on
// a decided condition replaced by its branch, and AWS::NoValue removed from
// mappings and lists, as CloudFormation does.
func (tpl cfnTemplate) resolved(t *testing.T, conds map[string]bool) cfnTemplate {
	t.Helper()
	for c := range conds {
		if cfn.Get(tpl.Root, "Conditions", c) == nil {
			t.Fatalf("no condition %s in the template", c)
		}
	}
	root := resolveNode(tpl.Root, conds)
	for _, section := range []string{"Resources", "Outputs"} {
		sec := cfn.Get(root, section)
		if sec == nil {
			continue
		}
		var kept []*yaml.Node
		for i := 0; i+1 < len(sec.Content); i += 2 {
			if c := cfn.Get(sec.Content[i+1], "Condition"); c != nil {
				if v, decided := conds[c.Value]; decided && !v {
					continue
				}
			}
			kept = append(kept, sec.Content[i], sec.Content[i+1])
		}
		sec.Content = kept
	}
	return cfnTemplate{cfn.Template{Root: root}}
}

// resolveNode copies n, deciding the !If of conds; nil stands for
// AWS::NoValue.
func resolveNode(n *yaml.Node, conds map[string]bool) *yaml.Node {
	if n == nil {
		return nil
	}
	if n.Tag == "!If" && n.Kind == yaml.SequenceNode && len(n.Content) == 3 {
		if v, decided := conds[n.Content[0].Value]; decided {
			if v {
				return resolveNode(n.Content[1], conds)
			}
			return resolveNode(n.Content[2], conds)
		}
	}
	if r, ok := cfn.Ref(n); ok && r == "AWS::NoValue" {
		return nil
	}
	c := *n
	c.Content = nil
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := resolveNode(n.Content[i+1], conds); v != nil {
				c.Content = append(c.Content, n.Content[i], v)
			}
		}
	default:
		for _, item := range n.Content {
			v := resolveNode(item, conds)
			switch {
			case v != nil:
				c.Content = append(c.Content, v)
			case n.Tag == "!If":
				// An undecided !If keeps its AWS::NoValue branch.
				c.Content = append(c.Content, item)
			}
		}
	}
	return &c
}

// mentions lists the parameters, resources and conditions of names that n
// refers to (!Ref, !GetAtt, ${...} of !Sub, !If and Condition).
func mentions(n *yaml.Node, names []string) []string {
	var found []string
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		var cands []string
		switch {
		case n.Tag == "!Ref", n.Tag == "!GetAtt" && n.Kind == yaml.ScalarNode:
			cands = append(cands, n.Value)
		case n.Tag == "!Sub" && n.Kind == yaml.ScalarNode:
			for _, m := range subReference.FindAllStringSubmatch(n.Value, -1) {
				cands = append(cands, m[1])
			}
		case n.Tag == "!If" && len(n.Content) == 3:
			cands = append(cands, n.Content[0].Value)
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch n.Content[i].Value {
				case "Ref", "Condition":
					cands = append(cands, n.Content[i+1].Value)
				}
			}
		}
		for _, c := range cands {
			id, _, _ := strings.Cut(c, ".")
			if slices.Contains(names, id) && !slices.Contains(found, id) {
				found = append(found, id)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
	return found
}

// The default stack is today's single-account stack: with OrganizationMode
// off nothing of organization mode is created, referenced or set. Every
// resource organization mode adds carries its condition, every addition to
// a resource that exists in both modes is an !If on it.
//
// With ODCR_BASE_TEMPLATE set to a template from before organization mode,
// the resolved Resources, Outputs, Conditions and Mappings must equal that
// template's:
//
//	git show a4a0d13:template.yaml >/tmp/base.yaml
//	ODCR_BASE_TEMPLATE=/tmp/base.yaml go test ./handler/ -run OrganizationModeOff
func TestTemplateOrganizationModeOffIsTheSingleAccountStack(t *testing.T) {
	full := loadTemplate(t)
	if c := cfn.Get(full.Root, "Conditions", orgCondition); c == nil {
		t.Fatalf("template.yaml has no condition %s", orgCondition)
	} else if got, _ := json.Marshal(cfn.Plain(c)); string(got) != `"!Equals [\"!Ref OrganizationMode\",\"on\"]"` {
		t.Errorf("condition %s is %s, want !Equals [!Ref OrganizationMode, \"on\"]", orgCondition, got)
	}
	if d := cfn.Get(full.Root, "Parameters", "OrganizationMode", "Default"); d == nil || d.Value != "off" {
		t.Errorf("parameter OrganizationMode: Default %v, want off", cfn.Plain(d))
	}
	// A resource that exists only in organization mode says so itself.
	var orgResources []string
	for _, id := range cfn.Keys(cfn.Get(full.Root, "Resources")) {
		if c := cfn.Get(full.Resource(id), "Condition"); c != nil && c.Value == orgCondition {
			orgResources = append(orgResources, id)
		}
	}
	for _, typ := range []string{"AWS::Serverless::StateMachine"} {
		for _, id := range full.resourcesOfType(typ) {
			if !slices.Contains(orgResources, id) {
				t.Errorf("%s (%s) exists without condition %s", id, typ, orgCondition)
			}
		}
	}

	off := full.resolved(t, map[string]bool{orgCondition: false})
	// The single-account stack's resources. A resource added to the
	// default stack changes every deployment: add it here knowingly.
	singleAccount := []string{
		"AlarmEmailTopic", "CancelsFailedAlarm", "Dashboard", "ErrorsAlarm", "FailedRunsAlarm", "FailedRunsQueue",
		"FunctionLogGroup", "FunctionRole", "MarkKey", "MarkKeyAlias", "MissedRunAlarm", "NotifyEmailSubscription", "NotifyTopic",
		"OdcrAutocancelFunction", "SignMarksPolicy",
	}
	if got := slices.Sorted(slices.Values(cfn.Keys(cfn.Get(off.Root, "Resources")))); !slices.Equal(got, singleAccount) {
		t.Errorf("with OrganizationMode off the resources are %v, want the single-account stack's %v (a resource of organization mode needs Condition: %s)", got, singleAccount, orgCondition)
	}
	names := append(slices.Clone(orgParameters), orgResources...)
	for _, section := range []string{"Resources", "Outputs"} {
		sec := cfn.Get(off.Root, section)
		for _, id := range cfn.Keys(sec) {
			if m := mentions(cfn.Get(sec, id), names); len(m) > 0 {
				t.Errorf("with OrganizationMode off, %s %s still refers to %v: put it under condition %s", section, id, m, orgCondition)
			}
		}
	}

	// The function's variables are exactly today's.
	_, fn := off.Function(t)
	set := cfn.Keys(cfn.Get(fn, "Properties", "Environment", "Variables"))
	var want []string
	for _, v := range handler.EnvVars() {
		if !slices.Contains(orgVariables, v.Name) {
			want = append(want, v.Name)
		}
	}
	slices.Sort(set)
	slices.Sort(want)
	if !slices.Equal(set, want) {
		t.Errorf("with OrganizationMode off the function's variables are %v, want %v", set, want)
	}
	_, fnOn := full.resolved(t, map[string]bool{orgCondition: true}).Function(t)
	for _, name := range orgVariables {
		if cfn.Get(fnOn, "Properties", "Environment", "Variables", name) == nil {
			t.Errorf("with OrganizationMode on, the function does not set %s", name)
		}
	}

	// Today's concurrency and schedule.
	if got, _ := json.Marshal(cfn.Plain(cfn.Get(fn, "Properties", "ReservedConcurrentExecutions"))); string(got) != `"!If [\"ReserveOneConcurrency\",\"1\",\"!Ref AWS::NoValue\"]"` {
		t.Errorf("with OrganizationMode off, ReservedConcurrentExecutions is %s, want today's !If [ReserveOneConcurrency, 1, !Ref AWS::NoValue]", got)
	}
	if s, ok := cfn.Ref(cfn.Get(fn, "Properties", "Events", "Schedule", "Properties", "State")); !ok || s != "ScheduleState" {
		t.Errorf("with OrganizationMode off, the function's schedule State is %v, want !Ref ScheduleState", cfn.Plain(cfn.Get(fn, "Properties", "Events", "Schedule", "Properties", "State")))
	}

	base := os.Getenv("ODCR_BASE_TEMPLATE")
	if base == "" {
		return
	}
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	before := cfnTemplate{cfn.Template{Root: doc.Content[0]}}.resolved(t, nil)
	for _, section := range []string{"Resources", "Outputs", "Conditions", "Mappings"} {
		a, b := cfn.Get(off.Root, section), cfn.Get(before.Root, section)
		for _, id := range slices.Sorted(slices.Values(append(cfn.Keys(a), cfn.Keys(b)...))) {
			if section == "Conditions" && id == orgCondition {
				continue
			}
			ga, _ := json.Marshal(cfn.Plain(cfn.Get(a, id)))
			gb, _ := json.Marshal(cfn.Plain(cfn.Get(b, id)))
			if string(ga) != string(gb) {
				t.Errorf("with OrganizationMode off, %s %s differs from %s's:\n got %s\nwant %s", section, id, base, ga, gb)
			}
		}
	}
}

// stateMachine returns the template's state machine, its definition as Go
// values, and its substitutions.
func (tpl cfnTemplate) stateMachine(t *testing.T) (id string, sm *yaml.Node, def map[string]any, subs map[string]*yaml.Node) {
	t.Helper()
	ids := tpl.resourcesOfType("AWS::Serverless::StateMachine")
	if len(ids) != 1 {
		t.Fatalf("template.yaml has %d AWS::Serverless::StateMachine resources %v, want one", len(ids), ids)
	}
	sm = tpl.Resource(ids[0])
	d := cfn.Get(sm, "Properties", "Definition")
	if d == nil || d.Kind != yaml.MappingNode {
		t.Fatalf("%s: no inline Definition", ids[0])
	}
	if hasIntrinsic(d) {
		t.Fatalf("%s: the Definition holds intrinsic functions; use DefinitionSubstitutions", ids[0])
	}
	def, _ = cfn.Plain(d).(map[string]any)
	subs = map[string]*yaml.Node{}
	s := cfn.Get(sm, "Properties", "DefinitionSubstitutions")
	for _, k := range cfn.Keys(s) {
		subs[k] = cfn.Get(s, k)
	}
	return ids[0], sm, def, subs
}

func hasIntrinsic(n *yaml.Node) bool {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return true
	}
	return slices.ContainsFunc(n.Content, hasIntrinsic)
}

// at follows keys through Go values decoded from the definition.
func at(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// checkRetry: a Lambda task has one retrier, on exactly Lambda's four
// service and throttling errors, and nothing else.
func checkRetry(t *testing.T, state string, s any, exactly bool) {
	t.Helper()
	retriers, _ := at(s, "Retry").([]any)
	if exactly && len(retriers) != 2 {
		t.Errorf("%s: %d retriers, want two: Lambda's throttling, then its other service errors %v", state, len(retriers), lambdaServiceErrors)
	}
	var all []string
	for _, r := range retriers {
		errs, _ := stringList(at(r, "ErrorEquals"))
		all = append(all, errs...)
		for _, e := range errs {
			if !slices.Contains(lambdaServiceErrors, e) {
				t.Errorf("%s retries %s: only Lambda's service errors %v may be retried (a target's failure is an answer)", state, e, lambdaServiceErrors)
			}
		}
		if js, _ := at(r, "JitterStrategy").(string); js != "FULL" {
			t.Errorf("%s: retrier without JitterStrategy FULL", state)
		}
	}
	if exactly && !slices.Equal(slices.Sorted(slices.Values(all)), slices.Sorted(slices.Values(lambdaServiceErrors))) {
		t.Errorf("%s retries %v, want exactly %v", state, all, lambdaServiceErrors)
	}
	// Issue 22, item 4: a throttled child waits minutes, not seconds: its
	// own retrier, first, backing off to five minutes a try.
	if exactly && len(retriers) == 2 {
		throttle := retriers[0]
		if errs, _ := stringList(at(throttle, "ErrorEquals")); !slices.Equal(errs, []string{"Lambda.TooManyRequestsException"}) ||
			at(throttle, "MaxDelaySeconds") != "300" || at(throttle, "MaxAttempts") != "10" {
			t.Errorf("%s: first retrier %v, want Lambda.TooManyRequestsException alone, 10 attempts backing off to 300 s", state, mustJSON(throttle))
		}
	}
}

// The state machine is the contract's (notes of issue 12): the states and
// their order, the retries and the catch, and each payload it sends is a
// request the function accepts, built from what the function answers.
func TestTemplateStateMachineIsTheContract(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, _ := tpl.Function(t)
	id, sm, def, subs := tpl.stateMachine(t)
	if c := cfn.Get(sm, "Condition"); c == nil || c.Value != orgCondition {
		t.Errorf("%s: Condition %v, want %s", id, cfn.Plain(c), orgCondition)
	}
	if n := cfn.Get(sm, "Properties", "Type"); n == nil || n.Value != "STANDARD" {
		t.Errorf("%s: Type %v, want STANDARD", id, cfn.Plain(n))
	}
	if got := at(def, "QueryLanguage"); got != "JSONata" {
		t.Errorf("QueryLanguage %v, want JSONata", got)
	}

	// Substitutions: every ${X} has one, every one is used.
	text := mustJSON(def)
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([^}]+)\}`).FindAllStringSubmatch(text, -1) {
		used[m[1]] = true
		if subs[m[1]] == nil {
			t.Errorf("the definition uses ${%s}, which DefinitionSubstitutions does not set", m[1])
		}
	}
	for k := range subs {
		if !used[k] {
			t.Errorf("DefinitionSubstitutions %s is not used by the definition", k)
		}
	}
	if got, ok := cfn.GetAtt(subs["FunctionArn"], "Arn"); !ok || got != fnID {
		t.Errorf("DefinitionSubstitutions FunctionArn is %v, want !GetAtt %s.Arn", cfn.Plain(subs["FunctionArn"]), fnID)
	}
	if got, ok := cfn.Ref(subs["MaxConcurrency"]); !ok || got != "MaxConcurrency" {
		t.Errorf("DefinitionSubstitutions MaxConcurrency is %v, want !Ref MaxConcurrency", cfn.Plain(subs["MaxConcurrency"]))
	}

	states, _ := at(def, "States").(map[string]any)
	wantStates := []string{"Alone", "AnotherExecutionRunning", "AnyTargets", "Collect", "Done", "ListTargets", "MorePages", "OneAtATime", "RunTargets", "Start"}
	if got := slices.Sorted(maps.Keys(states)); !slices.Equal(got, wantStates) {
		t.Fatalf("states %v, want %v", got, wantStates)
	}
	if at(def, "StartAt") != "Start" {
		t.Errorf("StartAt %v, want Start", at(def, "StartAt"))
	}
	// The flow: Start -> OneAtATime -> Alone -> AnotherExecutionRunning |
	// ListTargets -> AnyTargets -> RunTargets | Collect -> Collect ->
	// MorePages -> ListTargets | Done.
	for _, c := range []struct{ state, field, want string }{
		{"Start", "Type", "Pass"}, {"Start", "Next", "OneAtATime"},
		{"OneAtATime", "Type", "Task"}, {"OneAtATime", "Resource", "arn:aws:states:::aws-sdk:sfn:listExecutions"},
		{"OneAtATime", "Next", "Alone"}, {"OneAtATime", "Output", "{% $count($states.result.Executions) %}"},
		{"Alone", "Type", "Choice"}, {"Alone", "Default", "ListTargets"},
		{"AnotherExecutionRunning", "Type", "Fail"}, {"AnotherExecutionRunning", "Error", "ExecutionAlreadyRunning"},
		{"ListTargets", "Type", "Task"}, {"ListTargets", "Next", "AnyTargets"},
		{"AnyTargets", "Type", "Choice"}, {"AnyTargets", "Default", "Collect"},
		{"RunTargets", "Type", "Map"}, {"RunTargets", "Next", "Collect"},
		{"Collect", "Type", "Task"}, {"Collect", "Next", "MorePages"},
		{"MorePages", "Type", "Choice"}, {"MorePages", "Default", "Done"},
		{"Done", "Type", "Succeed"},
	} {
		if got := at(states, c.state, c.field); got != c.want {
			t.Errorf("%s.%s is %v, want %s", c.state, c.field, got, c.want)
		}
	}
	choice := func(state string) (cond, next string) {
		cs, _ := at(states, state, "Choices").([]any)
		if len(cs) != 1 {
			t.Fatalf("%s: %d choices, want one", state, len(cs))
		}
		cond, _ = at(cs[0], "Condition").(string)
		next, _ = at(cs[0], "Next").(string)
		return cond, next
	}
	if cond, next := choice("AnyTargets"); cond != "{% $count($states.input) > 0 %}" || next != "RunTargets" {
		t.Errorf("AnyTargets: %q -> %s, want a non-empty page -> RunTargets", cond, next)
	}
	if cond, next := choice("Alone"); cond != "{% $states.input > 1 %}" || next != "AnotherExecutionRunning" {
		t.Errorf("Alone: %q -> %s, want another running execution -> AnotherExecutionRunning", cond, next)
	}
	// Safety III, item 4: the running executions of this state machine,
	// itself included, at most two of them.
	for k, want := range map[string]any{"StateMachineArn": "{% $states.context.StateMachine.Id %}", "StatusFilter": "RUNNING", "MaxResults": "2"} {
		if got := at(states, "OneAtATime", "Arguments", k); got != want {
			t.Errorf("OneAtATime's %s is %v, want %v", k, got, want)
		}
	}
	if cond, next := choice("MorePages"); cond != "{% $after != '' %}" || next != "ListTargets" {
		t.Errorf("MorePages: %q -> %s, want another page -> ListTargets", cond, next)
	}

	// The variables: the run request, the page token, the totals.
	for k, want := range map[string]any{"request": "{% $states.input %}", "after": "{% '' %}", "totals": "null"} {
		if got, ok := at(states, "Start", "Assign").(map[string]any)[k]; !ok || got != want {
			t.Errorf("Start assigns %s = %v, want %v", k, got, want)
		}
	}
	if got := at(states, "Done", "Output"); got != "{% $totals %}" {
		t.Errorf("Done outputs %v, want the totals", got)
	}

	// Each Lambda task invokes this stack's function, and retries Lambda's
	// service errors only.
	runTarget := at(states, "RunTargets", "ItemProcessor", "States", "RunTarget")
	for name, s := range map[string]any{"ListTargets": states["ListTargets"], "Collect": states["Collect"], "RunTarget": runTarget} {
		if got := at(s, "Resource"); got != "arn:aws:states:::lambda:invoke" {
			t.Errorf("%s: Resource %v, want arn:aws:states:::lambda:invoke", name, got)
		}
		if got := at(s, "Arguments", "FunctionName"); got != "${FunctionArn}" {
			t.Errorf("%s: FunctionName %v, want ${FunctionArn}", name, got)
		}
		checkRetry(t, name, s, true)
		if name != "RunTarget" && at(s, "Catch") != nil {
			t.Errorf("%s catches errors: a failed listing or collect must fail the execution (and its alarm)", name)
		}
	}

	// The Distributed Map.
	m := states["RunTargets"]
	for _, c := range []struct {
		path []string
		want any
	}{
		{[]string{"ItemProcessor", "ProcessorConfig", "Mode"}, "DISTRIBUTED"},
		{[]string{"ItemProcessor", "ProcessorConfig", "ExecutionType"}, "STANDARD"},
		{[]string{"ItemProcessor", "StartAt"}, "RunTarget"},
		{[]string{"Items"}, "{% $states.input %}"},
		{[]string{"MaxConcurrency"}, "{% ${MaxConcurrency} %}"},
		{[]string{"ToleratedFailurePercentage"}, "100"},
		{[]string{"ItemProcessor", "States", "RunTarget", "Arguments", "Payload"}, "{% $states.input %}"},
		{[]string{"ItemProcessor", "States", "RunTarget", "Output"}, "{% $states.result.Payload %}"},
		{[]string{"ItemProcessor", "States", "RunTarget", "End"}, "true"},
		{[]string{"ItemProcessor", "States", "TargetFailed", "Type"}, "Pass"},
		{[]string{"ItemProcessor", "States", "TargetFailed", "End"}, "true"},
	} {
		if got := at(m, c.path...); got != c.want {
			t.Errorf("RunTargets.%s is %v, want %v", strings.Join(c.path, "."), got, c.want)
		}
	}
	if got := slices.Sorted(maps.Keys(at(m, "ItemProcessor", "States").(map[string]any))); !slices.Equal(got, []string{"RunTarget", "TargetFailed"}) {
		t.Errorf("the map's states are %v, want RunTarget and TargetFailed", got)
	}
	catchers, _ := at(runTarget, "Catch").([]any)
	if len(catchers) != 1 {
		t.Fatalf("RunTarget: %d catchers, want one on States.ALL", len(catchers))
	}
	if errs, _ := stringList(at(catchers[0], "ErrorEquals")); !slices.Equal(errs, []string{"States.ALL"}) || at(catchers[0], "Next") != "TargetFailed" {
		t.Errorf("RunTarget catches %v -> %v, want [States.ALL] -> TargetFailed", errs, at(catchers[0], "Next"))
	}

	// The payloads, with each JSONata expression replaced by what it
	// evaluates to in one plausible run. An expression missing from this
	// table fails the test: change it here with the contract.
	pages := []org.TargetPage{
		{Targets: []org.Target{{AccountID: "111122223333", Region: "eu-west-1"}, {AccountID: "444455556666", Region: "us-east-1"}}, Next: "444455556666", Accounts: 2},
		{Targets: []org.Target{}, Next: "", Accounts: 0},
	}
	page := map[string]any{}
	if err := json.Unmarshal([]byte(mustJSON(pages[0])), &page); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"targets", "next"} {
		if _, ok := page[field]; !ok {
			t.Errorf("the function's TargetPage has no field %q, which the state machine reads", field)
		}
	}
	if got := at(states, "ListTargets", "Assign", "after"); got != "{% $states.result.Payload.next %}" {
		t.Errorf("ListTargets assigns after = %v, want the page's next", got)
	}
	if got := at(states, "ListTargets", "Output"); got != "{% [$states.result.Payload.targets.($merge([$request, {'target': $, 'report': 'summary'}]))] %}" {
		t.Errorf("ListTargets outputs %v, want each of the page's targets merged into the run request", got)
	}
	if got := at(m, "ItemSelector"); got != nil {
		t.Errorf("RunTargets has an ItemSelector %v: the items are whole requests already", got)
	}
	if got := at(states, "Collect", "Assign", "totals"); got != "{% $states.result.Payload %}" {
		t.Errorf("Collect assigns totals = %v, want its answer", got)
	}

	target := pages[0].Targets[0]
	summary := mustJSON(org.TargetSummary{AccountID: target.AccountID, Region: target.Region, RunID: "r-1", DryRun: true, TargetCounts: org.TargetCounts{Reservations: 3, Idle: 1}})
	catchOutput, _ := at(catchers[0], "Output").(map[string]any)
	caught := map[string]any{}
	values := map[string]any{
		"{% $states.input.target.accountId %}": target.AccountID,
		"{% $states.input.target.region %}":    target.Region,
		"{% $states.errorOutput.Error %}":      "TargetError",
		"{% $exists($states.errorOutput.Cause) ? $substring($states.errorOutput.Cause, 0, 300) : '' %}": "cannot assume role",
	}
	for k, expr := range catchOutput {
		v, ok := values[fmt.Sprint(expr)]
		if !ok {
			t.Errorf("RunTarget's Catch output %s = %v: an expression this test does not know", k, expr)
		}
		caught[k] = v
	}
	if got := slices.Sorted(maps.Keys(caught)); !slices.Equal(got, []string{"accountId", "cause", "error", "region"}) {
		t.Errorf("RunTarget's Catch outputs %v, want accountId, region, error, cause", got)
	}

	var previous any
	if err := json.Unmarshal([]byte(mustJSON(org.Totals{Targets: 2, Succeeded: 2})), &previous); err != nil {
		t.Fatal(err)
	}
	var results []any
	for _, r := range []string{summary, mustJSON(caught)} {
		var v any
		_ = json.Unmarshal([]byte(r), &v)
		results = append(results, v)
	}
	type exchange struct {
		state string
		args  any
		vars  map[string]any
	}
	var sent []string
	for _, x := range []exchange{
		{"ListTargets", at(states, "ListTargets", "Arguments", "Payload"), map[string]any{"{% $after %}": ""}},
		{"ListTargets", at(states, "ListTargets", "Arguments", "Payload"), map[string]any{"{% $after %}": pages[0].Next}},
		{"Collect", at(states, "Collect", "Arguments", "Payload"), map[string]any{"{% $states.input %}": results, "{% $totals %}": nil, "{% $after = '' %}": false}},
		{"Collect", at(states, "Collect", "Arguments", "Payload"), map[string]any{"{% $states.input %}": []any{}, "{% $totals %}": previous, "{% $after = '' %}": true}},
	} {
		payload := substituteJSONata(t, x.state, x.args, x.vars)
		sent = append(sent, mustJSON(payload))
	}
	// A target's request: the execution's run request, its target, the
	// summary report (ListTargets' Output, $merge of the request).
	for _, request := range []map[string]any{{}, {"dryRun": true}, {"dryRun": false, "graceHours": 0}} {
		item := maps.Clone(request)
		item["target"] = target
		item["report"] = "summary"
		sent = append(sent, mustJSON(item))
	}
	for _, p := range sent {
		req, _, err := handler.ParseEvent([]byte(p))
		if err != nil {
			t.Errorf("the state machine sends %s, which the function refuses: %v", p, err)
			continue
		}
		if req.Target != nil && req.Report != handler.ReportSummary {
			t.Errorf("a target's request %s asks for the %q report, want %q", p, req.Report, handler.ReportSummary)
		}
	}
}

// substituteJSONata replaces every "{% ... %}" string of v by its value in
// vars; an unknown expression fails.
func substituteJSONata(t *testing.T, state string, v any, vars map[string]any) any {
	t.Helper()
	switch v := v.(type) {
	case string:
		if !strings.HasPrefix(v, "{%") {
			return v
		}
		val, ok := vars[v]
		if !ok {
			t.Errorf("%s sends %q: an expression this test does not know", state, v)
		}
		return val
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = substituteJSONata(t, state, x, vars)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = substituteJSONata(t, state, x, vars)
		}
		return out
	}
	return v
}

// The state machine's role and logging, its schedule and alarm, and the
// function in organization mode.
func TestTemplateStateMachineResources(t *testing.T) {
	full := loadTemplate(t)
	tpl := full.resolved(t, map[string]bool{orgCondition: true})
	fnID, fn := tpl.Function(t)
	id, sm, _, _ := tpl.stateMachine(t)
	props := cfn.Get(sm, "Properties")

	if n := cfn.Get(props, "Name"); n == nil || n.Tag != "!Sub" || n.Value != "${AWS::StackName}-organization" {
		t.Errorf("%s: Name %v, want !Sub ${AWS::StackName}-organization (the role's grants name it)", id, cfn.Plain(n))
	}
	if n := cfn.Get(props, "Logging", "IncludeExecutionData"); n == nil || n.Value != "false" {
		t.Errorf("%s: Logging.IncludeExecutionData %v, want false (the run requests and results stay out of the logs)", id, cfn.Plain(n))
	}
	if n := cfn.Get(props, "Logging", "Level"); n == nil || (n.Value != "ERROR" && n.Value != "ALL") {
		t.Errorf("%s: Logging.Level %v, want ERROR or ALL", id, cfn.Plain(n))
	}
	dests := cfn.Get(props, "Logging", "Destinations")
	if dests == nil || len(dests.Content) != 1 {
		t.Fatalf("%s: want one log destination", id)
	}
	logGroup, ok := cfn.GetAtt(cfn.Get(dests.Content[0], "CloudWatchLogsLogGroup", "LogGroupArn"), "Arn")
	lg := tpl.Resource(logGroup)
	if !ok || lg == nil || cfn.Get(lg, "Type").Value != "AWS::Logs::LogGroup" {
		t.Fatalf("%s logs to %v, want !GetAtt of a log group of the stack", id, cfn.Plain(cfn.Get(dests.Content[0], "CloudWatchLogsLogGroup", "LogGroupArn")))
	}
	for _, key := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
		if n := cfn.Get(lg, key); n == nil || n.Value != "Delete" {
			t.Errorf("log group %s: %s %v, want Delete like the function's", logGroup, key, cfn.Plain(n))
		}
	}
	if got, want := mustJSON(cfn.Plain(cfn.Get(lg, "Properties", "RetentionInDays"))), mustJSON(cfn.Plain(cfn.Get(tpl.Resource("FunctionLogGroup"), "Properties", "RetentionInDays"))); got != want {
		t.Errorf("log group %s keeps logs %s days, want the function's %s", logGroup, got, want)
	}

	// The role: exactly these grants.
	roleID, ok := cfn.GetAtt(cfn.Get(props, "Role"), "Arn")
	if !ok || cfn.Get(props, "Policies") != nil {
		t.Fatalf("%s: Role %v, want !GetAtt of a role of the stack, and no SAM Policies", id, cfn.Plain(cfn.Get(props, "Role")))
	}
	role := tpl.Resource(roleID)
	if c := cfn.Get(full.Resource(roleID), "Condition"); c == nil || c.Value != orgCondition {
		t.Errorf("role %s: Condition %v, want %s", roleID, cfn.Plain(c), orgCondition)
	}
	trust := mustJSON(cfn.Plain(cfn.Get(role, "Properties", "AssumeRolePolicyDocument", "Statement")))
	if want := `[{"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"!Ref AWS::AccountId"}},"Effect":"Allow","Principal":{"Service":"states.amazonaws.com"}}]`; trust != want {
		t.Errorf("role %s trusts %s, want %s", roleID, trust, want)
	}
	var got []grant
	for _, p := range cfn.Get(role, "Properties", "Policies").Content {
		got = append(got, grants(t, roleID, cfn.Get(p, "PolicyDocument"))...)
	}
	sfn := "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:"
	want := []grant{
		{"Allow", "lambda:InvokeFunction", "!GetAtt " + fnID + ".Arn", ""},
		{"Allow", "lambda:InvokeFunction", "${" + fnID + ".Arn}:*", ""},
		{"Allow", "states:StartExecution", sfn + "stateMachine:${AWS::StackName}-organization", ""},
		{"Allow", "states:ListExecutions", sfn + "stateMachine:${AWS::StackName}-organization", ""},
		{"Allow", "states:DescribeExecution", sfn + "execution:${AWS::StackName}-organization:*", ""},
		{"Allow", "states:DescribeExecution", sfn + "execution:${AWS::StackName}-organization/*", ""},
		{"Allow", "states:StopExecution", sfn + "execution:${AWS::StackName}-organization:*", ""},
		{"Allow", "states:StopExecution", sfn + "execution:${AWS::StackName}-organization/*", ""},
		{"Allow", "states:DescribeMapRun", sfn + "mapRun:${AWS::StackName}-organization/*", ""},
		{"Allow", "states:UpdateMapRun", sfn + "mapRun:${AWS::StackName}-organization/*", ""},
	}
	for _, a := range []string{"CreateLogDelivery", "GetLogDelivery", "UpdateLogDelivery", "DeleteLogDelivery", "ListLogDeliveries", "PutResourcePolicy", "DescribeResourcePolicies", "DescribeLogGroups"} {
		want = append(want, grant{"Allow", "logs:" + a, "*", ""})
	}
	slices.SortFunc(got, func(a, b grant) int { return strings.Compare(a.String(), b.String()) })
	slices.SortFunc(want, func(a, b grant) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(got, want) {
		t.Errorf("role %s grants\n%v\nwant\n%v", roleID, got, want)
	}

	// The schedule: the state machine's runs with "{}" like the function's
	// did; the function's is disabled.
	fnSchedule := cfn.Get(fn, "Properties", "Events", "Schedule", "Properties")
	if n := cfn.Get(fnSchedule, "State"); n == nil || n.Value != "DISABLED" {
		t.Errorf("with OrganizationMode on the function's schedule State is %v, want DISABLED", cfn.Plain(n))
	}
	smEvents := cfn.Get(props, "Events")
	if len(cfn.Keys(smEvents)) != 1 || cfn.Get(smEvents, "Schedule", "Type").Value != "ScheduleV2" {
		t.Fatalf("%s: events %v, want one ScheduleV2 named Schedule", id, cfn.Keys(smEvents))
	}
	smSchedule := cfn.Get(smEvents, "Schedule", "Properties")
	for _, key := range []string{"ScheduleExpression", "ScheduleExpressionTimezone", "Input", "OmitName", "RetryPolicy", "DeadLetterConfig"} {
		if g, w := mustJSON(cfn.Plain(cfn.Get(smSchedule, key))), mustJSON(cfn.Plain(cfn.Get(fnSchedule, key))); g != w || cfn.Get(smSchedule, key) == nil {
			t.Errorf("the state machine's schedule %s is %s, want the function's %s", key, g, w)
		}
	}
	if s, ok := cfn.Ref(cfn.Get(smSchedule, "State")); !ok || s != "ScheduleState" {
		t.Errorf("the state machine's schedule State is %v, want !Ref ScheduleState", cfn.Plain(cfn.Get(smSchedule, "State")))
	}

	// Concurrency: the map's width, not 1.
	if got := mustJSON(cfn.Plain(cfn.Get(fn, "Properties", "ReservedConcurrentExecutions"))); got != `"!If [\"ReserveOneConcurrency\",\"!Ref MaxConcurrency\",\"!Ref AWS::NoValue\"]"` {
		t.Errorf("with OrganizationMode on, ReservedConcurrentExecutions is %s, want MaxConcurrency (or none)", got)
	}
	mc := cfn.Get(tpl.Root, "Parameters", "MaxConcurrency")
	if cfn.Get(mc, "Type").Value != "String" || cfn.Get(mc, "AllowedPattern") == nil || cfn.Get(mc, "Default").Value != "10" {
		t.Errorf("parameter MaxConcurrency: %v, want an integer pattern (the function reads it too), default 10", cfn.Plain(mc))
	}

	// The alarm: failed or timed-out executions, notifying like the others.
	var alarm string
	for _, a := range tpl.resourcesOfType("AWS::CloudWatch::Alarm") {
		if strings.Contains(mustJSON(cfn.Plain(tpl.Resource(a))), "AWS/States") {
			alarm = a
		}
	}
	if alarm == "" {
		t.Fatal("no alarm on the state machine's executions")
	}
	if c := cfn.Get(full.Resource(alarm), "Condition"); c == nil || c.Value != orgCondition {
		t.Errorf("alarm %s: Condition %v, want %s", alarm, cfn.Plain(c), orgCondition)
	}
	var metrics []string
	for _, m := range cfn.Get(tpl.Resource(alarm), "Properties", "Metrics").Content {
		if stat := cfn.Get(m, "MetricStat", "Metric"); stat != nil {
			metrics = append(metrics, cfn.Get(stat, "MetricName").Value)
			dims := mustJSON(cfn.Plain(cfn.Get(stat, "Dimensions")))
			if dims != `[{"Name":"StateMachineArn","Value":"!Ref `+id+`"}]` {
				t.Errorf("alarm %s: dimensions %s, want StateMachineArn = !Ref %s", alarm, dims, id)
			}
		}
	}
	if slices.Sort(metrics); !slices.Equal(metrics, []string{"ExecutionsFailed", "ExecutionsTimedOut"}) {
		t.Errorf("alarm %s: metrics %v, want ExecutionsFailed and ExecutionsTimedOut", alarm, metrics)
	}
	for _, key := range []string{"AlarmActions", "OKActions"} {
		if g, w := mustJSON(cfn.Plain(cfn.Get(tpl.Resource(alarm), "Properties", key))), mustJSON(cfn.Plain(cfn.Get(tpl.Resource("ErrorsAlarm"), "Properties", key))); g != w {
			t.Errorf("alarm %s: %s %s, want the other alarms' %s", alarm, key, g, w)
		}
	}

	outputs := cfn.Get(tpl.Root, "Outputs")
	if r, ok := cfn.GetAtt(cfn.Get(outputs, "FunctionRoleArn", "Value"), "Arn"); !ok || r != "FunctionRole" {
		t.Errorf("output FunctionRoleArn is %v, want !GetAtt FunctionRole.Arn", cfn.Plain(cfn.Get(outputs, "FunctionRoleArn", "Value")))
	}
	if r, ok := cfn.Ref(cfn.Get(outputs, "StateMachineArn", "Value")); !ok || r != id {
		t.Errorf("output StateMachineArn is %v, want !Ref %s", cfn.Plain(cfn.Get(outputs, "StateMachineArn", "Value")), id)
	}
	if c := cfn.Get(full.Root, "Outputs", "FunctionRoleArn", "Condition"); c == nil || c.Value != orgCondition {
		t.Errorf("output FunctionRoleArn: Condition %v, want %s (mode off is today's stack, outputs included)", cfn.Plain(c), orgCondition)
	}
	if c := cfn.Get(full.Root, "Outputs", "StateMachineArn", "Condition"); c == nil || c.Value != orgCondition {
		t.Errorf("output StateMachineArn: Condition %v, want %s", cfn.Plain(c), orgCondition)
	}
}

func loadMemberRole(t *testing.T) cfnTemplate {
	t.Helper()
	data, err := os.ReadFile(memberRolePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("parse %s: %v", memberRolePath, err)
	}
	return cfnTemplate{cfn.Template{Root: doc.Content[0]}}
}

// The member role grants in every region of its account what the
// function's role grants in its own: the same EC2, CloudWatch and RAM
// actions with the same conditions (the protect tag, the mark keys), so
// that the two cannot drift apart; and it trusts the function's role only,
// inside the organization.
func TestMemberRoleIsTheFunctionRoleInEveryRegion(t *testing.T) {
	member := loadMemberRole(t)
	tpl := loadTemplate(t)
	on := tpl.resolved(t, map[string]bool{orgCondition: true})

	if cfn.Get(member.Root, "Transform") != nil {
		t.Errorf("%s has a Transform: a StackSet runs no macro", memberRolePath)
	}
	roles := member.resourcesOfType("AWS::IAM::Role")
	if len(roles) != 1 || len(cfn.Keys(cfn.Get(member.Root, "Resources"))) != 1 {
		t.Fatalf("%s: resources %v, want exactly one AWS::IAM::Role", memberRolePath, cfn.Keys(cfn.Get(member.Root, "Resources")))
	}
	role := cfn.Get(member.Resource(roles[0]), "Properties")
	if r, ok := cfn.Ref(cfn.Get(role, "RoleName")); !ok || r != "RoleName" {
		t.Errorf("member role: RoleName %v, want !Ref RoleName", cfn.Plain(cfn.Get(role, "RoleName")))
	}
	if n := cfn.Get(role, "MaxSessionDuration"); n == nil || n.Value != "3600" {
		t.Errorf("member role: MaxSessionDuration %v, want 3600", cfn.Plain(n))
	}
	if cfn.Get(role, "ManagedPolicyArns") != nil {
		t.Errorf("member role has ManagedPolicyArns")
	}

	// Parameters shared with template.yaml mean the same.
	for _, p := range []struct{ member, stack string }{{"ProtectTagKey", "ProtectTagKey"}, {"RoleName", "MemberRoleName"}} {
		a, b := cfn.Get(member.Root, "Parameters", p.member), cfn.Get(tpl.Root, "Parameters", p.stack)
		for _, key := range []string{"Type", "Default", "MinLength", "MaxLength", "AllowedPattern"} {
			if g, w := mustJSON(cfn.Plain(cfn.Get(a, key))), mustJSON(cfn.Plain(cfn.Get(b, key))); g != w {
				t.Errorf("%s parameter %s: %s %s, template.yaml's %s has %s", memberRolePath, p.member, key, g, p.stack, w)
			}
		}
	}
	for _, v := range handler.EnvVars() {
		if v.Name == "MEMBER_ROLE_NAME" {
			if d := cfn.Get(member.Root, "Parameters", "RoleName", "Default"); d == nil || d.Value != v.Default {
				t.Errorf("%s: RoleName Default %v, the code's MEMBER_ROLE_NAME default is %q", memberRolePath, cfn.Plain(d), v.Default)
			}
		}
	}
	for name, pattern := range map[string]string{"ManagementRoleArn": "", "OrganizationId": ""} {
		p := cfn.Get(member.Root, "Parameters", name)
		if p == nil || cfn.Get(p, "AllowedPattern") == nil || cfn.Get(p, "Default") != nil {
			t.Errorf("%s: parameter %s must exist with an AllowedPattern and no Default%s", memberRolePath, name, pattern)
		}
	}
	accepts := func(param, value string) bool {
		re := regexp.MustCompile(`^(?:` + cfn.Get(member.Root, "Parameters", param, "AllowedPattern").Value + `)$`)
		return re.MatchString(value)
	}
	for _, c := range []struct {
		param, value string
		ok           bool
	}{
		{"ManagementRoleArn", "arn:aws:iam::111122223333:role/odcr-autocancel-FunctionRole-AbCdEf123", true},
		{"ManagementRoleArn", "arn:aws-us-gov:iam::111122223333:role/path/odcr", true},
		{"ManagementRoleArn", "arn:aws:iam::111122223333:user/alice", false},
		{"ManagementRoleArn", "arn:aws:sts::111122223333:assumed-role/odcr/session", false},
		{"OrganizationId", "o-a1b2c3d4e5", true},
		{"OrganizationId", "o-123", false},
		{"OrganizationId", "r-ab12", false},
	} {
		if got := accepts(c.param, c.value); got != c.ok {
			t.Errorf("%s: parameter %s accepts %q: %v, want %v", memberRolePath, c.param, c.value, got, c.ok)
		}
	}

	// Trust: the management account, narrowed to the function's role and
	// the organization.
	st := cfn.Get(role, "AssumeRolePolicyDocument", "Statement")
	if st == nil || len(st.Content) != 1 {
		t.Fatalf("member role: want one trust statement")
	}
	s := st.Content[0]
	principal := cfn.Get(s, "Principal", "AWS")
	if principal == nil || principal.Tag != "!Sub" || principal.Kind != yaml.SequenceNode ||
		principal.Content[0].Value != "arn:${AWS::Partition}:iam::${ManagementAccountId}:root" ||
		mustJSON(cfn.Plain(cfn.Get(principal.Content[1], "ManagementAccountId"))) != `"!Select [\"4\",\"!Split [\\\":\\\",\\\"!Ref ManagementRoleArn\\\"]\"]"` {
		t.Errorf("member role trusts %v, want the root of the account of ManagementRoleArn (!Select [4, !Split [\":\", !Ref ManagementRoleArn]])", cfn.Plain(principal))
	}
	if len(cfn.Keys(cfn.Get(s, "Principal"))) != 1 {
		t.Errorf("member role trusts more principals: %v", cfn.Plain(cfn.Get(s, "Principal")))
	}
	cond := mustJSON(cfn.Plain(cfn.Get(s, "Condition")))
	if want := `{"ArnEquals":{"aws:PrincipalArn":"!Ref ManagementRoleArn"},"StringEquals":{"aws:PrincipalOrgID":"!Ref OrganizationId"}}`; cond != want {
		t.Errorf("member role trust condition %s, want %s", cond, want)
	}
	if g := mustJSON(cfn.Plain(cfn.Get(s, "Action"))); g != `"sts:AssumeRole"` || cfn.Get(s, "Effect").Value != "Allow" {
		t.Errorf("member role trust: %s, want Allow sts:AssumeRole", g)
	}

	// Permissions: the function role's EC2, CloudWatch and RAM grants, in
	// any region.
	var got []grant
	for _, p := range cfn.Get(role, "Policies").Content {
		got = append(got, grants(t, roles[0], cfn.Get(p, "PolicyDocument"))...)
	}
	_, fnGrants := on.functionRoleGrants(t)
	var want []grant
	for _, g := range fnGrants {
		service, _, _ := strings.Cut(g.Action, ":")
		if service == "ec2" || service == "cloudwatch" || service == "ram" || service == "autoscaling" {
			g.Resource = strings.Replace(g.Resource, ":ec2:${AWS::Region}:", ":ec2:*:", 1)
			want = append(want, g)
		}
	}
	if len(want) < 10 {
		t.Fatalf("only %d EC2/CloudWatch/RAM grants in the function's role: %v", len(want), want)
	}
	slices.SortFunc(got, func(a, b grant) int { return strings.Compare(a.String(), b.String()) })
	slices.SortFunc(want, func(a, b grant) int { return strings.Compare(a.String(), b.String()) })
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("the member role lacks the function role's %s", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("the member role grants %s, which the function's role does not (in its own region)", g)
		}
	}
}

// jsonataVariable finds the variables an expression reads: $name not
// followed by "(" (a function), nor bound in the expression itself with
// ":=".
var (
	jsonataVariable = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)\b(\s*\()?`)
	jsonataBinding  = regexp.MustCompile(`\$([A-Za-z_][A-Za-z0-9_]*)\s*:=`)
)

// outerVariables lists the variables the strings under v read that are
// neither $states nor among assigned.
func outerVariables(v any, assigned map[string]bool) []string {
	var out []string
	switch v := v.(type) {
	case string:
		if !strings.Contains(v, "{%") {
			return nil
		}
		bound := map[string]bool{}
		for _, m := range jsonataBinding.FindAllStringSubmatch(v, -1) {
			bound[m[1]] = true
		}
		for _, m := range jsonataVariable.FindAllStringSubmatch(v, -1) {
			if name := m[1]; m[2] == "" && name != "states" && !assigned[name] && !bound[name] {
				out = append(out, "$"+name)
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			out = append(out, outerVariables(v[k], assigned)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, outerVariables(x, assigned)...)
		}
	}
	return out
}

// assignedVariables lists every variable an Assign under v sets.
func assignedVariables(v any, into map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "Assign" {
				if a, ok := x.(map[string]any); ok {
					for name := range a {
						into[name] = true
					}
				}
			}
			assignedVariables(x, into)
		}
	case []any:
		for _, x := range v {
			assignedVariables(x, into)
		}
	}
}

// Safety III, item 4: a Distributed Map cannot read the variables of the
// execution around it (AWS documents it; JSONata drops an undefined
// variable silently, so a manual {"dryRun": true} execution whose map read
// $request would run every target with the deployed DRY_RUN). Every
// variable a Distributed Map state reads, in any of its fields and states,
// is assigned inside it ($states aside).
func TestDistributedMapReadsNoVariableOfTheExecution(t *testing.T) {
	tpl := loadTemplate(t).resolved(t, map[string]bool{orgCondition: true})
	_, _, def, _ := tpl.stateMachine(t)
	distributed := 0
	var walk func(states any)
	walk = func(states any) {
		m, _ := states.(map[string]any)
		for _, name := range slices.Sorted(maps.Keys(m)) {
			state, _ := m[name].(map[string]any)
			if state["Type"] == "Map" && at(state, "ItemProcessor", "ProcessorConfig", "Mode") == "DISTRIBUTED" {
				distributed++
				assigned := map[string]bool{}
				assignedVariables(at(state, "ItemProcessor"), assigned)
				if outer := outerVariables(state, assigned); len(outer) > 0 {
					t.Errorf("Distributed Map %s reads %v, which it does not assign: a variable of the execution is undefined there", name, outer)
				}
			}
			walk(at(state, "ItemProcessor", "States"))
		}
	}
	walk(def["States"])
	if distributed == 0 {
		t.Fatal("no Distributed Map in the definition: this test checks nothing")
	}
	// The check itself: an ItemSelector reading the execution's $request,
	// as the template once had, is found.
	bad := map[string]any{"ItemSelector": "{% $merge([$request, {'target': $states.context.Map.Item.Value}]) %}",
		"ItemProcessor": map[string]any{"States": map[string]any{"A": map[string]any{"Assign": map[string]any{"x": "{% ($y := 1; $y) %}"}, "Output": "{% $x %}"}}}}
	assigned := map[string]bool{}
	assignedVariables(bad["ItemProcessor"], assigned)
	if got := outerVariables(bad, assigned); !slices.Equal(got, []string{"$request"}) {
		t.Errorf("the check finds %v in a map reading $request, want [$request]", got)
	}
}

// Issue 22, item 5: the organization's failed targets have their own alarm,
// on the record the last collect writes (a failed target is an answer to
// the state machine: no execution fails, and the failed-runs queue never
// sees it), over dry and live runs; and each alarm says what it counts.
func TestTemplateOrganizationTargetsFailedAlarm(t *testing.T) {
	tpl := loadTemplate(t)
	fnID, _ := tpl.Function(t)
	alarm := tpl.Resource("OrganizationTargetsFailedAlarm")
	if alarm == nil || cfn.Get(alarm, "Condition") == nil || cfn.Get(alarm, "Condition").Value != orgCondition {
		t.Fatalf("no OrganizationTargetsFailedAlarm under %s", orgCondition)
	}
	props := cfn.Get(alarm, "Properties")
	var names []string
	for _, m := range emf.OrganizationMetrics() {
		names = append(names, m.Name)
	}
	dry := map[string]bool{}
	for _, m := range cfn.Get(props, "Metrics").Content {
		stat := cfn.Get(m, "MetricStat", "Metric")
		if stat == nil {
			if e := cfn.Get(m, "Expression"); e == nil || cfn.Get(m, "ReturnData").Value != "true" {
				t.Errorf("a metric of the alarm is neither a metric nor the returned expression: %v", cfn.Plain(m))
			}
			continue
		}
		if ns := cfn.Get(stat, "Namespace").Value; ns != emf.Namespace {
			t.Errorf("namespace %q, the code writes %q", ns, emf.Namespace)
		}
		if name := cfn.Get(stat, "MetricName").Value; name != emf.MetricOrganizationTargetsFailed || !slices.Contains(names, name) {
			t.Errorf("metric %q, want %s, one the organization's record writes (%v)", name, emf.MetricOrganizationTargetsFailed, names)
		}
		dims := map[string]*yaml.Node{}
		var dimNames []string
		for _, d := range cfn.Get(stat, "Dimensions").Content {
			dims[cfn.Get(d, "Name").Value] = cfn.Get(d, "Value")
			dimNames = append(dimNames, cfn.Get(d, "Name").Value)
		}
		if !slices.ContainsFunc(emf.DimensionSets(), func(set []string) bool {
			return slices.Equal(slices.Sorted(slices.Values(set)), slices.Sorted(slices.Values(dimNames)))
		}) {
			t.Errorf("dimensions %v, the record's sets are %v", dimNames, emf.DimensionSets())
		}
		if got, ok := cfn.Ref(dims[emf.DimensionFunctionName]); !ok || got != fnID {
			t.Errorf("FunctionName %v, want !Ref %s", cfn.Plain(dims[emf.DimensionFunctionName]), fnID)
		}
		dry[dims[emf.DimensionDryRun].Value] = true
	}
	if !dry["true"] || !dry["false"] {
		t.Errorf("the alarm counts DryRun %v, want both dry and live runs", dry)
	}
	for _, key := range []string{"AlarmActions", "OKActions"} {
		if mustJSON(cfn.Plain(cfn.Get(props, key))) != mustJSON(cfn.Plain(cfn.Get(tpl.Resource("ErrorsAlarm"), "Properties", key))) {
			t.Errorf("%s differ from the other alarms'", key)
		}
	}
	// Each alarm says what it counts: the errors alarm does not send a
	// reader to the failed-runs queue for a synchronous failure.
	errs := cfn.Get(tpl.Resource("ErrorsAlarm"), "Properties", "AlarmDescription").Value
	queue := cfn.Get(tpl.Resource("FailedRunsAlarm"), "Properties", "AlarmDescription").Value
	if !strings.Contains(errs, "target run") || !strings.Contains(errs, "Only the schedule's asynchronous invocations reach the failed-runs queue") ||
		!strings.Contains(queue, "asynchronous") || !strings.Contains(queue, "never reach it") {
		t.Errorf("the errors and failed-runs alarms do not say what each counts:\n%s\n%s", errs, queue)
	}
}
