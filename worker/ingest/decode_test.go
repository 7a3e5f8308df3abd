package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/akosha/akosha/engine"
)

// field is one field of a test record, with its value as raw JSON.
type field struct{ name, raw string }

// validFields returns the fields of a valid record with conversation id "conv-<i>".
func validFields(i int) []field {
	return []field{
		{"system_id", `"claude-prod-1"`},
		{"conversation_id", fmt.Sprintf(`"conv-%d"`, i)},
		{"content", `"hello world"`},
		{"embedding", embeddingJSON(engine.EmbeddingDim, -1, "")},
		{"timestamp", `"2026-11-25T10:00:00Z"`},
		{"metadata", `{"model":"m"}`},
	}
}

// with returns fs with field name set to raw, replaced in place or appended.
func with(fs []field, name, raw string) []field {
	out := append([]field(nil), fs...)
	for i := range out {
		if out[i].name == name {
			out[i].raw = raw
			return out
		}
	}
	return append(out, field{name, raw})
}

func without(fs []field, name string) []field {
	var out []field
	for _, f := range fs {
		if f.name != name {
			out = append(out, f)
		}
	}
	return out
}

func object(fs []field) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%s", f.name, f.raw)
	}
	b.WriteByte('}')
	return b.String()
}

// embeddingJSON returns a JSON array of n numbers, element at replaced by tok.
func embeddingJSON(n, at int, tok string) string {
	return embeddingTokens(n, map[int]string{at: tok})
}

// embeddingTokens returns a JSON array of n numbers, some replaced by toks.
func embeddingTokens(n int, toks map[int]string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		if tok, ok := toks[i]; ok {
			b.WriteString(tok)
		} else {
			fmt.Fprintf(&b, "%g", float32(i%17)/16-0.5)
		}
	}
	b.WriteByte(']')
	return b.String()
}

func jsonBatch(records ...string) string { return "[" + strings.Join(records, ",") + "]" }

func ndjsonBatch(records ...string) string { return strings.Join(records, "\n") + "\n" }

// batchError asserts that err is a *BatchError wrapping kind with exactly one
// FieldError, want, whose message contains msg.
func batchError(t *testing.T, err error, kind error, want FieldError, msg string) {
	t.Helper()
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BatchError", err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("errors.Is(err, %v) = false; err = %v", kind, err)
	}
	if len(be.Errors) != 1 || be.Omitted != 0 {
		t.Fatalf("got %d errors (+%d omitted), want 1: %v", len(be.Errors), be.Omitted, be.Errors)
	}
	got := be.Errors[0]
	if got.Index != want.Index || got.Line != want.Line || got.Field != want.Field {
		t.Errorf("got index %d line %d field %q, want index %d line %d field %q (%v)",
			got.Index, got.Line, got.Field, want.Index, want.Line, want.Field, got)
	}
	if !strings.Contains(got.Message, msg) {
		t.Errorf("message %q does not contain %q", got.Message, msg)
	}
}

