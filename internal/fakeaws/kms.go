package fakeaws

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AWS KMS, as far as marks need it: HMAC keys (KeySpec HMAC_256, KeyUsage
// GENERATE_VERIFY_MAC), GenerateMac and VerifyMac, on the awsJson1_1
// protocol (X-Amz-Target TrentService.<Operation>). The limits the API
// reference documents: a Message of 1 to 4,096 bytes, a Mac of 1 to 6,144
// bytes, an HMAC_256 key that takes HMAC_SHA_256 only; a key named by its
// id, its ARN, its alias (alias/NAME) or the alias's ARN; a disabled key
// refused. The two operations share the account's "cryptographic
// operations (symmetric)" request quota, from 5,500 to 100,000 requests per
// second depending on the region; SetKMSRequestQuota enforces one.
const (
	kmsTargetPrefix    = "TrentService."
	kmsErrorNamespace  = "com.amazonaws.kms#"
	kmsMaxMessageBytes = 4096
	kmsMaxMacBytes     = 6144

	OpGenerateMac = "GenerateMac"
	OpVerifyMac   = "VerifyMac"

	// MacAlgorithmHMACSHA256 is the one algorithm an HMAC_256 key takes.
	MacAlgorithmHMACSHA256 = "HMAC_SHA_256"
)

// kmsState is an Account's KMS keys. The Account's mu guards it.
type kmsState struct {
	keys      map[string]*macKey // by key id
	aliases   map[string]string  // alias/NAME -> key id
	quota     int                // requests per second; 0: none
	window    rateWindow
	throttled int
}

type macKey struct {
	id       string
	secret   []byte
	disabled bool
}

// AddMacKey creates an HMAC_256 key (KeyUsage GENERATE_VERIFY_MAC) with a
// random secret that never leaves the fake, as in KMS, and the aliases
// given ("alias/odcr-autocancel-marks"). It returns the key's id and ARN.
// It panics on an alias without the alias/ prefix or one already taken.
func (a *Account) AddMacKey(aliases ...string) (keyID, keyARN string) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	id := newKeyID()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.kms.keys == nil {
		a.kms.keys, a.kms.aliases = map[string]*macKey{}, map[string]string{}
	}
	a.kms.keys[id] = &macKey{id: id, secret: secret}
	for _, al := range aliases {
		if !strings.HasPrefix(al, "alias/") || a.kms.aliases[al] != "" {
			panic(fmt.Sprintf("fakeaws: AddMacKey: alias %q must start with alias/ and be new", al))
		}
		a.kms.aliases[al] = id
	}
	return id, a.kmsARN("key/" + id)
}

// MacOf returns the MAC the key named keyID (id, ARN, alias or alias ARN)
// gives message, as GenerateMac would, without a request: for a demo or a
// test to stage the marks an earlier run signed.
func (a *Account) MacOf(keyID string, message []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k, e := a.resolveKey(keyID)
	if e != nil {
		return nil, e
	}
	h := hmac.New(sha256.New, k.secret)
	h.Write(message)
	return h.Sum(nil), nil
}

// SetMacKeyEnabled enables or disables a key made by AddMacKey; a disabled
// key refuses both operations with DisabledException.
func (a *Account) SetMacKeyEnabled(keyID string, enabled bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k := a.kms.keys[keyID]; k != nil {
		k.disabled = !enabled
	}
}

// SetKMSRequestQuota makes GenerateMac and VerifyMac share a quota of n
// requests over a sliding second of real time, refused beyond it with
// ThrottlingException as KMS does; 0 (the default) is no quota.
func (a *Account) SetKMSRequestQuota(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.kms.quota = n
	a.kms.window.reset()
}

// KMSThrottled returns how many requests the quota has refused so far.
func (a *Account) KMSThrottled() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.kms.throttled
}

func (a *Account) kmsARN(resource string) string {
	region := a.region
	if region == "" {
		region = "us-east-1"
	}
	return "arn:aws:kms:" + region + ":" + a.id + ":" + resource
}

