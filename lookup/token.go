package lookup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// A NextToken is where the previous page ended, authenticated, bound to the
// request it continues and to the key that made it, and short-lived:
//
//	base64url( version | expiry (Unix s, 8 bytes) | event_time (µs, 8 bytes) | event_id | HMAC-SHA256(key, binding | payload)[:16] )
//
// The binding is the access key ID that signed the request, and the
// request's LookupAttributes, StartTime, EndTime and EventCategory as the
// client sent them. A token presented with other parameters, by another
// key, after its expiry, altered, or made up, is refused as AWS refuses
// one (InvalidNextTokenException): it cannot move a lookup outside what its
// first page asked for, nor serve as a cursor for someone else's
// credentials. The cursor itself is not secret: it is the time and ID of
// an event the client has already seen.
//
// CloudTrail documents no lifetime for its tokens, only that one must come
// back with the same parameters; pgtrail's last TokenLifetime from the page
// that issued them, long enough for any paginator, short enough that a
// token leaked in a log is soon worthless.
const (
	tokenVersion = 2
	tokenMACSize = 16
	tokenHeader  = 1 + 8 + 8 // version, expiry, event time
)

// TokenLifetime is how long a NextToken may be used after the page that
// issued it.
const TokenLifetime = 15 * time.Minute

type tokenCodec struct {
	key []byte
}

func (c tokenCodec) mac(binding, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(binding)))
	m.Write(n[:])
	m.Write(binding)
	m.Write(payload)
	return m.Sum(nil)[:tokenMACSize]
}

// encode returns the token that continues the bound request after cur,
// valid until expires.
func (c tokenCodec) encode(binding []byte, cur sink.LookupCursor, expires time.Time) string {
	payload := make([]byte, 0, tokenHeader+len(cur.ID)+tokenMACSize)
	payload = append(payload, tokenVersion)
	payload = binary.BigEndian.AppendUint64(payload, uint64(expires.Unix()))
	payload = binary.BigEndian.AppendUint64(payload, uint64(cur.Time.UnixMicro()))
	payload = append(payload, cur.ID...)
	return base64.RawURLEncoding.EncodeToString(append(payload, c.mac(binding, payload)...))
}

// decode returns the cursor of a token issued for the bound request, if it
// is still valid at now.
func (c tokenCodec) decode(binding []byte, token string, now time.Time) (sink.LookupCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < tokenHeader+tokenMACSize || b[0] != tokenVersion {
		return sink.LookupCursor{}, false
	}
	payload, sum := b[:len(b)-tokenMACSize], b[len(b)-tokenMACSize:]
	if !hmac.Equal(sum, c.mac(binding, payload)) {
		return sink.LookupCursor{}, false
	}
	if expires := int64(binary.BigEndian.Uint64(payload[1:9])); now.Unix() >= expires {
		return sink.LookupCursor{}, false
	}
	micros := int64(binary.BigEndian.Uint64(payload[9:17]))
	return sink.LookupCursor{Time: time.UnixMicro(micros).UTC(), ID: string(payload[tokenHeader:])}, true
}