// TestDecodeInvalidRecord puts one bad record at index 1 of a JSON array and
// of an NDJSON body (line 3, after a blank line) and checks the error names it.
func TestDecodeInvalidRecord(t *testing.T) {
	long := `"` + strings.Repeat("x", DefaultMaxIDBytes+1) + `"`
	tests := []struct {
		name   string
		fields []field
		lim    Limits
		field  string
		msg    string
	}{
		{"missing system_id", without(validFields(1), "system_id"), Limits{}, "system_id", "is required"},
		{"missing conversation_id", without(validFields(1), "conversation_id"), Limits{}, "conversation_id", "is required"},
		{"missing content", without(validFields(1), "content"), Limits{}, "content", "is required"},
		{"missing embedding", without(validFields(1), "embedding"), Limits{}, "embedding", "is required"},
		{"missing timestamp", without(validFields(1), "timestamp"), Limits{}, "timestamp", "is required"},
		{"empty system_id", with(validFields(1), "system_id", `""`), Limits{}, "system_id", "must not be empty"},
		{"empty conversation_id", with(validFields(1), "conversation_id", `""`), Limits{}, "conversation_id", "must not be empty"},
		{"empty content", with(validFields(1), "content", `""`), Limits{}, "content", "must not be empty"},
		{"null system_id", with(validFields(1), "system_id", `null`), Limits{}, "system_id", "must be a string, got null"},
		{"number conversation_id", with(validFields(1), "conversation_id", `42`), Limits{}, "conversation_id", "must be a string, got number"},
		{"object content", with(validFields(1), "content", `{"text":"hi"}`), Limits{}, "content", "must be a string, got object"},
		{"long system_id", with(validFields(1), "system_id", long), Limits{}, "system_id", "is 257 bytes, the limit is 256"},
		{"long conversation_id", with(validFields(1), "conversation_id", long), Limits{}, "conversation_id", "the limit is 256"},
		{"long id, lower limit", with(validFields(1), "conversation_id", `"conversation-1"`), Limits{MaxIDBytes: 13}, "conversation_id", "is 14 bytes, the limit is 13"},
		{"escaped control in system_id", with(validFields(1), "system_id", `"a\u0001b"`), Limits{}, "system_id", "control character"},
		{"tab in conversation_id", with(validFields(1), "conversation_id", `"a\tb"`), Limits{}, "conversation_id", "control character"},
		{"DEL in system_id", with(validFields(1), "system_id", "\"a\x7fb\""), Limits{}, "system_id", "control character"},
		{"C1 control in system_id", with(validFields(1), "system_id", `"a\u0085b"`), Limits{}, "system_id", "control character"},
		{"invalid UTF-8 system_id", with(validFields(1), "system_id", "\"a\xffb\""), Limits{}, "system_id", "not valid UTF-8"},
		{"invalid UTF-8 content", with(validFields(1), "content", "\"caf\xc3\""), Limits{}, "content", "not valid UTF-8"},
		{"long content", with(validFields(1), "content", `"hello world!"`), Limits{MaxContentBytes: 11}, "content", "is 12 bytes, the limit is 11"},
		{"383 floats", with(validFields(1), "embedding", embeddingJSON(383, -1, "")), Limits{}, "embedding", "has 383 elements, want 384"},
		{"385 floats", with(validFields(1), "embedding", embeddingJSON(385, -1, "")), Limits{}, "embedding", "has 385 elements, want 384"},
		{"empty embedding", with(validFields(1), "embedding", `[]`), Limits{}, "embedding", "has 0 elements"},
		{"NaN", with(validFields(1), "embedding", embeddingJSON(384, 17, "NaN")), Limits{}, "embedding[17]", `must be a finite number, got "NaN"`},
		{"Infinity", with(validFields(1), "embedding", embeddingJSON(384, 0, "Infinity")), Limits{}, "embedding[0]", `got "Infinity"`},
		{"-Infinity", with(validFields(1), "embedding", embeddingJSON(384, 383, "-Infinity")), Limits{}, "embedding[383]", `got "-Infinity"`},
		{"1e39", with(validFields(1), "embedding", embeddingJSON(384, 17, "1e39")), Limits{}, "embedding[17]", "out of float32 range"},
		{"-3.5e38", with(validFields(1), "embedding", embeddingJSON(384, 5, "-3.5e38")), Limits{}, "embedding[5]", "out of float32 range"},
		{"1e400", with(validFields(1), "embedding", embeddingJSON(384, 6, "1e400")), Limits{}, "embedding[6]", "out of float32 range"},
		{"string element", with(validFields(1), "embedding", embeddingJSON(384, 3, `"0.5"`)), Limits{}, "embedding[3]", "must be a number, got string"},
		{"null element", with(validFields(1), "embedding", embeddingJSON(384, 9, `null`)), Limits{}, "embedding[9]", "must be a number, got null"},
		{"array element", with(validFields(1), "embedding", embeddingJSON(384, 9, `[1]`)), Limits{}, "embedding[9]", "must be a number, got array"},
		{"only first bad element", with(validFields(1), "embedding", embeddingTokens(384, map[int]string{9: "null", 10: "NaN", 200: `"x"`})), Limits{}, "embedding[9]", "got null"},
		{"embedding string", with(validFields(1), "embedding", `"0.1,0.2"`), Limits{}, "embedding", "must be an array of 384 numbers, got string"},
		{"embedding null", with(validFields(1), "embedding", `null`), Limits{}, "embedding", "got null"},
		{"timestamp without offset", with(validFields(1), "timestamp", `"2026-11-25T10:00:00"`), Limits{}, "timestamp", "not an RFC 3339 timestamp"},
		{"timestamp date only", with(validFields(1), "timestamp", `"2026-11-25"`), Limits{}, "timestamp", "not an RFC 3339 timestamp"},
		{"timestamp with space", with(validFields(1), "timestamp", `"2026-11-25 10:00:00Z"`), Limits{}, "timestamp", "not an RFC 3339 timestamp"},
		{"timestamp number", with(validFields(1), "timestamp", `1764064800`), Limits{}, "timestamp", "must be an RFC 3339 string, got number"},
		{"timestamp before 1900", with(validFields(1), "timestamp", `"1899-12-31T23:59:59Z"`), Limits{}, "timestamp", "outside the years 1900-2200"},
		{"timestamp year -1 in UTC", with(validFields(1), "timestamp", `"0000-01-01T00:30:00+01:00"`), Limits{}, "timestamp", "outside the years"},
		{"timestamp year 10000 in UTC", with(validFields(1), "timestamp", `"9999-12-31T23:30:00-01:00"`), Limits{}, "timestamp", "outside the years"},
		{"metadata array", with(validFields(1), "metadata", `[1,2]`), Limits{}, "metadata", "must be a JSON object, got array"},
		{"metadata string", with(validFields(1), "metadata", `"{}"`), Limits{}, "metadata", "must be a JSON object, got string"},
		{"metadata number", with(validFields(1), "metadata", `3`), Limits{}, "metadata", "must be a JSON object, got number"},
		{"metadata too big", with(validFields(1), "metadata", `{"k": "`+strings.Repeat("v", 60)+`"}`), Limits{MaxMetadataBytes: 64}, "metadata", "is 68 bytes, the limit is 64"},
		{"unknown field", with(validFields(1), "extra", `{"a":[1,2]}`), Limits{}, "extra", "is not a known field"},
		{"field names are case sensitive", with(validFields(1), "Content", `"x"`), Limits{}, "Content", "is not a known field"},
		{"field twice", append(validFields(1), field{"timestamp", `"2026-11-25T10:00:00Z"`}), Limits{}, "timestamp", "appears more than once"},
	}
	for _, tt := range tests {
		for _, ndjson := range []bool{false, true} {
			name := tt.name + "/json"
			body := jsonBatch(object(validFields(0)), object(tt.fields), object(validFields(2)))
			ctype, line := "application/json", 0
			if ndjson {
				name = tt.name + "/ndjson"
				body = object(validFields(0)) + "\n\n" + object(tt.fields) + "\n" + object(validFields(2)) + "\n"
				ctype, line = "application/x-ndjson", 3
			}
			t.Run(name, func(t *testing.T) {
				cs, err := Decode(strings.NewReader(body), ctype, tt.lim)
				if cs != nil {
					t.Errorf("got %d records with an error", len(cs))
				}
				batchError(t, err, ErrInvalidRecord, FieldError{Index: 1, Line: line, Field: tt.field}, tt.msg)
			})
		}
	}
}

