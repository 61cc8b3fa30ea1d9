package handler_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
	"github.com/odcr-autocancel/odcr-autocancel/marks"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// testMarkKey is the MARK_KEY_ID of the tests' handlers.
const testMarkKey = "alias/odcr-autocancel-marks"

// memKMS is an in-memory HMAC key for the in-memory fake's handlers: it
// signs and checks like KMS (an invalid MAC is KMSInvalidMacException).
// The wire tests use the fake account's KMS instead.
type memKMS struct {
	fail  atomic.Value // error: every call fails with it when set
	calls atomic.Int64
}

var memSecret = []byte("odcr-autocancel test mark key")

func (k *memKMS) mac(msg []byte) []byte {
	h := hmac.New(sha256.New, memSecret)
	h.Write(msg)
	return h.Sum(nil)
}

func (k *memKMS) err() error {
	k.calls.Add(1)
	if e, ok := k.fail.Load().(error); ok && e != nil {
		return e
	}
	return nil
}

func (k *memKMS) GenerateMac(_ context.Context, in *kms.GenerateMacInput, _ ...func(*kms.Options)) (*kms.GenerateMacOutput, error) {
	if err := k.err(); err != nil {
		return nil, err
	}
	return &kms.GenerateMacOutput{KeyId: aws.String(testMarkKey), Mac: k.mac(in.Message), MacAlgorithm: in.MacAlgorithm}, nil
}

func (k *memKMS) VerifyMac(_ context.Context, in *kms.VerifyMacInput, _ ...func(*kms.Options)) (*kms.VerifyMacOutput, error) {
	if err := k.err(); err != nil {
		return nil, err
	}
	if !hmac.Equal(k.mac(in.Message), in.Mac) {
		return nil, &kmstypes.KMSInvalidMacException{Message: aws.String("invalid mac")}
	}
	return &kms.VerifyMacOutput{KeyId: aws.String(testMarkKey), MacValid: true, MacAlgorithm: in.MacAlgorithm}, nil
}

// signed returns tags with the signature the function would have written
// for this mark on reservation id of the harness's fake, at its size now,
// in the harness's account and region: a mark an earlier run made.
func (hs *harness) signed(id string, tags map[string]string) map[string]string {
	var total int32
	for _, c := range hs.fake.reservations {
		if aws.ToString(c.CapacityReservationId) == id {
			total = aws.ToInt32(c.TotalInstanceCount)
		}
	}
	kind := marks.Idle
	if _, ok := tags[policy.TagRightsizeTo]; ok {
		kind = marks.Rightsize
	}
	_, sigKey := kind.Keys()
	out := maps.Clone(tags)
	out[sigKey] = base64.StdEncoding.EncodeToString(hs.fake.kms.mac(marks.Message(kind, testAccount, hs.h.Region, id, total, tags)))
	return out
}

// accountKeys are the mark keys made in fake accounts, one per account, so
// that every handler of a test on one account signs with the same key.
var accountKeys sync.Map // *fakeaws.Account -> key ARN

// accountKey returns the ARN of acct's key that signs marks, made on first
// use.
func accountKey(acct *fakeaws.Account) string {
	if arn, ok := accountKeys.Load(acct); ok {
		return arn.(string)
	}
	_, arn := acct.AddMacKey()
	got, _ := accountKeys.LoadOrStore(acct, arn)
	return got.(string)
}

// signedOnFake writes on the fake account's reservation id an idle mark
// signed with the account's key (accountKey), as an earlier run would have.
func signedOnFake(t *testing.T, acct *fakeaws.Account, id string, mark policy.IdleMark) {
	t.Helper()
	res, ok := acct.Reservation(id)
	if !ok {
		t.Fatalf("no reservation %s", id)
	}
	tags := mark.Tags()
	mac, err := acct.MacOf(accountKey(acct), marks.Message(marks.Idle, testAccount, "us-east-1", id, res.TotalInstanceCount, tags))
	if err != nil {
		t.Fatal(err)
	}
	tags[policy.TagMarkSignature] = base64.StdEncoding.EncodeToString(mac)
	acct.SetTags(id, tags)
}
