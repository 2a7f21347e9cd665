// Command pgtrail-bench measures how close pgtrail runs to this machine's
// limits, on a generated data set (package bench/gen), in one run:
//
//   - the decode limit: decompress and decode only, and with normalize, in
//     process on every CPU;
//   - the COPY limit: a plain binary COPY of the already-normalized rows into
//     cloudtrail_events (two connections, 10,000 rows per transaction);
//   - pgtrail end to end: the objects in the local S3, their notifications
//     on the local SQS, `pgtrail run` started as a child process, until every
//     event is committed and the queue is empty; once per object concurrency;
//   - `pgtrail ingest` on the same files on disk;
//   - `pgtrail backfill` of the same log files from a bucket in the local
//     S3, at its default S3 request cap and without one, then again over
//     what is stored (objects/s and events/s);
//   - optionally (-big), one object of about 1 GB decompressed through
//     `pgtrail run` and `pgtrail ingest`, for peak memory;
//   - objects of many tiny records (-tiny), one through `pgtrail ingest`
//     and eight at once through `pgtrail run`, for peak memory whatever
//     the shape of the records.
//
// It prints a table, and writes results.json and throughput.png to -out.
//
//	go run ./bench/cmd/pgtrail-bench -bin bin/pgtrail -out bench
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pgtrail/pgtrail/bench/gen"
	"github.com/pgtrail/pgtrail/internal/pgtest"
)

type options struct {
	bin          string
	out          string
	server       string
	events       int
	dup          float64
	seed         uint64
	concurrency  []int
	inFlight     int
	bigBytes     int64
	tiny         int
	storage      bool
	skipIngest   bool
	skipBackfill bool
	baseline     string
	repeat       int
	quick        bool
}

