// Package marks signs the marks the function writes on reservations and
// checks them before the policy reads them, so that only a mark this
// function wrote, for this reservation at its size now, can lead to a cancel
// or a shrink. Its Signer also signs any message for the function's other
// writings that must come back unchanged (the organization's summaries).
//
// A mark's signature is base64(HMAC-SHA-256) made by a KMS key of spec
// HMAC_256 (GenerateMac) over the canonical message of Message, kept in its
// own tag (policy.TagMarkSignature, policy.TagRightsizeSignature). The key
// never leaves KMS: whoever may not call kms:GenerateMac on it cannot write
// a mark that counts. A check is one VerifyMac. docs/safety.md shows how to
// verify a mark with the AWS CLI.
package marks

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/awsapi"
	"github.com/odcr-autocancel/odcr-autocancel/policy"
)

// Kind is which of a reservation's two marks: the idle mark (a cancel
// announced) or the shrink's mark.
type Kind string

const (
	Idle      Kind = "idle"
	Rightsize Kind = "rightsize"
)

// Keys returns the tags of a mark of kind, in the order the message names
// them, and the tag that carries its signature.
func (k Kind) Keys() (values []string, signature string) {
	if k == Rightsize {
		return []string{policy.TagRightsizeTo, policy.TagRightsizeSince, policy.TagRightsizeAfter}, policy.TagRightsizeSignature
	}
	return []string{policy.TagIdleSince, policy.TagCancelAfter}, policy.TagMarkSignature
}

// AllKeys returns every tag a mark of kind writes, its signature last.
func (k Kind) AllKeys() []string {
	values, sig := k.Keys()
	return append(values, sig)
}

// Of returns the mark a decision writes, and its kind: a shrink's mark for
// a decision with a resize, the idle mark otherwise. d.Mark must be set.
func Of(d policy.Decision) (Kind, map[string]string) {
	if d.Resize != nil {
		return Rightsize, policy.RightsizeTags(*d.Mark, d.Resize.Target)
	}
	return Idle, d.Mark.Tags()
}

// CarryChecks gives the descriptions taken again before acting (fresh) the
// checks of the evaluated ones, for each mark whose tags (signature
// included) and instance count did not change since: any change leaves it
// unchecked, which a run that acts does not trust.
func CarryChecks(evaluated map[string]policy.Reservation, fresh []policy.Reservation) {
	same := func(a, b policy.Reservation, kind Kind) bool {
		for _, k := range kind.AllKeys() {
			if a.Tags[k] != b.Tags[k] {
				return false
			}
		}
		return a.Total == b.Total && !a.CountsMissing && !b.CountsMissing
	}
	for i, f := range fresh {
		e, ok := evaluated[f.ID]
		if !ok {
			continue
		}
		if same(e, f, Idle) {
			fresh[i].MarkCheck = e.MarkCheck
		}
		if same(e, f, Rightsize) {
			fresh[i].RightsizeMarkCheck = e.RightsizeMarkCheck
		}
	}
}

// Message is the canonical text a mark's signature covers: a header line,
// then one "name=value" line each for the mark's kind, the account, the
// region, the reservation id, its instance count and the mark's tags in
// the order of Keys, each line ending in "\n" (UTF-8, no trailing blank
// line). A tag missing from tags has an empty value.
//
//	odcr-autocancel mark v1
//	kind=idle
//	account=111111111111
//	region=us-east-1
//	reservation=cr-0123456789abcdef0
//	instances=4
//	odcr-autocancel:idle-since=2026-12-07T06:00:00Z
//	odcr-autocancel:cancel-after=2026-12-10T06:00:00Z
func Message(kind Kind, account, region, reservationID string, instances int32, tags map[string]string) []byte {
	var b strings.Builder
	b.WriteString("odcr-autocancel mark v1\n")
	line := func(k, v string) { b.WriteString(k + "=" + v + "\n") }
	line("kind", string(kind))
	line("account", account)
	line("region", region)
	line("reservation", reservationID)
	line("instances", strconv.Itoa(int(instances)))
	keys, _ := kind.Keys()
	for _, k := range keys {
		line(k, tags[k])
	}
	return []byte(b.String())
}

