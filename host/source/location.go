package source

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// templateLocation reads upstream CDP's url_template ("file://path/to/ledgers/{0}.xdr.gz") as
// the location of a galexie datastore: the scheme gives the storage type (file:// FS, gs://
// GCS, s3:// S3) and the path up to the first segment holding a placeholder ("{...}") is the
// datastore's root (directory, or bucket and prefix). The file-name part is not used: a
// galexie datastore names its files itself, as its manifest says, and Start refuses a root
// without a manifest, so a template describing another layout fails instead of being misread.
// Everything after "file://" is the path ("file://data/x" is the relative path data/x,
// "file:///data/x" the absolute /data/x).
func templateLocation(tmpl string) (kind, root string, err error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(tmpl), "://")
	if !ok {
		return "", "", errors.New("url_template must be a file://, gs:// or s3:// URL")
	}
	switch strings.ToLower(scheme) {
	case "file":
		kind = StorageFS
	case "gs", "gcs":
		kind = StorageGCS
	case "s3":
		kind = StorageS3
	default:
		return "", "", fmt.Errorf("url_template: scheme %q is not one of file, gs, s3", scheme)
	}
	if i := strings.IndexByte(rest, '{'); i >= 0 {
		rest = rest[:i]
		if j := strings.LastIndexByte(rest, '/'); j >= 0 {
			rest = rest[:j]
		} else {
			rest = ""
		}
	}
	if kind == StorageFS {
		root = filepath.Clean(filepath.FromSlash(rest))
		if rest == "" {
			root = ""
		}
	} else {
		root = strings.Trim(rest, "/")
	}
	if root == "" {
		return "", "", errors.New("url_template names no datastore directory or bucket before its placeholders")
	}
	return kind, root, nil
}

// withPrefix appends path_prefix to a bucket path (GCS, S3: slash separated) or a directory.
func withPrefix(kind, base, prefix string) (string, error) {
	prefix = strings.Trim(prefix, "/")
	if kind != StorageFS {
		base = strings.Trim(base, "/")
	}
	if prefix == "" {
		return base, nil
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == ".." {
			return "", errors.New("path_prefix must not contain \"..\"")
		}
	}
	if kind == StorageFS {
		return filepath.Join(base, filepath.FromSlash(prefix)), nil
	}
	return path.Join(base, prefix), nil
}
