package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/akosha/akosha/engine"
)

// The record fields, in the order missing ones are reported.
const (
	fSystemID = iota
	fConversationID
	fContent
	fEmbedding
	fTimestamp
	fMetadata
	fContentHash
	numFields

	fUnknown = -1
)

var fieldNames = [numFields]string{"system_id", "conversation_id", "content", "embedding", "timestamp", "metadata", "content_hash"}

func required(f int) bool { return f != fMetadata && f != fContentHash }

// errStop ends decoding; the reason is already in the BatchError.
var errStop = errors.New("ingest: stop")

// errSkip abandons the current NDJSON line; the reason is already in the BatchError.
var errSkip = errors.New("ingest: skip line")

// decoder holds the state of one Decode call.
type decoder struct {
	src    source
	lex    lexer
	lim    Limits
	ndjson bool
	maxRec int // see Limits.maxRecordBytes

	rerrs []fieldErr // problems with the record being parsed
	// rerrsOmitted counts the record's problems past MaxErrors.
	rerrsOmitted int
	field        string // field whose value is being parsed, for syntax errors
	meta         bytes.Buffer

	out     []engine.Conversation
	ids     map[string]recordPos // conversation_id -> first record with it
	systems map[string]string    // interned system ids
	slab    []float32            // embeddings are cut from here
	berr    BatchError

	index     int   // index of the current record
	line      int   // line of the current record (NDJSON)
	curLine   int   // line at src.pos (NDJSON)
	lineStart int64 // body offset of the first byte of curLine
}

type fieldErr struct{ field, msg string }

type recordPos struct{ index, line int }

func newDecoder(r io.Reader, ndjson bool, lim Limits) *decoder {
	return &decoder{
		src:     source{r: r},
		lex:     lexer{ndjson: ndjson},
		lim:     lim,
		ndjson:  ndjson,
		maxRec:  lim.maxRecordBytes(),
		ids:     make(map[string]recordPos),
		systems: make(map[string]string),
		curLine: 1,
	}
}

func (d *decoder) run() ([]engine.Conversation, error) {
	var err error
	if d.ndjson {
		err = d.decodeNDJSON()
	} else {
		err = d.decodeJSON()
	}
	if err != nil && err != errStop {
		return nil, err
	}
	if d.index == 0 && !d.berr.failed() {
		d.berr.add(FieldError{Index: 0, Message: "no records"}, ErrNoRecords)
	}
	if d.berr.failed() {
		be := d.berr
		return nil, &be
	}
	return d.out, nil
}

func (d *decoder) decodeJSON() error {
	c, ok := d.skipSpace()
	if !ok {
		return d.src.readErr()
	}
	switch c {
	case '{':
		if err := d.record(); err != nil {
			return d.stop(err)
		}
	case '[':
		d.src.pos++
		if err := d.array(); err != nil {
			return err
		}
	default:
		d.malformed("", d.src.abs(), "body must be a JSON array of records or one record object, got "+kindOf(c))
		return errStop
	}
	if _, ok := d.skipSpace(); ok {
		d.malformed("", d.src.abs(), "unexpected data after the top-level value (send NDJSON as application/x-ndjson)")
		return errStop
	}
	return d.src.readErr()
}

// stop turns errSkip into errStop: a JSON array cannot resume after malformed input.
func (d *decoder) stop(err error) error {
	if err == errSkip {
		return errStop
	}
	return err
}

func (d *decoder) array() error {
	c, ok := d.skipSpace()
	if !ok {
		return d.endOfInput("unexpected end of input in array")
	}
	if c == ']' {
		d.src.pos++
		return nil
	}
	for {
		if d.index >= d.lim.MaxRecords {
			d.tooMany()
			return errStop
		}
		if _, ok := d.skipSpace(); !ok {
			return d.endOfInput("unexpected end of input, expected a record")
		}
		if err := d.record(); err != nil {
			return d.stop(err)
		}
		c, ok := d.skipSpace()
		if !ok {
			return d.endOfInput("unexpected end of input, expected ',' or ']'")
		}
		switch c {
		case ',':
			d.src.pos++
		case ']':
			d.src.pos++
			return nil
		default:
			d.malformed("", d.src.abs(), fmt.Sprintf("invalid character %s after record %d, expected ',' or ']'", quoteByte(c), d.index-1))
			return errStop
		}
	}
}

