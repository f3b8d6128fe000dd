package redact

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New(
		Secret{Value: "s3cr3t-value", Label: "${KEY}"},
		Secret{Value: "s3cr3t"}, // contained in the first: the longer one wins where both match
		Secret{Value: "a+b/c=d&e"},
		Secret{Value: "5432", Label: "${PORT}"},
		Secret{Value: "abc"}, // too short: never replaced
	)
	for in, want := range map[string]string{
		"key s3cr3t-value and s3cr3t":  "key ${KEY} and [REDACTED]",
		"query ?k=a%2Bb%2Fc%3Dd%26e":   "query ?k=[REDACTED]",
		`quoted "a+b/c=d&e"`:           `quoted "[REDACTED]"`,
		"dial 127.0.0.1:5432: refused": "dial 127.0.0.1:${PORT}: refused",
		"ledger 58754320 and 5432":     "ledger 58754320 and ${PORT}",
		"5432":                         "${PORT}",
		"54321 15432 5432x":            "54321 15432 ${PORT}x",
		"abc is short":                 "abc is short",
		"nothing here":                 "nothing here",
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
	var none *Redactor
	if none.String("s3cr3t") != "s3cr3t" || !none.Empty() || New(Secret{Value: "ab"}) != nil {
		t.Error("a Redactor without secrets changed text or is not empty")
	}
}

func TestError(t *testing.T) {
	cause := errors.New("root cause")
	r := New(Secret{Value: "hunter2-pw"})
	err := r.Error(fmt.Errorf("connecting with hunter2-pw: %w", cause))
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, cause) {
		t.Errorf("Error: %q (errors.Is %v)", err, errors.Is(err, cause))
	}
	plain := errors.New("nothing secret")
	if r.Error(plain) != plain || r.Error(nil) != nil {
		t.Error("an error without secrets was wrapped")
	}
}

type stringer struct{ s string }

func (s stringer) String() string { return s.s }

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	r := New(Secret{Value: "tok-12345678", Label: "${TOKEN}"})
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil))).With("with", "w tok-12345678")
	log.Info("message tok-12345678", "s", "x tok-12345678", "err", errors.New("e tok-12345678"),
		"str", stringer{"st tok-12345678"}, "any", []string{"tok-12345678"}, "n", 5,
		slog.Group("g", "inner", "i tok-12345678"))
	out := buf.String()
	if strings.Contains(out, "tok-12345678") {
		t.Errorf("log line shows the secret: %s", out)
	}
	for _, want := range []string{`"msg":"message ${TOKEN}"`, `"with":"w ${TOKEN}"`, `"s":"x ${TOKEN}"`, `"err":"e ${TOKEN}"`,
		`"str":"st ${TOKEN}"`, `"inner":"i ${TOKEN}"`, `"n":5`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line %s lacks %s", out, want)
		}
	}
	h := slog.NewJSONHandler(&buf, nil)
	if (*Redactor)(nil).Handler(h) != slog.Handler(h) {
		t.Error("a Redactor without secrets wrapped the handler")
	}
}

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"password", "Password", "db_password", "passwd", "pwd", "client_secret", "token",
		"access_token", "accessToken", "auth_header", "Authorization", "api_key", "apiKey", "apikey", "X-Api-Key",
		"key", "secret_access_key", "credentials", "dsn", "bearer"} {
		if !IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = false", k)
		}
	}
	for _, k := range []string{"host", "username", "network_passphrase", "token_contract_id", "keys", "monkey",
		"connection_string", "rpc_url", "keyspace", "start_ledger"} {
		if IsSecretKey(k) {
			t.Errorf("IsSecretKey(%q) = true", k)
		}
	}
}

func TestCollect(t *testing.T) {
	cfg := map[string]any{
		"rpc_url":           "https://user-x:pass-y@rpc.example.org/v1?apikey=key-Q1&x=val-R2",
		"password":          "pw-ABCD",
		"auth_header":       "Bearer tok-EFGH",
		"port":              5432,
		"host":              "db.example.org",
		"connection_string": "host=h port=5432 password='it\\'s a pw' user=u",
		"dsn2":              "host=h password=plain-pw sslmode=disable",
		"nested":            map[string]any{"headers": map[string]any{"X-Api-Key": "hk-IJKL"}, "list": []any{"https://a.example/?t=qv-MNOP"}},
		"secret_numbers":    map[string]any{"token": 987654},
		"plain":             "not a secret",
	}
	var got []string
	for _, s := range Collect(cfg) {
		if s.Label != "" {
			t.Errorf("Collect labelled %q", s.Label)
		}
		got = append(got, s.Value)
	}
	for _, want := range []string{"user-x", "pass-y", "apikey=key-Q1&x=val-R2", "key-Q1", "val-R2", "pw-ABCD",
		"Bearer tok-EFGH", "tok-EFGH", "plain-pw", "hk-IJKL", "qv-MNOP", "987654"} {
		if !slices.Contains(got, want) {
			t.Errorf("Collect missed %q (got %q)", want, got)
		}
	}
	for _, not := range []string{"db.example.org", "not a secret", "5432"} {
		if slices.Contains(got, not) {
			t.Errorf("Collect took %q for a secret", not)
		}
	}
	// The password of a quoted key=value string, as libpq reads it.
	if !slices.Contains(got, "it's a pw") {
		t.Errorf("Collect missed the quoted DSN password: %q", got)
	}
	if u := URLSecrets("not a url"); u != nil {
		t.Errorf("URLSecrets of a non-URL: %q", u)
	}
}