// TestDecodeManyErrorsInOneRecord: a record with a million unknown fields yields at most
// MaxErrors listed problems; the rest are counted.
func TestDecodeManyErrorsInOneRecord(t *testing.T) {
	body := "[{" + strings.Repeat(`"a":1,`, 100000) + `"b":1}]`
	_, err := Decode(strings.NewReader(body), "application/json", Limits{})
	var be *BatchError
	if !errors.As(err, &be) || len(be.Errors) > MaxErrors || be.Omitted == 0 {
		t.Fatalf("err = %v, want at most %d errors and the rest counted", err, MaxErrors)
	}
}

func TestDecodeInvalidBatch(t *testing.T) {
	r := func(i int) string { return object(validFields(i)) }
	dup := object(with(validFields(5), "conversation_id", `"conv-0"`))
	tests := []struct {
		name  string
		ctype string
		body  string
		lim   Limits
		kind  error
		want  FieldError
		msg   string
	}{
		{"duplicate id", "application/json", jsonBatch(r(0), r(1), dup), Limits{}, ErrInvalidRecord,
			FieldError{Index: 2, Field: "conversation_id"}, "duplicates record 0"},
		{"duplicate id ndjson", "application/x-ndjson", ndjsonBatch(r(0), r(1), dup), Limits{}, ErrInvalidRecord,
			FieldError{Index: 2, Line: 3, Field: "conversation_id"}, "duplicates record 0 (line 1)"},
		{"too many records", "application/json", jsonBatch(r(0), r(1), r(2), r(3)), Limits{MaxRecords: 2}, ErrTooManyRecords,
			FieldError{Index: 2}, "limit is 2"},
		{"too many records ndjson", "application/x-ndjson", ndjsonBatch(r(0), "", r(1), r(2)), Limits{MaxRecords: 2}, ErrTooManyRecords,
			FieldError{Index: 2, Line: 4}, "limit is 2"},
		{"too many records, rest not decoded", "application/json", jsonBatch(r(0), r(1), "not even JSON"), Limits{MaxRecords: 2}, ErrTooManyRecords,
			FieldError{Index: 2}, "limit is 2"},
		{"empty array", "application/json", `[ ]`, Limits{}, ErrNoRecords, FieldError{}, "no records"},
		{"empty body", "application/json", ``, Limits{}, ErrNoRecords, FieldError{}, "no records"},
		{"blank lines", "application/x-ndjson", "\n \r\n\t\n", Limits{}, ErrNoRecords, FieldError{}, "no records"},
		{"malformed record 3", "application/json", jsonBatch(r(0), r(1), r(2), `{"system_id":"a",,}`, r(4)), Limits{}, ErrMalformed,
			FieldError{Index: 3}, "malformed JSON at offset"},
		{"malformed record 3 ndjson", "application/x-ndjson", ndjsonBatch(r(0), r(1), r(2), `{"system_id":"a",,}`, r(4)), Limits{}, ErrMalformed,
			FieldError{Index: 3, Line: 4}, "malformed JSON at column 18"},
		{"malformed number names the field", "application/json", jsonBatch(r(0), r(1), r(2), object(with(validFields(3), "embedding", embeddingJSON(384, 2, "1.2.3")))), Limits{}, ErrMalformed,
			FieldError{Index: 3, Field: "embedding"}, "invalid character '.' after embedding element"},
		{"unterminated string ndjson", "application/x-ndjson", ndjsonBatch(r(0), `{"content":"abc`, r(2)), Limits{}, ErrMalformed,
			FieldError{Index: 1, Line: 2, Field: "content"}, "unterminated string"},
		{"two objects on a line", "application/x-ndjson", ndjsonBatch(r(0) + " " + r(1)), Limits{}, ErrMalformed,
			FieldError{Index: 0, Line: 1}, "unexpected data after the record"},
		{"missing comma", "application/json", "[" + r(0) + " " + r(1) + "]", Limits{}, ErrMalformed,
			FieldError{Index: 1}, "after record 0, expected ',' or ']'"},
		{"trailing comma", "application/json", "[" + r(0) + ",]", Limits{}, ErrMalformed,
			FieldError{Index: 1}, "invalid character ']'"},
		{"truncated", "application/json", jsonBatch(r(0), r(1))[:200], Limits{}, ErrMalformed,
			FieldError{Index: 0, Field: "embedding"}, "unexpected end of input"},
		{"unclosed array", "application/json", "[" + r(0), Limits{}, ErrMalformed,
			FieldError{Index: 1}, "unexpected end of input"},
		{"not an array", "application/json", `"records"`, Limits{}, ErrMalformed,
			FieldError{}, "must be a JSON array of records or one record object, got string"},
		{"NDJSON sent as JSON", "application/json", ndjsonBatch(r(0), r(1)), Limits{}, ErrMalformed,
			FieldError{Index: 1}, "unexpected data after the top-level value"},
		{"record not an object", "application/json", jsonBatch(r(0), `[1,2]`), Limits{}, ErrInvalidRecord,
			FieldError{Index: 1}, "record must be a JSON object, got array"},
		{"record not an object ndjson", "application/x-ndjson", ndjsonBatch(r(0), `"x"`), Limits{}, ErrInvalidRecord,
			FieldError{Index: 1, Line: 2}, "record must be a JSON object, got string"},
		{"record too large", "application/x-ndjson", ndjsonBatch(r(0), object(with(validFields(1), "content", `"`+strings.Repeat("x", 100<<10)+`"`))),
			Limits{MaxContentBytes: 16, MaxMetadataBytes: 16, MaxIDBytes: 16}, ErrRecordTooLarge, FieldError{Index: 1, Line: 2}, "record is larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := Decode(strings.NewReader(tt.body), tt.ctype, tt.lim)
			if cs != nil {
				t.Errorf("got %d records with an error", len(cs))
			}
			batchError(t, err, tt.kind, tt.want, tt.msg)
		})
	}
}

