package loader

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/withobsrvr/cdpd/internal/testutil"
)

// waitTimeout bounds every wait for the watcher; it is generous on purpose: tests assert what
// happens, never how fast.
const waitTimeout = 15 * time.Second

// pipelineYAML returns a file body defining the named pipelines; tag varies their content.
func pipelineYAML(tag string, names ...string) string {
	var b strings.Builder
	b.WriteString("pipelines:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %s:\n    source: {type: BufferedStorageSourceAdapter, config: {tag: %q}}\n    consumers: [{type: StdoutConsumer}]\n", n, tag)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// atomicWrite saves like editors and `mv` do: a temp file renamed over the target.
func atomicWrite(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type harness struct {
	t       *testing.T
	w       *Watcher
	env     *syncEnv
	batches chan Batch
}

// syncEnv is an environment the test may change while the watcher reads it.
type syncEnv struct {
	mu sync.Mutex
	m  map[string]string
}

func (e *syncEnv) set(k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[k] = v
}

func (e *syncEnv) lookup(k string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.m[k]
	return v, ok
}

// start runs a watcher on dir and returns it with its initial batch.
func start(t *testing.T, dir string, debounce time.Duration) (*harness, Batch) {
	t.Helper()
	return startWith(t, dir, debounce, nil)
}

// startWith is start with the watcher's options changed by mod.
func startWith(t *testing.T, dir string, debounce time.Duration, mod func(*Options)) (*harness, Batch) {
	t.Helper()
	env := &syncEnv{m: map[string]string{}}
	opts := testOpts()
	opts.Dir = dir
	opts.Debounce = debounce
	opts.LookupEnv = env.lookup
	if mod != nil {
		mod(&opts)
	}
	w, err := NewWatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	w.retry = 20 * time.Millisecond
	h := &harness{t: t, w: w, env: env, batches: make(chan Batch, 100)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(b Batch) { h.batches <- b }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	b := h.next()
	if !b.Initial {
		t.Fatalf("first batch is not Initial: %+v", b)
	}
	return h, b
}

func (h *harness) next() Batch {
	h.t.Helper()
	select {
	case b := <-h.batches:
		if b.Initial && len(h.batches) > 0 {
			h.t.Fatal("Initial batch after the first")
		}
		return b
	case <-time.After(waitTimeout):
		h.t.Fatal("no batch delivered")
		return Batch{}
	}
}

// nextEvents waits for the next batch and returns its events as "kind name" strings.
func (h *harness) nextEvents() []string {
	h.t.Helper()
	return events(h.next())
}

// quiet checks that the directory as it is now gives no batch: it forces two scans, the second
// started after the first ended (so after any scan already under way), and checks that no
// batch came.
func (h *harness) quiet() {
	h.t.Helper()
	for range 2 {
		n := h.w.scans.Load()
		h.w.Rescan()
		h.waitScans(n + 1)
	}
	select {
	case b := <-h.batches:
		h.t.Fatalf("unexpected batch: events %v, errors %q", events(b), errStrings(b.Errors))
	default:
	}
}

func (h *harness) waitScans(n int64) {
	h.t.Helper()
	testutil.EventuallyWhy(h.t, waitTimeout, fmt.Sprintf("watcher completed %d scans", n), func() (bool, string) {
		got := h.w.scans.Load()
		return got >= n, fmt.Sprintf("%d scans", got)
	})
}

func events(b Batch) []string {
	var out []string
	for _, e := range b.Events {
		out = append(out, e.Kind.String()+" "+e.Pipeline.Name)
	}
	return out
}

func expectEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("events = %q, want %q", got, want)
	}
}

func TestWatcherInitialBatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), pipelineYAML("1", "A1", "A2"))
	writeFile(t, filepath.Join(dir, "b.yml"), pipelineYAML("1", "B"))
	writeFile(t, filepath.Join(dir, "bad.yaml"), "pipelines: [\n")
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add A1", "add A2", "add B")
	want := []string{filepath.Join(dir, "bad.yaml") + ":2: invalid YAML: did not find expected node content"}
	if got := errStrings(b.Errors); !reflect.DeepEqual(got, want) {
		t.Errorf("initial errors %q, want %q", got, want)
	}
	if got := errStrings(h.w.Errors()); !reflect.DeepEqual(got, want) {
		t.Errorf("Errors() = %q, want %q", got, want)
	}
	all, _, err := Load(h.w.opts)
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash != hashConfig(all) {
		t.Error("initial batch hash differs from the hash of Load's pipelines")
	}
}

