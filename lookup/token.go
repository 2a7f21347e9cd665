package lookup

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/pgtrail/pgtrail/sink"
)

// A NextToken is where the previous page ended, authenticated and bound to
// the request it continues:
//
//	base64url( version | event_time (µs, 8 bytes) | event_id | HMAC-SHA256(key, version | query | …)[:16] )
//
// The query is the request's LookupAttributes, StartTime, EndTime and
// EventCategory as the client sent them, so that a token presented with
// other parameters, altered, or made up, is refused as AWS refuses one
// (InvalidNextTokenException), and cannot move a lookup outside what its
// first page asked for. The cursor itself is not secret: it is the time and
// ID of an event the client has already seen.
const (
	tokenVersion = 1
	tokenMACSize = 16
)

type tokenCodec struct {
	key []byte
}

func (c tokenCodec) mac(query []byte, payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(query)))
	m.Write(n[:])
	m.Write(query)
	m.Write(payload)
	return m.Sum(nil)[:tokenMACSize]
}

// encode returns the token that continues query after cur.
func (c tokenCodec) encode(query []byte, cur sink.LookupCursor) string {
	payload := make([]byte, 0, 9+len(cur.ID)+tokenMACSize)
	payload = append(payload, tokenVersion)
	payload = binary.BigEndian.AppendUint64(payload, uint64(cur.Time.UnixMicro()))
	payload = append(payload, cur.ID...)
	return base64.RawURLEncoding.EncodeToString(append(payload, c.mac(query, payload)...))
}

// decode returns the cursor of a token issued for query.
func (c tokenCodec) decode(query []byte, token string) (sink.LookupCursor, bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 9+tokenMACSize || b[0] != tokenVersion {
		return sink.LookupCursor{}, false
	}
	payload, sum := b[:len(b)-tokenMACSize], b[len(b)-tokenMACSize:]
	if !hmac.Equal(sum, c.mac(query, payload)) {
		return sink.LookupCursor{}, false
	}
	micros := int64(binary.BigEndian.Uint64(payload[1:9]))
	return sink.LookupCursor{Time: time.UnixMicro(micros).UTC(), ID: string(payload[9:])}, true
}
