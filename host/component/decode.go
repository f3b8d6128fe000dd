package component

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes a component's config map into out (a pointer to a struct with
// `mapstructure:"key"` tags) strictly: unknown keys are errors. String values are converted to
// numbers, bools and durations ("30s") where the field needs it, because values expanded from
// ${VAR} arrive as strings. A duration given as a bare number ("flush_interval: 5") is that
// many seconds, as upstream CDP files write durations (retry_wait: 5, poll_interval: 10), never
// nanoseconds. A number that does not fit its field (negative into an unsigned
// field, too large for the field's size, a fraction into an integer) is an error. The registry
// decodes typed components' configs the same way, but leniently: unknown keys are reported
// (Registry.Check), not errors, as upstream CDP ignores them.
func Decode(cfg map[string]any, out any) error {
	_, err := decode(cfg, out, true)
	return err
}

// decode decodes cfg into out; with strict an unused key is an error, else the unused keys
// ("key", "nested.key") are returned.
func decode(cfg map[string]any, out any, strict bool) (unused []string, err error) {
	var md mapstructure.Metadata
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:           out,
		Metadata:         &md,
		ErrorUnused:      strict,
		WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			numberToSeconds,
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
			numberFits,
		),
	})
	if err != nil {
		return nil, fmt.Errorf("building config decoder: %w", err)
	}
	if err := d.Decode(cfg); err != nil {
		return nil, fmt.Errorf("decoding config: %w", err)
	}
	return md.Unused, nil
}

// numberFits is a decode hook that rejects YAML numbers that do not fit the integer field they
// decode into. mapstructure's weak typing (needed for ${VAR} strings) would otherwise convert
// them silently: `start_ledger: -58752000` wrapped to 4236215296 and 4294967296 truncated to 0
// in a uint32, 1.5 became 1. (Strings are range-checked by mapstructure itself.)
func numberFits(_ reflect.Type, to reflect.Type, data any) (any, error) {
	v := reflect.ValueOf(data)
	if !v.IsValid() {
		return data, nil
	}
	field := reflect.Zero(to)
	var ok = true
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ok = !field.OverflowInt(v.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			ok = v.Uint() <= math.MaxInt64 && !field.OverflowInt(int64(v.Uint()))
		case reflect.Float32, reflect.Float64:
			f := v.Float()
			ok = f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 && !field.OverflowInt(int64(f))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			ok = v.Int() >= 0 && !field.OverflowUint(uint64(v.Int()))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			ok = !field.OverflowUint(v.Uint())
		case reflect.Float32, reflect.Float64:
			f := v.Float()
			ok = f == math.Trunc(f) && f >= 0 && f < math.MaxUint64 && !field.OverflowUint(uint64(f))
		}
	}
	if !ok {
		return nil, fmt.Errorf("%v does not fit a %s (%s)", data, to.Kind(), fitsHint(to.Kind()))
	}
	return data, nil
}

func fitsHint(k reflect.Kind) string {
	switch k {
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint, reflect.Uintptr:
		return "a whole number from 0"
	default:
		return "a whole number"
	}
}

// numberToSeconds is a decode hook: a number (or a numeric string) decoded into a
// time.Duration is seconds. A time.Duration (a config built in Go, not read from YAML) stays
// what it is.
func numberToSeconds(from reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() || from == to {
		return data, nil
	}
	v := reflect.ValueOf(data)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return time.Duration(v.Int()) * time.Second, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return time.Duration(v.Uint()) * time.Second, nil //nolint:gosec // config values are small
	case reflect.Float32, reflect.Float64:
		return time.Duration(v.Float() * float64(time.Second)), nil
	case reflect.String:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v.String()), 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
	}
	return data, nil
}