func TestWatcherEmptyDirInitialBatch(t *testing.T) {
	_, b := start(t, t.TempDir(), 20*time.Millisecond)
	if len(b.Events) != 0 || len(b.Errors) != 0 || b.Hash == "" {
		t.Fatalf("initial batch of an empty dir: %+v", b)
	}
}

func TestWatcherFileOperations(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	writeFile(t, a, pipelineYAML("1", "A"))
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add A")

	t.Run("new .yml file", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "b.yml"), pipelineYAML("1", "B"))
		expectEvents(t, h.nextEvents(), "add B")
	})
	t.Run("atomic rename from a temp file", func(t *testing.T) {
		atomicWrite(t, a, pipelineYAML("2", "A"))
		expectEvents(t, h.nextEvents(), "update A")
	})
	t.Run("identical content is a no-op", func(t *testing.T) {
		n := h.w.scans.Load()
		writeFile(t, a, pipelineYAML("2", "A"))    // same bytes
		atomicWrite(t, a, pipelineYAML("2", "A"))  // same bytes, new inode
		if err := os.Chmod(a, 0o600); err != nil { // a rescan that finds nothing new
			t.Fatal(err)
		}
		// Same content after expansion, written differently: same hash.
		writeFile(t, a, "# reformatted\npipelines:\n  A:\n    consumers:\n      - type: StdoutConsumer\n"+
			"    source:\n      config: {tag: \"2\"}\n      type: BufferedStorageSourceAdapter\n")
		h.waitScans(n + 1) // the scan these writes trigger
		h.quiet()
	})
	t.Run("delete", func(t *testing.T) {
		if err := os.Remove(filepath.Join(dir, "b.yml")); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, h.nextEvents(), "remove B")
	})
	t.Run("rename out of the directory", func(t *testing.T) {
		if err := os.Rename(a, filepath.Join(t.TempDir(), "a.yaml")); err != nil {
			t.Fatal(err)
		}
		b := h.next()
		expectEvents(t, events(b), "remove A")
		if b.Events[0].Pipeline.Hash == "" || b.Events[0].Pipeline.File != a {
			t.Errorf("Remove carries %+v, want the last applied pipeline", b.Events[0].Pipeline)
		}
	})
	t.Run("rename into the directory", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "c.yaml")
		writeFile(t, other, pipelineYAML("1", "C"))
		if err := os.Rename(other, filepath.Join(dir, "c.yaml")); err != nil {
			t.Fatal(err)
		}
		expectEvents(t, h.nextEvents(), "add C")
	})
}

