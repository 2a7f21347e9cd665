package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// The database's share. On two cores the database, pgtrail and the
// emulators take CPU from one another, so events/s alone cannot tell how
// much of the database's work pgtrail adds. Where the server runs on this
// machine, the benchmark also reads the CPU time of its processes, before
// and after a measurement, and gives it per event stored: for the COPY
// limit and for each run. Their quotient is the share of the COPY limit a
// run would reach with the database on cores of its own, as in production.

// clockTicks is the unit of /proc/PID/stat's times (USER_HZ, 100 on Linux).
const clockTicks = 100

// serverCPU returns the CPU time used so far by the processes named
// postgres, with the totals of the children their parents have reaped (a
// backend that has exited counts in the postmaster's). ok is false when
// there is none: the server is on another machine.
func serverCPU() (cpu time.Duration, ok bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		// After "(comm) ": state ppid pgrp session tty_nr tpgid flags
		// minflt cminflt majflt cmajflt utime stime cutime cstime.
		f := bytes.Fields(b[end+1:])
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			ticks += n
		}
		ok = true
	}
	return time.Duration(ticks) * time.Second / clockTicks, ok
}

// serverMeter measures the server's CPU over a measurement.
type serverMeter struct {
	start time.Duration
	ok    bool
}

func startServerMeter() serverMeter {
	cpu, ok := serverCPU()
	return serverMeter{start: cpu, ok: ok}
}

// perMillion returns the server's CPU-seconds since start per million
// events, or 0 where it cannot be read. It waits a moment first, so that
// the backends of a client that has just exited are reaped and counted.
func (s serverMeter) perMillion(events int) float64 {
	if !s.ok || events == 0 {
		return 0
	}
	time.Sleep(200 * time.Millisecond)
	cpu, ok := serverCPU()
	if !ok {
		return 0
	}
	return (cpu - s.start).Seconds() / float64(events) * 1e6
}
