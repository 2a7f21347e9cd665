package web_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var screenshots = flag.String("screenshots", "", "write PNG screenshots of the page to this folder (docs/img)")

// TestScreenshots takes the pictures of docs/web.md over the corpus:
//
//	go test ./web -run TestScreenshots -screenshots ../docs/img
func TestScreenshots(t *testing.T) {
	if *screenshots == "" {
		t.Skip("no -screenshots folder given")
	}
	b := setup(t)
	br := newBrowser(t, b.ts.URL)
	br.open("/?range=custom&from=2024-07-25T00:00:00&to=2024-09-05T00:00:00")
	br.login(testKeyID, testSecret)
	shot := func(name string) {
		t.Helper()
		// Let the count and the chart arrive.
		br.do(chromedp.Poll[chromedp.Void](`/in range$/.test(document.getElementById("total").textContent) || document.getElementById("events-view").hidden`),
			chromedp.Sleep(300*time.Millisecond))
		png, err := chromedp.Run(br.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(*screenshots, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shot("web-events.png")
	br.after(click("#events tbody tr[data-id] td:nth-child(2)"))
	shot("web-record.png")
	br.after(click("#nav-alerts"))
	shot("web-alerts.png")
}
