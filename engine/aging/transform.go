// Package aging holds what tier aging does to a conversation on its way down: the warm
// tier keeps its embedding quantized to INT8 with a per-vector scale, and a short
// extractive summary instead of the full content. (The moves themselves, batches and the
// workflow build on these.)
package aging

import (
	"math"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Quantize maps a float embedding to INT8 with one scale per vector: q[i] =
// round(v[i] / scale) with scale = max|v| / 127, so the largest component uses the whole
// range. An all-zero vector has scale 0 and quantizes to zeros. NaN and ±Inf are not
// valid embeddings (the engine refuses them on ingest); here they quantize to 0.
func Quantize(v []float32) (q []int8, scale float32) {
	var maxAbs float64
	for _, x := range v {
		if a := math.Abs(float64(x)); !math.IsNaN(a) && !math.IsInf(a, 0) && a > maxAbs {
			maxAbs = a
		}
	}
	q = make([]int8, len(v))
	if maxAbs == 0 {
		return q, 0
	}
	s := maxAbs / 127
	for i, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		r := math.Round(f / s)
		q[i] = int8(max(-127, min(127, r)))
	}
	return q, float32(s)
}

// Dequantize returns the float embedding q and scale stand for.
func Dequantize(q []int8, scale float32) []float32 {
	v := make([]float32, len(q))
	for i, x := range q {
		f := float64(x) * float64(scale)
		v[i] = float32(max(-math.MaxFloat32, min(math.MaxFloat32, f))) // scale rounded up may overshoot
	}
	return v
}

// MaxSummarySentences is how many sentences Summarize keeps.
const MaxSummarySentences = 3

// MaxSummaryBytes bounds a summary whatever its sentences' lengths.
const MaxSummaryBytes = 1024

// Summarize makes a deterministic extractive summary of content: it splits it into
// sentences, scores each by how frequent its words are in the whole text (longer words
// count, stop-length words do not), keeps the best MaxSummarySentences in their original
// order, and cuts the result at MaxSummaryBytes on a rune boundary. The same content
// always gives the same summary; a content of at most three sentences is kept whole
// (trimmed).
func Summarize(content string) string {
	sents := sentences(content)
	if len(sents) <= MaxSummarySentences {
		return clip(strings.Join(sents, " "))
	}
	freq := map[string]int{}
	words := make([][]string, len(sents))
	for i, s := range sents {
		words[i] = tokens(s)
		for _, w := range words[i] {
			freq[w]++
		}
	}
	type scored struct {
		i     int
		score float64
	}
	sc := make([]scored, len(sents))
	for i := range sents {
		var sum float64
		for _, w := range words[i] {
			sum += float64(freq[w])
		}
		if n := len(words[i]); n > 0 {
			sum /= math.Sqrt(float64(n)) // long sentences do not win by length alone
		}
		sc[i] = scored{i, sum}
	}
	sort.SliceStable(sc, func(a, b int) bool { return sc[a].score > sc[b].score })
	keep := make([]int, 0, MaxSummarySentences)
	for _, s := range sc[:MaxSummarySentences] {
		keep = append(keep, s.i)
	}
	sort.Ints(keep)
	out := make([]string, len(keep))
	for k, i := range keep {
		out[k] = sents[i]
	}
	return clip(strings.Join(out, " "))
}

// sentences splits text after '.', '!' or '?' followed by a space or the end, and at
// line breaks; empty pieces are dropped and whitespace is collapsed.
func sentences(text string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if s := strings.Join(strings.Fields(b.String()), " "); s != "" {
			out = append(out, s)
		}
		b.Reset()
	}
	rs := []rune(text)
	for i, r := range rs {
		if r == '\n' {
			flush()
			continue
		}
		b.WriteRune(r)
		if (r == '.' || r == '!' || r == '?') && (i+1 == len(rs) || unicode.IsSpace(rs[i+1])) {
			flush()
		}
	}
	flush()
	return out
}

// tokens returns the lower-cased words of s longer than three letters.
func tokens(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if utf8.RuneCountInString(f) > 3 {
			out = append(out, f)
		}
	}
	return out
}

// clip cuts s to at most MaxSummaryBytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= MaxSummaryBytes {
		return s
	}
	cut := MaxSummaryBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
