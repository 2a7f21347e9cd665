package sigma

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBuiltin checks every rule of the built-in pack against its test
// events: builtin/testdata/NAME.match.json holds records that must fire
// the rule of builtin/NAME.yml, NAME.nomatch.json records that must not.
func TestBuiltin(t *testing.T) {
	s := Builtin()
	if len(s.Refused()) > 0 || len(s.Skipped()) > 0 {
		t.Fatalf("built-in rules not loaded: %v %v", s.Refused(), s.Skipped())
	}
	if len(s.Rules()) < 25 {
		t.Fatalf("%d built-in rules, want the 15 CIS controls and the defense evasion ones", len(s.Rules()))
	}
	titles := map[string]bool{}
	for _, r := range s.Rules() {
		t.Run(path.Base(r.File), func(t *testing.T) {
			if !r.Builtin || r.Author != "pgtrail" || r.Level == "" || len(r.Tags) == 0 || r.Description == "" {
				t.Errorf("builtin %v, author %q, level %q, tags %v: want pgtrail's, with a level, tags and a description", r.Builtin, r.Author, r.Level, r.Tags)
			}
			if sources, names := r.Prefilter(); sources == nil && names == nil &&
				!strings.Contains(r.Title, "4.1 ") && !strings.Contains(r.Title, "4.3 ") {
				t.Errorf("evaluated on every event: only the CIS controls 4.1 and 4.3 need to be")
			}
			if titles[r.Title] {
				t.Errorf("title %q used twice", r.Title)
			}
			titles[r.Title] = true
			stem := strings.TrimSuffix(path.Base(r.File), ".yml")
			for _, want := range []bool{true, false} {
				file := filepath.Join("builtin", "testdata", stem+map[bool]string{true: ".match.json", false: ".nomatch.json"}[want])
				records := readTestRecords(t, file)
				if len(records) == 0 {
					t.Fatalf("%s: no test records", file)
				}
				for i, rec := range records {
					source, name := namesOf(string(rec))
					got := false
					for _, m := range s.Match(source, name, rec) {
						got = got || m.Rule == r
					}
					if got != want {
						t.Errorf("%s record %d (%s %s): fired %v, want %v", file, i, source, name, got, want)
					}
				}
			}
		})
	}
}

// readTestRecords reads a JSON array of records.
func readTestRecords(t *testing.T, file string) []json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var records []json.RawMessage
	if err := json.Unmarshal(data, &records); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return records
}

// TestBuiltinCIS checks that the fifteen CIS monitoring controls are all
// there, one rule each, tagged with both numberings.
func TestBuiltinCIS(t *testing.T) {
	found := map[string]bool{}
	for _, r := range Builtin().Rules() {
		for _, tag := range r.Tags {
			if n, ok := strings.CutPrefix(tag, "cis.aws-foundations."); ok {
				if found[n] {
					t.Errorf("control %s has two rules", n)
				}
				found[n] = true
				if !strings.HasPrefix(r.Title, "CIS "+strings.ReplaceAll(n, "-", ".")+" - ") {
					t.Errorf("rule %q is tagged %s", r.Title, tag)
				}
			}
		}
	}
	for i := 1; i <= 15; i++ {
		if n := "4-" + strconv.Itoa(i); !found[n] {
			t.Errorf("no rule for CIS control %s", n)
		}
	}
}
