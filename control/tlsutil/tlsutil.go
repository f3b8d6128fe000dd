// Package tlsutil builds the TLS configurations of both ends of the flowctl control-plane
// connection (server: TLS or mutual TLS; client: server verification plus an optional client
// certificate) from PEM files. Throwaway certificates for tests come from internal/testpki.
//
// Certificates and keys are re-read from disk when their files change (checked at each
// handshake), so a rotated certificate (cert-manager, a cron job) is picked up without a
// restart; a rotation that leaves an unreadable pair keeps the previous one in use.
// CA files are read once.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ServerConfig returns the server's TLS configuration, or nil (plaintext) when every argument
// is empty. certFile and keyFile are required when any of them is set; a non-empty caFile
// makes the server require client certificates signed by that CA (mutual TLS).
func ServerConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" && caFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: both a certificate and a key file are required for a TLS server")
	}
	kp, err := newKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading server certificate: %w", err)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return kp.get()
		},
	}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: loading client CA: %w", err)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

// ClientConfig returns a client TLS configuration. caFile is the CA that verifies the server
// (the system roots when empty); certFile and keyFile, both or neither, give the client
// certificate presented for mutual TLS. The caller decides whether to use TLS at all (cdpd
// does when any FLOWCTL_TLS_* variable is set); with every argument empty this is plain
// server-verified TLS against the system roots.
func ClientConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("tls: a client certificate needs both a certificate and a key file")
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: loading server CA: %w", err)
		}
		conf.RootCAs = pool
	}
	if certFile != "" {
		kp, err := newKeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: loading client certificate: %w", err)
		}
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.get()
		}
	}
	return conf, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// keyPair is a certificate/key pair reloaded when either file's modification time or size
// changes. Stat-ing two files per handshake is negligible next to the handshake itself.
type keyPair struct {
	certFile, keyFile string

	mu       sync.Mutex
	cert     *tls.Certificate
	certStat fileStamp
	keyStat  fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	kp := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := kp.reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// reload must be called with mu held (or before kp is shared).
func (kp *keyPair) reload() error {
	cs, err := stamp(kp.certFile)
	if err != nil {
		return fmt.Errorf("reading certificate file: %w", err)
	}
	ks, err := stamp(kp.keyFile)
	if err != nil {
		return fmt.Errorf("reading key file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(kp.certFile, kp.keyFile)
	if err != nil {
		return fmt.Errorf("loading key pair %s / %s: %w", kp.certFile, kp.keyFile, err)
	}
	kp.cert, kp.certStat, kp.keyStat = &cert, cs, ks
	return nil
}

func (kp *keyPair) get() (*tls.Certificate, error) {
	kp.mu.Lock()
	defer kp.mu.Unlock()
	cs, err1 := stamp(kp.certFile)
	ks, err2 := stamp(kp.keyFile)
	if err1 == nil && err2 == nil && (cs != kp.certStat || ks != kp.keyStat) {
		// A failed reload (e.g. the cert is written before the key) keeps the old pair; the
		// next handshake tries again.
		_ = kp.reload()
	}
	return kp.cert, nil
}
