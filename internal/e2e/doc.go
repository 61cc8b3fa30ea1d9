// Package e2e holds the end-to-end tests of the function as Lambda runs it:
// the compiled bootstrap (built exactly as the Makefile builds it for
// provided.al2023, for the host's architecture), started by the AWS Lambda
// Runtime Interface Emulator (pinned in go.mod as a tool), receiving every
// event in events/ over the emulator's invoke endpoint, and talking HTTP to a
// fake AWS account (internal/fakeaws) on 127.0.0.1.
//
// The package has no code of its own: everything is in its _test.go files.
// Run it with
//
//	go test -race -count=1 ./internal/e2e/
//
// It needs Linux (the bootstrap is a linux binary) and nothing else: no
// Docker, no network beyond 127.0.0.1, no AWS account.
package e2e
