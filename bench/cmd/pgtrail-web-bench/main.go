// Command pgtrail-web-bench measures the event-history page over a loaded
// database: for each query (a time range preset and filters) it loads the
// page in headless Chromium, logged in, and reports the median and worst
// of first contentful paint, first data (the table filled), the count and
// the activity chart, as the page's own performance marks time them from
// the navigation's start; "timeout" when the server's query timeout (30 s)
// cut the query. The server runs in process on loopback, as the
// reader role.
//
// Load the database as docs/lookup.md's "Measuring" does, then:
//
//	go run ./bench/cmd/pgtrail-web-bench -db postgres://…/pgtrail_web_bench
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pgtrail/pgtrail/lookup"
	"github.com/pgtrail/pgtrail/sink"
	"github.com/pgtrail/pgtrail/web"
)

// probes are the page's URLs to measure, after "/?".
var probes = []struct{ label, query string }{
	{"last hour", "range=hour"},
	{"last day (the default)", ""},
	{"last week", "range=week"},
	{"last 90 days", "range=90d"},
	{"90 days, an event name", "range=90d&name=StopLogging"},
	{"90 days, any error", "range=90d&error=*"},
	{"90 days, name contains \"Policy\"", "range=90d&q=Policy"},
	{"90 days, region and any error", "range=90d&region=eu-west-1&error=*"},
}

func main() {
	db := flag.String("db", "postgres://postgres@127.0.0.1:5432/pgtrail_web_bench?sslmode=disable", "the loaded database")
	chromium := flag.String("chromium", "/usr/bin/chromium", "the browser")
	runs := flag.Int("runs", 5, "page loads per probe")
	flag.Parse()
	if err := run(context.Background(), *db, *chromium, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "pgtrail-web-bench:", err)
		os.Exit(1)
	}
}

// marks are what one page load took, in ms from the navigation's start.
type marks struct {
	FCP, Data, Count, Chart float64
}

func run(ctx context.Context, db, chromium string, runs int) error {
	reader, err := sink.OpenReader(ctx, sink.Config{URL: db})
	if err != nil {
		return err
	}
	defer reader.Close()
	const id, secret = "AKIAPGTRAILBENCH0001", "pgtrail-web-bench-secret-0123456789"
	page, err := web.New(web.Options{Store: reader, Keys: lookup.StaticCredentials(map[string]string{id: secret})})
	if err != nil {
		return err
	}
	ts := httptest.NewServer(page)
	defer ts.Close()

	dir, err := os.MkdirTemp("", "pgtrail-web-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	actx, cancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Flag("headless", true),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(dir), chromedp.WindowSize(1440, 900))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ready := chromedp.Poll[chromedp.Void](`document.body.dataset.state === "ready"`, chromedp.WithPollingTimeout(2*time.Minute))
	if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.ID("login-key")),
		chromedp.SendKeys(chromedp.ID("login-key"), id), chromedp.SendKeys(chromedp.ID("login-secret"), secret),
		chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("events-view")), ready); err != nil {
		return fmt.Errorf("log in: %w", err)
	}

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "probe\tfirst paint p50\tworst\tfirst data p50\tworst\tcount p50\tworst\tchart p50\tworst\tshown\t")
	for _, p := range probes {
		var ms []marks
		var total string
		for range runs {
			if err := chromedp.Do(bctx, chromedp.Navigate(ts.URL+"/?"+p.query), ready); err != nil {
				return fmt.Errorf("%s: %w", p.label, err)
			}
			// The count and the chart, or the server's query timeout
			// (30 s): a mark missing after it is reported as -1.
			_ = chromedp.Do(bctx, chromedp.Poll[chromedp.Void](`performance.getEntriesByName("pgtrail-count").length > 0 && performance.getEntriesByName("pgtrail-chart").length > 0`,
				chromedp.WithPollingTimeout(40*time.Second)))
			m, err := chromedp.Run(bctx, chromedp.Evaluate[marks](`(() => {
				const at = (n) => (performance.getEntriesByName(n)[0] || {startTime: -1}).startTime;
				return {FCP: at("first-contentful-paint"), Data: at("pgtrail-data"), Count: at("pgtrail-count"), Chart: at("pgtrail-chart")};
			})()`))
			if err != nil {
				return err
			}
			if total, err = chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("total").textContent`)); err != nil {
				return err
			}
			ms = append(ms, m)
		}
		fmt.Fprintf(tw, "%s\t", p.label)
		for _, f := range []func(marks) float64{
			func(m marks) float64 { return m.FCP }, func(m marks) float64 { return m.Data },
			func(m marks) float64 { return m.Count }, func(m marks) float64 { return m.Chart },
		} {
			var v []float64
			for _, m := range ms {
				v = append(v, f(m))
			}
			slices.Sort(v)
			if v[0] < 0 {
				fmt.Fprint(tw, "timeout\t\t")
				continue
			}
			fmt.Fprintf(tw, "%.0f\t%.0f\t", v[len(v)/2], v[len(v)-1])
		}
		fmt.Fprintf(tw, "%s\t\n", strings.TrimSpace(total))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
