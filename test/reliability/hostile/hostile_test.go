package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/host/builtin"
	"github.com/withobsrvr/cdpd/loader"
)

func validYAML(dir string) func(string) string {
	return func(name string) string {
		return fmt.Sprintf(`pipeline:
  name: %s
  source:
    type: FSBufferedStorageSourceAdapter
    config:
      path: %q
      network: pubnet
      start_ledger: 58752000
  processors:
    - {type: LatestLedger, config: {}}
  consumers:
    - {type: StdoutConsumer, config: {}}
`, name, dir)
	}
}

// TestEveryCaseOneError loads a directory of every kind of case (twice over) with the real
// component registry: each entry gets exactly the errors it promises, each naming it, and no
// pipeline but the valid one loads. The loader is read in-process, so a hang fails the test
// by its timeout rather than the whole suite.
func TestEveryCaseOneError(t *testing.T) {
	dir := t.TempDir()
	reg, err := builtin.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(validYAML(dir)("good")), 0o644); err != nil {
		t.Fatal(err)
	}
	cases, err := Write(dir, Options{Count: 2 * len(Kinds()), Seed: 1, Valid: validYAML(dir), Running: []string{"good"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ps, errs, err := loader.Load(loader.Options{Dir: dir, Check: builtin.LoaderCheck(reg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d entries in %s", len(cases), time.Since(start))
	if len(ps) != 1 || ps["good"] == nil {
		var names []string
		for n := range ps {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Errorf("pipelines loaded: %v, want only good", names)
	}
	byFile := map[string][]string{}
	for _, e := range errs {
		byFile[filepath.Base(e.File)] = append(byFile[filepath.Base(e.File)], e.Error())
	}
	for _, c := range cases {
		got := byFile[c.File]
		if len(got) != c.Errors {
			t.Errorf("%s (%s): %d errors, want %d: %s", c.File, c.Kind, len(got), c.Errors, strings.Join(got, " | "))
			continue
		}
		for _, m := range got {
			if !strings.Contains(m, c.File) {
				t.Errorf("%s: error does not name the file: %s", c.File, m)
			}
			// A clear error is short: it must not echo a hostile value.
			if rest := strings.TrimPrefix(m, filepath.Join(dir, c.File)); len(rest) > 1024 {
				t.Errorf("%s: error of %d bytes: %.300s...", c.File, len(rest), m)
			}
			if testing.Verbose() {
				t.Logf("%-28s %.160s", c.Kind, m)
			}
		}
		delete(byFile, c.File)
	}
	for f, m := range byFile {
		t.Errorf("unexpected errors for %s: %v", f, m)
	}
}
