package backoff

import (
	"testing"
	"time"
)

func TestDelayDoublesToCap(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond, Factor: 2}
	want := []time.Duration{10, 20, 40, 80, 80, 80}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	if got := p.Delay(10_000); got != 80*time.Millisecond {
		t.Errorf("Delay(10000) = %s, want the cap", got)
	}
	if got := p.Delay(0); got != 10*time.Millisecond {
		t.Errorf("Delay(0) = %s, want Base", got)
	}
}

func TestDelayFactorAndJitter(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 1.6, Jitter: 0.2}
	for n := 1; n <= 20; n++ {
		exact := Policy{Base: p.Base, Max: p.Max, Factor: p.Factor}.Delay(n)
		lo, hi := time.Duration(float64(exact)*0.8)-1, min(time.Duration(float64(exact)*1.2)+1, p.Max)
		for range 50 {
			if d := p.Delay(n); d < lo || d > hi {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", n, d, lo, hi)
			}
		}
	}
	if got := (Policy{Base: 100 * time.Millisecond, Factor: 1.6}).Delay(3); got != 256*time.Millisecond {
		t.Errorf("factor 1.6, retry 3 = %s, want 256ms", got)
	}
}