func TestDecodeContentType(t *testing.T) {
	body := object(validFields(0))
	for _, tt := range []struct {
		ctype string
		ok    bool
	}{
		{"", true},
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON; Charset=UTF-8", true},
		{"application/x-ndjson", true},
		{"application/x-ndjson; charset=utf-8", true},
		{"application/jsonl", true},
		{"text/plain", false},
		{"application/xml", false},
		{"application/json; charset=latin1", false},
		{"application/json; charset", false},
		{"multipart/form-data; boundary=x", false},
	} {
		_, err := Decode(strings.NewReader(body), tt.ctype, Limits{})
		if tt.ok && err != nil {
			t.Errorf("Decode(%q) = %v, want no error", tt.ctype, err)
		}
		if !tt.ok && !errors.Is(err, ErrUnsupportedMediaType) {
			t.Errorf("Decode(%q) = %v, want ErrUnsupportedMediaType", tt.ctype, err)
		}
	}
}

// TestDecodeAccepts checks inputs at the edges of the rules and what they decode to.
func TestDecodeAccepts(t *testing.T) {
	r0 := validFields(0)
	longID := strings.Repeat("é", DefaultMaxIDBytes/2)
	tests := []struct {
		name  string
		ctype string
		body  string
		check func(t *testing.T, c engine.Conversation)
	}{
		{"single object", "application/json", object(r0), nil},
		{"indented", "application/json", "[\n  {\n    \"system_id\" : \"s\",\n\t\"conversation_id\": \"c\", \"content\": \"x\",\r\n \"embedding\": [ " +
			strings.Join(strings.Split(strings.Trim(embeddingJSON(384, -1, ""), "[]"), ","), " ,\n ") + " ], \"timestamp\": \"2026-11-25T10:00:00Z\" }\n]\n", nil},
		{"content_hash ignored", "application/json", object(with(r0, "content_hash", `"abc"`)), func(t *testing.T, c engine.Conversation) {
			if c.ContentHash != "" {
				t.Errorf("ContentHash = %q, want empty", c.ContentHash)
			}
		}},
		{"metadata absent", "application/json", object(without(r0, "metadata")), func(t *testing.T, c engine.Conversation) {
			if c.Metadata != nil {
				t.Errorf("Metadata = %s, want nil", c.Metadata)
			}
		}},
		{"metadata null", "application/json", object(with(r0, "metadata", "null")), func(t *testing.T, c engine.Conversation) {
			if c.Metadata != nil {
				t.Errorf("Metadata = %s, want nil", c.Metadata)
			}
		}},
		{"metadata compacted", "application/json", object(with(r0, "metadata", "{ \"a\" : [1, 2],\n \"b\": \"x y\" }")), func(t *testing.T, c engine.Conversation) {
			if got, want := string(c.Metadata), `{"a":[1,2],"b":"x y"}`; got != want {
				t.Errorf("Metadata = %s, want %s", got, want)
			}
		}},
		{"metadata at the limit", "application/json", object(with(r0, "metadata", `{"k":"`+strings.Repeat("v", DefaultMaxMetadataBytes-8)+`"}`)), nil},
		{"timestamp offset to UTC", "application/json", object(with(r0, "timestamp", `"2026-11-25T12:30:00.123456789+02:30"`)), func(t *testing.T, c engine.Conversation) {
			want := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
			if !c.Timestamp.Equal(want) || c.Timestamp.Location() != time.UTC {
				t.Errorf("Timestamp = %v, want %v", c.Timestamp, want)
			}
		}},
		{"escapes", "application/json", object(with(with(r0, "content", `"line\none \"q\" \\ \/ \u00e9\ud83d\ude00 \ud800x\ttab"`), "system_id", `"sys\u005f1"`)), func(t *testing.T, c engine.Conversation) {
			if got, want := c.Content, "line\none \"q\" \\ / é😀 \uFFFDx\ttab"; got != want {
				t.Errorf("Content = %q, want %q", got, want)
			}
			if c.SystemID != "sys_1" {
				t.Errorf("SystemID = %q, want sys_1", c.SystemID)
			}
		}},
		{"escaped field name", "application/json", strings.Replace(object(r0), `"content"`, `"cont\u0065nt"`, 1), nil},
		{"ids at the limit", "application/json", object(with(with(r0, "system_id", `"`+longID+`"`), "conversation_id", `"`+longID+`"`)), nil},
		{"embedding extremes", "application/json", object(with(r0, "embedding", embeddingJSON(384, 1, "-0"))), func(t *testing.T, c engine.Conversation) {
			if math.Float32bits(c.Embedding[1]) != 0x80000000 {
				t.Errorf("Embedding[1] = %v, want -0", c.Embedding[1])
			}
		}},
		{"CRLF and no final newline", "application/x-ndjson", "\r\n" + object(r0) + " \r\n\r\n" + object(validFields(1)), nil},
		{"jsonl", "application/jsonl", ndjsonBatch(object(r0)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := Decode(strings.NewReader(tt.body), tt.ctype, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) == 0 {
				t.Fatal("no records")
			}
			for _, c := range cs {
				if len(c.Embedding) != engine.EmbeddingDim || cap(c.Embedding) != engine.EmbeddingDim {
					t.Errorf("embedding len %d cap %d, want %d", len(c.Embedding), cap(c.Embedding), engine.EmbeddingDim)
				}
			}
			if tt.check != nil {
				tt.check(t, cs[0])
			}
		})
	}
}

