package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/ingest/ledgerbackend"
	"github.com/stellar/go-stellar-sdk/support/datastore"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
)

// manifestFile is the galexie datastore manifest (unexported in the SDK's datastore package).
const manifestFile = ".config.json"

// storageSource streams ledgers from a galexie datastore (GCS, S3 or a local directory) with
// the SDK's buffered storage stream.
type storageSource struct {
	typeName string
	kind     string // StorageGCS, StorageS3, StorageFS
	env      component.Env

	start, end        uint32 // resolved in Start when given by time (guarded by mu then)
	times             timeRange
	passphrase        string
	dsType            string
	params            map[string]string
	bufferSize        uint32 // 0: default by ledgers per file
	numWorkers        uint32 // 0: default by ledgers per file
	retryLimit        uint32
	retryWait         time.Duration
	ledgersPerFile    uint32 // 0: from the manifest
	filesPerPartition uint32 // 0: from the manifest
	requireManifest   bool   // located by url_template: only a galexie datastore is read
	tipInterval       time.Duration

	stats *sourceStats

	mu      sync.Mutex
	started bool
	store   datastore.DataStore
	dsCfg   datastore.DataStoreConfig
	bsCfg   ledgerbackend.BufferedStorageBackendConfig
}

var (
	_ component.Source        = (*storageSource)(nil)
	_ component.Starter       = (*storageSource)(nil)
	_ component.StatsReporter = (*storageSource)(nil)
)

// NewGCS is GCSBufferedStorageSourceAdapter.
func NewGCS(c *gcsConfig, env component.Env) (component.Source, error) {
	return buildStorage("GCSBufferedStorageSourceAdapter", StorageGCS, c.commonConfig,
		anyStorageConfig{BucketName: c.BucketName}, env)
}

// NewS3 is S3BufferedStorageSourceAdapter.
func NewS3(c *s3Config, env component.Env) (component.Source, error) {
	return buildStorage("S3BufferedStorageSourceAdapter", StorageS3, c.commonConfig,
		anyStorageConfig{BucketName: c.BucketName, Region: c.Region, Endpoint: c.Endpoint}, env)
}

// NewFS is FSBufferedStorageSourceAdapter.
func NewFS(c *fsConfig, env component.Env) (component.Source, error) {
	return buildStorage("FSBufferedStorageSourceAdapter", StorageFS, c.commonConfig,
		anyStorageConfig{Path: c.Path, BasePath: c.BasePath}, env)
}

// NewBufferedStorage is BufferedStorageSourceAdapter: GCS, S3 or FS by storage_type.
func NewBufferedStorage(c *anyStorageConfig, env component.Env) (component.Source, error) {
	var kind string
	switch strings.ToUpper(strings.TrimSpace(c.StorageType)) {
	case "", "GCS":
		kind = StorageGCS // the upstream CDP adapter's only storage
	case "S3":
		kind = StorageS3
	case "FS", "FILESYSTEM":
		kind = StorageFS
	default:
		return nil, fmt.Errorf("storage_type %q is not one of GCS, S3, FS", c.StorageType)
	}
	loc := *c
	if c.URLTemplate != "" {
		tkind, root, err := templateLocation(c.URLTemplate)
		if err != nil {
			return nil, err
		}
		if c.StorageType != "" && tkind != kind {
			return nil, fmt.Errorf("url_template is a %s location but storage_type says %s", tkind, kind)
		}
		if c.BucketName != "" || c.Path != "" || c.BasePath != "" {
			return nil, errors.New("give url_template or bucket_name/path, not both")
		}
		kind = tkind
		if kind == StorageFS {
			loc.Path = root
		} else {
			loc.BucketName = root
		}
	}
	for key, used := range map[string]bool{
		"bucket_name": c.BucketName != "" && kind == StorageFS,
		"region":      c.Region != "" && kind != StorageS3,
		"endpoint":    c.Endpoint != "" && kind != StorageS3,
		"path":        c.Path != "" && kind != StorageFS,
		"base_path":   c.BasePath != "" && kind != StorageFS,
	} {
		if used {
			return nil, fmt.Errorf("%s is not used with storage_type %s", key, kind)
		}
	}
	s, err := buildStorage("BufferedStorageSourceAdapter", kind, c.commonConfig, loc, env)
	if err != nil {
		return nil, err
	}
	s.requireManifest = c.URLTemplate != ""
	return s, nil
}

