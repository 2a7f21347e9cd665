package worker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
)

// Default limits.
//
// CloudTrail records are a few KB; the service caps an event at 256 KB, or
// more with the opt-in "Large" event size (about 1 MB). One record over the
// cap fails its whole object, so the cap is well above that: 4 MiB. The
// Decoder's buffer grows to the cap only while such a record is read, and
// Reset drops a grown buffer.
//
// The object cap bounds the CPU a gzip bomb can cost (inflate runs at a few
// hundred MB/s per core, so seconds) while staying far above real CloudTrail
// files, which are delivered every few minutes per account and region.
const (
	DefaultMaxObjectBytes = 2 << 30 // 2 GiB decompressed
	DefaultMaxRecordBytes = 4 << 20 // 4 MiB
)

// MaxRecordDepth is how deeply a record may nest objects and arrays; the
// record's own braces count as one level. CloudTrail nests about 10 levels.
// The scanner keeps one bit per level, so the limit also bounds its state.
const MaxRecordDepth = 512

const (
	decodeBufSize = 64 << 10 // initial record buffer
	sourceBufSize = 32 << 10 // buffered reads from the object body
)

// Sentinels wrapped by every *DecodeError; test them with errors.Is.
var (
	// ErrGzip is a gzip stream that is truncated or corrupt.
	ErrGzip = errors.New("corrupt gzip")
	// ErrSyntax is input that is not JSON, or JSON that is invalid or ends early.
	ErrSyntax = errors.New("invalid JSON")
	// ErrNotCloudTrail is valid JSON of the wrong shape: the top level is not
	// an object, it has no "Records" array, or a record is not an object.
	ErrNotCloudTrail = errors.New("not a CloudTrail log")
	// ErrObjectTooLarge is an object whose decompressed size passes
	// Limits.MaxObjectBytes.
	ErrObjectTooLarge = errors.New("object exceeds MaxObjectBytes")
	// ErrRecordTooLarge is a record (or another top-level value) longer than
	// Limits.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("record exceeds MaxRecordBytes")
	// ErrTooDeep is a record nested deeper than MaxRecordDepth.
	ErrTooDeep = errors.New("record nested too deeply")
)

// DecodeError is a permanent failure to decode one object: reading it again
// gives the same error, so the object belongs in the dead-letter queue.
// Errors of the reader passed to NewDecoder (a dropped connection) are not
// DecodeErrors; they are returned wrapped, as they are worth a retry.
type DecodeError struct {
	// Kind is one of the sentinels above (ErrGzip, ErrSyntax, ...).
	Kind error
	// Record is the index in the Records array of the record being read,
	// or -1 outside the array.
	Record int
	// Offset is the position in the decompressed stream where the problem
	// was found.
	Offset int64
	// Detail says what was wrong.
	Detail string
	// Cause is the underlying gzip or flate error, if any.
	Cause error
}

func (e *DecodeError) Error() string {
	where := fmt.Sprintf("at byte %d", e.Offset)
	if e.Record >= 0 {
		where = fmt.Sprintf("record %d %s", e.Record, where)
	}
	return fmt.Sprintf("decode: %s: %v: %s", where, e.Kind, e.Detail)
}

