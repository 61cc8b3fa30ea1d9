package handler_test

// Issue 22, item 3: the function deployed in a delegated administrator
// account, with ACCOUNTS=organization. A service-managed StackSet never
// deploys the member role to the management account: its targets fail, and
// the listing and the failure say why and what to do.

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/ram"

	"github.com/odcr-autocancel/odcr-autocancel/handler"
	"github.com/odcr-autocancel/odcr-autocancel/org"
)

func TestManagementAccountWithoutMemberRoleSaysWhatToDo(t *testing.T) {
	const admin = "222200000009"
	o := newOrgWire(t) // its management account is orgMgmt
	o.AddAccount(admin, "admin", "admin@example.com", "", "")
	o.AddAccount(orgMember1, "member", "member@example.com", "", "")
	o.SetDelegatedAdmin(admin)
	o.AddRole(orgMember1, memberRole, admin) // the StackSet's role; none in the management account

	id, secret := o.AccessKey(admin)
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""), BaseEndpoint: aws.String(o.URL())}
	tl := &timeline{}
	logger, err := handler.NewLogger("debug", tl)
	if err != nil {
		t.Fatal(err)
	}
	h := &handler.Handler{
		EC2: ec2.NewFromConfig(cfg), CloudWatch: cloudwatch.NewFromConfig(cfg), RAM: ram.NewFromConfig(cfg),
		Region: "us-east-1", Targets: org.NewAssumeRoleConnector(cfg), Organizations: organizations.NewFromConfig(cfg),
		Settings: orgSettings(t, map[string]string{"ACCOUNTS": "organization"}), Logger: logger, Now: func() time.Time { return testNow },
	}
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{
		AwsRequestID: orgRunID, InvokedFunctionArn: "arn:aws:lambda:us-east-1:" + admin + ":function:odcr-autocancel",
	})

	// The listing warns that the management account's targets will fail.
	if _, err := h.Invoke(ctx, []byte(`{"listTargets":{"after":""}}`)); err != nil {
		t.Fatal(err)
	}
	warned := false
	for _, l := range tl.logLines() {
		if msg, _ := l["msg"].(string); strings.HasPrefix(msg, "the organization's management account is a target") && l["account_id"] == orgMgmt {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning names the management account %s, a target without a member role", orgMgmt)
	}

	// Its target fails as unreachable, and the error says what to do.
	_, err = h.Invoke(ctx, []byte(`{"dryRun":true,"target":{"accountId":"`+orgMgmt+`","region":"us-east-1"}}`))
	var te *org.TargetError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "never deploys it to the organization's management account") ||
		!strings.Contains(err.Error(), "EXCLUDED_ACCOUNTS") || !strings.Contains(err.Error(), "member-role.yaml") {
		t.Fatalf("error %v, want a TargetError that names the missing member role and the two fixes", err)
	}
	// A member with the role runs.
	if _, err := h.Invoke(ctx, []byte(`{"dryRun":true,"target":{"accountId":"`+orgMember1+`","region":"us-east-1"}}`)); err != nil {
		t.Fatalf("a member with its role: %v", err)
	}
}