// A file written in several chunks gives one event for the complete file.
func TestWatcherChunkedWrite(t *testing.T) {
	dir := t.TempDir()
	// A long debounce: the chunks below arrive well inside it.
	h, _ := start(t, dir, 500*time.Millisecond)
	content := pipelineYAML("chunked", "Chunked")
	f, err := os.Create(filepath.Join(dir, "chunked.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(content); i += 16 {
		if _, err := f.WriteString(content[i:min(i+16, len(content))]); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b := h.next()
	expectEvents(t, events(b), "add Chunked")
	if len(b.Errors) != 0 {
		t.Fatalf("a partial file was parsed: %q", errStrings(b.Errors))
	}
	if got := b.Events[0].Pipeline.Source.Config["tag"]; got != "chunked" {
		t.Fatalf("source config tag = %v", got)
	}
	h.quiet()
}

func TestWatcherInvalidKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	writeFile(t, a, pipelineYAML("1", "A", "A2"))
	h, _ := start(t, dir, 20*time.Millisecond)

	// A syntax error: the file keeps both pipelines, the error is reported.
	writeFile(t, a, "pipelines:\n  A: {source: [\n")
	b := h.next()
	expectEvents(t, events(b))
	wantErr := a + ":3: invalid YAML: did not find expected node content"
	if got := errStrings(b.Errors); !reflect.DeepEqual(got, []string{wantErr}) {
		t.Fatalf("errors %q, want %q", got, wantErr)
	}
	if got := errStrings(h.w.Errors()); !reflect.DeepEqual(got, []string{wantErr}) {
		t.Fatalf("Errors() = %q", got)
	}

	// One pipeline bad, A2 dropped, A3 new: A keeps its last good version, A3 is added, A2 is
	// kept until the file is clean.
	writeFile(t, a, pipelineYAML("2", "A3")+"  A:\n    source: {type: NoSuchSource}\n    consumers: [{type: StdoutConsumer}]\n")
	b = h.next()
	expectEvents(t, events(b), "add A3")
	wantErr = a + `:6:5: pipeline A: source (NoSuchSource): unknown component type: source "NoSuchSource"`
	if got := errStrings(b.Errors); !reflect.DeepEqual(got, []string{wantErr}) {
		t.Fatalf("errors %q, want %q", got, wantErr)
	}

	// Valid again: the normal diff.
	writeFile(t, a, pipelineYAML("3", "A")+pipelineYAML("2", "A3")[len("pipelines:\n"):])
	b = h.next()
	expectEvents(t, events(b), "remove A2", "update A")
	if len(b.Errors) != 0 || len(h.w.Errors()) != 0 {
		t.Fatalf("errors after the fix: %q / %q", errStrings(b.Errors), errStrings(h.w.Errors()))
	}
}

// A new file that is invalid from the start adds nothing; deleting it clears its error with a
// batch of its own.
func TestWatcherInvalidNewFile(t *testing.T) {
	dir := t.TempDir()
	h, _ := start(t, dir, 20*time.Millisecond)
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "pipeline:\n  name: X\n  consumers: [{type: StdoutConsumer}]\n")
	b := h.next()
	expectEvents(t, events(b))
	want := []string{bad + ":1:1: pipeline X: source is required"}
	if got := errStrings(b.Errors); !reflect.DeepEqual(got, want) {
		t.Fatalf("errors %q, want %q", got, want)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	b = h.next()
	if len(b.Events) != 0 || len(b.Errors) != 0 || len(h.w.Errors()) != 0 {
		t.Fatalf("after delete: events %v errors %q standing %q", events(b), errStrings(b.Errors), errStrings(h.w.Errors()))
	}
}

func TestWatcherIgnoredFiles(t *testing.T) {
	dir := t.TempDir()
	h, _ := start(t, dir, 20*time.Millisecond)
	n := h.w.scans.Load()
	for i, name := range []string{".hidden.yaml", "a.yaml~", ".a.yaml.swp", "#a.yaml#", ".#a.yaml",
		"4913", "notes.txt", "a.yaml.tmp", "..data"} {
		writeFile(t, filepath.Join(dir, name), pipelineYAML("x", fmt.Sprintf("Ignored%d", i)))
	}
	if err := os.Mkdir(filepath.Join(dir, "..2026_11_27_10_00_00.000000001"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.waitScans(n + 1) // events on ignored names still trigger a scan, which finds nothing
	h.quiet()
	if errs := h.w.Errors(); len(errs) != 0 {
		t.Fatalf("errors for ignored files: %q", errStrings(errs))
	}
}

// Several pipelines in one file: only the ones that changed give events.
func TestWatcherOneOfSeveralPipelines(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "multi.yaml")
	writeFile(t, a, pipelineYAML("1", "P1", "P2", "P3"))
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add P1", "add P2", "add P3")

	writeFile(t, a, pipelineYAML("1", "P1", "P3")+pipelineYAML("2", "P2")[len("pipelines:\n"):])
	expectEvents(t, h.nextEvents(), "update P2")
	writeFile(t, a, pipelineYAML("1", "P1")+pipelineYAML("2", "P2", "P4")[len("pipelines:\n"):])
	expectEvents(t, h.nextEvents(), "remove P3", "add P4")
	writeFile(t, a, pipelineYAML("9", "P1")+pipelineYAML("2", "P2")[len("pipelines:\n"):]+pipelineYAML("1", "P5")[len("pipelines:\n"):])
	expectEvents(t, h.nextEvents(), "remove P4", "update P1", "add P5")
}

func TestWatcherDuplicateNames(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeFile(t, a, pipelineYAML("from-a", "D"))
	writeFile(t, b, pipelineYAML("from-b", "D", "E"))
	h, batch := start(t, dir, 20*time.Millisecond)
	// Initial scan: files by path order, a.yaml first.
	expectEvents(t, events(batch), "add D", "add E")
	if f := batch.Events[0].Pipeline.File; f != a {
		t.Fatalf("D from %s, want %s", f, a)
	}
	want := []string{b + ":2:3: pipeline D: pipeline name already defined in " + a + ":2; this definition is ignored"}
	if got := errStrings(batch.Errors); !reflect.DeepEqual(got, want) {
		t.Fatalf("errors %q, want %q", got, want)
	}

	// The later file changes its copy: still rejected, nothing runs differently.
	n := h.w.scans.Load()
	writeFile(t, b, pipelineYAML("from-b-2", "D")+pipelineYAML("from-b", "E")[len("pipelines:\n"):])
	h.waitScans(n + 1)
	h.quiet()
	if got := errStrings(h.w.Errors()); !reflect.DeepEqual(got, want) {
		t.Fatalf("Errors() = %q, want %q", got, want)
	}

	// A file added later never takes a name that is running (even if its path sorts first).
	first := filepath.Join(dir, "0first.yaml")
	writeFile(t, first, pipelineYAML("from-0", "D"))
	batch = h.next()
	expectEvents(t, events(batch))
	want0 := first + ":2:3: pipeline D: pipeline name already defined in " + a + ":2; this definition is ignored"
	if got := errStrings(batch.Errors); !reflect.DeepEqual(got, []string{want0}) {
		t.Fatalf("errors %q, want %q", got, want0)
	}
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	if b := h.next(); len(b.Events) != 0 {
		t.Fatalf("events %v", events(b))
	}

	// The holder drops it: the other file takes it over.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	batch = h.next()
	expectEvents(t, events(batch), "update D")
	if f := batch.Events[0].Pipeline.File; f != b {
		t.Fatalf("D from %s, want %s", f, b)
	}
	if errs := h.w.Errors(); len(errs) != 0 {
		t.Fatalf("errors after takeover: %q", errStrings(errs))
	}
}

// The same pipeline moved to another file (same content) is a no-op.
func TestWatcherMoveBetweenFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), pipelineYAML("1", "M"))
	h, _ := start(t, dir, 20*time.Millisecond)
	n := h.w.scans.Load()
	if err := os.Rename(filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	h.waitScans(n + 1)
	h.quiet()
}