// MAC is the part of KMS marks use.
type MAC interface {
	GenerateMac(context.Context, *kms.GenerateMacInput, ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
	VerifyMac(context.Context, *kms.VerifyMacInput, ...func(*kms.Options)) (*kms.VerifyMacOutput, error)
}

var _ MAC = (*kms.Client)(nil)

// RequestsPerSecond paces the signatures and checks of a run: GenerateMac
// and VerifyMac share the account's "cryptographic operations (symmetric)"
// quota with every other use of KMS in the region, 5,500 requests per
// second where it is lowest. A run takes at most about a fifth of that.
const RequestsPerSecond = 1000

// sharedQuotaPace is the most the function's runs sign and check at once,
// all together: 90 % of that lowest quota. The key stays in the deploying
// account and region, so in organization mode every target's run draws on
// the same quota.
const sharedQuotaPace = 4950

// PerRun is the pace of one run when runs targets at once share the key's
// quota (organization mode: the state machine's MaxConcurrency):
// RequestsPerSecond, or less, so that together they stay under
// sharedQuotaPace.
func PerRun(runs int) float64 {
	return min(RequestsPerSecond, sharedQuotaPace/float64(max(1, runs)))
}

// concurrency bounds the KMS calls in flight.
const concurrency = 16

// Signer signs and checks marks with one KMS key, for one account and
// region (those of the reservations, which may be another account than
// the key's: the key stays in the deploying account). Safe for concurrent
// use.
type Signer struct {
	KMS   MAC
	KeyID string // the key's id, ARN, alias or alias ARN
	// Account and Region are the reservations' account and region, named
	// in every message.
	Account, Region string
	// Calls, when set, counts the requests.
	Calls *awsapi.Calls
	// PerSecond paces the requests (PerRun); 0 is RequestsPerSecond.
	PerSecond float64

	pace awsapi.Pace
}

// wait paces the requests to PerSecond.
func (s *Signer) wait(ctx context.Context) error {
	rate := s.PerSecond
	if rate <= 0 {
		rate = RequestsPerSecond
	}
	return s.pace.Wait(ctx, time.Duration(float64(time.Second)/rate))
}

func (s *Signer) count(op string) {
	if s.Calls != nil {
		s.Calls.Add(op)
	}
}

// Sign returns the tags of a mark of kind with its signature added, for
// reservation id at instances.
func (s *Signer) Sign(ctx context.Context, kind Kind, id string, instances int32, tags map[string]string) (map[string]string, error) {
	sig, err := s.SignMessage(ctx, Message(kind, s.Account, s.Region, id, instances, tags))
	if err != nil {
		return nil, fmt.Errorf("sign mark: %w", err)
	}
	signed := make(map[string]string, len(tags)+1)
	for k, v := range tags {
		signed[k] = v
	}
	_, sigKey := kind.Keys()
	signed[sigKey] = sig
	return signed, nil
}

// SignMessage returns base64(GenerateMac(HMAC_SHA_256, msg)) with the key.
func (s *Signer) SignMessage(ctx context.Context, msg []byte) (string, error) {
	if err := s.wait(ctx); err != nil {
		return "", err
	}
	s.count("GenerateMac")
	out, err := s.KMS.GenerateMac(ctx, &kms.GenerateMacInput{
		KeyId:        aws.String(s.KeyID),
		Message:      msg,
		MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256,
	})
	if err != nil {
		return "", fmt.Errorf("generate mac: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out.Mac), nil
}

// Check tells whether r's mark of kind is one this Signer's key signed for
// r as it is now. A mark without a signature, or with one that is not
// base64 or not a SHA-256 MAC's length, is forged without a call; KMS's
// KMSInvalidMacException is forged; any other failure is unverifiable, with
// the error.
func (s *Signer) Check(ctx context.Context, kind Kind, r policy.Reservation) (policy.MarkCheck, error) {
	_, sigKey := kind.Keys()
	ok, err := s.VerifyMessage(ctx, Message(kind, s.Account, s.Region, r.ID, r.Total, r.Tags), r.Tags[sigKey])
	switch {
	case err != nil:
		return policy.MarkUnverifiable, fmt.Errorf("check mark: %w", err)
	case !ok:
		return policy.MarkForged, nil
	}
	return policy.MarkSigned, nil
}

// VerifyMessage tells whether sig is the key's signature of msg: false,
// without a call, for a sig that is not base64 of a SHA-256 MAC, and for
// KMS's KMSInvalidMacException; an error when KMS could not answer.
func (s *Signer) VerifyMessage(ctx context.Context, msg []byte, sig string) (bool, error) {
	mac, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(mac) != 32 {
		return false, nil
	}
	if err := s.wait(ctx); err != nil {
		return false, err
	}
	s.count("VerifyMac")
	out, err := s.KMS.VerifyMac(ctx, &kms.VerifyMacInput{
		KeyId:        aws.String(s.KeyID),
		Message:      msg,
		Mac:          mac,
		MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256,
	})
	var invalid *kmstypes.KMSInvalidMacException
	switch {
	case errors.As(err, &invalid):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("verify mac: %w", err)
	}
	return out.MacValid, nil
}

// Item is one mark to check: the reservation and which of its marks.
type Item struct {
	Reservation policy.Reservation
	Kind        Kind
}

// CheckAll checks items, at most 16 calls in flight and RequestsPerSecond,
// and returns each item's check in the order given, with the first error
// of each AWS error code (a failing key fails every check alike).
func (s *Signer) CheckAll(ctx context.Context, items []Item) ([]policy.MarkCheck, []error) {
	checks := make([]policy.MarkCheck, len(items))
	var (
		mu     sync.Mutex
		errs   []error
		codes  []string
		wg     sync.WaitGroup
		tokens = make(chan struct{}, concurrency)
	)
	for i, it := range items {
		tokens <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-tokens; wg.Done() }()
			c, err := s.Check(ctx, it.Kind, it.Reservation)
			checks[i] = c
			if err != nil {
				mu.Lock()
				if code := awsapi.ErrorCode(err); !slices.Contains(codes, code) {
					codes = append(codes, code)
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return checks, errs
}
