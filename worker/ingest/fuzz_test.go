package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/akosha/akosha/engine"
)

// FuzzDecode checks that Decode never panics, that it accepts only JSON that
// encoding/json also reads, to the same values, and that an accepted batch
// re-encodes and decodes to the same records. The seed corpus is in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		ctype := "application/json"
		if ndjson {
			ctype = "application/x-ndjson"
		}
		cs, err := Decode(bytes.NewReader(body), ctype, Limits{})
		if err != nil {
			var be *BatchError
			if !errors.As(err, &be) || len(be.Errors) == 0 {
				t.Fatalf("err = %v, want a *BatchError with errors", err)
			}
			return
		}
		checkRecords(t, cs)
		equalConversations(t, stdlibDecode(t, body, ndjson), cs)
		for _, tt := range []struct {
			ctype  string
			encode func(io.Writer, []engine.Conversation) error
		}{
			{"application/json", EncodeJSON},
			{"application/x-ndjson", EncodeNDJSON},
		} {
			var buf bytes.Buffer
			if err := tt.encode(&buf, cs); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			again, err := Decode(&buf, tt.ctype, Limits{})
			if err != nil {
				t.Fatalf("decode re-encoded %s: %v", tt.ctype, err)
			}
			equalConversations(t, again, cs)
		}
	})
}

// checkRecords checks the rules Decode promises for accepted records.
func checkRecords(t *testing.T, cs []engine.Conversation) {
	t.Helper()
	if len(cs) == 0 || len(cs) > DefaultMaxRecords {
		t.Fatalf("accepted %d records", len(cs))
	}
	ids := make(map[string]bool)
	for i, c := range cs {
		if c.SystemID == "" || c.ConversationID == "" || c.Content == "" || ids[c.ConversationID] {
			t.Errorf("record %d: accepted empty or repeated id or empty content: %q %q", i, c.SystemID, c.ConversationID)
		}
		ids[c.ConversationID] = true
		if !utf8.ValidString(c.Content) || !utf8.ValidString(c.SystemID) || !utf8.ValidString(c.ConversationID) {
			t.Errorf("record %d: accepted invalid UTF-8", i)
		}
		if len(c.Embedding) != engine.EmbeddingDim {
			t.Errorf("record %d: accepted %d-element embedding", i, len(c.Embedding))
		}
		for j, f := range c.Embedding {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				t.Errorf("record %d: accepted embedding[%d] = %v", i, j, f)
			}
		}
		if c.Timestamp.Location() != time.UTC {
			t.Errorf("record %d: timestamp %v not in UTC", i, c.Timestamp)
		}
		if c.Metadata != nil && (c.Metadata[0] != '{' || !json.Valid(c.Metadata)) {
			t.Errorf("record %d: accepted metadata %s", i, c.Metadata)
		}
	}
}

// stdlibDecode reads body with encoding/json, failing t if it cannot.
func stdlibDecode(t *testing.T, body []byte, ndjson bool) []engine.Conversation {
	t.Helper()
	var recs []engine.Conversation
	var chunks [][]byte
	switch trimmed := bytes.TrimSpace(body); {
	case ndjson:
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				chunks = append(chunks, line)
			}
		}
	case trimmed[0] == '{':
		chunks = [][]byte{body}
	default:
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			t.Fatalf("Decode accepted what encoding/json rejects: %v", err)
		}
		for _, r := range raws {
			chunks = append(chunks, r)
		}
	}
	for _, chunk := range chunks {
		var r struct { // engine.Conversation without content_hash, which may be of any type
			SystemID       string          `json:"system_id"`
			ConversationID string          `json:"conversation_id"`
			Content        string          `json:"content"`
			Embedding      []float32       `json:"embedding"`
			Timestamp      time.Time       `json:"timestamp"`
			Metadata       json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(chunk, &r); err != nil {
			t.Fatalf("Decode accepted what encoding/json rejects: %v: %q", err, chunk)
		}
		c := engine.Conversation{
			SystemID:       r.SystemID,
			ConversationID: r.ConversationID,
			Content:        r.Content,
			Embedding:      r.Embedding,
			Timestamp:      r.Timestamp.UTC(),
			Metadata:       r.Metadata,
		}
		if bytes.Equal(c.Metadata, []byte("null")) {
			c.Metadata = nil
		} else if c.Metadata != nil {
			var buf bytes.Buffer
			if err := json.Compact(&buf, c.Metadata); err != nil {
				t.Fatal(err)
			}
			c.Metadata = buf.Bytes()
		}
		recs = append(recs, c)
	}
	return recs
}

// TestFuzzCorpus checks that the seed corpus still means what its file names
// say: valid_* bodies are accepted and invalid_* ones rejected.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzDecode/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		valid, invalid := strings.HasPrefix(name, "valid_"), strings.HasPrefix(name, "invalid_")
		if !valid && !invalid {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		body, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ctype := "application/json"
		if lines[2] == "bool(true)" {
			ctype = "application/x-ndjson"
		}
		_, err = Decode(strings.NewReader(body), ctype, Limits{})
		if valid && err != nil || invalid && err == nil {
			t.Errorf("%s: Decode err = %v", name, err)
		}
	}
}