func newKeyID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// resolveKey finds the key a KeyId names. Callers hold a.mu.
func (a *Account) resolveKey(keyID string) (*macKey, *apiError) {
	id := keyID
	prefix := a.kmsARN("")
	switch {
	case keyID == "":
		return nil, badRequest("ValidationException", "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	case strings.HasPrefix(keyID, prefix+"key/"):
		id = strings.TrimPrefix(keyID, prefix+"key/")
	case strings.HasPrefix(keyID, prefix+"alias/"):
		id = a.kms.aliases[strings.TrimPrefix(keyID, prefix)]
	case strings.HasPrefix(keyID, "alias/"):
		id = a.kms.aliases[keyID]
	case strings.HasPrefix(keyID, "arn:"):
		id = "" // another account's or region's key: not found here
	}
	k := a.kms.keys[id]
	if k == nil {
		return nil, badRequest("NotFoundException", "Key '%s' does not exist", keyID)
	}
	if k.disabled {
		return nil, badRequest("DisabledException", "%s is disabled.", a.kmsARN("key/"+k.id))
	}
	return k, nil
}

// macInput holds the members of GenerateMac and VerifyMac requests.
type macInput struct {
	KeyID        string   `json:"KeyId"`
	Message      []byte   `json:"Message"` // base64 in JSON, as blobs are
	Mac          []byte   `json:"Mac"`
	MacAlgorithm string   `json:"MacAlgorithm"`
	GrantTokens  []string `json:"GrantTokens"`
	DryRun       bool     `json:"DryRun"`
}

type generateMacOutput struct {
	KeyID        string `json:"KeyId"`
	Mac          []byte `json:"Mac"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

type verifyMacOutput struct {
	KeyID        string `json:"KeyId"`
	MacValid     bool   `json:"MacValid"`
	MacAlgorithm string `json:"MacAlgorithm"`
}

func (a *Account) serveKMS(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), kmsTargetPrefix)
	rec := Request{Operation: op}
	parseErr := checkAWSJSONRequest(r)
	var in macInput
	if parseErr == nil {
		raw, err := io.ReadAll(r.Body)
		switch {
		case err != nil:
			parseErr = badRequest("SerializationException", "read body: %v", err)
		case len(bytes.TrimSpace(raw)) > 0:
			if err := json.Unmarshal(raw, &in); err != nil {
				parseErr = badRequest("SerializationException", "body: %v", err)
			}
		}
		rec.Params = map[string][]string{"KeyId": {in.KeyID}, "MacAlgorithm": {in.MacAlgorithm}, "Message": {string(in.Message)}}
	}
	a.serve(w, r, kmsProtocol, rec, func() (any, *apiError) {
		switch {
		case op != OpGenerateMac && op != OpVerifyMac:
			return nil, badRequest("UnknownOperationException", "fakeaws: unsupported operation %s%s", kmsTargetPrefix, op)
		case parseErr != nil:
			return nil, parseErr
		}
		if e := a.admitKMS(); e != nil {
			return nil, e
		}
		return a.mac(op, in)
	})
}

// admitKMS applies the request quota. Callers hold a.mu.
func (a *Account) admitKMS() *apiError {
	if a.kms.quota <= 0 {
		return nil
	}
	now := time.Now()
	a.kms.window.prune(now)
	if a.kms.window.total >= a.kms.quota {
		a.kms.throttled++
		return badRequest("ThrottlingException", "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.")
	}
	a.kms.window.add(now, 1)
	return nil
}

// mac validates a GenerateMac or VerifyMac request and answers it. Callers
// hold a.mu.
func (a *Account) mac(op string, in macInput) (any, *apiError) {
	switch {
	case len(in.Message) == 0 || len(in.Message) > kmsMaxMessageBytes:
		return nil, badRequest("ValidationException", "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and %d", kmsMaxMessageBytes)
	case op == OpVerifyMac && (len(in.Mac) == 0 || len(in.Mac) > kmsMaxMacBytes):
		return nil, badRequest("ValidationException", "1 validation error detected: Value at 'mac' failed to satisfy constraint: Member must have length between 1 and %d", kmsMaxMacBytes)
	}
	switch in.MacAlgorithm {
	case "HMAC_SHA_224", MacAlgorithmHMACSHA256, "HMAC_SHA_384", "HMAC_SHA_512":
	default:
		return nil, badRequest("ValidationException", "1 validation error detected: Value '%s' at 'macAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [HMAC_SHA_384, HMAC_SHA_256, HMAC_SHA_224, HMAC_SHA_512]", in.MacAlgorithm)
	}
	k, e := a.resolveKey(in.KeyID)
	if e != nil {
		return nil, e
	}
	arn := a.kmsARN("key/" + k.id)
	if in.MacAlgorithm != MacAlgorithmHMACSHA256 {
		return nil, badRequest("InvalidKeyUsageException", "%s key usage is GENERATE_VERIFY_MAC and its key spec HMAC_256 does not support %s", arn, in.MacAlgorithm)
	}
	h := hmac.New(sha256.New, k.secret)
	h.Write(in.Message)
	sum := h.Sum(nil)
	if in.DryRun {
		return nil, errorf(http.StatusPreconditionFailed, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	}
	if op == OpGenerateMac {
		return generateMacOutput{KeyID: arn, Mac: sum, MacAlgorithm: in.MacAlgorithm}, nil
	}
	if !hmac.Equal(sum, in.Mac) {
		return nil, badRequest("KMSInvalidMacException", "The MAC is not valid for the message and key.")
	}
	return verifyMacOutput{KeyID: arn, MacValid: true, MacAlgorithm: in.MacAlgorithm}, nil
}