// Unwrap returns the sentinel and, if set, the underlying cause.
func (e *DecodeError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Limits bound what one object may cost. A zero field takes its default.
type Limits struct {
	// MaxObjectBytes caps the decompressed size of an object
	// (default DefaultMaxObjectBytes).
	MaxObjectBytes int64
	// MaxRecordBytes caps one record, and any other value at the top level
	// of the object (default DefaultMaxRecordBytes). The Decoder's buffer
	// grows to at most about this size.
	MaxRecordBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxObjectBytes <= 0 {
		l.MaxObjectBytes = DefaultMaxObjectBytes
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return l
}

// Decoder reads the records of one CloudTrail log object,
// {"Records":[{...},{...}]}, one at a time. It holds at most one record plus
// a bounded buffer in memory, whatever the size of the object.
//
// The input may be gzip (detected by its magic bytes 1f 8b; a multi-member
// stream is read as the concatenation of its members) or plain JSON. The top
// level may hold keys other than "Records", before or after it; their values
// are validated and skipped. Several top-level objects in a row (as from
// concatenated gzip files, each a complete log) are read as one log.
//
// Every record returned is valid JSON that PostgreSQL's jsonb accepts:
// invalid UTF-8 inside strings is replaced with U+FFFD, and the escapes that
// jsonb refuses, \u0000 and unpaired UTF-16 surrogates (\ud800), are
// rewritten to \ufffd. Only real escapes are rewritten: in "\\u0000" the
// backslash is itself escaped and the text is left alone. Records that need
// no repair (all of them, in practice) are returned without a copy.
//
// A Decoder is not safe for concurrent use. Reset makes it reusable, so it
// can be kept in a sync.Pool.
type Decoder struct {
	lim Limits
	src sourceReader
	br  *bufio.Reader
	gz  *gzip.Reader
	in  io.Reader // br, or gz reading from br

	buf   []byte // buf[r:w] is read but not yet consumed
	r, w  int
	off   int64 // decompressed offset of buf[0]
	total int64 // decompressed bytes read
	eof   bool

	state      int
	docs       int  // top-level objects begun
	sawRecords bool // the current top-level object has a "Records" key
	index      int  // index of the next record
	clean      []byte
	err        error
}

// Decoder states: where in the top-level object the next byte belongs.
const (
	stDoc         = iota // before a top-level object
	stFirstKey           // after '{': a key or '}'
	stKey                // after ',': a key
	stFirstRecord        // after "Records":[ : a record or ']'
	stRecord             // after ',' in Records: a record
	stAfterRecord        // after a record: ',' or ']'
	stAfterValue         // after a top-level value: ',' or '}'
)

// NewDecoder returns a Decoder reading one object from r. It reads the first
// bytes to detect gzip; an error there is a *DecodeError if the object is
// unreadable (empty, or a broken gzip header).
func NewDecoder(r io.Reader, lim Limits) (*Decoder, error) {
	d := &Decoder{lim: lim.withDefaults()}
	if err := d.Reset(r); err != nil {
		return nil, err
	}
	return d, nil
}

// Reset discards the Decoder's state and starts reading a new object from r,
// with the same limits, reusing the gzip reader and buffers.
func (d *Decoder) Reset(r io.Reader) error {
	d.src = sourceReader{r: r}
	if d.br == nil {
		d.br = bufio.NewReaderSize(&d.src, sourceBufSize)
	} else {
		d.br.Reset(&d.src)
	}
	if cap(d.buf) < decodeBufSize || cap(d.buf) > 4*decodeBufSize {
		// A buffer grown for a huge record is not kept for the next object.
		d.buf = make([]byte, decodeBufSize)
	}
	d.buf = d.buf[:cap(d.buf)]
	if cap(d.clean) > 4*decodeBufSize {
		d.clean = nil
	}
	d.r, d.w, d.off, d.total, d.eof = 0, 0, 0, 0, false
	d.state, d.docs, d.sawRecords, d.index = stDoc, 0, false, 0
	d.err = nil

	magic, err := d.br.Peek(2)
	switch {
	case len(magic) == 0 && err == io.EOF:
		d.err = d.errorf(ErrSyntax, nil, "empty object")
	case err != nil && err != io.EOF:
		d.err = fmt.Errorf("read object: %w", err)
	case len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		if d.gz == nil {
			d.gz, err = gzip.NewReader(d.br)
		} else {
			err = d.gz.Reset(d.br)
		}
		if err != nil {
			d.err = d.readError(err)
		}
		d.in = d.gz
	default:
		d.in = d.br
	}
	return d.err
}

// Next returns the raw bytes of the next record, valid until the next call
// to Next or Reset, or io.EOF after the last. Any other error is final for
// the object: a *DecodeError says why and where; any other error comes from
// the underlying reader.
func (d *Decoder) Next() ([]byte, error) {
	if d.err != nil {
		return nil, d.err
	}
	rec, err := d.next()
	if err != nil {
		d.err = err
		return nil, err
	}
	return rec, nil
}

func (d *Decoder) next() ([]byte, error) {
	for {
		c, err := d.peek()
		if err == io.EOF {
			if d.state == stDoc && d.docs > 0 {
				return nil, io.EOF
			}
			if d.state == stDoc {
				return nil, d.errorf(ErrSyntax, nil, "no JSON value")
			}
			return nil, d.errorf(ErrSyntax, nil, "unexpected end of JSON")
		}
		if err != nil {
			return nil, err
		}
		switch d.state {
		case stDoc:
			if c != '{' {
				return nil, d.badStart(c)
			}
			d.r++
			d.docs++
			d.sawRecords = false
			d.state = stFirstKey

		case stFirstKey, stKey:
			if c == '}' && d.state == stFirstKey {
				d.r++
				if err := d.endDoc(); err != nil {
					return nil, err
				}
				continue
			}
			if c != '"' {
				return nil, d.errorf(ErrSyntax, nil, "expected a key, found %q", c)
			}
			if err := d.member(); err != nil {
				return nil, err
			}

		case stFirstRecord, stRecord:
			if c == ']' && d.state == stFirstRecord {
				d.r++
				d.state = stAfterValue
				continue
			}
			if c != '{' {
				if c == ']' || !isValueStart(c) {
					return nil, d.errorf(ErrSyntax, nil, "expected a record, found %q", c)
				}
				return nil, d.errorf(ErrNotCloudTrail, nil, "record is not an object")
			}
			rec, flags, err := d.value()
			if err != nil {
				return nil, err
			}
			d.state = stAfterRecord
			d.index++
			if flags&flagDirty != 0 {
				d.clean = appendSanitized(d.clean[:0], rec)
				return d.clean, nil
			}
			return rec, nil

		case stAfterRecord:
			d.r++
			switch c {
			case ',':
				d.state = stRecord
			case ']':
				d.state = stAfterValue
			default:
				d.r--
				return nil, d.errorf(ErrSyntax, nil, "expected ',' or ']' after a record, found %q", c)
			}

		case stAfterValue:
			d.r++
			switch c {
			case ',':
				d.state = stKey
			case '}':
				if err := d.endDoc(); err != nil {
					return nil, err
				}
			default:
				d.r--
				return nil, d.errorf(ErrSyntax, nil, "expected ',' or '}' after a top-level value, found %q", c)
			}
		}
	}
}

// member reads one top-level key, its colon, and either the '[' that opens
// the Records array or the whole of any other value.
func (d *Decoder) member() error {
	key, flags, err := d.value()
	if err != nil {
		return err
	}
	isRecords := string(key) == `"Records"`
	if !isRecords && flags&flagEscape != 0 {
		isRecords = string(appendUnquoted(nil, key[1:len(key)-1])) == "Records"
	}
	c, err := d.peek()
	if err == nil && c != ':' {
		return d.errorf(ErrSyntax, nil, "expected ':' after a key, found %q", c)
	}
	if err == nil {
		d.r++
		c, err = d.peek()
	}
	if err == io.EOF {
		return d.errorf(ErrSyntax, nil, "unexpected end of JSON")
	}
	if err != nil {
		return err
	}
	if !isRecords {
		if _, _, err := d.value(); err != nil {
			return err
		}
		d.state = stAfterValue
		return nil
	}
	if d.sawRecords {
		return d.errorf(ErrNotCloudTrail, nil, `duplicate "Records" key`)
	}
	if c != '[' {
		if isValueStart(c) {
			return d.errorf(ErrNotCloudTrail, nil, `"Records" is not an array`)
		}
		return d.errorf(ErrSyntax, nil, "invalid character %q looking for a value", c)
	}
	d.r++
	d.sawRecords = true
	d.state = stFirstRecord
	return nil
}

// endDoc checks the top-level object just closed.
func (d *Decoder) endDoc() error {
	if !d.sawRecords {
		return d.errorf(ErrNotCloudTrail, nil, `no "Records" key`)
	}
	d.state = stDoc
	return nil
}

func (d *Decoder) badStart(c byte) error {
	switch {
	case isValueStart(c) && d.docs > 0:
		return d.errorf(ErrNotCloudTrail, nil, "a value other than an object after the top-level object")
	case isValueStart(c):
		return d.errorf(ErrNotCloudTrail, nil, "top level is not an object")
	case d.docs > 0:
		return d.errorf(ErrSyntax, nil, "unexpected %q after the top-level object", c)
	default:
		return d.errorf(ErrSyntax, nil, "neither gzip nor JSON (first byte %#02x)", c)
	}
}

// peek skips whitespace and returns the next byte without consuming it.
func (d *Decoder) peek() (byte, error) {
	for {
		for d.r < d.w {
			if c := d.buf[d.r]; !isSpace[c] {
				return c, nil
			}
			d.r++
		}
		if d.eof {
			return 0, io.EOF
		}
		if err := d.fill(); err != nil {
			return 0, err
		}
	}
}

// value returns the complete JSON value at d.r, reading more input as
// needed, and consumes it. The scan restarts from the value's first byte
// after each fill; fills read as much as the buffer holds, so a value is
// scanned about twice at worst.
func (d *Decoder) value() ([]byte, uint8, error) {
	for {
		n, flags, err := scanValue(d.buf[d.r:d.w], d.eof)
		if err == nil {
			if n > d.lim.MaxRecordBytes {
				return nil, 0, d.errorf(ErrRecordTooLarge, nil, "value of %d bytes, limit %d", n, d.lim.MaxRecordBytes)
			}
			v := d.buf[d.r : d.r+n : d.r+n]
			d.r += n
			return v, flags, nil
		}
		if err != errShort {
			var se *syntaxError
			errors.As(err, &se)
			kind := ErrSyntax
			if se.tooDeep {
				kind = ErrTooDeep
			}
			return nil, 0, &DecodeError{Kind: kind, Record: d.record(), Offset: d.off + int64(d.r+se.off), Detail: se.msg}
		}
		if d.w-d.r > d.lim.MaxRecordBytes {
			return nil, 0, d.errorf(ErrRecordTooLarge, nil, "value longer than the limit of %d bytes", d.lim.MaxRecordBytes)
		}
		if err := d.fill(); err != nil {
			return nil, 0, err
		}
	}
}

// fill moves the unconsumed bytes to the front of the buffer, grows it if
// it is full (up to just past MaxRecordBytes), and reads until it is full or
// the input ends.
func (d *Decoder) fill() error {
	if d.r > 0 {
		d.w = copy(d.buf, d.buf[d.r:d.w])
		d.off += int64(d.r)
		d.r = 0
	}
	if d.w == len(d.buf) {
		size := min(2*len(d.buf), d.lim.MaxRecordBytes+1)
		if size <= len(d.buf) {
			// Unreachable: value() stops before a full buffer of one value.
			return d.errorf(ErrRecordTooLarge, nil, "buffer full")
		}
		buf := make([]byte, size)
		copy(buf, d.buf[:d.w])
		d.buf = buf
	}
	for d.w < len(d.buf) && !d.eof {
		n, err := d.in.Read(d.buf[d.w:])
		d.w += n
		d.total += int64(n)
		if d.total > d.lim.MaxObjectBytes {
			return d.errorf(ErrObjectTooLarge, nil, "more than %d bytes decompressed", d.lim.MaxObjectBytes)
		}
		switch {
		case err == io.EOF:
			d.eof = true
		case err != nil:
			return d.readError(err)
		}
	}
	return nil
}

// readError classifies an error from reading the (decompressed) input.
// A failure of the caller's reader is passed on for a retry; anything else
// is the gzip stream's fault and permanent.
func (d *Decoder) readError(err error) error {
	if d.src.err != nil {
		return fmt.Errorf("read object: %w", d.src.err)
	}
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return d.errorf(ErrGzip, err, "truncated gzip stream")
	case errors.Is(err, gzip.ErrChecksum):
		return d.errorf(ErrGzip, err, "gzip checksum mismatch")
	case errors.Is(err, gzip.ErrHeader):
		return d.errorf(ErrGzip, err, "invalid gzip header")
	case errors.As(err, &corrupt):
		return d.errorf(ErrGzip, err, "corrupt deflate data at compressed byte %d", int64(corrupt))
	default:
		return d.errorf(ErrGzip, err, "%v", err)
	}
}

func (d *Decoder) errorf(kind, cause error, format string, args ...any) *DecodeError {
	return &DecodeError{
		Kind:   kind,
		Record: d.record(),
		Offset: d.off + int64(d.r),
		Detail: fmt.Sprintf(format, args...),
		Cause:  cause,
	}
}

// record is the index of the record being read (or just read), or -1
// outside Records.
func (d *Decoder) record() int {
	switch d.state {
	case stFirstRecord, stRecord:
		return d.index
	case stAfterRecord:
		return d.index - 1
	}
	return -1
}

// sourceReader remembers the error of the caller's reader, so that a
// dropped connection is not mistaken for a corrupt object. Like bufio, it
// turns a reader that keeps returning neither data nor an error into
// io.ErrNoProgress, which the gzip header reader would otherwise wait on
// forever.
type sourceReader struct {
	r     io.Reader
	err   error
	empty int // consecutive reads that returned nothing
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	switch {
	case n > 0 || err != nil || len(p) == 0:
		s.empty = 0
	case s.empty < 99:
		s.empty++
	default:
		err = io.ErrNoProgress
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// The scanner below validates one JSON value without recursion and without
// decoding it. It is shared by the Decoder (to find where a record ends) and
// by Normalize (to skip the values it does not map).

// Flags a scan reports about the strings it passed.
const (
	flagEscape    uint8 = 1 << iota // a backslash escape: unquote before use
	flagNUL                         // a \u0000 escape
	flagSurrogate                   // an unpaired UTF-16 surrogate escape
	flagBadUTF8                     // invalid UTF-8
	// flagDirty marks values that appendSanitized must repair.
	flagDirty = flagNUL | flagSurrogate | flagBadUTF8
)

// errShort means the value may continue past the end of the buffer.
var errShort = errors.New("short buffer")

// syntaxError is a scan failure at byte off of the scanned buffer.
type syntaxError struct {
	msg     string
	off     int
	tooDeep bool
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

var (
	isSpace [256]bool
	// strPlain marks the bytes a string scan passes without a look:
	// printable ASCII other than '"' and '\\'.
	strPlain [256]bool
)

func init() {
	for _, c := range []byte(" \t\r\n") {
		isSpace[c] = true
	}
	for c := 0x20; c < 0x80; c++ {
		strPlain[c] = c != '"' && c != '\\'
	}
}

// isValueStart reports whether c can begin a JSON value.
func isValueStart(c byte) bool {
	switch c {
	case '{', '[', '"', '-', 't', 'f', 'n':
		return true
	}
	return '0' <= c && c <= '9'
}

// scanValue validates the JSON value at the start of b (after optional
// whitespace) and returns its end. If final is false and b ends before the
// value does, it returns errShort; any other error is a *syntaxError.
func scanValue(b []byte, final bool) (end int, flags uint8, err error) {
	var (
		stack [MaxRecordDepth / 64]uint64 // bit set: the container at that depth is an object
		depth int
		i     int
		c     byte
	)

value:
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	switch c = b[i]; c {
	case '{', '[':
		if depth >= MaxRecordDepth {
			return 0, 0, &syntaxError{msg: fmt.Sprintf("nested deeper than %d levels", MaxRecordDepth), off: i, tooDeep: true}
		}
		if c == '{' {
			stack[depth>>6] |= 1 << (depth & 63)
		} else {
			stack[depth>>6] &^= 1 << (depth & 63)
		}
		depth++
		i++
		for i < len(b) && isSpace[b[i]] {
			i++
		}
		if i >= len(b) {
			goto short
		}
		if b[i] == c+2 { // '}' and ']' follow '{' and '[' by two
			i++
			depth--
			goto after
		}
		if c == '{' {
			goto key
		}
		goto value
	case '"':
		n, f, err := scanString(b[i+1:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i+1)
		}
		flags |= f
		i += 1 + n
	case 't':
		if err := scanLiteral(b[i:], "true", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 4
	case 'f':
		if err := scanLiteral(b[i:], "false", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 5
	case 'n':
		if err := scanLiteral(b[i:], "null", final); err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += 4
	default:
		if c != '-' && (c < '0' || c > '9') {
			return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q looking for a value", c), off: i}
		}
		n, err := scanNumber(b[i:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i)
		}
		i += n
	}

after:
	if depth == 0 {
		return i, flags, nil
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	c = b[i]
	i++
	if stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0 {
		switch c {
		case ',':
			for i < len(b) && isSpace[b[i]] {
				i++
			}
			if i >= len(b) {
				goto short
			}
			goto key
		case '}':
			depth--
			goto after
		}
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after an object member", c), off: i - 1}
	}
	switch c {
	case ',':
		goto value
	case ']':
		depth--
		goto after
	}
	return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after an array element", c), off: i - 1}

key:
	// b[i] is the first non-space byte where an object key must begin.
	if b[i] != '"' {
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q looking for a key", b[i]), off: i}
	}
	{
		n, f, err := scanString(b[i+1:], final)
		if err != nil {
			return 0, 0, shiftErr(err, i+1)
		}
		flags |= f
		i += 1 + n
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		goto short
	}
	if b[i] != ':' {
		return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid character %q after a key", b[i]), off: i}
	}
	i++
	goto value

short:
	if final {
		return 0, 0, &syntaxError{msg: "unexpected end of JSON", off: len(b)}
	}
	return 0, 0, errShort
}

// shiftErr moves a syntax error's offset by base.
func shiftErr(err error, base int) error {
	if se, ok := err.(*syntaxError); ok {
		se.off += base
	}
	return err
}

// scanString scans a string whose opening quote precedes b, and returns the
// length up to and including the closing quote.
func scanString(b []byte, final bool) (int, uint8, error) {
	var flags uint8
	i := 0
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, flags, nil
		case c == '\\':
			if i+1 >= len(b) {
				goto short
			}
			flags |= flagEscape
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
				continue
			case 'u':
			default:
				return 0, 0, &syntaxError{msg: fmt.Sprintf("invalid escape %q in string", b[i:i+2]), off: i}
			}
			if len(b)-i < 6 {
				if !final && isHexPrefix(b[i+2:]) {
					goto short
				}
				return 0, 0, &syntaxError{msg: "invalid \\u escape in string", off: i}
			}
			r, ok := hex4(b[i+2 : i+6])
			if !ok {
				return 0, 0, &syntaxError{msg: "invalid \\u escape in string", off: i}
			}
			i += 6
			switch {
			case r == 0:
				flags |= flagNUL
			case 0xD800 <= r && r < 0xDC00:
				// A high surrogate must be followed by an escaped low one.
				if len(b)-i < 6 && !final && isLowPrefix(b[i:]) {
					goto short
				}
				if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
					if lo, ok := hex4(b[i+2 : i+6]); ok && 0xDC00 <= lo && lo < 0xE000 {
						i += 6
						continue
					}
				}
				flags |= flagSurrogate
			case 0xDC00 <= r && r < 0xE000:
				flags |= flagSurrogate
			}
		case c < 0x20:
			return 0, 0, &syntaxError{msg: fmt.Sprintf("control character %#02x in string", c), off: i}
		default:
			n, ok := validRune(b[i:])
			switch {
			case n == 0: // incomplete sequence at the end of b
				if !final {
					goto short
				}
				flags |= flagBadUTF8
				i++
			case !ok:
				flags |= flagBadUTF8
				i += n
			default:
				i += n
			}
		}
	}
short:
	if final {
		return 0, 0, &syntaxError{msg: "unterminated string", off: len(b)}
	}
	return 0, 0, errShort
}

// skipPlain returns the index of the first byte at or after i that is not
// plain string content (see strPlain), or len(b). It tests eight bytes at a
// time: a word has no special byte if none is below 0x20, none is '"' or
// '\\', and none has the high bit set.
func skipPlain(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ ('"' * ones)
		bs := x ^ ('\\' * ones)
		special := ((x - 0x20*ones) | (q - ones) | (bs - ones) | x) & highs
		if special != 0 {
			// A borrow only spreads upward, so the lowest flagged byte is a
			// real one; the byte loop below stops there.
			break
		}
	}
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	return i
}

// validRune checks the UTF-8 sequence at the start of b, whose first byte is
// 0x80 or above. It returns the sequence's length and whether it is valid;
// an invalid byte counts as a sequence of length 1. n is 0 when b ends
// inside a sequence that may still be valid.
func validRune(b []byte) (n int, ok bool) {
	c := b[0]
	var size int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c < 0xC2 || c > 0xF4:
		return 1, false
	case c < 0xE0:
		size = 2
	case c < 0xF0:
		size = 3
		if c == 0xE0 {
			lo = 0xA0
		} else if c == 0xED {
			hi = 0x9F // no surrogates
		}
	default:
		size = 4
		if c == 0xF0 {
			lo = 0x90
		} else if c == 0xF4 {
			hi = 0x8F
		}
	}
	for k := 1; k < size; k++ {
		if k >= len(b) {
			return 0, false
		}
		if b[k] < lo || b[k] > hi {
			return 1, false
		}
		lo, hi = 0x80, 0xBF
	}
	return size, true
}

// scanLiteral checks for lit (true, false or null) at the start of b.
func scanLiteral(b []byte, lit string, final bool) error {
	if len(b) >= len(lit) {
		if string(b[:len(lit)]) == lit {
			return nil
		}
	} else if !final && string(b) == lit[:len(b)] {
		return errShort
	}
	return &syntaxError{msg: fmt.Sprintf("invalid literal, expected %s", lit), off: 0}
}

// scanNumber checks the number at the start of b and returns its length:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, final bool) (int, error) {
	i := 0
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i >= len(b):
		goto short
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		digits()
	default:
		return 0, &syntaxError{msg: "invalid number", off: i}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			if i >= len(b) {
				goto short
			}
			return 0, &syntaxError{msg: "invalid number: no digits after '.'", off: i}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			if i >= len(b) {
				goto short
			}
			return 0, &syntaxError{msg: "invalid number: no digits in exponent", off: i}
		}
	}
	if i < len(b) || final {
		return i, nil
	}
