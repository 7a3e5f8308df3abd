package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/akosha/akosha/engine"
)

const benchRecords = 1000

func benchBody(b *testing.B, encode func(*bytes.Buffer, []engine.Conversation) error) []byte {
	b.Helper()
	cs := Synthetic(42, benchRecords, 30, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	if err := encode(&buf, cs); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJSON(w *bytes.Buffer, cs []engine.Conversation) error   { return EncodeJSON(w, cs) }
func encodeNDJSON(w *bytes.Buffer, cs []engine.Conversation) error { return EncodeNDJSON(w, cs) }

func benchDecode(b *testing.B, body []byte, contentType string) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		cs, err := Decode(bytes.NewReader(body), contentType, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != benchRecords {
			b.Fatalf("decoded %d records, want %d", len(cs), benchRecords)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeJSON decodes a 1000-record JSON array.
func BenchmarkDecodeJSON(b *testing.B) {
	benchDecode(b, benchBody(b, encodeJSON), "application/json")
}

// BenchmarkDecodeNDJSON decodes 1000 NDJSON records.
func BenchmarkDecodeNDJSON(b *testing.B) {
	benchDecode(b, benchBody(b, encodeNDJSON), "application/x-ndjson")
}

// BenchmarkDecodeStdlibBaseline decodes the same body as BenchmarkDecodeJSON
// with plain encoding/json and no validation, for comparison.
func BenchmarkDecodeStdlibBaseline(b *testing.B) {
	body := benchBody(b, encodeJSON)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var cs []engine.Conversation
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&cs); err != nil {
			b.Fatal(err)
		}
		if len(cs) != benchRecords {
			b.Fatalf("decoded %d records, want %d", len(cs), benchRecords)
		}
	}
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEncodeNDJSON writes 1000 records, as the load generator does.
func BenchmarkEncodeNDJSON(b *testing.B) {
	cs := Synthetic(42, benchRecords, 30, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := EncodeNDJSON(&buf, cs); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(benchRecords*b.N)/b.Elapsed().Seconds(), "records/s")
}
