//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Import paths of the two programs the tests run.
const (
	functionPackage = "github.com/odcr-autocancel/odcr-autocancel/cmd/odcr-autocancel"
	// riePackage is pinned by the tool directive in go.mod, so the build
	// below and `go tool aws-lambda-rie` run the same version.
	riePackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
)

// buildTimeout bounds both builds together. A cold build cache compiles the
// whole EC2 SDK for the bootstrap, which takes a while on a small machine.
const buildTimeout = 8 * time.Minute

var (
	// bootstrapBin is the function, built as for Lambda; rieBin the
	// emulator. Both are built once per test binary, by TestMain.
	bootstrapBin string
	rieBin       string
	// buildTimes records how long each build took, for the logs.
	buildTimes = map[string]time.Duration{}
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "odcr-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := buildAll(dir); err != nil {
		// A build failure is a failure, never a skip.
		fmt.Fprintln(os.Stderr, "e2e: FAIL:", err)
		return 1
	}
	return m.Run()
}

// buildAll builds the bootstrap and the emulator into dir, in parallel.
func buildAll(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	bootstrapBin = filepath.Join(dir, "bootstrap")
	rieBin = filepath.Join(dir, "aws-lambda-rie")
	builds := []struct {
		name string
		env  []string
		args []string
	}{{
		// The Makefile's flags, for the host's architecture so it runs
		// here: static, no RPC path, stripped, no local paths.
		name: "bootstrap",
		env:  []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH},
		args: []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", bootstrapBin, functionPackage},
	}, {
		name: "aws-lambda-rie",
		args: []string{"-o", rieBin, riePackage},
	}}
	errs := make([]error, len(builds))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			errs[i] = goBuild(ctx, b.env, b.args)
			mu.Lock()
			buildTimes[b.name] = time.Since(start)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func goBuild(ctx context.Context, env, args []string) error {
	// go test puts its own GOROOT/bin first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("the go command is needed to build the bootstrap: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"build"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s build %s: %w\n%s", strings.Join(env, " "), strings.Join(args, " "), err, out)
	}
	return nil
}