// roundTripRecords returns Synthetic records plus hand-made ones at the edges.
func roundTripRecords() []engine.Conversation {
	cs := Synthetic(7, 40, 30, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	emb := make([]float32, engine.EmbeddingDim)
	for i := range emb {
		emb[i] = float32(i) * 1.0001e-3
	}
	emb[0] = math.MaxFloat32
	emb[1] = -math.MaxFloat32
	emb[2] = math.SmallestNonzeroFloat32
	emb[3] = float32(math.Copysign(0, -1))
	emb[4] = 1.1754942e-38 // subnormal
	emb[5] = 16777217
	cs = append(cs,
		engine.Conversation{
			SystemID:       "système-ü",
			ConversationID: "odd \"id\" / with \\ escapes é😀",
			Content:        "tabs\tnewlines\n\r quotes \" control \x01\x1f DEL \x7f emoji 😀 \u2028 <html>&",
			Embedding:      emb,
			Timestamp:      time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		},
		engine.Conversation{
			SystemID:       "s",
			ConversationID: "c",
			Content:        strings.Repeat("long content ", 20000),
			Embedding:      emb,
			Timestamp:      time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
			Metadata:       json.RawMessage(`{"nested":{"a":[1,2.5,null,true,"x"]},"unicode":"é\u0001"}`),
		},
	)
	return cs
}

func equalConversations(t *testing.T, got, want []engine.Conversation) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.SystemID != w.SystemID || g.ConversationID != w.ConversationID || g.Content != w.Content || g.ContentHash != w.ContentHash {
			t.Errorf("record %d: got %q %q %.40q %q, want %q %q %.40q %q", i,
				g.SystemID, g.ConversationID, g.Content, g.ContentHash, w.SystemID, w.ConversationID, w.Content, w.ContentHash)
		}
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Errorf("record %d: timestamp %v, want %v", i, g.Timestamp, w.Timestamp)
		}
		if !bytes.Equal(g.Metadata, w.Metadata) {
			t.Errorf("record %d: metadata %s, want %s", i, g.Metadata, w.Metadata)
		}
		if len(g.Embedding) != len(w.Embedding) {
			t.Errorf("record %d: embedding has %d elements, want %d", i, len(g.Embedding), len(w.Embedding))
			continue
		}
		for j := range w.Embedding {
			if math.Float32bits(g.Embedding[j]) != math.Float32bits(w.Embedding[j]) {
				t.Errorf("record %d: embedding[%d] = %v, want %v", i, j, g.Embedding[j], w.Embedding[j])
				break
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	want := roundTripRecords()
	for _, tt := range []struct {
		name   string
		ctype  string
		encode func(io.Writer, []engine.Conversation) error
	}{
		{"json", "application/json", EncodeJSON},
		{"ndjson", "application/x-ndjson", EncodeNDJSON},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.encode(&buf, want); err != nil {
				t.Fatal(err)
			}
			body := buf.Bytes()
			// The output is valid JSON, and what encoding/json reads back is the same.
			if tt.ctype == "application/json" {
				var std []engine.Conversation
				if err := json.Unmarshal(body, &std); err != nil {
					t.Fatalf("encoding/json: %v", err)
				}
				equalConversations(t, std, want)
			}
			got, err := Decode(bytes.NewReader(body), tt.ctype, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			equalConversations(t, got, want)

			// Reads of any size give the same records.
			for _, r := range []io.Reader{iotest.OneByteReader(bytes.NewReader(body)), iotest.HalfReader(bytes.NewReader(body)), iotest.DataErrReader(bytes.NewReader(body))} {
				got, err := Decode(r, tt.ctype, Limits{})
				if err != nil {
					t.Fatal(err)
				}
				equalConversations(t, got, want)
			}
		})
	}
}