func buildStorage(typeName, kind string, c commonConfig, loc anyStorageConfig, env component.Env) (*storageSource, error) {
	passphrase, err := Passphrase(c.Network, c.NetworkPassphrase)
	if err != nil {
		return nil, err
	}
	times, err := parseTimeRange(c)
	if err != nil {
		return nil, err
	}
	s := &storageSource{
		typeName: typeName, kind: kind, env: env,
		start: c.StartLedger, end: c.EndLedger, times: times, passphrase: passphrase,
		bufferSize: c.BufferSize, numWorkers: c.NumWorkers,
		retryLimit:     defaultRetryLimit,
		ledgersPerFile: c.LedgersPerFile, filesPerPartition: c.FilesPerPartition,
		tipInterval: defaultTipInterval,
		stats:       newSourceStats(env.Now),
	}
	if c.RetryLimit != nil {
		s.retryLimit = *c.RetryLimit
	}
	wait, set, err := parseSeconds("retry_wait", c.RetryWait)
	if err != nil {
		return nil, err
	}
	switch {
	case set:
		s.retryWait = wait
	case kind == StorageFS:
		s.retryWait = defaultRetryWaitFS
	default:
		s.retryWait = defaultRetryWaitBucket
	}
	if s.numWorkers != 0 && s.bufferSize != 0 && s.numWorkers > s.bufferSize {
		return nil, fmt.Errorf("num_workers %d must not exceed buffer_size %d", s.numWorkers, s.bufferSize)
	}

	switch kind {
	case StorageGCS:
		if loc.BucketName == "" {
			return nil, errors.New("bucket_name is required")
		}
		bucket, err := withPrefix(kind, loc.BucketName, c.PathPrefix)
		if err != nil {
			return nil, err
		}
		s.dsType = "GCS"
		s.params = map[string]string{"destination_bucket_path": bucket}
	case StorageS3:
		if loc.BucketName == "" {
			return nil, errors.New("bucket_name is required")
		}
		region := loc.Region
		if region == "" {
			if loc.Endpoint == "" {
				return nil, errors.New("region is required (or endpoint, for an S3-compatible store)")
			}
			region = defaultS3Region
		}
		if loc.Endpoint != "" {
			if err := validateHTTPURL("endpoint", loc.Endpoint); err != nil {
				return nil, err
			}
		}
		bucket, err := withPrefix(kind, loc.BucketName, c.PathPrefix)
		if err != nil {
			return nil, err
		}
		s.dsType = "S3"
		s.params = map[string]string{"destination_bucket_path": bucket, "region": region}
		if loc.Endpoint != "" {
			s.params["endpoint_url"] = loc.Endpoint
		}
	case StorageFS:
		p := loc.Path
		if p == "" {
			p = loc.BasePath
		} else if loc.BasePath != "" && loc.BasePath != p {
			return nil, errors.New("give either path or base_path, not both")
		}
		if p == "" {
			return nil, errors.New("path is required")
		}
		p, err = withPrefix(kind, p, c.PathPrefix)
		if err != nil {
			return nil, err
		}
		s.dsType = "Filesystem"
		s.params = map[string]string{"destination_path": p}
	}
	return s, nil
}

// Range implements component.Source. A range given by time is known after Start (before, its
// unresolved ends are 0).
func (s *storageSource) Range() (start, end uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.start, s.end
}

// Stats implements component.StatsReporter.
func (s *storageSource) Stats() map[string]float64 { return s.stats.values() }

// Health implements component.HealthReporter: unhealthy while the datastore does not answer
// (see sourceStats.health).
func (s *storageSource) Health() string { return s.stats.health() }

