package ingest

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// parseFloat32 runs lexer.float on s followed by a delimiter.
func parseFloat32(t *testing.T, s string) (float32, bool) {
	t.Helper()
	l := lexer{b: []byte(s + ",")}
	f, ok, err := l.float()
	if err != nil {
		t.Fatalf("float(%q): %v", s, err)
	}
	if l.i != len(s) {
		t.Fatalf("float(%q) stopped at %d, want %d", s, l.i, len(s))
	}
	return f, ok
}

func checkFloat32(t *testing.T, s string) {
	t.Helper()
	got, ok := parseFloat32(t, s)
	want, err := strconv.ParseFloat(s, 32)
	if wantOK := err == nil; ok != wantOK {
		t.Fatalf("float(%q) ok = %v, strconv says %v", s, ok, err)
	}
	if ok && math.Float32bits(got) != math.Float32bits(float32(want)) {
		t.Fatalf("float(%q) = %v (%#08x), strconv says %v (%#08x)", s, got, math.Float32bits(got), float32(want), math.Float32bits(float32(want)))
	}
}

func TestFloat32MatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "0.0", "-0.0", "0e10", "0.000", "1", "-1", "0.5", "1e0", "1E+2", "1e-2", "123456789",
		"3.4028234663852886e38", "3.4028235e38", "3.4028236e38", "-3.4028235e38", "3.40282357e38",
		"1e38", "1e39", "-1e39", "1e400", "1e-400", "1e-45", "1.401298464324817e-45", "7e-46", "1e-46",
		"1.1754943508222875e-38", "1.1754942e-38", "1.17549435e-38",
		"16777216", "16777217", "16777218", "33554431", "33554433", "9007199254740993",
		"1.000000059604644775390625", "1.0000000596046448", "1.00000005960464477539062500001",
		"0.1", "0.2", "0.3", "0.30000001192092896", "12345678901234567890", "1234567890123456789012345",
		"0.00000000000000000000000000000000000000001", "100000000000000000000000000000000000000",
		"1e22", "1e23", "123e-22", "4.5e15", "-0.012345679104328156", "0.0123456791043281560000000000001",
		"1.00000005960464477539062499999999999999", "1.00000005960464477539062500000000000001", "-0.0e-0",
		// Exponents too long to track, which long digit strings must not cancel out.
		"0." + strings.Repeat("0", 99999) + "1e1000000000",
		"1" + strings.Repeat("0", 100018) + "e-1000000000",
		"1e-99999999999", "0e99999999999", "1" + strings.Repeat("0", 30) + "e-100030",
	} {
		checkFloat32(t, s)
	}

	r := rand.New(rand.NewPCG(1, 2))
	for range 50000 {
		f := math.Float32frombits(r.Uint32())
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		checkFloat32(t, strconv.FormatFloat(float64(f), 'g', -1, 32))
		checkFloat32(t, strconv.FormatFloat(float64(f), 'g', -1, 64))
		checkFloat32(t, strconv.FormatFloat(float64(f), 'e', r.IntN(20), 64))
		checkFloat32(t, strconv.FormatFloat(r.NormFloat64()*0.05, 'f', r.IntN(20), 64))
		// Exact float32 midpoints, and their neighbours.
		mid := (float64(f) + float64(math.Nextafter32(f, float32(math.Inf(1))))) / 2
		for _, m := range []float64{mid, math.Nextafter(mid, 0), math.Nextafter(mid, math.Inf(1))} {
			checkFloat32(t, strconv.FormatFloat(m, 'g', -1, 64))
		}
		// Decimals closer to the midpoint than a float64 ulp, on either side.
		for _, prec := range []int{19, 22, 40} {
			checkFloat32(t, strconv.FormatFloat(mid, 'e', prec, 64))
		}
		checkFloat32(t, strconv.FormatFloat(mid, 'e', 60, 64)+"1")
	}
}

func TestFloat32Short(t *testing.T) {
	// A number that runs to the end of the window may go on.
	for _, s := range []string{"", "-", "1", "1.", "1.5", "1e", "1e+", "1e5", "0"} {
		l := lexer{b: []byte(s)}
		if _, _, err := l.float(); err != errShort {
			t.Errorf("float(%q) err = %v, want errShort", s, err)
		}
	}
	for _, s := range []string{"-x", "1.x", "1ex", "+1", ".5", "1.e5"} {
		l := lexer{b: []byte(s + ",")}
		if _, _, err := l.float(); err == nil || err == errShort {
			t.Errorf("float(%q) err = %v, want a syntax error", s, err)
		}
	}
}

// FuzzFloat checks lexer.float against strconv.ParseFloat on whatever it
// reads as a whole number.
func FuzzFloat(f *testing.F) {
	for _, s := range []string{"0", "-0.5", "1e39", "0.012345679104328156", "3.4028235e38", "1.00000005960464477539062500001", "1e-45"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := lexer{b: []byte(s + ",")}
		if _, _, err := l.float(); err != nil || l.i != len(s) {
			return
		}
		checkFloat32(t, s)
	})
}
