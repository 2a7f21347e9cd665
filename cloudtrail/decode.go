package cloudtrail

import (
	"bufio"
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
	gz  *DigestLogReader // inflates, and hashes for the digest (LogRead)
	in  io.Reader        // br, or gz reading from br

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

	// With fused set (by NextEntry), a record is parsed for its fields while
	// its end is found, and parsed says rp holds that parse of the record
	// just returned, so that it is not read a second time.
	fused  bool
	parsed bool
	rp     recordParser
	// arena backs the entries NextEntry returns.
	arena arena
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
			d.gz, err = NewDigestLogReader(d.br)
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

// LogRead returns what a digest needs to know of the object just decoded:
// the SHA-256 of its uncompressed bytes and whether anything followed its
// gzip stream (DigestLogReader). It is computed while the object is
// inflated, at no extra read. ok is false for an object that is not gzip
// (CloudTrail delivers none), or before Next or NextEntry returned io.EOF.
func (d *Decoder) LogRead() (read DigestLogRead, ok bool) {
	if d.in != d.gz || d.gz == nil || !errors.Is(d.err, io.EOF) {
		return DigestLogRead{}, false
	}
	return d.gz.Result(), true
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

// NextEntry decodes the next record and normalizes it into e: an Event, or
// a Reject (with bucket, key and the record's index) if Normalize refuses
// it. It returns io.EOF after the last record and the errors of Next. The
// entry does not alias the Decoder's buffers.
//
// It gives the same entries as Next followed by Normalize, in one pass over
// the record instead of two.
func (d *Decoder) NextEntry(e *Entry, bucket, key string) error {
	if d.err != nil {
		return d.err
	}
	d.fused = true
	raw, err := d.next()
	d.fused = false
	if err != nil {
		d.err = err
		return err
	}
	var ev Event
	if d.parsed {
		ev, err = d.rp.event(bucket, key, &d.arena)
	} else {
		ev, err = Normalize(raw, bucket, key)
	}
	if err != nil {
		*e = Entry{Reject: &Reject{S3Bucket: bucket, S3Key: key, Index: d.index - 1, Reason: err.Error(), Raw: string(raw)}}
		return nil
	}
	*e = Entry{Event: ev}
	return nil
}

func (d *Decoder) next() ([]byte, error) {
	d.parsed = false
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
			rec, flags, err := d.value(d.fused)
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
	key, flags, err := d.value(false)
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
		if _, _, err := d.value(false); err != nil {
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
//
// With fused, the value (a record: '{' at d.r) is first parsed by d.rp,
// which validates it as scanValue does and finds its fields too. Only when
// that fails (the buffer ends inside the record, or the record is invalid)
// does scanValue say whether to read more or why the record is refused, so
// what is accepted and every error stay scanValue's.
func (d *Decoder) value(fused bool) ([]byte, uint8, error) {
	for {
		if fused {
			d.rp = recordParser{top: d.rp.top[:0]}
			if n, err := d.rp.parsePrefix(d.buf[d.r:d.w]); err == nil && n <= d.lim.MaxRecordBytes {
				v := d.buf[d.r : d.r+n : d.r+n]
				d.r += n
				d.parsed = d.rp.flags&flagDirty == 0
				return v, d.rp.flags, nil
			}
		}
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