func (d *decoder) decodeNDJSON() error {
	for {
		if _, ok := d.skipSpace(); !ok {
			return d.src.readErr()
		}
		if d.index >= d.lim.MaxRecords {
			d.line = d.curLine
			d.tooMany()
			return errStop
		}
		d.line = d.curLine
		err := d.record()
		if err == errSkip {
			d.index++
			err = d.skipLine()
		}
		if err != nil {
			return err
		}
	}
}

// record decodes the record at src.pos, reading more of the body as needed,
// and then finishes it. It returns errSkip after malformed JSON, errStop when
// decoding must end, or the error from reading the body.
//
// A record is parsed from its first byte again each time the window proves
// too short, so parseRecord must change nothing that outlives the attempt
// but the system-id intern table and the embedding slot it fills again; the
// batch state (ids, out, slab, berr) changes only in finish. Reads fill the
// buffer and grow it geometrically, so a record is parsed O(1) times on
// average and a huge one O(log size) times.
func (d *decoder) record() error {
	for {
		d.lex.b, d.lex.i = d.src.buf[d.src.pos:d.src.end], 0
		c, err := d.parseRecord()
		if err == nil && d.lex.i > d.maxRec || err == errShort && len(d.lex.b) >= d.maxRec {
			d.fail(FieldError{Index: d.index, Line: d.line, Message: fmt.Sprintf("record is larger than %d bytes", d.maxRec)}, ErrRecordTooLarge)
			return errStop
		}
		if err == nil {
			d.src.pos += d.lex.i
			if d.ndjson {
				if ok, err := d.restOfLine(); err != nil {
					return err
				} else if !ok {
					d.malformed("", d.src.abs(), "unexpected data after the record; NDJSON takes one record per line")
					return errSkip
				}
			}
			d.finish(&c)
			return nil
		}
		if err != errShort {
			var se *syntaxError
			if !errors.As(err, &se) {
				return err
			}
			d.malformed(d.field, d.src.abs()+int64(se.off), se.msg)
			return errSkip
		}
		if !d.src.more() {
			if err := d.src.readErr(); err != nil {
				return err
			}
			d.malformed(d.field, d.src.abs()+int64(len(d.lex.b)), "unexpected end of input")
			return errStop
		}
	}
}

// finish checks the parsed record c against the batch and keeps it if the
// batch is still clean.
func (d *decoder) finish(c *engine.Conversation) {
	idx := d.index
	d.index++
	for _, e := range d.rerrs {
		d.fail(FieldError{Index: idx, Line: d.line, Field: e.field, Message: e.msg}, ErrInvalidRecord)
	}
	d.berr.Omitted += d.rerrsOmitted
	if c.ConversationID != "" {
		if prev, dup := d.ids[c.ConversationID]; dup {
			msg := fmt.Sprintf("duplicates record %d", prev.index)
			if prev.line > 0 {
				msg += fmt.Sprintf(" (line %d)", prev.line)
			}
			d.fail(FieldError{Index: idx, Line: d.line, Field: fieldNames[fConversationID], Message: msg}, ErrInvalidRecord)
		} else {
			d.ids[c.ConversationID] = recordPos{idx, d.line}
		}
	}
	if d.berr.failed() {
		return
	}
	d.out = append(d.out, *c)
	d.slab = d.slab[engine.EmbeddingDim:]
}

// fail records a problem; the batch keeps no records from then on.
func (d *decoder) fail(fe FieldError, kind error) {
	d.berr.add(fe, kind)
	d.out = nil
}

