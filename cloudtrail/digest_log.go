package cloudtrail

import (
	"bufio"
	"crypto/sha256"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
)

// DigestHasher computes the SHA-256 that a digest lists for a log file,
// over the uncompressed bytes written to it. It is an io.Writer, to sit
// behind an io.TeeReader or in an io.MultiWriter on the path that already
// inflates the file; Write never fails. The zero DigestHasher is ready to
// use. It costs what SHA-256 costs: see BenchmarkDigestHasher.
type DigestHasher struct {
	h hash.Hash
}

// Write adds p to the hash.
func (d *DigestHasher) Write(p []byte) (int, error) {
	if d.h == nil {
		d.h = sha256.New()
	}
	return d.h.Write(p)
}

// Sum returns the hash of everything written since the last Reset.
func (d *DigestHasher) Sum() DigestHash {
	if d.h == nil {
		return sha256.Sum256(nil)
	}
	var s DigestHash
	d.h.Sum(s[:0])
	return s
}

// Reset empties the hash.
func (d *DigestHasher) Reset() {
	if d.h != nil {
		d.h.Reset()
	}
}

// DigestLogRead is what reading a log file's gzip stream found: the hash
// a digest should list for it, and whether anything followed the stream.
type DigestLogRead struct {
	// Hash is the SHA-256 of the first gzip member's uncompressed bytes,
	// what validate-logs hashes (Python's zlib stops at the member's end).
	// It is valid only when Complete.
	Hash DigestHash
	// Complete says the first gzip member was read to its end and its
	// CRC-32 and length checked.
	Complete bool
	// Trailing says bytes followed the first gzip member: another member
	// or anything else. validate-logs calls such a log file invalid
	// (ErrDigestTrailingData).
	Trailing bool
}

// DigestLogReader inflates a gzip'd log file and hashes it as it goes, for
// the digest that lists it. Reading it gives what the multi-member gzip
// reader of klauspost/compress gives (every member, one after the other,
// and that package's errors: gzip.ErrHeader for bytes after a member that
// are not another member), so that it can stand in for that reader on the
// ingest path with no change to what is ingested; Result says what a
// digest needs to know.
//
// It reads its source through a *bufio.Reader (the caller's, when the
// source is one) and never past the end of a gzip member, so that it can
// tell whether anything follows.
//
// A DigestLogReader is not safe for concurrent use. Reset makes it
// reusable for another file, keeping its buffers.
type DigestLogReader struct {
	own   *bufio.Reader // for a source that is not a *bufio.Reader
	src   *bufio.Reader
	gz    *gzip.Reader
	hash  DigestHasher
	first bool // in the first gzip member
	read  DigestLogRead
	err   error
}

// NewDigestLogReader returns a DigestLogReader reading the gzip stream r.
// It reads the gzip header: an error there is the gzip package's (io.EOF
// for an empty file, gzip.ErrHeader for one that is not gzip).
func NewDigestLogReader(r io.Reader) (*DigestLogReader, error) {
	l := &DigestLogReader{}
	if err := l.Reset(r); err != nil {
		return nil, err
	}
	return l, nil
}

// Reset discards l's state and starts reading the gzip stream r, with the
// errors of NewDigestLogReader.
func (l *DigestLogReader) Reset(r io.Reader) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		if l.own == nil {
			l.own = bufio.NewReaderSize(r, 32<<10)
		} else {
			l.own.Reset(r)
		}
		br = l.own
	}
	l.src, l.first, l.read, l.err = br, true, DigestLogRead{}, nil
	l.hash.Reset()
	var err error
	if l.gz == nil {
		l.gz, err = gzip.NewReader(br)
	} else {
		err = l.gz.Reset(br)
	}
	if err != nil {
		l.err = err
		return err
	}
	l.gz.Multistream(false)
	return nil
}

