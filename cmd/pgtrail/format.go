package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"
)

// partitionDay turns cloudtrail_events_YYYYMMDD into YYYY-MM-DD, and leaves
// other names as they are.
func partitionDay(name string) string {
	if t, err := time.Parse("20060102", strings.TrimPrefix(name, "cloudtrail_events_")); err == nil {
		return t.Format(time.DateOnly)
	}
	return name
}

// short prints a duration in its largest whole unit: 4d, 1h, 5m, 30s.
func short(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d && d%u.d == 0 {
			return fmt.Sprintf("%d%s", d/u.d, u.name)
		}
	}
	return d.String()
}

// bytesIEC prints n in B, KiB, MiB, GiB or TiB.
func bytesIEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// shortErr is the service's error code and message when AWS answered with
// one, else the start of the error's first line.
func shortErr(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
