package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// printIntegrity writes the digest checks' line of the status screen.
func (st *status) printIntegrity(row func(label, format string, args ...any), cfg *Config) {
	s := st.DB.Integrity
	if s == nil {
		return
	}
	if !cfg.Integrity {
		row("  integrity", "PGTRAIL_INTEGRITY=false here: digest files are skipped")
	}
	if s.LastChecked.IsZero() {
		row("  integrity", "no digest file checked yet (docs/integrity.md)")
		return
	}
	line := fmt.Sprintf("%d digests checked in the last day: %d valid, %d invalid, %d after a gap; latest %s ago",
		s.Valid+s.Invalid, s.Valid, s.Invalid, s.Gaps, st.Now.Sub(s.LastChecked).Round(time.Second))
	row("  integrity", "%s", line)
	if len(s.Files) > 0 {
		parts := make([]string, 0, len(s.Files))
		for v, n := range s.Files {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
		sort.Strings(parts)
		row("", "log files checked in the last day: %s", strings.Join(parts, ", "))
	}
	if s.Failing > 0 || s.InvalidDigests > 0 {
		row("", "FAILED: %d invalid digests and %d failed log files in all; see pgtrail verify and ct_integrity_files",
			s.InvalidDigests, s.Failing)
	}
}
