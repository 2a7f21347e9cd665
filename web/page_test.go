package web_test

import (
	"cmp"
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stored is one event as the test reads it from the database, as the owner,
// with the fields the table shows taken from the record itself.
type stored struct {
	ID     string
	Time   time.Time
	Record map[string]any
	User   string
}

// allEvents reads every stored event, newest first in (time, id) order.
func (b *bundle) allEvents(t *testing.T) []stored {
	t.Helper()
	rows, err := b.owner.Pool().Query(context.Background(), `SELECT event_id, event_time, record::text FROM cloudtrail_events`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var e stored
		var rec string
		if err := rows.Scan(&e.ID, &e.Time, &rec); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(rec), &e.Record); err != nil {
			t.Fatal(err)
		}
		e.User = userOf(e.Record)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b stored) int {
		return cmp.Or(b.Time.Compare(a.Time), strings.Compare(b.ID, a.ID))
	})
	return out
}

// userOf is the User column as docs/lookup.md defines LookupEvents'
// Username, derived here from the record: "root" for the root user, the
// session name for assumed roles and federated users (the ARN's last
// segment, else the principal ID's part after the colon), userName else.
func userOf(rec map[string]any) string {
	ui, _ := rec["userIdentity"].(map[string]any)
	s := func(k string) string { v, _ := ui[k].(string); return v }
	typ := s("type")
	if typ == "Root" {
		return "root"
	}
	if typ != "AssumedRole" && typ != "FederatedUser" {
		return s("userName")
	}
	if i := strings.LastIndexByte(s("arn"), '/'); i >= 0 && i < len(s("arn"))-1 {
		return s("arn")[i+1:]
	}
	if _, after, ok := strings.Cut(s("principalId"), ":"); ok {
		return after
	}
	return ""
}

// busiestUser is the user with the most events, for a filter that spans
// several pages.
func busiestUser(events []stored) (string, []stored) {
	n := map[string]int{}
	for _, e := range events {
		if e.User != "" && e.User != hostileUser {
			n[e.User]++
		}
	}
	var best string
	for u, c := range n {
		if c > n[best] || (c == n[best] && u < best) {
			best = u
		}
	}
	var out []stored
	for _, e := range events {
		if e.User == best {
			out = append(out, e)
		}
	}
	return best, out
}

// allTime is a custom range that holds every event of the corpus.
const allTime = "range=custom&from=2000-01-01T00:00:00&to=2030-01-01T00:00:00"

// TestCorpus loads the corpus and the hostile records once, then checks
// the queries (store_test.go) and the page in the browser over them.
func TestCorpus(t *testing.T) {
	b := setup(t)
	t.Run("queries", func(t *testing.T) { testHistoryQueries(t, b) })
	t.Run("page", func(t *testing.T) { testPage(t, b) })
}