func TestWatcherRescan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), strings.Replace(pipelineYAML("1", "R"), `"1"`, `"${TAG:-one}"`, 1))
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add R")
	if got := b.Events[0].Pipeline.Source.Config["tag"]; got != "one" {
		t.Fatalf("tag = %v", got)
	}
	// No file event: only a forced rescan sees the new environment.
	h.env.set("TAG", "two")
	for range 5 {
		h.w.Rescan() // coalesced, never blocks
	}
	b = h.next()
	expectEvents(t, events(b), "update R")
	if got := b.Events[0].Pipeline.Source.Config["tag"]; got != "two" {
		t.Fatalf("tag = %v", got)
	}
	h.quiet()
}

// A change to one file parses that file only (the others' bytes did not change, so they keep
// their parse); a forced rescan parses every file again.
func TestWatcherParsesOnlyChangedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"A", "B", "C"} {
		writeFile(t, filepath.Join(dir, strings.ToLower(n)+".yaml"), pipelineYAML("1", n))
	}
	var parsed atomic.Int64 // sources validated: one per file parsed
	h, b := startWith(t, dir, 20*time.Millisecond, func(o *Options) {
		check := o.Check
		o.Check = func(kind, typeName string, cfg map[string]any, network string) ([]UnknownKey, error) {
			if kind == KindSource {
				parsed.Add(1)
			}
			return check(kind, typeName, cfg, network)
		}
	})
	expectEvents(t, events(b), "add A", "add B", "add C")
	if n := parsed.Load(); n != 3 {
		t.Fatalf("first scan parsed %d files, want 3", n)
	}
	atomicWrite(t, filepath.Join(dir, "b.yaml"), pipelineYAML("2", "B"))
	expectEvents(t, h.nextEvents(), "update B")
	if n := parsed.Load(); n != 4 {
		t.Fatalf("%d files parsed in all after changing one of three, want 4 (the changed one again)", n)
	}
	n := h.w.scans.Load()
	h.w.Rescan()
	h.waitScans(n + 1)
	if n := parsed.Load(); n != 7 {
		t.Fatalf("%d files parsed in all after a forced rescan, want 7 (all three again)", n)
	}
	h.quiet()
}

// The ConfigMap volume layout and update, done as the kubelet's atomic writer does it.
type configMap struct {
	t   *testing.T
	dir string
	gen int
	cur string // current timestamped directory
}

