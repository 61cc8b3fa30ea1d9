// Package testsupport holds the test helpers several packages share: golden
// files (one -update flag for all of them) and the check that a page of the
// documentation shows a program's real output. Only tests import it.
package testsupport

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ with this run's output")

// Golden compares got with the file testdata/name of the calling package,
// and rewrites the file with got first when the test runs with -update.
func Golden(t testing.TB, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to rewrite it after checking the change):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// ReadGolden returns testdata/name of the calling package.
func ReadGolden(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Repo is the path of the repository's root from the calling package's
// directory (where go test runs it): the directory holding go.mod.
func Repo(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// DocShows fails the test unless the page doc (a path from the
// repository's root, such as "README.md" or "docs/organization.md")
// contains text; what names the text in the failure ("the demo's output as
// testdata/demo-table.golden has it").
func DocShows(t testing.TB, doc, text, what string) {
	t.Helper()
	page, err := os.ReadFile(filepath.Join(Repo(t), doc))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), text) {
		t.Errorf("%s does not show %s: paste it again", doc, what)
	}
}
