package loader

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// MissingVarError is the error of ${VAR} references to unset variables without a default.
type MissingVarError struct{ Names []string }

func (e *MissingVarError) Error() string {
	if len(e.Names) == 1 {
		return fmt.Sprintf("environment variable %s is not set (use ${%s:-default} to give a default)", e.Names[0], e.Names[0])
	}
	return fmt.Sprintf("environment variables %s are not set", strings.Join(e.Names, ", "))
}

// expandEnv replaces `${VAR}` and `${VAR:-default}` in s with values from lookup. It runs on
// one scalar value that the YAML parser already produced, so whatever a variable holds stays
// inside that value: it can never add keys, list items or documents. Neither a variable's
// value nor a default is expanded again. `$${` stands for a literal `${`; any other `$` is kept
// as it is. `${VAR:-default}` uses the default when VAR is unset or empty (as the shell does);
// `${VAR}` of a variable set to "" gives "".
//
// Errors name the variable but never a value.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	var missing []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			if missing != nil {
				return "", &MissingVarError{Names: missing}
			}
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", errors.New("unterminated ${ in value (write $${ for a literal ${)")
			}
			body := s[2:end]
			s = s[end+1:]
			name, def, hasDef := strings.Cut(body, ":-")
			if !validVarName(name) {
				return "", errors.New("invalid variable name in ${...}: want ${NAME} or ${NAME:-default} with NAME of letters, digits and '_'")
			}
			v, ok := lookup(name)
			switch {
			case hasDef && (!ok || v == ""):
				v = def
			case !ok:
				if !slices.Contains(missing, name) {
					missing = append(missing, name)
				}
			}
			b.WriteString(v)
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
}

func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
