package cloudtrail

import (
	"strings"
	"testing"
)

// TestMemberKeys checks that each Member.Key stands for the key that
// Normalize maps, and that other keys get none.
func TestMemberKeys(t *testing.T) {
	const head = `{"eventTime":"2024-01-01T00:00:00Z"`
	key := func(t *testing.T, rec string, i int) Member {
		t.Helper()
		ev, err := Normalize([]byte(rec), "b", "k")
		if err != nil {
			t.Fatalf("%s: %v", rec, err)
		}
		if len(ev.Layout.Members) <= i {
			t.Fatalf("%s: %d members", rec, len(ev.Layout.Members))
		}
		return ev.Layout.Members[i]
	}
	seen := 0
	for k := 1; k < NumMemberKeys; k++ {
		name := MemberKey(uint8(k))
		if name == "" {
			continue
		}
		seen++
		rec := head + `,"` + name + `":"x"}`
		if name == "eventTime" {
			rec = `{"eventTime":"2024-01-01T00:00:00Z"}`
		}
		i := 1
		if name == "eventTime" {
			i = 0
		}
		if m := key(t, rec, i); int(m.Key) != k {
			t.Errorf("%s: Key %d (%q), want %d", name, m.Key, MemberKey(m.Key), k)
		}
	}
	if seen < 20 {
		t.Fatalf("only %d keys named", seen)
	}
	// Keys match exactly, after their escapes are decoded.
	if m := key(t, head+`,"eventname":"x"}`, 1); m.Key != 0 {
		t.Errorf("eventname: Key %q", MemberKey(m.Key))
	}
	if m := key(t, head+`,"userAgent.x":"x"}`, 1); m.Key != 0 {
		t.Errorf("userAgent.x: Key %q", MemberKey(m.Key))
	}
	if m := key(t, head+`,"event\u004eame":"x"}`, 1); MemberKey(m.Key) != "eventName" || !m.KeyEscaped || m.KeyLen != 14 {
		t.Errorf("escaped eventName: %+v", m)
	}
	if m := key(t, head+`,"userIdentity":{"type":"Root"}}`, 1); MemberKey(m.Key) != "userIdentity" {
		t.Errorf("userIdentity: %+v", m)
	}
	// The value's span, whitespace around it left out.
	rec := head + ` , "errorCode" :  "AccessDenied"  }`
	ev, err := Normalize([]byte(rec), "b", "k")
	if err != nil {
		t.Fatal(err)
	}
	m := ev.Layout.Members[1]
	if got := string(ev.Record[m.KeyStart : m.KeyStart+int32(m.KeyLen)]); got != "errorCode" {
		t.Errorf("key %q", got)
	}
	if got := string(ev.Record[m.ValueStart:m.ValueEnd]); got != `"AccessDenied"` {
		t.Errorf("value %q", got)
	}
	if ev.Layout.Escaped {
		t.Error("Escaped without a backslash")
	}
	// A key too long for KeyLen: no members at all, rather than wrong ones.
	long := head + `,"` + strings.Repeat("k", 70000) + `":1}`
	if ev, err := Normalize([]byte(long), "b", "k"); err != nil || ev.Layout.Members != nil {
		t.Errorf("long key: %v, %d members", err, len(ev.Layout.Members))
	}
}