// TestDecodeTruncated checks every prefix of a small body: each is rejected
// as malformed or empty, never accepted or a panic.
func TestDecodeTruncated(t *testing.T) {
	cs := Synthetic(3, 2, 1, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	cs[0].Content = "escapes \" \\ \n é 😀"
	for _, tt := range []struct {
		ctype  string
		encode func(io.Writer, []engine.Conversation) error
	}{
		{"application/json", EncodeJSON},
		{"application/x-ndjson", EncodeNDJSON},
	} {
		var buf bytes.Buffer
		if err := tt.encode(&buf, cs); err != nil {
			t.Fatal(err)
		}
		body := buf.Bytes()
		for n := range len(body) - 1 {
			whole := n == len(body)-1 && body[n] == '\n' // all but the final newline
			if tt.ctype == "application/x-ndjson" {
				whole = whole || body[n] == '\n' || n > 0 && body[n-1] == '\n'
			}
			if whole {
				continue
			}
			got, err := Decode(bytes.NewReader(body[:n]), tt.ctype, Limits{})
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoRecords) && !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("%s: Decode of %d of %d bytes = %d records, %v; want ErrMalformed", tt.ctype, n, len(body), len(got), err)
			}
		}
	}
}

func TestDecodeErrorList(t *testing.T) {
	var recs []string
	for i := range 150 {
		recs = append(recs, object(without(validFields(i), "content")))
	}
	_, err := Decode(strings.NewReader(jsonBatch(recs...)), "application/json", Limits{})
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BatchError", err)
	}
	if got, want := len(be.Errors), MaxErrors; got != want {
		t.Errorf("listed %d errors, want %d", got, want)
	}
	if got, want := be.Omitted, 150-MaxErrors; got != want {
		t.Errorf("omitted %d errors, want %d", got, want)
	}
	if got, want := be.Errors[99], (FieldError{Index: 99, Field: "content", Message: "is required"}); got != want {
		t.Errorf("error 99 = %+v, want %+v", got, want)
	}
	if got, want := err.Error(), "ingest: record 0: content is required (and 149 more errors)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestDecodeEveryError checks that one record with many problems, and
