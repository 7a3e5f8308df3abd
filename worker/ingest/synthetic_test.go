package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

func TestSynthetic(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	const n, days = 2000, 30
	cs := Synthetic(42, n, days, now)

	if got := len(cs); got != n {
		t.Fatalf("got %d records, want %d", got, n)
	}
	equalConversations(t, Synthetic(42, n, days, now), cs) // deterministic

	ids := make(map[string]bool)
	for _, c := range Synthetic(43, n, days, now) {
		ids[c.ConversationID] = true
	}
	if other := Synthetic(43, n, days, now); other[0].Content == cs[0].Content && other[1].Content == cs[1].Content {
		t.Error("seeds 42 and 43 gave the same content")
	}

	systems := make(map[string]int)
	topics := make(map[string]bool)
	oldest := now.Add(-days * 24 * time.Hour)
	for i, c := range cs {
		if ids[c.ConversationID] {
			t.Fatalf("record %d: conversation id %q repeats within or across seeds", i, c.ConversationID)
		}
		ids[c.ConversationID] = true
		systems[c.SystemID]++
		if c.Timestamp.Before(oldest) || c.Timestamp.After(now) {
			t.Errorf("record %d: timestamp %v outside [%v, %v]", i, c.Timestamp, oldest, now)
		}
		if l := len(c.Content); l < 200 || l > 8000 {
			t.Errorf("record %d: content is %d bytes, want a few hundred to a few thousand", i, l)
		}
		var norm float64
		for _, f := range c.Embedding {
			norm += float64(f) * float64(f)
		}
		if math.Abs(math.Sqrt(norm)-1) > 1e-5 {
			t.Errorf("record %d: embedding norm %v, want 1", i, math.Sqrt(norm))
		}
		var meta struct {
			Model  string `json:"model"`
			Turns  int    `json:"turns"`
			Topic  string `json:"topic"`
			Tokens int    `json:"tokens"`
		}
		if err := json.Unmarshal(c.Metadata, &meta); err != nil || meta.Model == "" || meta.Turns < 1 || meta.Topic == "" {
			t.Errorf("record %d: metadata %s: %+v, %v", i, c.Metadata, meta, err)
		}
		topics[meta.Topic] = true
	}
	if got := len(systems); got != 8 {
		t.Errorf("%d distinct systems, want 8: %v", got, systems)
	}
	if got := len(topics); got < 10 {
		t.Errorf("%d distinct topics, want at least 10", got)
	}

	// Everything passes Decode.
	var buf bytes.Buffer
	if err := EncodeNDJSON(&buf, cs); err != nil {
		t.Fatal(err)
	}
	got, err := Decode(&buf, "application/x-ndjson", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	equalConversations(t, got, cs)
}

func TestSyntheticNoDays(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, days := range []int{0, -3} {
		for i, c := range Synthetic(1, 20, days, now) {
			if !c.Timestamp.Equal(now) {
				t.Errorf("days %d, record %d: timestamp %v, want %v", days, i, c.Timestamp, now)
			}
		}
	}
	if cs := Synthetic(1, 0, 1, now); len(cs) != 0 {
		t.Errorf("Synthetic(n=0) returned %d records", len(cs))
	}
}

// TestSyntheticClusters checks that embeddings of one topic are closer to
// each other than to other topics', for every seed.
func TestSyntheticClusters(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	a := Synthetic(1, 300, 1, now)
	b := Synthetic(2, 300, 1, now)
	topicOf := func(c engine.Conversation) string {
		var meta struct{ Topic string }
		if err := json.Unmarshal(c.Metadata, &meta); err != nil {
			t.Fatal(err)
		}
		return meta.Topic
	}
	var same, other float64
	var nSame, nOther int
	for _, x := range a {
		for _, y := range b {
			var dot float64
			for k := range x.Embedding {
				dot += float64(x.Embedding[k]) * float64(y.Embedding[k])
			}
			if topicOf(x) == topicOf(y) {
				same += dot
				nSame++
			} else {
				other += dot
				nOther++
			}
		}
	}
	same /= float64(nSame)
	other /= float64(nOther)
	if same < 0.5 || math.Abs(other) > 0.1 {
		t.Errorf("mean cosine within a topic %.3f (want > 0.5), across topics %.3f (want about 0)", same, other)
	}
}
