package web_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is the browser the tests drive: PGTRAIL_CHROMIUM, else
// Debian's /usr/bin/chromium (scripts/ensure-chromium.sh installs it).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PGTRAIL_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s: CI must run scripts/ensure-chromium.sh first", p)
		}
		t.Skipf("chromium not found at %s: run scripts/ensure-chromium.sh (or set PGTRAIL_CHROMIUM) to run the browser tests", p)
	}
	return p
}

// browser is one headless Chromium tab on the test server, with a
// listener that fails the test on any JavaScript dialog (what the XSS
// payloads would open) and on any uncaught exception.
type browser struct {
	t   *testing.T
	ctx context.Context
	url string

	mu      sync.Mutex
	dialogs []string // what ran that must not have
}

func newBrowser(t *testing.T, baseURL string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, url: baseURL}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.note("dialog: " + ev.Message)
			// Dismiss it from another goroutine: a listener must not
			// send commands.
			go func() { _, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{}) }()
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			b.note("exception: " + msg)
		}
	})
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(b.checkDialogs)
	return b
}

func (b *browser) note(s string) {
	b.mu.Lock()
	b.dialogs = append(b.dialogs, s)
	b.mu.Unlock()
}

// checkDialogs fails the test if a dialog opened or a script threw.
func (b *browser) checkDialogs() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.dialogs {
		b.t.Errorf("the page ran script it must not: %s", d)
	}
	b.dialogs = nil
}

// do runs actions that return nothing.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression into a T.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// renders is how many renders the page has finished.
func (b *browser) renders() int {
	b.t.Helper()
	n, _ := strconv.Atoi(eval[string](b, `document.body.dataset.renders || "0"`))
	return n
}

// after runs the actions and waits until the page has rendered again.
func (b *browser) after(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	prev := b.renders()
	b.do(actions...)
	b.do(chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.body.dataset.state === "ready" && +(document.body.dataset.renders || 0) > %d`, prev),
		chromedp.WithPollingTimeout(30*time.Second)))
}

// open loads a URL of the page and waits for its render.
func (b *browser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.url+path),
		chromedp.Poll[chromedp.Void](`document.body.dataset.state === "ready"`, chromedp.WithPollingTimeout(30*time.Second)))
}

// login fills the login form.
func (b *browser) login(id, secret string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.ID("login-key")))
	b.after(
		fill("login-key", id),
		fill("login-secret", secret),
		chromedp.Click(chromedp.ID("login-submit")),
	)
}

// row is one row of the events table as shown.
type row struct {
	ID    string
	Cells []string
}

// rows reads the events table.
func (b *browser) rows() []row {
	b.t.Helper()
	return eval[[]row](b, `Array.from(document.querySelectorAll('#events tbody tr[data-id]')).map(tr =>
		({ID: tr.dataset.id, Cells: Array.from(tr.cells).map(td => td.textContent)}))`)
}

// text is the textContent of the element a CSS selector names.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, `document.querySelector(`+strconv.Quote(sel)+`).textContent`)
}

// disabled tells whether a button is disabled.
func (b *browser) disabled(id string) bool {
	b.t.Helper()
	return eval[bool](b, `document.getElementById(`+strconv.Quote(id)+`).disabled`)
}

// click clicks the element a CSS selector names.
func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }

// fill clears a field and types into it.
func fill(id, value string) chromedp.Action[chromedp.Void] {
	// Cleared by script: chromedp's SetValue refuses an empty value.
	steps := []chromedp.Action[chromedp.Void]{chromedp.Evaluate[chromedp.Void](`document.getElementById(` + strconv.Quote(id) + `).value = "", undefined`)}
	if value != "" {
		steps = append(steps, chromedp.SendKeys(chromedp.ID(id), value))
	}
	return chromedp.Steps(steps...)
}

func joinCells(r row) string { return strings.Join(r.Cells, " | ") }

// TestDialogListener proves that the browser tests see what they guard
// against: a dialog that a script opens, and an uncaught exception.
func TestDialogListener(t *testing.T) {
	b := newHTTP(t, false)
	br := newBrowser(t, b.ts.URL)
	br.open("/")
	br.do(chromedp.Evaluate[chromedp.Void](`setTimeout(() => alert("caught"), 0), setTimeout(() => { throw new Error("thrown") }, 0), undefined`))
	var got string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		br.mu.Lock()
		got = strings.Join(br.dialogs, "; ")
		br.mu.Unlock()
		if strings.Contains(got, "dialog: caught") && strings.Contains(got, "thrown") {
			break
		}
	}
	br.mu.Lock()
	br.dialogs = nil
	br.mu.Unlock()
	if !strings.Contains(got, "dialog: caught") || !strings.Contains(got, "thrown") {
		t.Errorf("the listener saw %q, want the dialog and the exception", got)
	}
}
