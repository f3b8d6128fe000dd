// Package testpki writes throwaway certificate authorities and certificates for tests of every
// package (TLS and mutual TLS of the flowctl client, CLI and control plane). It is imported by
// test code only, never by a package the binaries link.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs are the files written by Write.
type Certs struct {
	CAFile         string // the CA that signed the server and client certificates
	ServerCertFile string // server certificate for 127.0.0.1, ::1 and localhost
	ServerKeyFile  string
	ClientCertFile string // client certificate (CN cdpd-test-client) for mutual TLS
	ClientKeyFile  string
	// Client2CertFile is a second client certificate (CN cdpd-test-client-2): another client
	// identity signed by the same CA.
	Client2CertFile string
	Client2KeyFile  string
	// PeerCertFile is a certificate for both ends (server and client authentication, for
	// 127.0.0.1, ::1 and localhost, CN cdpd-test-peer): a cdpd that serves its embedded
	// control plane with the certificate it is a client with.
	PeerCertFile string
	PeerKeyFile  string
	OtherCAFile  string // an unrelated CA that signed nothing here: trusting it must fail
}

// Write generates a throwaway CA, a server certificate, two client certificates and a
// certificate for both ends (ECDSA P-256, valid for 7 days) plus an unrelated CA into dir. It is meant for tests of
// every package; never use these certificates in production.
func Write(dir string) (Certs, error) {
	now := time.Now()
	ca, caKey, caPEM, err := newCA("cdpd test CA", now)
	if err != nil {
		return Certs{}, err
	}
	_, _, otherPEM, err := newCA("cdpd unrelated test CA", now)
	if err != nil {
		return Certs{}, err
	}
	srvCert, srvKey, err := newLeaf(ca, caKey, now, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return Certs{}, err
	}
	cliCert, cliKey, err := newLeaf(ca, caKey, now, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "cdpd-test-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Certs{}, err
	}
	cli2Cert, cli2Key, err := newLeaf(ca, caKey, now, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "cdpd-test-client-2"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Certs{}, err
	}
	peerCert, peerKey, err := newLeaf(ca, caKey, now, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "cdpd-test-peer"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return Certs{}, err
	}
	tc := Certs{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
		OtherCAFile:    filepath.Join(dir, "other-ca.pem"),

		Client2CertFile: filepath.Join(dir, "client2.pem"),
		Client2KeyFile:  filepath.Join(dir, "client2-key.pem"),
		PeerCertFile:    filepath.Join(dir, "peer.pem"),
		PeerKeyFile:     filepath.Join(dir, "peer-key.pem"),
	}
	for path, data := range map[string][]byte{
		tc.CAFile: caPEM, tc.OtherCAFile: otherPEM,
		tc.ServerCertFile: srvCert, tc.ServerKeyFile: srvKey,
		tc.ClientCertFile: cliCert, tc.ClientKeyFile: cliKey,
		tc.Client2CertFile: cli2Cert, tc.Client2KeyFile: cli2Key,
		tc.PeerCertFile: peerCert, tc.PeerKeyFile: peerKey,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return Certs{}, fmt.Errorf("writing test certificate: %w", err)
		}
	}
	return tc, nil
}

func serial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}

func newCA(cn string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, now time.Time, tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating key: %w", err)
	}
	if tmpl.SerialNumber, err = serial(); err != nil {
		return nil, nil, err
	}
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(7 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("creating certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