// update writes a new generation of the ConfigMap holding files, swaps ..data to it, adds and
// removes the visible symlinks, and removes the old generation.
func (c *configMap) update(files map[string]string) {
	t := c.t
	c.gen++
	ts := fmt.Sprintf("..2026_11_27_10_%02d_00.%09d", c.gen, c.gen)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		writeFile(t, filepath.Join(c.dir, ts, name), content)
	}
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(c.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, keep := files[e.Name()]; !strings.HasPrefix(e.Name(), ".") && !keep {
			if err := os.Remove(filepath.Join(c.dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c.cur != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, c.cur)); err != nil {
			t.Fatal(err)
		}
	}
	c.cur = ts
}

// collect gathers events from batches until want (sorted) is reached; a Remove or an error
// that is not wanted fails at once.
func (h *harness) collect(want ...string) {
	h.t.Helper()
	slices.Sort(want)
	var got []string
	for !reflect.DeepEqual(got, want) {
		b := h.next()
		if len(b.Errors) > 0 {
			h.t.Fatalf("errors during a ConfigMap update: %q", errStrings(b.Errors))
		}
		for _, e := range events(b) {
			if !slices.Contains(want, e) {
				h.t.Fatalf("unexpected event %q (so far %q, want %q)", e, got, want)
			}
			got = append(got, e)
		}
		slices.Sort(got)
		if len(got) > len(want) {
			h.t.Fatalf("events %q, want %q", got, want)
		}
	}
}

func TestWatcherConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	cm := &configMap{t: t, dir: dir}
	cm.update(map[string]string{"main.yaml": pipelineYAML("1", "CM1", "CM2")})
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add CM1", "add CM2")
	if b.Events[0].Pipeline.File != filepath.Join(dir, "main.yaml") {
		t.Fatalf("file %s, want the visible symlink", b.Events[0].Pipeline.File)
	}

	// A changed key and a new key.
	cm.update(map[string]string{"main.yaml": pipelineYAML("1", "CM1") +
		pipelineYAML("2", "CM2")[len("pipelines:\n"):], "extra.yml": pipelineYAML("1", "EXTRA")})
	h.collect("update CM2", "add EXTRA")

	// The same data again (kubelet resyncs write identical content): nothing happens.
	n := h.w.scans.Load()
	cm.update(map[string]string{"main.yaml": pipelineYAML("1", "CM1") + pipelineYAML("2", "CM2")[len("pipelines:\n"):],
		"extra.yml": pipelineYAML("1", "EXTRA")})
	h.waitScans(n + 1)
	h.quiet()

	// A key removed from the ConfigMap.
	cm.update(map[string]string{"main.yaml": pipelineYAML("1", "CM1") + pipelineYAML("2", "CM2")[len("pipelines:\n"):]})
	h.collect("remove EXTRA")
	h.quiet()
}

// The directory removed while running: errors, the pipelines stay; back again: normal diff.
func TestWatcherDirRemoved(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), pipelineYAML("1", "A"))
	writeFile(t, filepath.Join(dir, "b.yaml"), pipelineYAML("1", "B"))
	h, _ := start(t, dir, 20*time.Millisecond)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	b := h.next()
	expectEvents(t, events(b))
	if len(b.Errors) != 1 || !strings.Contains(b.Errors[0].Error(), "cannot read the config directory") {
		t.Fatalf("errors %q", errStrings(b.Errors))
	}
	// Recreate it with one file changed and one gone.
	tmp := filepath.Join(parent, "new")
	if err := os.Mkdir(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(tmp, "a.yaml"), pipelineYAML("2", "A"))
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	b = h.next()
	expectEvents(t, events(b), "remove B", "update A")
	if len(h.w.Errors()) != 0 {
		t.Fatalf("errors standing: %q", errStrings(h.w.Errors()))
	}
	// And it is watched again.
	writeFile(t, filepath.Join(dir, "c.yaml"), pipelineYAML("1", "C"))
	expectEvents(t, h.nextEvents(), "add C")
}

func TestNewWatcherErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, "")
	tests := []struct {
		dir, want string
	}{
		{"", "loader: no config directory given"},
		{filepath.Join(dir, "missing"), "config directory " + filepath.Join(dir, "missing") + ": stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{file, "config directory " + file + ": not a directory"},
	}
	if os.Geteuid() != 0 { // root reads any directory
		locked := filepath.Join(dir, "locked")
		if err := os.Mkdir(locked, 0o000); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ dir, want string }{locked,
			"config directory " + locked + " is not readable: open " + locked + ": permission denied"})
	}
	for _, tt := range tests {
		if _, err := NewWatcher(Options{Dir: tt.dir}); err == nil || err.Error() != tt.want {
			t.Errorf("NewWatcher(%q) error = %v, want %q", tt.dir, err, tt.want)
		}
		if _, _, err := Load(Options{Dir: tt.dir}); err == nil || err.Error() != tt.want {
			t.Errorf("Load(%q) error = %v, want %q", tt.dir, err, tt.want)
		}
	}
}