func (d *decoder) tooMany() {
	d.fail(FieldError{Index: d.index, Line: d.line, Message: fmt.Sprintf("too many records: the limit is %d per request", d.lim.MaxRecords)}, ErrTooManyRecords)
}

// malformed records malformed JSON at body offset abs in the current record.
func (d *decoder) malformed(field string, abs int64, msg string) {
	where := fmt.Sprintf("offset %d", abs)
	if d.ndjson {
		where = fmt.Sprintf("column %d", abs-d.lineStart+1)
	}
	d.fail(FieldError{Index: d.index, Line: d.line, Field: field, Message: "malformed JSON at " + where + ": " + msg}, ErrMalformed)
}

// endOfInput reports a body that ends early, or the error that ended it.
func (d *decoder) endOfInput(msg string) error {
	if err := d.src.readErr(); err != nil {
		return err
	}
	d.malformed("", d.src.abs(), msg)
	return errStop
}

// skipSpace moves src.pos to the next non-space byte and returns it, counting
// lines for NDJSON. It reports false at the end of the body.
func (d *decoder) skipSpace() (byte, bool) {
	for {
		buf := d.src.buf[:d.src.end]
		for p := d.src.pos; p < len(buf); p++ {
			switch c := buf[p]; c {
			case ' ', '\t', '\r':
			case '\n':
				d.curLine++
				d.lineStart = d.src.off + int64(p) + 1
			default:
				d.src.pos = p
				return c, true
			}
		}
		d.src.pos = d.src.end
		if !d.src.more() {
			return 0, false
		}
	}
}

// restOfLine reports whether only spaces follow on the current NDJSON line.
func (d *decoder) restOfLine() (bool, error) {
	for {
		buf := d.src.buf[:d.src.end]
		for p := d.src.pos; p < len(buf); p++ {
			switch buf[p] {
			case ' ', '\t', '\r':
			case '\n':
				d.src.pos = p
				return true, nil
			default:
				d.src.pos = p
				return false, nil
			}
		}
		d.src.pos = d.src.end
		if !d.src.more() {
			return true, d.src.readErr()
		}
	}
}

// skipLine moves src.pos to the end of the current line.
func (d *decoder) skipLine() error {
	for {
		if j := bytes.IndexByte(d.src.buf[d.src.pos:d.src.end], '\n'); j >= 0 {
			d.src.pos += j
			return nil
		}
		d.src.pos = d.src.end
		if !d.src.more() {
			return d.src.readErr()
		}
	}
}

// invalid notes a problem with a field of the record being parsed. Past
// MaxErrors problems in one record only the count grows, so a hostile record
// cannot make the error list unbounded.
func (d *decoder) invalid(field, msg string) {
	if len(d.rerrs) >= MaxErrors {
		d.rerrsOmitted++
		return
	}
	d.rerrs = append(d.rerrs, fieldErr{field, msg})
}

// parseRecord parses the record that starts the window. Field problems go to
// d.rerrs; malformed JSON and a short window are returned.
func (d *decoder) parseRecord() (engine.Conversation, error) {
	var c engine.Conversation
	l := &d.lex
	l.depth = 0
	d.field = ""
	d.rerrs = d.rerrs[:0]
	d.rerrsOmitted = 0
	if err := l.ws(); err != nil {
		return c, err
	}
	if l.b[l.i] != '{' {
		kind := kindOf(l.b[l.i])
		if err := l.skipValue(); err != nil {
			return c, err
		}
		d.invalid("", "record must be a JSON object, got "+kind)
		return c, nil
	}
	l.i++
	if err := l.ws(); err != nil {
		return c, err
	}
	var seen [numFields]bool
	if l.b[l.i] == '}' {
		l.i++
	} else {
	fields:
		for {
			if l.b[l.i] != '"' {
				return c, l.unexpected("looking for beginning of field name")
			}
			f, name, err := d.key()
			if err != nil {
				return c, err
			}
			if err := l.ws(); err != nil {
				return c, err
			}
			if l.b[l.i] != ':' {
				return c, l.unexpected("after field name")
			}
			l.i++
			if err := l.ws(); err != nil {
				return c, err
			}
			if f != fUnknown {
				if seen[f] {
					d.invalid(name, "appears more than once")
				}
				seen[f] = true
			}
			d.field = name
			if err := d.value(f, name, &c); err != nil {
				return c, err
			}
			d.field = ""
			if err := l.ws(); err != nil {
				return c, err
			}
			switch l.b[l.i] {
			case ',':
				l.i++
				if err := l.ws(); err != nil {
					return c, err
				}
			case '}':
				l.i++
				break fields
			default:
				return c, l.unexpected("after field value, expected ',' or '}'")
			}
		}
	}
	for f, name := range fieldNames {
		if required(f) && !seen[f] {
			d.invalid(name, "is required")
		}
	}
	return c, nil
}

