package loader

import (
	"errors"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := lookupIn(map[string]string{"A": "alpha", "EMPTY": "", "DOLLAR": "${A}"})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha"},
		{in: "x-${A}-y", want: "x-alpha-y"},
		{in: "${A}${A}", want: "alphaalpha"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${UNSET:-}", want: ""},
		{in: "${A:-def}", want: "alpha"},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "${DOLLAR}", want: "${A}"}, // a value is not expanded again
		{in: "$${A}", want: "${A}"},
		{in: "$A $5 $", want: "$A $5 $"},
		{in: "${UNSET}", err: "environment variable UNSET is not set (use ${UNSET:-default} to give a default)"},
		{in: "${U1}/${U2}/${U1}", err: "environment variables U1, U2 are not set"},
		{in: "${A", err: "unterminated ${ in value (write $${ for a literal ${)"},
		{in: "${}", err: "invalid variable name in ${...}: want ${NAME} or ${NAME:-default} with NAME of letters, digits and '_'"},
		{in: "${A B}", err: "invalid variable name in ${...}: want ${NAME} or ${NAME:-default} with NAME of letters, digits and '_'"},
	}
	for _, tt := range tests {
		got, err := expandEnv(tt.in, env)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("expandEnv(%q) error = %v, want %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("expandEnv(%q) error = %v", tt.in, err)
		case got != tt.want:
			t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	_, err := expandEnv("${NOPE}", env)
	var mv *MissingVarError
	if !errors.As(err, &mv) || len(mv.Names) != 1 || mv.Names[0] != "NOPE" {
		t.Errorf("error %v is not a MissingVarError naming NOPE", err)
	}
}

func TestIsConfigFile(t *testing.T) {
	tests := map[string]bool{
		"a.yaml": true, "a.yml": true, "A.YAML": true, "my.pipeline.yaml": true,
		".a.yaml": false, "..data": false, "..2026_11_27_10_00_00.123456789": false,
		"a.yaml~": false, ".a.yaml.swp": false, "a.yaml.swp": false, "#a.yaml#": false,
		".#a.yaml": false, "4913": false, "a.json": false, "a.yaml.tmp": false, "yaml": false, "": false,
	}
	for name, want := range tests {
		if got := IsConfigFile(name); got != want {
			t.Errorf("IsConfigFile(%q) = %v, want %v", name, got, want)
		}
	}
}