short:
	if final {
		return 0, &syntaxError{msg: "unexpected end of JSON in a number", off: i}
	}
	return 0, errShort
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes the four hex digits in b.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b[:4] {
		v := hexVal(c)
		if v < 0 {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

// isHexPrefix reports whether b (shorter than 4 bytes) may begin 4 hex digits.
func isHexPrefix(b []byte) bool {
	for _, c := range b {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

// isLowPrefix reports whether b (shorter than 6 bytes) may begin an escaped
// low surrogate, \udc00 to \udfff.
func isLowPrefix(b []byte) bool {
	const pat = `\udc`
	for k, c := range b {
		switch {
		case k < 3 && c != pat[k]:
			return false
		case k == 3 && (c|0x20 < 'c' || c|0x20 > 'f'):
			return false
		case k > 3 && hexVal(c) < 0:
			return false
		}
	}
	return true
}

// appendSanitized appends the valid JSON text src (as checked by scanValue)
// to dst, replacing invalid UTF-8 in strings with U+FFFD and the escapes
// \u0000 and unpaired surrogates with \ufffd.
func appendSanitized(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); {
		c := src[i]
		if !inString {
			dst = append(dst, c)
			inString = c == '"'
			i++
			continue
		}
		switch {
		case c == '"':
			dst = append(dst, c)
			inString = false
			i++
		case c == '\\':
			if src[i+1] != 'u' {
				dst = append(dst, src[i:i+2]...)
				i += 2
				continue
			}
			r, _ := hex4(src[i+2 : i+6])
			switch {
			case r == 0 || (0xDC00 <= r && r < 0xE000):
				dst = append(dst, `\ufffd`...)
				i += 6
			case 0xD800 <= r && r < 0xDC00:
				if i+12 <= len(src) && src[i+6] == '\\' && src[i+7] == 'u' {
					if lo, ok := hex4(src[i+8 : i+12]); ok && 0xDC00 <= lo && lo < 0xE000 {
						dst = append(dst, src[i:i+12]...)
						i += 12
						continue
					}
				}
				dst = append(dst, `\ufffd`...)
				i += 6
			default:
				dst = append(dst, src[i:i+6]...)
				i += 6
			}
		case c < 0x80:
			dst = append(dst, c)
			i++
		default:
			n, ok := validRune(src[i:])
			if n == 0 {
				n = 1
			}
			if ok {
				dst = append(dst, src[i:i+n]...)
			} else {
				dst = append(dst, "\uFFFD"...)
			}
			i += n
		}
	}
	return dst
}