// key reads a field name and returns its field number and name; unknown
// names come back as fUnknown and a printable copy.
func (d *decoder) key() (int, string, error) {
	k, err := d.lex.str()
	if err != nil {
		return 0, "", err
	}
	switch string(k) {
	case "system_id":
		return fSystemID, fieldNames[fSystemID], nil
	case "conversation_id":
		return fConversationID, fieldNames[fConversationID], nil
	case "content":
		return fContent, fieldNames[fContent], nil
	case "embedding":
		return fEmbedding, fieldNames[fEmbedding], nil
	case "timestamp":
		return fTimestamp, fieldNames[fTimestamp], nil
	case "metadata":
		return fMetadata, fieldNames[fMetadata], nil
	case "content_hash":
		return fContentHash, fieldNames[fContentHash], nil
	}
	const limit = 64
	name := k
	if len(name) > limit {
		name = name[:limit]
	}
	return fUnknown, string(bytes.ToValidUTF8(name, []byte("\uFFFD"))), nil
}

// value parses the value of field f into c.
func (d *decoder) value(f int, name string, c *engine.Conversation) error {
	l := &d.lex
	switch f {
	case fSystemID, fConversationID:
		s, ok, err := d.stringValue(name, "a string")
		if err != nil || !ok || !d.validID(name, s) {
			return err
		}
		if f == fSystemID {
			c.SystemID = d.intern(s)
		} else {
			c.ConversationID = string(s)
		}
	case fContent:
		s, ok, err := d.stringValue(name, "a string")
		if err != nil || !ok {
			return err
		}
		switch {
		case len(s) == 0:
			d.invalid(name, "must not be empty")
		case len(s) > d.lim.MaxContentBytes:
			d.invalid(name, fmt.Sprintf("is %d bytes, the limit is %d", len(s), d.lim.MaxContentBytes))
		case !utf8.Valid(s):
			d.invalid(name, "is not valid UTF-8")
		default:
			c.Content = string(s)
		}
	case fEmbedding:
		emb, err := d.embedding(name)
		if err != nil {
			return err
		}
		c.Embedding = emb
	case fTimestamp:
		s, ok, err := d.stringValue(name, "an RFC 3339 string")
		if err != nil || !ok {
			return err
		}
		t, perr := time.Parse(time.RFC3339Nano, string(s))
		if perr != nil {
			d.invalid(name, quoteShort(s)+" is not an RFC 3339 timestamp with offset, e.g. 2026-11-25T10:00:00Z")
			return nil
		}
		if t.Before(engine.MinTimestamp) || t.After(engine.MaxTimestamp) {
			d.invalid(name, fmt.Sprintf("%s is outside the years %d-%d the engine stores", quoteShort(s), engine.MinTimestamp.Year(), engine.MaxTimestamp.Year()))
			return nil
		}
		c.Timestamp = t.UTC()
	case fMetadata:
		return d.metadata(name, c)
	case fContentHash:
		return l.skipValue()
	default:
		if err := l.skipValue(); err != nil {
			return err
		}
		d.invalid(name, "is not a known field")
	}
	return nil
}