func main() {
	var o options
	var conc string
	flag.StringVar(&o.bin, "bin", "bin/pgtrail", "the pgtrail binary to run")
	flag.StringVar(&o.out, "out", "bench", "where results.json and throughput.png go")
	flag.StringVar(&o.server, "db", pgtest.ServerURL(), "PostgreSQL server (a database per measurement is created and dropped)")
	flag.IntVar(&o.events, "events", 500_000, "distinct events in the data set")
	flag.Float64Var(&o.dup, "dup", 0.1, "share of files a second trail delivers again (duplicates)")
	flag.Uint64Var(&o.seed, "seed", 1, "generator seed")
	flag.StringVar(&conc, "concurrency", "1,2,4,8,16,32", "PGTRAIL_OBJECT_CONCURRENCY values for pgtrail run")
	flag.IntVar(&o.inFlight, "max-in-flight", 0, "PGTRAIL_MAX_IN_FLIGHT for pgtrail run, at least the concurrency (0: pgtrail's default)")
	big := flag.Float64("big", 0, "also run one object of this many GB decompressed (0: skip)")
	flag.IntVar(&o.tiny, "tiny", 100_000, "records per object of tiny records (0: skip)")
	flag.BoolVar(&o.storage, "storage", false, "also compare json and jsonb for the record column (ingest and queries)")
	flag.BoolVar(&o.skipIngest, "skip-ingest", false, "skip pgtrail ingest")
	flag.BoolVar(&o.skipBackfill, "skip-backfill", false, "skip pgtrail backfill")
	flag.StringVar(&o.baseline, "baseline", "", "another pgtrail binary (say, the last release) to run in turn with -bin at each concurrency, in ingest and on tiny records, for a before/after on the same data")
	flag.IntVar(&o.repeat, "repeat", 1, "runs of pgtrail run per concurrency, of ingest and of the tiny records (and per binary); the median by events/s is kept")
	flag.BoolVar(&o.quick, "quick", false, "a smoke run for CI: 20,000 events, concurrency 4, no plot update")
	replot := flag.Bool("replot", false, "only draw throughput.png again from the results.json in -out")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the benchmark process (the generator, the limits and the emulators) to this file")
	flag.Parse()
	if *replot {
		b, err := os.ReadFile(filepath.Join(o.out, "results.json"))
		if err != nil {
			fatalf("-replot: %v", err)
		}
		var res Results
		if err := json.Unmarshal(b, &res); err != nil {
			fatalf("-replot: %v", err)
		}
		if err := writePlot(filepath.Join(o.out, "throughput.png"), &res); err != nil {
			fatalf("-replot: %v", err)
		}
		return
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fatalf("-cpuprofile: %v", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatalf("-cpuprofile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	o.bigBytes = int64(*big * (1 << 30))
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fatalf("bad -concurrency %q", conc)
		}
		o.concurrency = append(o.concurrency, n)
	}
	if o.quick {
		o.events = 20_000
		o.concurrency = []int{4}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pgtrail-bench: "+format+"\n", args...)
	os.Exit(1)
}

// Results is what results.json holds.
type Results struct {
	Time    time.Time     `json:"time"`
	Machine Machine       `json:"machine"`
	Data    Data          `json:"data"`
	Decode  []Measurement `json:"decode_limit"`
	Copy    Measurement   `json:"copy_limit"`
	Run     []Measurement `json:"run"`
	// Baseline holds the runs of -baseline, taken in turn with Run's.
	Baseline []Measurement `json:"baseline_run,omitempty"`
	Ingest   *Measurement  `json:"ingest,omitempty"`
	// IngestBaseline is -baseline's ingest, taken in turn with Ingest.
	IngestBaseline *Measurement `json:"ingest_baseline,omitempty"`
	// Backfill is pgtrail backfill from the local S3 (backfill.go).
	Backfill []Measurement `json:"backfill,omitempty"`
	Big      []Measurement `json:"big_object,omitempty"`
	// Tiny holds the objects of tiny records (tiny.go), TinyBaseline
	// -baseline's runs of the same, taken in turn.
	Tiny         []Measurement `json:"tiny_records,omitempty"`
	TinyBaseline []Measurement `json:"tiny_records_baseline,omitempty"`
	Best         *Measurement  `json:"best_run"`
	Ratio        float64       `json:"ratio_to_tighter_limit"`
	// DBRatio is the COPY limit's database CPU per event over the best
	// run's: the share of the COPY limit the run would reach with the
	// database on cores of its own (0 where the server is not local).
	DBRatio     float64  `json:"ratio_by_database_cpu,omitempty"`
	TighterName string   `json:"tighter_limit"`
	Storage     *Storage `json:"storage,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPUs     int    `json:"cpus"`
	GoVer    string `json:"go"`
	Postgres string `json:"postgres"`
	// LoadAvg is the 1-minute load average when the run began: anything
	// else running on the machine skews every figure.
	LoadAvg string `json:"load_avg_at_start"`
}

// Data describes the generated data set.
type Data struct {
	Seed            uint64  `json:"seed"`
	Objects         int     `json:"objects"`
	Records         int     `json:"records"`
	Unique          int     `json:"unique_events"`
	DupShare        float64 `json:"duplicate_share"`
	CompressedBytes int64   `json:"compressed_bytes"`
	RawBytes        int64   `json:"raw_bytes"`
	MeanRecordBytes float64 `json:"mean_record_bytes"`
}

// Measurement is one timed stage.
type Measurement struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency,omitempty"`
	Events      int     `json:"events"`
	Seconds     float64 `json:"seconds"`
	EventsPerS  float64 `json:"events_per_s"`
	MBpsComp    float64 `json:"mb_per_s_compressed,omitempty"`
	MBpsRaw     float64 `json:"mb_per_s_raw,omitempty"`
	// ObjectsPerS is log files per second, for backfill.
	ObjectsPerS float64 `json:"objects_per_s,omitempty"`
	// CPUSecPerM is CPU-seconds per million events: the child's for run
	// and ingest, this process's for the limits.
	CPUSecPerM float64 `json:"cpu_s_per_million_events,omitempty"`
	// PeakRSSMB is the child's peak resident set.
	PeakRSSMB float64 `json:"peak_rss_mb,omitempty"`
	// EmulatorCPUSecPerM is the local AWS emulators' CPU (this process).
	EmulatorCPUSecPerM float64 `json:"emulator_cpu_s_per_million_events,omitempty"`
	// DBCPUSecPerM is the local PostgreSQL server's CPU per million
	// events stored (servercpu.go).
	DBCPUSecPerM float64 `json:"db_cpu_s_per_million_stored_events,omitempty"`
	Note         string  `json:"note,omitempty"`
}

func (m Measurement) String() string {
	if m.Events == 0 {
		// Nothing read (a backfill over what is stored): only the pace.
		s := fmt.Sprintf("%-26s %6.0f objects/s", m.Name, m.ObjectsPerS)
		if m.PeakRSSMB > 0 {
			s += fmt.Sprintf("  peak RSS %5.0f MB", m.PeakRSSMB)
		}
		if m.Note != "" {
			s += "  (" + m.Note + ")"
		}
		return s
	}
	s := fmt.Sprintf("%-26s %9.0f ev/s  %6.1f MB/s gz  %6.1f MB/s raw", m.Name, m.EventsPerS, m.MBpsComp, m.MBpsRaw)
	if m.ObjectsPerS > 0 {
		s += fmt.Sprintf("  %6.0f objects/s", m.ObjectsPerS)
	}
	if m.CPUSecPerM > 0 {
		s += fmt.Sprintf("  %5.1f CPU-s/M ev", m.CPUSecPerM)
	}
	if m.PeakRSSMB > 0 {
		s += fmt.Sprintf("  peak RSS %5.0f MB", m.PeakRSSMB)
	}
	if m.DBCPUSecPerM > 0 {
		s += fmt.Sprintf("  db %5.1f CPU-s/M stored", m.DBCPUSecPerM)
	}
	if m.Note != "" {
		s += "  (" + m.Note + ")"
	}
	return s
}

func run(ctx context.Context, o options) error {
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("pgtrail binary: %w (build it with make build, or pass -bin)", err)
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	o.bin = bin
	res := &Results{Time: time.Now().UTC().Truncate(time.Second)}
	res.Machine = Machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version(), Postgres: serverVersion(ctx, o.server), LoadAvg: loadAvg()}
	fmt.Printf("machine: %d CPUs, load average %s, PostgreSQL %s\n", res.Machine.CPUs, res.Machine.LoadAvg, res.Machine.Postgres)

	start := time.Now()
	set := gen.Generate(gen.Config{Seed: o.seed, Events: o.events, DupShare: o.dup})
	res.Data = Data{
		Seed: o.seed, Objects: len(set.Objects), Records: set.Records, Unique: set.Unique,
		DupShare: 1 - float64(set.Unique)/float64(set.Records), CompressedBytes: set.Compressed,
		RawBytes: set.Raw, MeanRecordBytes: float64(set.Raw) / float64(set.Records),
	}
	fmt.Printf("data: %d objects, %d records (%d distinct, %.0f%% duplicates), %.0f MB gz, %.0f MB raw, %.0f B/record (generated in %s)\n",
		len(set.Objects), set.Records, set.Unique, 100*res.Data.DupShare, mb(set.Compressed), mb(set.Raw),
		res.Data.MeanRecordBytes, time.Since(start).Round(time.Millisecond))

	res.Decode = decodeLimit(set)
	for _, m := range res.Decode {
		fmt.Println(m)
	}
	res.Copy, err = copyLimit(ctx, o, set)
	if err != nil {
		return fmt.Errorf("copy limit: %w", err)
	}
	fmt.Println(res.Copy)

	st, err := startAWS(ctx)
	if err != nil {
		return err
	}
	for _, c := range o.concurrency {
		// With a baseline, the two binaries take turns, so that whatever
		// else the machine does weighs on both alike.
		var runs, base []Measurement
		for range max(o.repeat, 1) {
			m, err := runE2E(ctx, o, st, set, c)
			if err != nil {
				return fmt.Errorf("pgtrail run, concurrency %d: %w", c, err)
			}
			fmt.Println(m)
			runs = append(runs, m)
			if o.baseline == "" {
				continue
			}
			ob := o
			ob.bin = o.baseline
			b, err := runE2E(ctx, ob, st, set, c)
			if err != nil {
				return fmt.Errorf("baseline run, concurrency %d: %w", c, err)
			}
			b.Name += " baseline"
			fmt.Println(b)
			base = append(base, b)
		}
		res.Run = append(res.Run, median(runs))
		if len(base) > 0 {
			res.Baseline = append(res.Baseline, median(base))
		}
	}
	for i := range res.Run {
		if res.Best == nil || res.Run[i].EventsPerS > res.Best.EventsPerS {
			res.Best = &res.Run[i]
		}
	}
	if len(res.Run) > 0 && o.repeat > 1 {
		fmt.Printf("medians of %d runs:\n", o.repeat)
		for i, m := range res.Run {
			fmt.Println(m)
			if i < len(res.Baseline) {
				fmt.Println(res.Baseline[i])
			}
		}
	}
	if !o.skipIngest {
		var runs, base []Measurement
		for range max(o.repeat, 1) {
			m, err := runIngest(ctx, o, set)
			if err != nil {
				return fmt.Errorf("pgtrail ingest: %w", err)
			}
			fmt.Println(m)
			runs = append(runs, m)
			if o.baseline == "" {
				continue
			}
			ob := o
			ob.bin = o.baseline
			b, err := runIngest(ctx, ob, set)
			if err != nil {
				return fmt.Errorf("baseline ingest: %w", err)
			}
			b.Name += " baseline"
			fmt.Println(b)
			base = append(base, b)
		}
		m := median(runs)
		res.Ingest = &m
		if len(base) > 0 {
			b := median(base)
			res.IngestBaseline = &b
		}
	}

	if !o.skipBackfill {
		ms, err := measureBackfill(ctx, o, st, set)
		if err != nil {
			return fmt.Errorf("pgtrail backfill: %w", err)
		}
		for _, m := range ms {
			fmt.Println(m)
		}
		res.Backfill = ms
	}

	tighter := res.Copy
	res.TighterName = "copy"
	for _, d := range res.Decode {
		if d.Name == "decode" && d.EventsPerS < tighter.EventsPerS {
			tighter, res.TighterName = d, "decode"
		}
	}
	if res.Best != nil {
		res.Ratio = res.Best.EventsPerS / tighter.EventsPerS
		fmt.Printf("end to end: %.0f events/s at concurrency %d = %.0f%% of the %s limit (%.0f events/s); worker CPU %.1f µs/event\n",
			res.Best.EventsPerS, res.Best.Concurrency, 100*res.Ratio, res.TighterName, tighter.EventsPerS, res.Best.CPUSecPerM)
		if res.Copy.DBCPUSecPerM > 0 && res.Best.DBCPUSecPerM > 0 {
			res.DBRatio = res.Copy.DBCPUSecPerM / res.Best.DBCPUSecPerM
			fmt.Printf("database CPU per event stored: %.1f µs for the COPY limit, %.1f µs in the run: with the database on cores of its own, %.0f%% of the COPY limit\n",
				res.Copy.DBCPUSecPerM, res.Best.DBCPUSecPerM, 100*res.DBRatio)
		}
	}

	if o.bigBytes > 0 {
		ms, err := runBig(ctx, o, st)
		if err != nil {
			return fmt.Errorf("big object: %w", err)
		}
		for _, m := range ms {
			fmt.Println(m)
		}
		res.Big = ms
	}
	if o.tiny > 0 {
		if err := measureTiny(ctx, o, st, res); err != nil {
			return fmt.Errorf("tiny records: %w", err)
		}
	}
	if o.storage {
		s, err := compareStorage(ctx, o, set)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		res.Storage = s
		s.print()
	}

	if o.quick {
		return nil
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if len(res.Run) > 0 {
		if err := writePlot(filepath.Join(o.out, "throughput.png"), res); err != nil {
			return err
		}
	}
	fmt.Printf("wrote %s and %s\n", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "throughput.png"))
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// rate fills the per-second fields of m.
func rate(m *Measurement, d time.Duration, comp, raw int64) {
	m.Seconds = d.Seconds()
	m.EventsPerS = float64(m.Events) / d.Seconds()
	m.MBpsComp = mb(comp) / d.Seconds()
	m.MBpsRaw = mb(raw) / d.Seconds()
}

// median returns the run of median events/s (the lower middle one of an
// even number).
func median(ms []Measurement) Measurement {
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b Measurement) int { return cmp.Compare(a.EventsPerS, b.EventsPerS) })
	return s[(len(s)-1)/2]
}
