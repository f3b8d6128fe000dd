package source

import (
	"cmp"
	"slices"
	"strings"
)

// minSecretLen is the shortest secret a redactor hides: shorter strings ("1", "on") would
// mangle every message they happen to appear in.
const minSecretLen = 4

// redactor replaces secrets (an RPC source's Authorization value, the password and query of
// its URL) in the text of errors it passes on: the SDK's and the HTTP client's errors quote
// the URL they failed on, and a server may echo what it was sent.
type redactor struct{ r *strings.Replacer }

func newRedactor(secrets []string) redactor {
	var s []string
	for _, x := range secrets {
		if len(x) >= minSecretLen {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return redactor{}
	}
	// Longest first, so a secret that contains another is replaced whole.
	slices.SortFunc(s, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(s))
	for _, x := range s {
		pairs = append(pairs, x, "[REDACTED]")
	}
	return redactor{r: strings.NewReplacer(pairs...)}
}

// err returns err with the secrets in its text replaced; errors.Is/As still see the cause.
func (r redactor) err(err error) error {
	if err == nil || r.r == nil {
		return err
	}
	msg := r.r.Replace(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// redactedError is an error whose text had secrets replaced.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
