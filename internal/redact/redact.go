// Package redact owns how cdpd keeps secrets out of the text it shows: which values of a
// pipeline definition are secrets (Collect) and the Redactor that replaces them in error
// messages, health details and log lines. The loader uses it for config errors; the host
// builds one Redactor per pipeline definition and applies it where a component's error or
// log line leaves the component (last_error, health details and so heartbeats, the log).
//
// What is a secret of a definition:
//   - every value a ${VAR} expanded to (shown as "${VAR}", which names the variable and not its
//     value);
//   - every value under a config key that names a secret, at any depth: a key with the word
//     password, passwd, secret, auth, authorization, bearer, credential(s) or apikey in it, or
//     whose last word is token, key, pwd or dsn (access_token, api_key, X-Api-Key, but not
//     token_contract_id); and the token after the scheme of such a value ("Bearer <token>");
//   - in every string value that is a URL: its user name, password, query and each query value;
//   - in every string value holding a libpq key=value connection string: its password.
//
// Values shorter than MinLen are never replaced (they would mangle every message they occur
// in and are no secrets); a value of digits only is replaced only where it is not part of a
// longer number (a port "5432" is hidden in "127.0.0.1:5432", not in ledger "58754320").
// Each secret is also replaced in its URL-escaped and Go-quoted forms, which errors print.
package redact

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// MinLen is the shortest value a Redactor replaces.
const MinLen = 4

// Mask is what a secret that has no better name is replaced with.
const Mask = "[REDACTED]"

// Secret is one value to hide and what to show instead.
type Secret struct {
	Value string
	Label string // "" = Mask
}

// Redactor replaces secrets in text. A nil *Redactor, or one without secrets, changes nothing.
// It is safe for concurrent use.
type Redactor struct {
	r      *strings.Replacer // secrets with a letter or a punctuation mark
	digits []Secret          // secrets of digits only, replaced where no digit touches them
}

