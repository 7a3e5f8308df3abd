package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/akosha/akosha/engine/wal"
)

// FuzzRecordPayload feeds arbitrary payloads to the decoder of each binary WAL record
// type the engine replays. None may panic; a payload that decodes must re-encode to bytes that decode again, to the same encoding (the encoders
// and decoders agree). The seed corpus is in testdata/fuzz/FuzzRecordPayload.
func FuzzRecordPayload(f *testing.F) {
	at := time.Date(2026, 11, 26, 4, 0, 0, 123, time.UTC)
	c := Conversation{SystemID: "gpt-prod-1", ConversationID: "c1", Content: "hello", Timestamp: at,
		Metadata: []byte(`{"k":1}`), ContentHash: "abc", Embedding: make([]float32, EmbeddingDim)}
	f.Add(byte(RecordIngest), encodeIngest(nil, []Conversation{c}))
	f.Add(byte(RecordDelete), encodeDelete(nil, deletePayload{Kind: 1, SystemID: "s", Before: at, IDs: []string{"a", "b"}, Caller: "x"}))
	f.Add(byte(RecordAge), encodeAge(nil, agePayload{At: at, IDs: []string{"a"}}))
	f.Add(byte(RecordCold), encodeCold(nil, coldPayload{At: at, Objects: []ColdObject{{Key: "k", SystemID: "s", Day: "2026-11-26", Rows: 2, Bytes: 9, SHA256: "ff", Checksum: 7, IDs: []string{"a", "b"}}}}))
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		switch wal.Type(typ) {
		case RecordIngest:
			roundTrip(t, payload, decodeIngest, func(cs []Conversation) []byte { return encodeIngest(nil, cs) })
		case RecordDelete:
			roundTrip(t, payload, decodeDelete, func(d deletePayload) []byte { return encodeDelete(nil, d) })
		case RecordAge:
			roundTrip(t, payload, decodeAge, func(p agePayload) []byte { return encodeAge(nil, p) })
		case RecordCold:
			roundTrip(t, payload, decodeCold, func(p coldPayload) []byte { return encodeCold(nil, p) })
		default:
			// Every decoder sees every payload too: a record of one type mislabelled as
			// another must be an error, not a panic.
			decodeIngest(payload)
			decodeDelete(payload)
			decodeAge(payload)
			decodeCold(payload)
		}
	})
}

func roundTrip[T any](t *testing.T, payload []byte, decode func([]byte) (T, error), encode func(T) []byte) {
	t.Helper()
	v, err := decode(payload)
	if err != nil {
		return
	}
	e1 := encode(v)
	v2, err := decode(e1)
	if err != nil {
		t.Fatalf("re-encoded payload does not decode: %v\npayload %x\nre-encoded %x", err, payload, e1)
	}
	if e2 := encode(v2); !bytes.Equal(e1, e2) {
		t.Fatalf("encoding is not stable:\n%x\n%x", e1, e2)
	}
}