// Read reads uncompressed bytes, hashing those of the first gzip member.
func (l *DigestLogReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, l.err
	}
	for l.err == nil {
		n, err := l.gz.Read(p)
		if l.first {
			l.hash.Write(p[:n])
		}
		switch {
		case err == io.EOF:
			l.memberEnd()
		case err != nil:
			l.err = err
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, l.err
}

// memberEnd follows a gzip member's checked end: it records the first
// member's hash, and starts the next member if there is one.
func (l *DigestLogReader) memberEnd() {
	if l.first {
		l.first = false
		l.read.Hash, l.read.Complete = l.hash.Sum(), true
	}
	if _, err := l.src.Peek(1); err != nil {
		l.err = err // io.EOF at the end, or the source's failure
		return
	}
	l.read.Trailing = true
	if err := l.gz.Reset(l.src); err != nil {
		l.err = err
		return
	}
	l.gz.Multistream(false)
}

// Result returns what has been read so far; read to io.EOF (or an error)
// first.
func (l *DigestLogReader) Result() DigestLogRead { return l.read }

// DigestHashLogFile reads the gzip'd log file r to its end and returns
// what a digest needs to know of it, with the first error other than
// io.EOF. The result stands even with an error: Complete says whether the
// hash is that of the whole first member.
func DigestHashLogFile(r io.Reader) (DigestLogRead, error) {
	l, err := NewDigestLogReader(r)
	if err != nil {
		return DigestLogRead{}, err
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := l.Read(buf); err != nil {
			if err == io.EOF {
				err = nil
			}
			return l.Result(), err
		}
	}
}

// DigestLogVerdict is the verdict on one log file that a digest lists.
type DigestLogVerdict uint8

const (
	// DigestLogValid is a log file whose hash is the listed hashValue.
	// validate-logs: "Log file\ts3://BUCKET/KEY\tvalid".
	DigestLogValid DigestLogVerdict = iota + 1
	// DigestLogNotFound is a listed log file that was never read: deleted,
	// or not ingested yet. validate-logs: "INVALID: not found".
	DigestLogNotFound
	// DigestLogHashMismatch is a log file whose content changed after
	// CloudTrail delivered it. validate-logs: "INVALID: hash value doesn't
	// match".
	DigestLogHashMismatch
	// DigestLogInvalidFormat is a log file whose gzip stream could not be
	// read to its end: truncated, corrupt, or not gzip. validate-logs:
	// "INVALID: invalid format".
	DigestLogInvalidFormat
	// DigestLogTrailingData is a log file whose content hashes right but
	// is followed by more bytes after its gzip stream. validate-logs calls
	// it invalid since May 2026: "unexpected data after end of compressed
	// stream".
	DigestLogTrailingData
)

// String returns the verdict as validate-logs words it after the file's
// location: "valid", or the reason after INVALID:.
func (v DigestLogVerdict) String() string {
	switch v {
	case DigestLogValid:
		return "valid"
	case DigestLogNotFound:
		return "not found"
	case DigestLogHashMismatch:
		return "hash value doesn't match"
	case DigestLogInvalidFormat:
		return "invalid format"
	case DigestLogTrailingData:
		return ErrDigestTrailingData.Error()
	}
	return "unknown"
}

// CheckDigestLogFile compares a log file that a digest lists with what
// reading it found; read is nil when it was never read. A content change
// outranks trailing bytes: a file both altered and extended is a hash
// mismatch. The listed hashValue is compared as validate-logs compares it,
// with the lowercase hex of the computed hash.
func CheckDigestLogFile(listed DigestLogFile, read *DigestLogRead) DigestLogVerdict {
	switch {
	case read == nil:
		return DigestLogNotFound
	case !read.Complete:
		return DigestLogInvalidFormat
	case read.Hash.String() != listed.HashValue:
		return DigestLogHashMismatch
	case read.Trailing:
		return DigestLogTrailingData
	}
	return DigestLogValid
}
