package ingest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner works on a window of the body, lexer.b, that holds the current
// record from its first byte. Every function reports errShort when the window
// ends before the token does; the decoder then reads more of the body and
// parses the record again from its start. Other problems are *syntaxErrors.

// errShort means the window ended inside a record.
var errShort = errors.New("ingest: window ends inside a record")

// maxDepth bounds the nesting of arrays and objects inside a record.
const maxDepth = 1000

// syntaxError is malformed JSON at offset off of the window.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return e.msg }

// lexer is a position in a window of JSON text.
type lexer struct {
	b      []byte
	i      int
	ndjson bool // a newline ends the record: it is not whitespace
	depth  int

	scratch []byte // unescaped strings
}

func (l *lexer) syntax(format string, args ...any) error {
	return &syntaxError{off: l.i, msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the byte at l.i, which does not fit context.
func (l *lexer) unexpected(context string) error {
	if l.i >= len(l.b) {
		return errShort
	}
	c := l.b[l.i]
	if c == '\n' && l.ndjson {
		return l.syntax("unexpected end of line %s", context)
	}
	return l.syntax("invalid character %s %s", quoteByte(c), context)
}

// ws skips whitespace and makes sure l.b[l.i] exists.
func (l *lexer) ws() error {
	for l.i < len(l.b) {
		c := l.b[l.i]
		if c > ' ' {
			return nil
		}
		if c == ' ' || c == '\t' || c == '\r' || (c == '\n' && !l.ndjson) {
			l.i++
			continue
		}
		return nil
	}
	return errShort
}

// str reads the string at l.i (which must be '"') and returns its unescaped
// bytes, valid until the next call. Invalid UTF-8 is passed through; escaped
// lone surrogates become U+FFFD, as in encoding/json.
func (l *lexer) str() ([]byte, error) {
	b := l.b
	start := l.i + 1
	i := start
	for i < len(b) {
		c := b[i]
		if c == '"' {
			l.i = i + 1
			return b[start:i], nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		i++
	}
	if i >= len(b) {
		return nil, errShort
	}
	l.scratch = append(l.scratch[:0], b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			l.i = i + 1
			return l.scratch, nil
		case c < 0x20:
			l.i = i
			return nil, l.controlInString(c)
		case c != '\\':
			j := i + 1
			for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
				j++
			}
			l.scratch = append(l.scratch, b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(b) {
			return nil, errShort
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			l.scratch = append(l.scratch, e)
		case 'b':
			l.scratch = append(l.scratch, '\b')
		case 'f':
			l.scratch = append(l.scratch, '\f')
		case 'n':
			l.scratch = append(l.scratch, '\n')
		case 'r':
			l.scratch = append(l.scratch, '\r')
		case 't':
			l.scratch = append(l.scratch, '\t')
		case 'u':
			if i+6 > len(b) {
				return nil, errShort
			}
			r, ok := hex4(b[i+2 : i+6])
			if !ok {
				l.i = i
				return nil, l.syntax("invalid \\u escape in string")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				// A high surrogate pairs with a low one in a following \u
				// escape; anything else decodes as U+FFFD.
				hi := r
				r = utf8.RuneError
				if i >= len(b) {
					return nil, errShort
				}
				if b[i] == '\\' {
					if i+1 >= len(b) {
						return nil, errShort
					}
					if b[i+1] == 'u' {
						if i+6 > len(b) {
							return nil, errShort
						}
						if lo, ok := hex4(b[i+2 : i+6]); ok {
							if dec := utf16.DecodeRune(hi, lo); dec != utf8.RuneError {
								r = dec
								i += 6
							}
						}
					}
				}
			}
			l.scratch = utf8.AppendRune(l.scratch, r)
			continue
		default:
			l.i = i
			return nil, l.syntax("invalid escape %s in string", quoteByte(e))
		}
		i += 2
	}
	return nil, errShort
}

func (l *lexer) controlInString(c byte) error {
	if c == '\n' {
		return l.syntax("unterminated string")
	}
	return l.syntax("control character %s in string", quoteByte(c))
}

func hex4(h []byte) (rune, bool) {
	var r rune
	for _, c := range h[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skipString checks the string at l.i (which must be '"') and moves past it.
func (l *lexer) skipString() error {
	b := l.b
	for i := l.i + 1; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			l.i = i + 1
			return nil
		case c < 0x20:
			l.i = i
			return l.controlInString(c)
		case c != '\\':
			i++
			continue
		}
		if i+1 >= len(b) {
			return errShort
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) {
				return errShort
			}
			if _, ok := hex4(b[i+2 : i+6]); !ok {
				l.i = i
				return l.syntax("invalid \\u escape in string")
			}
			i += 6
		default:
			l.i = i
			return l.syntax("invalid escape %s in string", quoteByte(b[i+1]))
		}
	}
	return errShort
}

// number moves past the JSON number at l.i. A number that runs to the end of
// the window is short: it may go on.
func (l *lexer) number() error {
	b := l.b
	i := l.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return errShort
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		i++
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		l.i = i
		return l.unexpected("in number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i < len(b) && !isDigit(b[i]) {
			l.i = i
			return l.unexpected("after decimal point in number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i < len(b) && !isDigit(b[i]) {
			l.i = i
			return l.unexpected("in exponent of number")
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i >= len(b) {
		return errShort
	}
	l.i = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// skipValue checks the JSON value at l.i and moves past it.
func (l *lexer) skipValue() error {
	if l.i >= len(l.b) {
		return errShort
	}
	switch c := l.b[l.i]; {
	case c == '"':
		return l.skipString()
	case c == '{':
		return l.skipContainer('}')
	case c == '[':
		return l.skipContainer(']')
	case c == '-' || isDigit(c):
		return l.number()
	case c == 't':
		return l.literal("true")
	case c == 'f':
		return l.literal("false")
	case c == 'n':
		return l.literal("null")
	}
	return l.unexpected("looking for beginning of value")
}

func (l *lexer) literal(lit string) error {
	rest := l.b[l.i:]
	n := min(len(rest), len(lit))
	if string(rest[:n]) != lit[:n] {
		for k := range n {
			if rest[k] != lit[k] {
				l.i += k
				return l.unexpected("in literal " + lit)
			}
		}
	}
	if n < len(lit) {
		return errShort
	}
	l.i += n
	return nil
}

// skipContainer checks the object or array at l.i and moves past it.
func (l *lexer) skipContainer(end byte) error {
	l.depth++
	if l.depth > maxDepth {
		return l.syntax("nesting deeper than %d", maxDepth)
	}
	l.i++
	if err := l.ws(); err != nil {
		return err
	}
	if l.b[l.i] == end {
		l.i++
		l.depth--
		return nil
	}
	for {
		if end == '}' {
			if l.b[l.i] != '"' {
				return l.unexpected("looking for beginning of object key string")
			}
			if err := l.skipString(); err != nil {
				return err
			}
			if err := l.ws(); err != nil {
				return err
			}
			if l.b[l.i] != ':' {
				return l.unexpected("after object key")
			}
			l.i++
			if err := l.ws(); err != nil {
				return err
			}
		}
		if err := l.skipValue(); err != nil {
			return err
		}
		if err := l.ws(); err != nil {
			return err
		}
		switch l.b[l.i] {
		case ',':
			l.i++
			if err := l.ws(); err != nil {
				return err
			}
		case end:
			l.i++
			l.depth--
			return nil
		default:
			if end == '}' {
				return l.unexpected("after object key:value pair")
			}
			return l.unexpected("after array element")
		}
	}
}

// kindOf names the kind of JSON value that starts with c.
func kindOf(c byte) string {
	switch {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || isDigit(c):
		return "number"
	}
	return "invalid JSON"
}

func quoteByte(c byte) string {
	if c >= utf8.RuneSelf {
		return fmt.Sprintf("byte 0x%02x", c)
	}
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}

// quoteShort quotes s for an error message, cut to 64 bytes.
func quoteShort(s []byte) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(string(s[:limit])) + "..."
	}
	return strconv.Quote(string(s))
}

// float parses the JSON number at l.i as a float32, correctly rounded as by
// strconv.ParseFloat(s, 32). ok is false if it is out of float32 range.
//
// The fast path computes the value in float64 from the first 19 significant
// digits and a power of ten up to 1e22: at most three roundings (the digits,
// the product, and the digits dropped past 19), so within 3 float64 ulps of
// the exact value. Rounding that float64 to float32 is then correct unless it
// lies within a few ulps of a float32 midpoint, where the exact value could
// be on the other side. Those, large exponents and the subnormal and
// overflow ranges go to strconv.
func (l *lexer) float() (f float32, ok bool, err error) {
	b := l.b
	start := l.i
	i := start
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return 0, false, errShort
	}
	var mant uint64
	nd, exp := 0, 0 // mant has the first nd significant digits; the value is mant * 10^exp
	huge := false   // the exponent was too long to track: strconv decides
	switch c := b[i]; {
	case c == '0':
		i++
	case '1' <= c && c <= '9':
		for ; i < len(b) && isDigit(b[i]); i++ {
			if nd < 19 {
				mant = mant*10 + uint64(b[i]-'0')
				nd++
			} else {
				exp++
			}
		}
	default:
		l.i = i
		return 0, false, l.unexpected("in number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i < len(b) && !isDigit(b[i]) {
			l.i = i
			return 0, false, l.unexpected("after decimal point in number")
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
			if nd < 19 {
				mant = mant*10 + uint64(b[i]-'0')
				if mant != 0 {
					nd++
				}
				exp--
			}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		esign := 1
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			if b[i] == '-' {
				esign = -1
			}
			i++
		}
		if i < len(b) && !isDigit(b[i]) {
			l.i = i
			return 0, false, l.unexpected("in exponent of number")
		}
		e := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if e >= 100000 {
			huge = true // capped: exp is no longer the value's exponent
		}
		exp += esign * e
	}
	if i >= len(b) {
		return 0, false, errShort
	}
	l.i = i
	if mant == 0 && !huge {
		if neg {
			return float32(math.Copysign(0, -1)), true, nil
		}
		return 0, true, nil
	}
	if -22 <= exp && exp <= 22 && !huge {
		f := float64(mant)
		if exp >= 0 {
			f *= pow10[exp]
		} else {
			f /= pow10[-exp]
		}
		// The low 29 bits of a float64 mantissa are those float32 drops;
		// a float32 midpoint has them equal to 1<<28.
		const dropped, midpoint, margin = 1<<29 - 1, 1 << 28, 8
		if off := int64(math.Float64bits(f)&dropped) - midpoint; (off > margin || off < -margin) && f >= 0x1p-126 && f <= math.MaxFloat32 {
			if neg {
				f = -f
			}
			return float32(f), true, nil
		}
	}
	f64, perr := strconv.ParseFloat(string(b[start:i]), 32)
	if perr != nil {
		return 0, false, nil // only ErrRange: the syntax is checked
	}
	return float32(f64), true, nil
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
