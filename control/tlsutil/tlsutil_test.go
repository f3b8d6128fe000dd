package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/withobsrvr/cdpd/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConfigErrors(t *testing.T) {
	c, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.pem")
	tests := []struct {
		name             string
		fn               func(cert, key, ca string) (*tls.Config, error)
		cert, key, ca    string
		wantErr, wantNil bool
		wantClientAuth   tls.ClientAuthType
	}{
		{"server plaintext", ServerConfig, "", "", "", false, true, tls.NoClientCert},
		{"server tls", ServerConfig, c.ServerCertFile, c.ServerKeyFile, "", false, false, tls.NoClientCert},
		{"server mtls", ServerConfig, c.ServerCertFile, c.ServerKeyFile, c.CAFile, false, false, tls.RequireAndVerifyClientCert},
		{"server ca without cert", ServerConfig, "", "", c.CAFile, true, false, 0},
		{"server cert without key", ServerConfig, c.ServerCertFile, "", "", true, false, 0},
		{"server missing cert file", ServerConfig, missing, c.ServerKeyFile, "", true, false, 0},
		{"server key of another cert", ServerConfig, c.ServerCertFile, c.ClientKeyFile, "", true, false, 0},
		{"server CA file that is no PEM", ServerConfig, c.ServerCertFile, c.ServerKeyFile, c.ServerKeyFile, true, false, 0},
		{"client system roots", ClientConfig, "", "", "", false, false, 0},
		{"client cert without key", ClientConfig, c.ClientCertFile, "", c.CAFile, true, false, 0},
		{"client missing CA", ClientConfig, "", "", missing, true, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf, err := tc.fn(tc.cert, tc.key, tc.ca)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if (conf == nil) != tc.wantNil {
				t.Fatalf("config %v, want nil %v", conf, tc.wantNil)
			}
			if conf != nil && conf.ClientAuth != tc.wantClientAuth {
				t.Fatalf("client auth %v, want %v", conf.ClientAuth, tc.wantClientAuth)
			}
		})
	}
}

// A certificate rewritten on disk is served from the next handshake on.
func TestServerCertificateReload(t *testing.T) {
	dir := t.TempDir()
	first, err := testpki.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := ServerConfig(first.ServerCertFile, first.ServerKeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(first.CAFile)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = io.WriteString(c, "x")
			c.Close()
		}
	}()
	serial := func() string {
		c, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	// Rotate: a new CA and server certificate in another dir, copied over the old files.
	second, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{second.ServerCertFile: first.ServerCertFile, second.ServerKeyFile: first.ServerKeyFile} {
		b, _ := os.ReadFile(src)
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
		future := time.Now().Add(time.Minute) // mtime must move even on coarse clocks
		_ = os.Chtimes(dst, future, future)
	}
	after := serial()
	if after == before {
		t.Fatal("the rotated certificate was not picked up")
	}
	// The old CA no longer verifies it.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	if c, err := tls.Dial("tcp", lis.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err == nil {
		c.Close()
		t.Fatal("old CA verified the rotated certificate")
	}
	lis.Close()
	<-done
}

func TestTestCertsVerify(t *testing.T) {
	c, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(c.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, tc := range []struct {
		file  string
		usage x509.ExtKeyUsage
		name  string
	}{
		{c.ServerCertFile, x509.ExtKeyUsageServerAuth, "localhost"},
		{c.ServerCertFile, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{c.ClientCertFile, x509.ExtKeyUsageClientAuth, ""},
	} {
		kp, err := tls.LoadX509KeyPair(tc.file, map[string]string{c.ServerCertFile: c.ServerKeyFile, c.ClientCertFile: c.ClientKeyFile}[tc.file])
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(kp.Certificate[0])
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: tc.name, KeyUsages: []x509.ExtKeyUsage{tc.usage}}); err != nil {
			t.Fatalf("%s for %q: %v", tc.file, tc.name, err)
		}
	}
}
