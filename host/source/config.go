package source

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/network"
)

// Storage types of a buffered storage source.
const (
	StorageGCS = "GCS"
	StorageS3  = "S3"
	StorageFS  = "FS"
)

// Defaults (see the package doc).
const (
	defaultRetryLimit        uint32 = 5
	defaultRetryWaitFS              = time.Second
	defaultRetryWaitBucket          = 5 * time.Second
	defaultBufferSmallFiles  uint32 = 20 // files of < 64 ledgers: twice the workers (issue 19: each buffered object is a decompressed ledger held beside the --ledger-memory budget)
	defaultWorkersSmallFiles uint32 = 10
	defaultBufferLargeFiles  uint32 = 10 // files of >= 64 ledgers (each ~10 MB compressed)
	defaultWorkersLargeFiles uint32 = 2
	// Schema used when a datastore has no manifest and the config names none: the upstream CDP
	// pipeline's defaults.
	legacyLedgersPerFile    uint32 = 64
	legacyFilesPerPartition uint32 = 10
	defaultRPCBufferSize    uint32 = 10
	defaultS3Region                = "us-east-1"
)

// commonConfig holds the keys every buffered storage source takes (CDP spelling).
type commonConfig struct {
	Network           string `mapstructure:"network"`
	NetworkPassphrase string `mapstructure:"network_passphrase"`
	StartLedger       uint32 `mapstructure:"start_ledger"`
	EndLedger         uint32 `mapstructure:"end_ledger"`
	// The range by time (timespec.go): a duration before now or a time, resolved to ledgers
	// in Start. ContinuousMode is upstream's explicit "follow the tip".
	StartTimeAgo   string `mapstructure:"start_time_ago"`
	EndTimeAgo     string `mapstructure:"end_time_ago"`
	StartTime      string `mapstructure:"start_time"`
	EndTime        string `mapstructure:"end_time"`
	ContinuousMode bool   `mapstructure:"continuous_mode"`
	BufferSize     uint32 `mapstructure:"buffer_size"`
	NumWorkers     uint32 `mapstructure:"num_workers"`
	// RetryLimit is a pointer so an explicit 0 (fail on the first error) is kept.
	RetryLimit *uint32 `mapstructure:"retry_limit"`
	// RetryWait is seconds as a number (the upstream CDP spelling) or a Go duration string.
	RetryWait         any    `mapstructure:"retry_wait"`
	LedgersPerFile    uint32 `mapstructure:"ledgers_per_file"`
	FilesPerPartition uint32 `mapstructure:"files_per_partition"`
	// PathPrefix is a path inside the bucket (GCS, S3) or directory (FS) where the datastore
	// starts.
	PathPrefix string `mapstructure:"path_prefix"`
	// Share reads through the daemon's shared reader of the datastore (default true); false
	// reads on the source's own stream.
	Share *bool `mapstructure:"share"`
}

// SetDefaults implements component.Defaulter for every storage source (the other defaults
// depend on the storage type and the datastore's manifest: see buildStorage and Start).
func (c *commonConfig) SetDefaults() {
	limit := defaultRetryLimit
	c.RetryLimit = &limit
	share := true
	c.Share = &share
}

type gcsConfig struct {
	commonConfig `mapstructure:",squash"`
	BucketName   string `mapstructure:"bucket_name"`
}

type s3Config struct {
	commonConfig   `mapstructure:",squash"`
	BucketName     string `mapstructure:"bucket_name"`
	Region         string `mapstructure:"region"`
	Endpoint       string `mapstructure:"endpoint"`
	ForcePathStyle *bool  `mapstructure:"force_path_style" cdpd:"ignored: the SDK always uses path-style requests"`
}

type fsConfig struct {
	commonConfig `mapstructure:",squash"`
	Path         string `mapstructure:"path"`
	BasePath     string `mapstructure:"base_path"` // the upstream FS adapter's spelling
}

// anyStorageConfig is BufferedStorageSourceAdapter's config: storage_type plus the keys of all
// three kinds.
type anyStorageConfig struct {
	commonConfig   `mapstructure:",squash"`
	StorageType    string `mapstructure:"storage_type"`
	BucketName     string `mapstructure:"bucket_name"`
	Region         string `mapstructure:"region"`
	Endpoint       string `mapstructure:"endpoint"`
	ForcePathStyle *bool  `mapstructure:"force_path_style" cdpd:"ignored: the SDK always uses path-style requests"`
	Path           string `mapstructure:"path"`
	BasePath       string `mapstructure:"base_path"`
	// URLTemplate locates the datastore by URL (file://, gs://, s3://); see location.go.
	URLTemplate string `mapstructure:"url_template"`
}

// Passphrase returns the network passphrase of network (pubnet|mainnet|public, testnet,
// futurenet), or passphrase when it is given.
func Passphrase(networkName, passphrase string) (string, error) {
	if passphrase != "" {
		return passphrase, nil
	}
	switch strings.ToLower(strings.TrimSpace(networkName)) {
	case "pubnet", "mainnet", "public":
		return network.PublicNetworkPassphrase, nil
	case "testnet":
		return network.TestNetworkPassphrase, nil
	case "futurenet":
		return network.FutureNetworkPassphrase, nil
	case "":
		return "", errors.New("network is required (pubnet, mainnet, testnet or futurenet) unless network_passphrase is given")
	default:
		return "", fmt.Errorf("unknown network %q (want pubnet, mainnet, testnet or futurenet, or give network_passphrase)", networkName)
	}
}

// parseSeconds reads a duration given as seconds (a number, the upstream CDP spelling, or a
// numeric string) or as a Go duration string ("500ms", "2s").
func parseSeconds(key string, v any) (time.Duration, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int:
		return time.Duration(x) * time.Second, true, nonNegative(key, x < 0)
	case int64:
		return time.Duration(x) * time.Second, true, nonNegative(key, x < 0)
	case uint64:
		return time.Duration(x) * time.Second, true, nil //nolint:gosec // config values are small
	case float64:
		return time.Duration(x * float64(time.Second)), true, nonNegative(key, x < 0)
	case time.Duration:
		return x, true, nonNegative(key, x < 0)
	case string:
		s := strings.TrimSpace(x)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(f * float64(time.Second)), true, nonNegative(key, f < 0)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %q is neither seconds nor a duration like \"2s\"", key, x)
		}
		return d, true, nonNegative(key, d < 0)
	default:
		return 0, false, fmt.Errorf("%s: want seconds or a duration, got %T", key, v)
	}
}

func nonNegative(key string, negative bool) error {
	if negative {
		return fmt.Errorf("%s must not be negative", key)
	}
	return nil
}

// validateRange checks start_ledger and end_ledger.
func validateRange(start, end uint32) error {
	if start < 2 {
		return fmt.Errorf("start_ledger is required and must be >= 2 (got %d)", start)
	}
	if end != 0 && end < start {
		return fmt.Errorf("end_ledger %d is before start_ledger %d", end, start)
	}
	return nil
}

func validateHTTPURL(key, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s must be an http(s) URL", key)
	}
	return nil
}
