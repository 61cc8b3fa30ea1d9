package org

// Sealed summaries: a target's summary and the running totals travel
// through the state machine and come back to Collect, which publishes the
// organization's message from them. Each carries a signature made with the
// function's KMS key over its JSON, so that a collect request written by
// anyone else (who may invoke the function, but not sign with the key) is
// refused before anything is counted or published. The state machine's
// own failure objects (a target with no summary: its error alone) carry no
// signature: they count as failed targets, nothing more.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Sealer signs and checks messages with the function's key (marks.Signer).
type Sealer interface {
	SignMessage(ctx context.Context, msg []byte) (string, error)
	VerifyMessage(ctx context.Context, msg []byte, sig string) (bool, error)
}

// sealHeaders name what a sealed message is, so that a summary's signature
// is never a totals' one, nor a mark's.
const (
	summaryHeader = "odcr-autocancel target summary v1\n"
	totalsHeader  = "odcr-autocancel totals v1\n"
)

// sealedMessage is the header and the JSON of v as it is with no
// signature: the signed message of a summary or the totals.
func sealedMessage(header string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(header), b...), nil
}

// Seal signs the summary.
func (s *TargetSummary) Seal(ctx context.Context, sealer Sealer) error {
	return seal(ctx, sealer, summaryHeader, s, &s.Signature)
}

// Seal signs the totals.
func (t *Totals) Seal(ctx context.Context, sealer Sealer) error {
	return seal(ctx, sealer, totalsHeader, t, &t.Signature)
}

// seal sets *sig, v's signature field, to the signature of v without one.
func seal(ctx context.Context, sealer Sealer, header string, v any, sig *string) error {
	*sig = ""
	msg, err := sealedMessage(header, v)
	if err == nil {
		*sig, err = sealer.SignMessage(ctx, msg)
	}
	if err != nil {
		return fmt.Errorf("sign %s: %w", strings.TrimSuffix(header, "\n"), err)
	}
	return nil
}

// ErrNotSealed is a collect request with a summary or totals this function
// did not sign: written by someone else, or changed on the way.
var ErrNotSealed = errors.New("not signed by this function")

// checkSeals checks the signatures of a collect request: every summary of
// a run (one with a run id) and the totals so far. It returns an error
// naming the first that does not hold (ErrNotSealed), or KMS's failure.
func checkSeals(ctx context.Context, req CollectRequest, sealer Sealer) error {
	check := func(field, header string, v any, sig string) error {
		msg, err := sealedMessage(header, v)
		if err != nil {
			return err
		}
		ok, err := sealer.VerifyMessage(ctx, msg, sig)
		switch {
		case err != nil:
			return fmt.Errorf("check %s: %w", field, err)
		case !ok:
			return fmt.Errorf("field %q: %w", field, ErrNotSealed)
		}
		return nil
	}
	for i, s := range req.Results {
		if s.RunID == "" {
			continue // the state machine's failure object
		}
		sig := s.Signature
		s.Signature = ""
		if err := check(fmt.Sprintf("collect.results[%d]", i), summaryHeader, s, sig); err != nil {
			return err
		}
	}
	if req.Totals != nil {
		t := *req.Totals
		sig := t.Signature
		t.Signature = ""
		if err := check("collect.totals", totalsHeader, t, sig); err != nil {
			return err
		}
	}
	return nil
}
