package loader

import "testing"

// TestErrorQuotesUnprintableNames (issue 17 item 2): an error names its file and pipeline
// quoted when they hold a control character, a bidi control or bytes that are not UTF-8, and
// escapes such characters in its message; printable names stay as they are.
func TestErrorQuotesUnprintableNames(t *testing.T) {
	for _, c := range []struct {
		e    Error
		want string
	}{
		{Error{File: "configs/a b.yaml", Line: 3, Column: 2, Pipeline: "ContractEvents", Msg: `unknown key "x"`},
			`configs/a b.yaml:3:2: pipeline ContractEvents: unknown key "x"`},
		{Error{File: "c/evil\nok.yaml", Line: 1, Pipeline: "evil\nok", Msg: "defined in c/evil\nok.yaml:1"},
			`"c/evil\nok.yaml":1: pipeline "evil\nok": defined in c/evil\nok.yaml:1`},
		{Error{File: "c/red\x1b[31m.yaml", Msg: "bad \xff byte, tab\there, bidi \u202e, unicode ok: é ∑ \uFFFD"},
			`"c/red\x1b[31m.yaml": bad \xff byte, tab\there, bidi \u202e, unicode ok: é ∑ ` + "\uFFFD"},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %s\nwant      %s", got, c.want)
		}
	}
}