// stringValue reads a string value; a value of another kind is skipped and
// noted as not being what the field wants.
func (d *decoder) stringValue(name, want string) ([]byte, bool, error) {
	l := &d.lex
	if c := l.b[l.i]; c != '"' {
		if err := l.skipValue(); err != nil {
			return nil, false, err
		}
		d.invalid(name, "must be "+want+", got "+kindOf(c))
		return nil, false, nil
	}
	s, err := l.str()
	return s, err == nil, err
}

func (d *decoder) validID(name string, s []byte) bool {
	switch {
	case len(s) == 0:
		d.invalid(name, "must not be empty")
	case len(s) > d.lim.MaxIDBytes:
		d.invalid(name, fmt.Sprintf("is %d bytes, the limit is %d", len(s), d.lim.MaxIDBytes))
	case !utf8.Valid(s):
		d.invalid(name, "is not valid UTF-8")
	case hasControl(s):
		d.invalid(name, "contains a control character")
	default:
		return true
	}
	return false
}

// hasControl reports whether valid UTF-8 s has a control character (C0, DEL or C1).
func hasControl(s []byte) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return true
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if unicode.IsControl(r) {
			return true
		}
		i += n
	}
	return false
}

// intern returns s as a string, shared between records with the same system id.
func (d *decoder) intern(s []byte) string {
	if v, ok := d.systems[string(s)]; ok {
		return v
	}
	v := string(s)
	if len(d.systems) < 1024 {
		d.systems[v] = v
	}
	return v
}

// embedding parses the embedding array. Only the first bad element of a
// record is reported; a wrong length is reported too.
func (d *decoder) embedding(name string) ([]float32, error) {
	l := &d.lex
	if c := l.b[l.i]; c != '[' {
		if err := l.skipValue(); err != nil {
			return nil, err
		}
		d.invalid(name, fmt.Sprintf("must be an array of %d numbers, got %s", engine.EmbeddingDim, kindOf(c)))
		return nil, nil
	}
	l.i++
	if err := l.ws(); err != nil {
		return nil, err
	}
	emb := d.nextEmbedding()
	n, bad := 0, false
	if l.b[l.i] == ']' {
		l.i++
	} else {
	elements:
		for {
			if err := d.element(emb, n, &bad); err != nil {
				return nil, err
			}
			n++
			if err := l.ws(); err != nil {
				return nil, err
			}
			switch l.b[l.i] {
			case ',':
				l.i++
				if err := l.ws(); err != nil {
					return nil, err
				}
			case ']':
				l.i++
				break elements
			default:
				return nil, l.unexpected("after embedding element, expected ',' or ']'")
			}
		}
	}
	if n != engine.EmbeddingDim {
		d.invalid(name, fmt.Sprintf("has %d elements, want %d", n, engine.EmbeddingDim))
		return nil, nil
	}
	if bad {
		return nil, nil
	}
	return emb, nil
}

// element parses embedding element k into emb[k], if k is in range.
func (d *decoder) element(emb []float32, k int, bad *bool) error {
	l := &d.lex
	b := l.b
	c := b[l.i]
	if c == '-' || isDigit(c) {
		if c == '-' {
			if l.i+1 >= len(b) {
				return errShort
			}
			if isLetter(b[l.i+1]) {
				return d.badWord(k, bad)
			}
		}
		f, ok, err := l.float()
		if err != nil {
			return err
		}
		if !ok {
			d.badElement(k, bad, "is out of float32 range")
		} else if k < len(emb) {
			emb[k] = f
		}
		return nil
	}
	switch c {
	case '"', '[', '{':
		if err := l.skipValue(); err != nil {
			return err
		}
		d.badElement(k, bad, "must be a number, got "+kindOf(c))
		return nil
	}
	if isLetter(c) || c == '+' {
		return d.badWord(k, bad)
	}
	return l.unexpected("in embedding")
}

