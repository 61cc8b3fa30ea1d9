// Package arch holds the test that keeps the import graph the architecture
// the README's Layout describes: a new edge between the module's packages
// is a decision, written down here, not an accident.
package arch

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/odcr-autocancel/odcr-autocancel/"

// allowed lists, for each package of the module, the module's packages its
// non-test files may import. A package missing here may import none.
var allowed = map[string][]string{
	"cmd/odcr-autocancel":  {"handler", "internal/awsapi", "internal/preview", "internal/version", "org", "price", "report"},
	"cmd/odcr-bench":       {"handler", "internal/awsapi", "internal/fakeaws", "internal/version", "org", "policy", "report"},
	"cmd/odcr-demo":        {"handler", "internal/demo", "internal/fakeaws", "internal/preview", "internal/version", "org", "report"},
	"handler":              {"dependents", "emf", "internal/auditlog", "internal/awsapi", "internal/strictjson", "internal/version", "marks", "notify", "org", "policy", "price", "report", "utilization"},
	"marks":                {"internal/awsapi", "policy"},
	"utilization":          {"internal/awsapi", "policy"},
	"org":                  {"internal/awsapi", "internal/strictjson", "notify", "policy", "report"},
	"notify":               {"policy", "report"},
	"price":                {"internal/awsapi"},
	"emf":                  {"policy", "report"},
	"report":               {"policy"},
	"policy":               {},
	"dependents":           {"internal/awsapi", "policy"},
	"internal/preview":     {"policy", "report"},
	"internal/demo":        {"internal/fakeaws", "marks", "policy"},
	"internal/testsupport": {},
	"internal/cfn":         {},
	"internal/awsapi":      {},
	"internal/auditlog":    {},
	"internal/sizebase":    {},
	"internal/strictjson":  {},
	"internal/e2e":         {},
	"internal/version":     {},
}

// pure lists the files that may import nothing outside the standard
// library and the module: the rules, and the notification's builder.
var pure = []string{"policy/*.go", "notify/notify.go", "notify/variants.go", "report/*.go"}

// imports reads the imports of the non-test Go files of each directory.
func imports(t *testing.T, root string) map[string]map[string][]string {
	t.Helper()
	out := map[string]map[string][]string{} // dir -> file -> imports
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		if out[dir] == nil {
			out[dir] = map[string][]string{}
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[dir][filepath.ToSlash(rel)] = append(out[dir][filepath.ToSlash(rel)], p)
		}
		if _, ok := out[dir][filepath.ToSlash(rel)]; !ok {
			out[dir][filepath.ToSlash(rel)] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportGraphIsTheArchitecture(t *testing.T) {
	graph := imports(t, filepath.Join("..", ".."))
	for dir, files := range graph {
		if dir == "internal/fakeaws" || strings.HasPrefix(dir, "internal/fakeaws/") {
			continue // the fake AWS account: imports nothing of the module
		}
		may, known := allowed[dir]
		if !known {
			t.Errorf("package %s is not in the architecture (internal/arch): add it with the packages it may import", dir)
			continue
		}
		for file, imps := range files {
			for _, imp := range imps {
				if rest, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(may, rest) {
					t.Errorf("%s imports %s: %s may import only %v", file, rest, dir, may)
				}
			}
		}
	}
	for _, imps := range graph["internal/fakeaws"] {
		for _, imp := range imps {
			if strings.HasPrefix(imp, module) {
				t.Errorf("internal/fakeaws imports %s: the fake must stand alone", imp)
			}
		}
	}
}

// policy decides and the notification's builder renders: neither reads AWS,
// a clock or a logger.
func TestPureFilesImportNoSDK(t *testing.T) {
	graph := imports(t, filepath.Join("..", ".."))
	for _, pattern := range pure {
		files, err := filepath.Glob(filepath.Join("..", "..", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", pattern, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			rel, _ := filepath.Rel(filepath.Join("..", ".."), f)
			rel = filepath.ToSlash(rel)
			for _, imp := range graph[filepath.ToSlash(filepath.Dir(rel))][rel] {
				if strings.Contains(imp, ".") && !strings.HasPrefix(imp, module) {
					t.Errorf("%s imports %s: it must stay pure (the standard library and the module only)", rel, imp)
				}
			}
		}
	}
}

// The README's Layout names every package of the module, so that a new
// package is described where a newcomer looks.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	for dir := range imports(t, filepath.Join("..", "..")) {
		if dir == "." {
			continue
		}
		if !strings.Contains(layout, "`"+dir+"/`") {
			t.Errorf("README.md's Layout does not name %s/", dir)
		}
	}
}

// The README stays the newcomer's page: what, the demo, the tests, deploy,
// safety in short and a map, in at most 300 lines; the rest is in docs/.
func TestReadmeStaysShort(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(readme), "\n"); n > 300 {
		t.Errorf("README.md has %d lines, over 300: move the detail to a page of docs/", n)
	}
}

// Rooms stay livable: no non-test file of handler/ over 500 lines, no
// package over 3,000 non-test lines. A package that grows past them is
// split along its seams, as handler/ was. internal/fakeaws, the fake of
// seven AWS services' wire protocols (about 6,000 lines), is the one
// exception until it is split per service.
func TestPackagesStaySmall(t *testing.T) {
	root := filepath.Join("..", "..")
	lines := map[string]int{}
	for dir, files := range imports(t, root) {
		for file := range files {
			b, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Fatal(err)
			}
			n := strings.Count(string(b), "\n")
			lines[dir] += n
			if dir == "handler" && n > 500 {
				t.Errorf("%s has %d lines, over 500", file, n)
			}
		}
	}
	for dir, n := range lines {
		if n > 3000 && dir != "internal/fakeaws" {
			t.Errorf("package %s has %d non-test lines, over 3,000", dir, n)
		}
	}
}