func TestRunTwice(t *testing.T) {
	h, _ := start(t, t.TempDir(), 20*time.Millisecond)
	if err := h.w.Run(context.Background(), func(Batch) {}); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), pipelineYAML("a", "Dup", "A"))
	writeFile(t, filepath.Join(dir, "b.yml"), pipelineYAML("b", "Dup", "B"))
	writeFile(t, filepath.Join(dir, "c.yaml"), "pipelines:\n  C:\n    consumers: [{type: StdoutConsumer}]\n")
	writeFile(t, filepath.Join(dir, ".ignored.yaml"), "not: [valid")
	ps, errs, err := Load(Options{Dir: dir, Check: testCheck, LookupEnv: lookupIn(nil)})
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range ps {
			if !yield(n) {
				return
			}
		}
	})
	if want := []string{"A", "B", "Dup"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("pipelines %v, want %v", names, want)
	}
	if f := ps["Dup"].File; f != filepath.Join(dir, "a.yaml") {
		t.Errorf("Dup from %s", f)
	}
	want := []string{
		filepath.Join(dir, "b.yml") + ":2:3: pipeline Dup: pipeline name already defined in " + filepath.Join(dir, "a.yaml") + ":2; this definition is ignored",
		filepath.Join(dir, "c.yaml") + ":2:3: pipeline C: source is required",
	}
	if got := errStrings(errs); !reflect.DeepEqual(got, want) {
		t.Fatalf("errors:\n got  %q\n want %q", got, want)
	}
}

// Files that are not regular or too large are errors of their own, not hangs.
func TestScanOddFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "d.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	writeFile(t, big, "pipelines: {}\n#"+strings.Repeat("x", MaxFileSize))
	if err := os.Symlink("nowhere.yaml", filepath.Join(dir, "dangling.yaml")); err != nil {
		t.Fatal(err)
	}
	_, errs, err := Load(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		big + ": file is 1048591 bytes; the limit is 1048576",
		filepath.Join(dir, "d.yaml") + ": is a directory, not a pipeline file",
	}
	if got := errStrings(errs); !reflect.DeepEqual(got, want) {
		t.Fatalf("errors:\n got  %q\n want %q", got, want)
	}
}

// The directory moved away and a new one put in its place: the new one is watched, the moved
// one no longer matters.
func TestWatcherDirMovedAway(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "conf")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "a.yaml"), pipelineYAML("1", "A"))
	h, _ := start(t, dir, 20*time.Millisecond)
	moved := filepath.Join(parent, "moved")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	b := h.next()
	expectEvents(t, events(b))
	want := []string{dir + ": cannot read the config directory (no such file or directory); keeping the running pipelines"}
	if got := errStrings(b.Errors); !reflect.DeepEqual(got, want) {
		t.Fatalf("errors %q, want %q", got, want)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "b.yaml"), pipelineYAML("1", "B"))
	h.collect("remove A", "add B")
	n := h.w.scans.Load()
	writeFile(t, filepath.Join(moved, "c.yaml"), pipelineYAML("1", "C"))
	writeFile(t, filepath.Join(dir, "b.yaml"), pipelineYAML("1", "B")) // same content
	h.waitScans(n + 1)
	h.quiet()
}

// TestWatcherTruncateThenWrite: a writer that truncates the file and writes it a moment later
// (os.WriteFile, `cat >`, editors saving in place) must not remove the file's pipelines in
// between; a file that stays empty past the grace does remove them.
func TestWatcherTruncateThenWrite(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.yaml")
	writeFile(t, a, pipelineYAML("1", "A"))
	h, b := start(t, dir, 20*time.Millisecond)
	expectEvents(t, events(b), "add A")

	n := h.w.scans.Load()
	writeFile(t, a, "") // truncated: the content is not there yet
	h.waitScans(n + 1)  // a scan sees the empty file
	h.quiet()           // ... and keeps A
	writeFile(t, a, pipelineYAML("2", "A"))
	expectEvents(t, h.nextEvents(), "update A")

	writeFile(t, a, "")                         // emptied for good
	expectEvents(t, h.nextEvents(), "remove A") // once the grace has passed
}