// several bad NDJSON lines, are all reported in body order.
func TestDecodeEveryError(t *testing.T) {
	bad := object(with(with(without(validFields(1), "content"), "system_id", `""`), "embedding", embeddingJSON(3, 1, "NaN")))
	body := ndjsonBatch(object(validFields(0)), bad, `{"broken":`, object(validFields(3)), `[]`, object(validFields(0)))
	_, err := Decode(strings.NewReader(body), "application/x-ndjson", Limits{})
	var be *BatchError
	if !errors.As(err, &be) {
		t.Fatalf("err = %v, want a *BatchError", err)
	}
	want := []FieldError{
		{Index: 1, Line: 2, Field: "system_id", Message: "must not be empty"},
		{Index: 1, Line: 2, Field: "embedding[1]", Message: `must be a finite number, got "NaN"`},
		{Index: 1, Line: 2, Field: "embedding", Message: "has 3 elements, want 384"},
		{Index: 1, Line: 2, Field: "content", Message: "is required"},
		{Index: 2, Line: 3, Field: "broken", Message: "malformed JSON at column 11: unexpected end of line looking for beginning of value"},
		{Index: 4, Line: 5, Field: "", Message: "record must be a JSON object, got array"},
		{Index: 5, Line: 6, Field: "conversation_id", Message: "duplicates record 0 (line 1)"},
	}
	if len(be.Errors) != len(want) {
		t.Fatalf("got errors %v, want %v", be.Errors, want)
	}
	for i := range want {
		if be.Errors[i] != want[i] {
			t.Errorf("error %d = %+v, want %+v", i, be.Errors[i], want[i])
		}
	}
	for _, kind := range []error{ErrInvalidRecord, ErrMalformed} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(err, %v) = false", kind)
		}
	}
}

func TestDecodeReadError(t *testing.T) {
	errBroken := errors.New("connection reset")
	body := jsonBatch(object(validFields(0)), object(validFields(1)))
	r := io.MultiReader(strings.NewReader(body[:100]), iotest.ErrReader(errBroken))
	_, err := Decode(r, "application/json", Limits{})
	if !errors.Is(err, errBroken) {
		t.Fatalf("err = %v, want it to wrap %v", err, errBroken)
	}
	var be *BatchError
	if errors.As(err, &be) {
		t.Errorf("err = %v, want a read error, not a *BatchError", err)
	}
}
