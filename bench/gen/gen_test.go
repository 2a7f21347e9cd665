package gen

import (
	"bytes"
	"testing"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := Config{Seed: 7, Events: 5000, DupShare: 0.2}
	a, b := Generate(cfg), Generate(cfg)
	if len(a.Objects) != len(b.Objects) {
		t.Fatalf("objects: %d and %d", len(a.Objects), len(b.Objects))
	}
	for i := range a.Objects {
		if a.Objects[i].Key != b.Objects[i].Key || !bytes.Equal(a.Objects[i].Body, b.Objects[i].Body) {
			t.Fatalf("object %d differs", i)
		}
	}
	mean := float64(a.Raw) / float64(a.Records)
	dup := 1 - float64(a.Unique)/float64(a.Records)
	t.Logf("%d objects, %d records, %d unique (%.0f%% duplicates), mean record %.0f bytes, ratio %.1f",
		len(a.Objects), a.Records, a.Unique, 100*dup, mean, float64(a.Raw)/float64(a.Compressed))
	if mean < 900 || mean > 1600 {
		t.Errorf("mean record %.0f bytes, want about 1200", mean)
	}
	if dup < 0.15 || dup > 0.25 {
		t.Errorf("duplicate share %.2f, want about 0.2", dup)
	}
}

func TestGenerateDistinctKeys(t *testing.T) {
	s := Generate(Config{Seed: 1, Events: 20000, DupShare: 0.5})
	seen := map[string]bool{}
	for _, o := range s.Objects {
		if seen[o.Key] {
			t.Fatalf("key %s twice", o.Key)
		}
		seen[o.Key] = true
	}
}

func TestWriteTiny(t *testing.T) {
	var a, b bytes.Buffer
	rawA, err := WriteTiny(&a, 3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteTiny(&b, 3, 1000); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different bytes")
	}
	if per := rawA / 1000; per < 40 || per > 80 {
		t.Errorf("%d bytes per record, want about 60", per)
	}
}