// Start opens the datastore and reads its manifest: the schema (ledgers per file, files per
// partition) comes from there; configured values must agree with it. A datastore without a
// manifest uses the configured schema, or the upstream CDP defaults (64 ledgers per file, 10
// files per partition). The network passphrase must match the manifest's.
func (s *storageSource) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return nil
	}
	params := s.params
	if s.kind == StorageFS {
		fi, err := os.Stat(s.params["destination_path"])
		if err != nil {
			return fmt.Errorf("opening filesystem datastore: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("opening filesystem datastore: %s is not a directory", s.params["destination_path"])
		}
		// The SDK walks the directory without following a symlinked root, so finding the
		// tip of a datastore reached through a symlink (a mounted volume, a ConfigMap-style
		// swap) would fail: open the directory it points to.
		real, err := filepath.EvalSymlinks(s.params["destination_path"])
		if err != nil {
			return fmt.Errorf("opening filesystem datastore: %w", err)
		}
		params = maps.Clone(s.params)
		params["destination_path"] = real
	}
	cfg := datastore.DataStoreConfig{Type: s.dsType, Params: params}
	store, err := datastore.NewDataStore(ctx, cfg)
	if err != nil {
		return fmt.Errorf("opening %s datastore: %w", s.kind, err)
	}
	m, found, err := readManifest(ctx, store)
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("opening %s datastore: %w", s.kind, err)
	}
	if !found && s.requireManifest {
		_ = store.Close()
		return fmt.Errorf("opening %s datastore: url_template names a location without a galexie manifest (%s); cdpd reads galexie datastores, whose manifest names their files, not the per-file layout a template spells",
			s.kind, manifestFile)
	}
	lpf, fpp := s.ledgersPerFile, s.filesPerPartition
	if found {
		if lpf != 0 && lpf != m.LedgersPerFile || fpp != 0 && fpp != m.FilesPerPartition {
			_ = store.Close()
			return fmt.Errorf("config says ledgers_per_file %d, files_per_partition %d but the datastore's manifest says %d, %d (leave them out to use the manifest)",
				lpf, fpp, m.LedgersPerFile, m.FilesPerPartition)
		}
		if m.NetworkPassphrase != "" && m.NetworkPassphrase != s.passphrase {
			_ = store.Close()
			return fmt.Errorf("the datastore holds ledgers of network %q, the config names %q", m.NetworkPassphrase, s.passphrase)
		}
		lpf, fpp = m.LedgersPerFile, m.FilesPerPartition
		if m.NetworkPassphrase != "" {
			cfg.NetworkPassphrase = s.passphrase
		}
		// The SDK compares non-zero schema values with the manifest; they agree.
		cfg.Schema = datastore.DataStoreSchema{LedgersPerFile: lpf, FilesPerPartition: fpp}
	} else {
		if lpf == 0 {
			lpf = legacyLedgersPerFile
		}
		if fpp == 0 {
			fpp = legacyFilesPerPartition
		}
		s.env.Logger.Warn("datastore has no manifest; using the configured or default schema",
			"ledgers_per_file", lpf, "files_per_partition", fpp)
		cfg.Schema = datastore.DataStoreSchema{LedgersPerFile: lpf, FilesPerPartition: fpp}
	}

	bs := ledgerbackend.BufferedStorageBackendConfig{
		BufferSize: s.bufferSize, NumWorkers: s.numWorkers, RetryLimit: s.retryLimit, RetryWait: s.retryWait,
	}
	defBuf, defWorkers := defaultBufferSmallFiles, defaultWorkersSmallFiles
	if lpf >= 64 {
		defBuf, defWorkers = defaultBufferLargeFiles, defaultWorkersLargeFiles
	}
	if bs.BufferSize == 0 {
		bs.BufferSize = max(defBuf, bs.NumWorkers)
	}
	if bs.NumWorkers == 0 {
		bs.NumWorkers = min(defWorkers, bs.BufferSize)
	}
	if s.times.resolves() {
		start, end, err := s.resolveTimes(ctx, store, cfg.Schema)
		if err != nil {
			_ = store.Close()
			return fmt.Errorf("resolving the range given by time: %w", err)
		}
		s.start, s.end = start, end
	}
	s.store, s.dsCfg, s.bsCfg, s.started = store, cfg, bs, true
	s.stats.register(s.env.Metrics, s.env.Logger)
	return nil
}

func readManifest(ctx context.Context, store datastore.DataStore) (datastore.DatastoreManifest, bool, error) {
	r, _, err := store.GetFile(ctx, manifestFile)
	if errors.Is(err, os.ErrNotExist) {
		return datastore.DatastoreManifest{}, false, nil
	}
	if err != nil {
		return datastore.DatastoreManifest{}, false, fmt.Errorf("reading manifest %s: %w", manifestFile, err)
	}
	defer r.Close()
	var m datastore.DatastoreManifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return m, false, fmt.Errorf("reading manifest %s: %w", manifestFile, err)
	}
	if m.LedgersPerFile == 0 || m.FilesPerPartition == 0 {
		return m, false, fmt.Errorf("manifest %s has ledgersPerBatch %d, batchesPerPartition %d",
			manifestFile, m.LedgersPerFile, m.FilesPerPartition)
	}
	return m, true, nil
}

// Run implements component.Source: ledgers from (or start_ledger when from is 0) to end_ledger,
// or following the datastore's tip when end_ledger is 0.
func (s *storageSource) Run(ctx context.Context, from uint32, emit func(*ledger.Ledger) error) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	start, end := s.Range()
	rng, from, ok := runRange(start, end, from)
	if !ok {
		return nil
	}
	s.stats.span(from, end)

	s.mu.Lock()
	store, bsCfg, dsCfg := s.store, s.bsCfg, s.dsCfg
	s.mu.Unlock()
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.stats.pollTip(pctx, s.tipInterval, s.env.Logger, func(ctx context.Context) (uint32, error) {
			return datastore.FindLatestLedgerSequence(ctx, store)
		})
	}()
	defer func() {
		stop()
		wg.Wait()
	}()

	s.env.Logger.Info("source streaming", "type", s.typeName, "storage", s.kind, "from", from, "to", end,
		"ledgers_per_file", dsCfg.Schema.LedgersPerFile, "buffer_size", bsCfg.BufferSize,
		"num_workers", bsCfg.NumWorkers, "retry_wait", bsCfg.RetryWait)
	ls := ledgerbackend.NewBufferedStorageStream(bsCfg, dsCfg, sdkLogger())
	if err := stream(ctx, ls, rng, end != 0, s.env.Metrics, s.env, s.stats, emit); err != nil {
		if errors.Is(err, ctx.Err()) {
			return err
		}
		return fmt.Errorf("%s: streaming ledgers from %d: %w", s.typeName, from, err)
	}
	return nil
}

// Close implements component.Source.
func (s *storageSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store, s.started = nil, false
	return err
}
