//go:build !linux

package e2e

import (
	"runtime"
	"testing"
)

// The bootstrap is a linux binary and the emulator a linux program: off
// Linux there is nothing to run. Say so rather than pass silently.
func TestEndToEnd(t *testing.T) {
	t.Skipf("end-to-end tests run the linux bootstrap under the Lambda runtime interface emulator; GOOS is %s", runtime.GOOS)
}
