package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/knadh/koanf/maps"
)

// hashPipeline returns the hex SHA-256 of the canonical encoding of p's content after
// expansion: name, description, restart policy and every component's type and config. The
// file, the positions and the order of map keys are not part of it, so the same pipeline moved
// to another file, re-indented or with its keys reordered has the same hash.
//
// The pipeline is turned into one nested map and flattened with koanf's maps.Flatten; the
// flattened entries are sorted by their key path (encoded from the path's parts, so a key
// holding a dot never collides with a nested key) and each is written as a length-prefixed,
// type-tagged record. Lists are leaves of the flattening and are encoded in order, their maps
// with sorted keys.
func hashPipeline(p *Pipeline) string {
	comps := func(cs []Component) []any {
		out := make([]any, len(cs))
		for i, c := range cs {
			out[i] = componentMap(c)
		}
		return out
	}
	m := map[string]any{
		"name":        p.Name,
		"description": p.Description,
		"restart":     p.Restart,
		"source":      componentMap(p.Source),
		"processors":  comps(p.Processors),
		"consumers":   comps(p.Consumers),
	}
	flat, parts := maps.Flatten(m, nil, "\x00")
	type entry struct {
		key []byte
		val any
	}
	entries := make([]entry, 0, len(flat))
	for k, v := range flat {
		var kb bytes.Buffer
		for _, part := range parts[k] {
			encodeString(&kb, part)
		}
		entries = append(entries, entry{kb.Bytes(), v})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	var buf bytes.Buffer
	buf.WriteString("cdpd-pipeline-v1\n")
	for _, e := range entries {
		buf.WriteString("k")
		buf.WriteString(strconv.Itoa(len(e.key)))
		buf.WriteByte(':')
		buf.Write(e.key)
		encodeValue(&buf, e.val)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

func componentMap(c Component) map[string]any {
	cfg := c.Config
	if cfg == nil {
		cfg = map[string]any{}
	}
	m := map[string]any{"type": c.Type, "config": cfg}
	if c.Name != "" { // absent from hashes of entries without a name, as before names existed
		m["name"] = c.Name
	}
	return m
}

func encodeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('s')
	buf.WriteString(strconv.Itoa(len(s)))
	buf.WriteByte(':')
	buf.WriteString(s)
}

// encodeValue writes v unambiguously: a type tag, then the value (strings, lists and maps
// length-prefixed, map keys sorted).
func encodeValue(buf *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		buf.WriteByte('n')
	case bool:
		if x {
			buf.WriteByte('T')
		} else {
			buf.WriteByte('F')
		}
	case int:
		buf.WriteByte('i')
		buf.WriteString(strconv.Itoa(x))
		buf.WriteByte(';')
	case uint64:
		buf.WriteByte('u')
		buf.WriteString(strconv.FormatUint(x, 10))
		buf.WriteByte(';')
	case float64:
		buf.WriteByte('d')
		switch {
		case math.IsNaN(x):
			buf.WriteString("nan")
		default:
			buf.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
		buf.WriteByte(';')
	case string:
		encodeString(buf, x)
	case []any:
		buf.WriteByte('l')
		buf.WriteString(strconv.Itoa(len(x)))
		buf.WriteByte(':')
		for _, e := range x {
			encodeValue(buf, e)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf.WriteByte('m')
		buf.WriteString(strconv.Itoa(len(keys)))
		buf.WriteByte(':')
		for _, k := range keys {
			encodeString(buf, k)
			encodeValue(buf, x[k])
		}
	default:
		// Values come from the YAML walker, which produces only the types above; anything
		// else is still encoded deterministically by its type and text.
		s := fmt.Sprintf("%T:%v", x, x)
		buf.WriteByte('x')
		encodeString(buf, s)
	}
}

// hashConfig returns the hash of a whole configuration: the sorted names with their pipeline
// hashes.
func hashConfig(ps map[string]*Pipeline) string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		var b bytes.Buffer
		encodeString(&b, n)
		encodeString(&b, ps[n].Hash)
		h.Write(b.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil))
}
