package fakeaws_test

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/odcr-autocancel/odcr-autocancel/internal/fakeaws"
)

func kmsClient(t *testing.T, acct *fakeaws.Account) *kms.Client {
	t.Helper()
	return kms.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
		RetryMaxAttempts: 1,
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(acct.URL()) })
}

func TestKMSGenerateAndVerifyMac(t *testing.T) {
	c := setup(t)
	id, arn := c.acct.AddMacKey("alias/marks")
	k := kmsClient(t, c.acct)
	msg := []byte("odcr-autocancel mark v1\nreservation=cr-1\n")

	var macs [][]byte
	// Every way of naming the key signs with the same key.
	for _, name := range []string{id, arn, "alias/marks", strings.TrimSuffix(arn, "key/"+id) + "alias/marks"} {
		out, err := k.GenerateMac(ctxBG, &kms.GenerateMacInput{KeyId: aws.String(name), Message: msg, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
		if err != nil {
			t.Fatalf("GenerateMac(%s): %v", name, err)
		}
		if aws.ToString(out.KeyId) != arn || len(out.Mac) != 32 || out.MacAlgorithm != kmstypes.MacAlgorithmSpecHmacSha256 {
			t.Fatalf("GenerateMac(%s): key %s, %d-byte mac, %s", name, aws.ToString(out.KeyId), len(out.Mac), out.MacAlgorithm)
		}
		macs = append(macs, out.Mac)
	}
	for _, m := range macs[1:] {
		if !hmac.Equal(m, macs[0]) {
			t.Fatal("the same key named two ways gave two macs")
		}
	}
	v, err := k.VerifyMac(ctxBG, &kms.VerifyMacInput{KeyId: aws.String("alias/marks"), Message: msg, Mac: macs[0], MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
	if err != nil || !v.MacValid {
		t.Fatalf("VerifyMac of its own mac: %+v, %v", v, err)
	}
	// Another message, or a changed mac: KMSInvalidMacException.
	_, err = k.VerifyMac(ctxBG, &kms.VerifyMacInput{KeyId: aws.String(id), Message: append(bytes.Clone(msg), 'x'), Mac: macs[0], MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
	var invalid *kmstypes.KMSInvalidMacException
	if !errors.As(err, &invalid) {
		t.Fatalf("VerifyMac of another message: %v, want KMSInvalidMacException", err)
	}
	// A second key gives another mac for the same message.
	id2, _ := c.acct.AddMacKey()
	out, err := k.GenerateMac(ctxBG, &kms.GenerateMacInput{KeyId: aws.String(id2), Message: msg, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
	if err != nil || hmac.Equal(out.Mac, macs[0]) {
		t.Fatalf("second key: %v, same mac %v", err, err == nil && hmac.Equal(out.Mac, macs[0]))
	}
	if n := c.acct.Calls(fakeaws.OpGenerateMac); n != 5 {
		t.Errorf("recorded %d GenerateMac, want 5", n)
	}
}

func TestKMSRefusals(t *testing.T) {
	c := setup(t)
	id, _ := c.acct.AddMacKey()
	k := kmsClient(t, c.acct)
	sha := kmstypes.MacAlgorithmSpecHmacSha256
	cases := []struct {
		name string
		in   kms.GenerateMacInput
		code string
	}{
		{"unknown key", kms.GenerateMacInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"), Message: []byte("m"), MacAlgorithm: sha}, "NotFoundException"},
		{"unknown alias", kms.GenerateMacInput{KeyId: aws.String("alias/none"), Message: []byte("m"), MacAlgorithm: sha}, "NotFoundException"},
		{"another account's key", kms.GenerateMacInput{KeyId: aws.String("arn:aws:kms:us-east-1:999999999999:key/" + id), Message: []byte("m"), MacAlgorithm: sha}, "NotFoundException"},
		{"empty message", kms.GenerateMacInput{KeyId: aws.String(id), Message: []byte{}, MacAlgorithm: sha}, "ValidationException"},
		{"message over 4096 bytes", kms.GenerateMacInput{KeyId: aws.String(id), Message: make([]byte, 4097), MacAlgorithm: sha}, "ValidationException"},
		{"algorithm the key spec refuses", kms.GenerateMacInput{KeyId: aws.String(id), Message: []byte("m"), MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha512}, "InvalidKeyUsageException"},
	}
	for _, tc := range cases {
		_, err := k.GenerateMac(ctxBG, &tc.in)
		wantAPIError(t, err, tc.code, http.StatusBadRequest)
	}
	if _, err := k.GenerateMac(ctxBG, &kms.GenerateMacInput{KeyId: aws.String(id), Message: make([]byte, 4096), MacAlgorithm: sha}); err != nil {
		t.Fatalf("a 4096-byte message: %v", err)
	}
	c.acct.SetMacKeyEnabled(id, false)
	_, err := k.VerifyMac(ctxBG, &kms.VerifyMacInput{KeyId: aws.String(id), Message: []byte("m"), Mac: []byte("x"), MacAlgorithm: sha})
	wantAPIError(t, err, "DisabledException", http.StatusBadRequest)
}

func TestKMSRequestQuota(t *testing.T) {
	c := setup(t)
	id, _ := c.acct.AddMacKey()
	c.acct.SetKMSRequestQuota(5)
	k := kmsClient(t, c.acct)
	throttled := 0
	for range 8 {
		_, err := k.GenerateMac(ctxBG, &kms.GenerateMacInput{KeyId: aws.String(id), Message: []byte("m"), MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
		if err != nil {
			wantAPIError(t, err, "ThrottlingException", http.StatusBadRequest)
			throttled++
		}
	}
	// 3 of 8 when the 8 calls take under a second, as they do; fewer on a
	// machine stalled long enough for the window to slide, never none.
	if throttled < 1 || throttled > 3 || c.acct.KMSThrottled() != throttled {
		t.Errorf("throttled %d (fake says %d), want 3 of 8 over a quota of 5", throttled, c.acct.KMSThrottled())
	}
}
