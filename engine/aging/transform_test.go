package aging

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

// Random unit vectors keep a cosine similarity of at least 0.99 through quantization.
func TestQuantizeCosine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	worst := 1.0
	for n := 0; n < 2000; n++ {
		v := make([]float32, 384)
		var norm float64
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			norm += float64(v[i]) * float64(v[i])
		}
		for i := range v {
			v[i] /= float32(math.Sqrt(norm))
		}
		q, s := Quantize(v)
		if c := cosine(v, Dequantize(q, s)); c < worst {
			worst = c
		}
	}
	if worst < 0.99 {
		t.Fatalf("worst cosine similarity %.5f, want >= 0.99", worst)
	}
	t.Logf("worst cosine similarity over 2000 random unit vectors: %.5f", worst)
}

func TestQuantizeEdges(t *testing.T) {
	q, s := Quantize(make([]float32, 384))
	if s != 0 || len(q) != 384 || q[0] != 0 {
		t.Fatalf("all-zero: scale %v", s)
	}
	// Extremes: the largest component maps to ±127, tiny ones to 0, and the rest keep
	// their sign.
	v := []float32{math.MaxFloat32, -math.MaxFloat32, 1e-30, -3e38, 0}
	q, s = Quantize(v)
	if q[0] != 127 || q[1] != -127 || q[2] != 0 || q[3] >= 0 || q[4] != 0 || math.IsInf(float64(s), 0) || s <= 0 {
		t.Fatalf("extremes: %v scale %v", q, s)
	}
	d := Dequantize(q, s)
	if math.IsInf(float64(d[0]), 0) || d[0] <= 0 {
		t.Fatalf("dequantized extremes: %v", d)
	}
	// One spike among small values: the small ones may round to zero, the spike stays.
	v = make([]float32, 384)
	v[7] = 1
	for i := range v {
		if i != 7 {
			v[i] = 1e-4
		}
	}
	q, s = Quantize(v)
	if q[7] != 127 || cosine(v, Dequantize(q, s)) < 0.99 {
		t.Fatalf("spike: q[7]=%d cosine %.4f", q[7], cosine(v, Dequantize(q, s)))
	}
	// NaN and Inf are not embeddings: they quantize to 0 and do not set the scale.
	q, s = Quantize([]float32{float32(math.NaN()), float32(math.Inf(1)), 0.5})
	if q[0] != 0 || q[1] != 0 || q[2] != 127 || s != 0.5/127 {
		t.Fatalf("NaN/Inf: %v %v", q, s)
	}
}

func TestSummarize(t *testing.T) {
	text := `The deploy failed on the staging cluster. Nobody noticed for an hour.
The staging cluster ran out of disk because the deploy wrote logs to the data volume.
Lunch was good. We moved the deploy logs off the data volume and the staging cluster recovered.
Next week we review disk alerts for every cluster.`
	got := Summarize(text)
	sents := sentences(got)
	if len(sents) != MaxSummarySentences {
		t.Fatalf("summary has %d sentences: %q", len(sents), got)
	}
	if strings.Contains(got, "Lunch was good") {
		t.Fatalf("summary kept the off-topic sentence: %q", got)
	}
	// Original order is kept.
	if strings.Index(got, "ran out of disk") > strings.Index(got, "moved the deploy logs") {
		t.Fatalf("summary out of order: %q", got)
	}
	if Summarize(text) != got {
		t.Fatal("summary is not deterministic")
	}
	// Short content is kept whole, whitespace collapsed.
	if s := Summarize("  Hello   there.\nHow are you?  "); s != "Hello there. How are you?" {
		t.Fatalf("short: %q", s)
	}
	if s := Summarize(""); s != "" {
		t.Fatalf("empty: %q", s)
	}
	// Long sentences are cut on a rune boundary.
	long := strings.Repeat("ü", 2000) + "."
	if s := Summarize(long); len(s) > MaxSummaryBytes || !utf8.ValidString(s) {
		t.Fatalf("long: %d bytes, valid %v", len(s), utf8.ValidString(s))
	}
	// Decimal points and abbreviations without a following space do not split.
	if n := len(sentences("Version 1.5.6 is out. It fixes e.g.this.")); n != 2 {
		t.Fatalf("split into %d sentences", n)
	}
}