// New returns a Redactor of secrets (short ones dropped, escaped forms added; when one value
// has several labels the first wins).
func New(secrets ...Secret) *Redactor {
	seen := map[string]bool{}
	var plain, digits []Secret
	add := func(v, label string) {
		if len(v) < MinLen || seen[v] {
			return
		}
		seen[v] = true
		if allDigits(v) {
			digits = append(digits, Secret{v, label})
		} else {
			plain = append(plain, Secret{v, label})
		}
	}
	for _, s := range secrets {
		label := s.Label
		if label == "" {
			label = Mask
		}
		add(s.Value, label)
		add(url.QueryEscape(s.Value), label)
		add(url.PathEscape(s.Value), label)
		if q := strconv.Quote(s.Value); len(q) > 2 {
			add(q[1:len(q)-1], label)
		}
	}
	if len(plain) == 0 && len(digits) == 0 {
		return nil
	}
	// Longest first, so that a secret containing another is replaced whole.
	longest := func(a, b Secret) int { return cmp.Compare(len(b.Value), len(a.Value)) }
	slices.SortStableFunc(plain, longest)
	slices.SortStableFunc(digits, longest)
	r := &Redactor{digits: digits}
	if len(plain) > 0 {
		pairs := make([]string, 0, 2*len(plain))
		for _, s := range plain {
			pairs = append(pairs, s.Value, s.Label)
		}
		r.r = strings.NewReplacer(pairs...)
	}
	return r
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Empty reports whether r hides nothing.
func (r *Redactor) Empty() bool { return r == nil || (r.r == nil && len(r.digits) == 0) }

// String returns s with every secret replaced.
func (r *Redactor) String(s string) string {
	if r.Empty() || s == "" {
		return s
	}
	if r.r != nil {
		s = r.r.Replace(s)
	}
	for _, d := range r.digits {
		s = replaceNumber(s, d.Value, d.Label)
	}
	return s
}

// replaceNumber replaces the occurrences of the digits v in s that no other digit touches.
func replaceNumber(s, v, label string) string {
	var b strings.Builder
	last, from := 0, 0 // s[:last] is handled; search from s[from:]
	for {
		i := strings.Index(s[from:], v)
		if i < 0 {
			break
		}
		i += from
		end := i + len(v)
		if (i > 0 && isDigit(s[i-1])) || (end < len(s) && isDigit(s[end])) {
			from = i + 1
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(label)
		last, from = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Error returns err with the secrets in its text replaced; errors.Is and errors.As still see
// the cause. It returns err itself when its text holds no secret.
func (r *Redactor) Error(err error) error {
	if err == nil || r.Empty() {
		return err
	}
	msg := err.Error()
	red := r.String(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

// redactedError is an error whose text had secrets replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Handler returns h with every secret replaced in each record's message and attribute values
// (strings, errors, anything printed with fmt, inside groups too). Without secrets it returns h.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r.Empty() {
		return h
	}
	return &handler{h: h, r: r}
}

type handler struct {
	h slog.Handler
	r *Redactor
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{h: h.h.WithAttrs(red), r: h.r}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{h: h.h.WithGroup(name), r: h.r}
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]slog.Attr, len(g))
		for i, ga := range g {
			out[i] = h.attr(ga)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	case slog.KindAny:
		var text string
		switch x := v.Any().(type) {
		case error:
			text = x.Error()
		case fmt.Stringer:
			text = x.String()
		default:
			text = fmt.Sprint(x)
		}
		if red := h.r.String(text); red != text {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// IsSecretKey reports whether a config key names a secret (see the package doc).
func IsSecretKey(key string) bool {
	words := keyWords(key)
	for _, w := range words {
		switch w {
		case "password", "passwd", "secret", "secrets", "auth", "authorization", "bearer",
			"credential", "credentials", "apikey":
			return true
		}
	}
	if len(words) == 0 {
		return false
	}
	switch words[len(words)-1] { // access_token, api_key, but not token_contract_id
	case "token", "key", "pwd", "dsn":
		return true
	}
	return false
}

// keyWords splits a key into lower-case words: at every character that is not a letter or a
// digit, and where a lower-case letter or a digit is followed by an upper-case one.
func keyWords(key string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	var prev rune
	for _, c := range key {
		switch {
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			flush()
		case unicode.IsUpper(c) && (unicode.IsLower(prev) || unicode.IsDigit(prev)):
			flush()
			cur = append(cur, c)
		default:
			cur = append(cur, c)
		}
		prev = c
	}
	flush()
	return words
}

// URLSecrets lists the user name, password, raw query and query values of a URL (nil when raw
// is no URL with a scheme and a host).
func URLSecrets(raw string) []string {
	if !strings.Contains(raw, "://") {
		return nil
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || (u.Host == "" && u.User == nil) {
		return nil
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p)
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return out
}

// dsnPassword finds the password of a libpq key=value connection string.
var dsnPassword = regexp.MustCompile(`(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// Collect lists the secrets of a component config (see the package doc), each with the Mask
// label.
func Collect(config map[string]any) []Secret {
	var out []Secret
	add := func(v string) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, Secret{Value: v})
		}
	}
	var walk func(v any, secret bool)
	walk = func(v any, secret bool) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, secret || IsSecretKey(k))
			}
		case []any:
			for _, e := range x {
				walk(e, secret)
			}
		case string:
			if secret {
				add(x)
				if _, tok, ok := strings.Cut(strings.TrimSpace(x), " "); ok {
					add(tok) // "Bearer <token>", "Api-Key <key>"
				}
			}
			for _, s := range URLSecrets(x) {
				add(s)
			}
			for _, m := range dsnPassword.FindAllStringSubmatch(x, -1) {
				p := m[1]
				if strings.HasPrefix(p, "'") {
					p = strings.NewReplacer(`\\`, `\`, `\'`, `'`).Replace(strings.Trim(p, "'"))
				}
				add(p)
			}
		case nil, bool:
		default:
			if secret {
				add(fmt.Sprint(x))
			}
		}
	}
	walk(config, false)
	return out
}