// badWord skips a bare word such as NaN, -Infinity or null in an embedding.
func (d *decoder) badWord(k int, bad *bool) error {
	l := &d.lex
	start := l.i
	i := l.i + 1
	for i < len(l.b) && (isLetter(l.b[i]) || isDigit(l.b[i])) {
		i++
	}
	if i >= len(l.b) {
		return errShort
	}
	l.i = i
	switch w := string(l.b[start:i]); w {
	case "null":
		d.badElement(k, bad, "must be a number, got null")
	case "true", "false":
		d.badElement(k, bad, "must be a number, got boolean")
	default:
		d.badElement(k, bad, "must be a finite number, got "+quoteShort(l.b[start:i]))
	}
	return nil
}

func (d *decoder) badElement(k int, bad *bool, msg string) {
	if !*bad {
		*bad = true
		d.invalid(fmt.Sprintf("%s[%d]", fieldNames[fEmbedding], k), msg)
	}
}

// nextEmbedding returns room for the next record's embedding, cut from a
// slab that grows with the batch; finish moves past it once the record is kept.
func (d *decoder) nextEmbedding() []float32 {
	const dim = engine.EmbeddingDim
	if len(d.slab) < dim {
		n := min(max(len(d.out), 1), 256)
		d.slab = make([]float32, n*dim)
	}
	return d.slab[:dim:dim]
}

// metadata parses the metadata value: a JSON object, kept compact, or null.
func (d *decoder) metadata(name string, c *engine.Conversation) error {
	l := &d.lex
	first, start := l.b[l.i], l.i
	if err := l.skipValue(); err != nil {
		return err
	}
	switch first {
	case 'n':
		c.Metadata = nil
		return nil
	case '{':
	default:
		d.invalid(name, "must be a JSON object, got "+kindOf(first))
		return nil
	}
	raw := l.b[start:l.i]
	if bytes.ContainsAny(raw, " \t\r\n") {
		d.meta.Reset()
		if err := json.Compact(&d.meta, raw); err != nil {
			return &syntaxError{off: start, msg: err.Error()}
		}
		raw = d.meta.Bytes()
	}
	switch {
	case len(raw) > d.lim.MaxMetadataBytes:
		d.invalid(name, fmt.Sprintf("is %d bytes, the limit is %d", len(raw), d.lim.MaxMetadataBytes))
	case !utf8.Valid(raw):
		d.invalid(name, "is not valid UTF-8")
	default:
		c.Metadata = bytes.Clone(raw)
	}
	return nil
}

// source reads the body into a buffer that holds at least the current record.
type source struct {
	r        io.Reader
	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	off      int64 // body offset of buf[0]
	err      error // from r; io.EOF once it is drained
}

const (
	initialBuffer = 64 << 10
	readAhead     = 1 << 20 // the buffer doubles up to this size
)

// abs returns the body offset of pos.
func (s *source) abs() int64 { return s.off + int64(s.pos) }

// more moves the unread bytes to the front of the buffer and reads until it
// is full, growing it when it is small or more than half full. It reports
// whether it read anything.
func (s *source) more() bool {
	if s.err != nil {
		return false
	}
	if s.pos > 0 {
		s.off += int64(s.pos)
		s.end = copy(s.buf, s.buf[s.pos:s.end])
		s.pos = 0
	}
	switch {
	case s.buf == nil:
		s.buf = make([]byte, initialBuffer)
	case len(s.buf) < readAhead || s.end > len(s.buf)/2:
		nb := make([]byte, 2*len(s.buf))
		copy(nb, s.buf[:s.end])
		s.buf = nb
	}
	start := s.end
	for empty := 0; s.end < len(s.buf); {
		n, err := s.r.Read(s.buf[s.end:])
		s.end += n
		if err != nil {
			s.err = err
			break
		}
		if n == 0 {
			if empty++; empty >= 100 {
				s.err = io.ErrNoProgress
				break
			}
		}
	}
	return s.end > start
}

// readErr returns the error that ended the body, or nil at a clean end.
func (s *source) readErr() error {
	if s.err == nil || s.err == io.EOF {
		return nil
	}
	return fmt.Errorf("ingest: read body: %w", s.err)
}