// testPage drives the page in headless Chromium over the corpus: log in,
// filter by user and page through exactly the expected rows, open a record,
// open an alert, and show hostile records as text without running them.
func testPage(t *testing.T, b *bundle) {
	br := newBrowser(t, b.ts.URL)
	events := b.allEvents(t)

	must(t, t.Run("login", func(t *testing.T) {
		br.t = t
		br.open("/?" + allTime + "&limit=25")
		br.do(chromedp.WaitVisible(chromedp.ID("login-key")), fill("login-key", testKeyID), fill("login-secret", "wrong secret"),
			click("#login-submit"), chromedp.Poll[chromedp.Void](`document.getElementById("login-error").textContent !== ""`))
		if got := br.text("#login-error"); !strings.Contains(got, "wrong secret") {
			t.Fatalf("a wrong secret shows %q, want the refusal", got)
		}
		br.login(testKeyID, testSecret)
		if got := br.text("#who"); got != testKeyID {
			t.Fatalf("logged in as %q, want %s", got, testKeyID)
		}
		if rows := br.rows(); len(rows) != 25 || rows[0].ID != events[0].ID {
			t.Fatalf("the first page of every event shows %d rows starting %v, want 25 starting %s", len(rows), rows, events[0].ID)
		}
	}))

	user, want := busiestUser(events)
	t.Logf("user %q has %d of %d events", user, len(want), len(events))
	if len(want) < 60 {
		t.Fatalf("the busiest user has %d events, want enough for three pages of 25", len(want))
	}

	must(t, t.Run("filter and page", func(t *testing.T) {
		br.t = t
		br.after(fill("f-user", user), click("#search"))
		loc := eval[string](br, `location.href`)
		u, _ := url.Parse(loc)
		if u.Query().Get("user") != user || u.Query().Get("limit") != "25" {
			t.Errorf("the URL %s does not hold the filter", loc)
		}
		var pages [][]row
		for {
			rows := br.rows()
			pages = append(pages, rows)
			if br.disabled("older") {
				break
			}
			br.after(click("#older"))
		}
		var got []row
		for _, p := range pages {
			got = append(got, p...)
		}
		if len(got) != len(want) {
			t.Fatalf("%d rows over %d pages, want %d", len(got), len(pages), len(want))
		}
		for i, r := range got {
			w := want[i]
			if r.ID != w.ID || r.Cells[2] != user || r.Cells[1] != w.Record["eventName"] || r.Cells[3] != w.Record["eventSource"] {
				t.Errorf("row %d: %s, want %s %s %s", i, joinCells(r), w.ID, w.Record["eventName"], w.Record["eventSource"])
			}
		}
		// And back: each newer page is the one shown before it.
		for i := len(pages) - 2; i >= 0; i-- {
			br.after(click("#newer"))
			if rows := br.rows(); !reflect.DeepEqual(rows, pages[i]) {
				t.Fatalf("newer page %d: %v, want %v", i, rows, pages[i])
			}
		}
		if !br.disabled("newer") {
			t.Error("the newest page offers a newer one")
		}
		br.do(chromedp.Poll[chromedp.Void](`/in range$/.test(document.getElementById("total").textContent)`))
		if got, w := br.text("#total"), "25 shown of "+strconv.Itoa(len(want))+" in range"; got != w {
			t.Errorf("total %q, want %q", got, w)
		}
	}))

	must(t, t.Run("record", func(t *testing.T) {
		br.t = t
		first := want[0]
		br.after(click("#events tbody tr[data-id] td:nth-child(2)"))
		var shown map[string]any
		if err := json.Unmarshal([]byte(br.text("#record-json")), &shown); err != nil {
			t.Fatalf("the record is not JSON: %v", err)
		}
		if !reflect.DeepEqual(shown, first.Record) {
			t.Errorf("record shown:\n%v\nwant\n%v", shown, first.Record)
		}
		fields := eval[map[string]string](br, `Object.fromEntries(Array.from(document.querySelectorAll('#record-fields tr')).map(tr =>
			[tr.cells[0].textContent, tr.cells[1].textContent]))`)
		if fields["event_id"] != first.ID || fields["lookup_username"] != user || fields["event_name"] != first.Record["eventName"] {
			t.Errorf("normalized fields %v, want event_id %s, lookup_username %s, event_name %v", fields, first.ID, user, first.Record["eventName"])
		}
		br.after(click("#back"))
		if rows := br.rows(); len(rows) == 0 || rows[0].ID != want[0].ID {
			t.Errorf("back shows %v, want the filtered events", rows)
		}
		// From the second page, back returns to the second page.
		br.after(click("#older"))
		second := br.rows()
		br.after(click("#events tbody tr[data-id] td:nth-child(2)"))
		br.after(click("#back"))
		if rows := br.rows(); !reflect.DeepEqual(rows, second) {
			t.Errorf("back from a record of page 2 shows %v, want page 2", rows)
		}
		br.after(click("#newer"))
	}))

	must(t, t.Run("alerts", func(t *testing.T) {
		br.t = t
		type rule struct {
			ID, Title string
			N         int
		}
		rows, err := b.owner.Pool().Query(context.Background(),
			`SELECT rule_id, title, count(*) FROM cloudtrail_alerts WHERE acknowledged_at IS NULL GROUP BY 1, 2 ORDER BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		var wantRules []rule
		for rows.Next() {
			var r rule
			if err := rows.Scan(&r.ID, &r.Title, &r.N); err != nil {
				t.Fatal(err)
			}
			wantRules = append(wantRules, r)
		}
		if len(wantRules) < 2 {
			t.Fatalf("%d rules raised alerts over the corpus, want several", len(wantRules))
		}
		br.after(click("#nav-alerts"))
		gotRules := eval[[]rule](br, `Array.from(document.querySelectorAll('#alerts .rule')).map(d =>
			({ID: d.dataset.rule, Title: d.querySelector('h3').textContent, N: d.querySelectorAll('tbody tr').length}))`)
		slices.SortFunc(gotRules, func(a, b rule) int { return strings.Compare(a.ID, b.ID) })
		for i := range wantRules {
			wantRules[i].N = min(wantRules[i].N, 50)
		}
		if !reflect.DeepEqual(gotRules, wantRules) {
			t.Fatalf("alerts view shows rules %v, want %v", gotRules, wantRules)
		}
		// The first alert's link opens its event.
		id := eval[string](br, `new URL(document.querySelector('#alerts a.open').href).searchParams.get('id')`)
		br.after(click("#alerts a.open"))
		if got := br.text("#record-title"); !strings.HasSuffix(got, " "+id) || id == "" {
			t.Errorf("the alert's link shows %q, want event %q", got, id)
		}
	}))

	t.Run("hostile", func(t *testing.T) {
		br.t = t
		br.open("/?" + allTime + "&user=" + url.QueryEscape(hostileUser))
		rows := br.rows()
		if len(rows) != len(hostile)+1 {
			t.Fatalf("%d rows for the hostile user, want %d", len(rows), len(hostile)+1)
		}
		var names []string
		for _, r := range rows {
			names = append(names, r.Cells[1])
			if r.Cells[2] != hostileUser {
				t.Errorf("user shown as %q, want the text %q", r.Cells[2], hostileUser)
			}
		}
		for _, h := range hostile {
			if !slices.Contains(names, h) {
				t.Errorf("event names shown %q lack the text %q", names, h)
			}
		}
		if n := eval[int](br, `document.querySelectorAll('main script, main img, main iframe, main [onerror]').length`); n != 0 {
			t.Errorf("the page holds %d elements made of record text", n)
		}
		// Each hostile record in full, and the alerts view that names the
		// hostile principal.
		for _, r := range rows {
			br.after(click(`#events tbody tr[data-id="` + r.ID + `"] td:nth-child(3)`))
			var shown struct {
				UserIdentity struct{ UserName string }
				UserAgent    string
			}
			if err := json.Unmarshal([]byte(br.text("#record-json")), &shown); err != nil {
				t.Fatalf("record %s: %v", r.ID, err)
			}
			if shown.UserIdentity.UserName != hostileUser || !slices.Contains(hostile, shown.UserAgent) && shown.UserAgent != strings.Join(hostile, " ") {
				t.Errorf("record %s shown with user %q, user agent %q: want the hostile text", r.ID, shown.UserIdentity.UserName, shown.UserAgent)
			}
			br.after(click("#back"))
		}
		br.after(click("#nav-alerts"))
		if got := br.text("#alerts"); !strings.Contains(got, hostile[1]) {
			t.Errorf("the alerts view does not show the hostile principal as text")
		}
		if n := eval[int](br, `document.querySelectorAll('main script, main img, main [onerror]').length`); n != 0 {
			t.Errorf("the alerts view holds %d elements made of record text", n)
		}
		br.checkDialogs()
	})
}

// must stops the test when a step failed: the next ones start from where
// it should have left the page.
func must(t *testing.T, ok bool) {
	t.Helper()
	if !ok {
		t.FailNow()
	}
}
