package fakeaws

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Page tokens of the JSON services (RAM, the Price List) resume after the
// last item served, by its sequence number, so that an item removed between
// pages neither skips nor repeats another. They are opaque to clients and
// carry the operation and a fingerprint of the query, so a token cannot
// continue a different query, which AWS refuses too. Tokens never expire
// in the fake; a Fault plays an expired one.
func encodeSeqToken(op string, lastSeq int64, fingerprint uint64) string {
	raw := fmt.Sprintf("%s|%d|%x", op, lastSeq, fingerprint)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodeSeqToken returns the sequence number the page resumes after (0
// without a token), or invalid, the service's own error for a bad token.
func decodeSeqToken(op, tok string, fingerprint uint64, invalid *apiError) (int64, *apiError) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, invalid
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 || parts[0] != op || parts[2] != fmt.Sprintf("%x", fingerprint) {
		return 0, invalid
	}
	seq, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || seq < 0 {
		return 0, invalid
	}
	return seq, nil
}
