package web_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gridmind/gridmind/demo"
	"github.com/gridmind/gridmind/internal/localnet"
	"github.com/gridmind/gridmind/ledger"
	"github.com/gridmind/gridmind/train"
)

// chromium finds a Chromium or Chrome binary: $GRIDMIND_CHROMIUM, else
// the usual names on PATH.
func chromium() string {
	if p := os.Getenv("GRIDMIND_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInBrowser loads the dashboard of a local network's
// requester node in headless Chromium: live data arrives over the event
// stream (peers, a growing ledger height, the supply invariant), posting
// and cancelling a job are refused without the API token and work with
// it, the job's rounds draw a loss curve, and screenshots of the page go
// to docs/img.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local network and a browser; run without -short")
	}
	exe := chromium()
	if exe == "" {
		t.Skip("chromium is not installed (apt-get install -y chromium, or set GRIDMIND_CHROMIUM): the dashboard's browser test needs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Energy traces read at a sunny hour (the demo's), so the page shows
	// solar and batteries whenever the test runs.
	energyStart, energyAt := time.Now(), time.Date(2023, 6, 21, 11, 0, 0, 0, time.UTC)
	net, err := localnet.Start(ctx, localnet.Options{Providers: 3, Seed: 21, HTTP: true,
		Profiles:          demo.Profiles(3),
		EnergyClock:       func() time.Time { return energyAt.Add(time.Since(energyStart)) },
		TrainTiming:       train.Timing{MaxReadyWait: 5 * time.Second, MaxExchangeWait: 10 * time.Second},
		SettleDelayBlocks: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { net.Close() })
	if err := net.WaitReady(ctx, nil); err != nil {
		t.Fatal(err)
	}
	req := net.Requester
	url := "http://" + req.APIAddr + "/"

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.WindowSize(1440, 1000),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// waitFor polls a JavaScript condition in the page until it holds.
	waitFor := func(what, cond string, within time.Duration) {
		t.Helper()
		if err := chromedp.Do(browser, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(within), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
			page, _ := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#action-msg').textContent + ' | ' + document.querySelector('#problem').textContent + ' | ' + document.querySelector('#conn').textContent`))
			t.Fatalf("%s: %v (page says: %s)", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	// click waits for sel to be visible and clicks it from the page's own
	// script: a mouse click at the element's position, as chromedp.Click
	// sends, could land elsewhere when live updates moved the layout in
	// between (the cancel button's first click was once lost that way).
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(browser,
			chromedp.WaitVisible(chromedp.CSS(sel)),
			chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).click()`, sel)),
		); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	setToken := func(token string) {
		t.Helper()
		if token == "" {
			click("#token-forget")
			waitFor("token forgotten", `document.querySelector('#token-status').textContent === 'read-only'`, 5*time.Second)
			return
		}
		if err := chromedp.Do(browser, chromedp.SetValue(chromedp.CSS("#token-input"), token)); err != nil {
			t.Fatal(err)
		}
		click("#token-save")
		waitFor("token accepted", `document.querySelector('#token-status').textContent === 'token accepted'`, 5*time.Second)
	}
	jobs := func() []ledger.Job {
		t.Helper()
		list, err := req.Chain.Jobs(ctx, ledger.JobFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return list
	}

	// Live data: every peer, a ledger height that grows while we watch,
	// the supply invariant, energy zones in the peer table.
	if err := chromedp.Do(browser, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	waitFor("live connection", `document.querySelector('#conn').dataset.state === 'live'`, 10*time.Second)
	peers := len(net.All()) - 1
	waitFor("peer count", fmt.Sprintf(`Number(document.querySelector('#peer-count').textContent) === %d`, peers), 15*time.Second)
	waitFor("ledger height", `Number(document.querySelector('#ledger-height').textContent.replace(/,/g, '')) > 0`, 10*time.Second)
	first := text("#ledger-height")
	waitFor("ledger height moves", fmt.Sprintf(`Number(document.querySelector('#ledger-height').textContent.replace(/,/g, '')) > %s`, strings.ReplaceAll(first, ",", "")), 15*time.Second)
	if got := text("#supply-ok"); got != "holds" {
		t.Fatalf("supply invariant shows %q", got)
	}
	zone := net.Profiles[1].Zone
	waitFor("energy zones", fmt.Sprintf(`document.querySelector('#peers-table').textContent.includes(%q)`, zone), 10*time.Second)
	waitFor("provider accounts", `document.querySelectorAll('#accounts-table tbody tr').length >= 4`, 10*time.Second)

	// Without the token the page can read but posting is refused, and
	// nothing reaches the ledger.
	click("#post summary")
	click("#post-btn")
	waitFor("post refused", `document.querySelector('#action-msg').textContent.startsWith('post refused') && document.querySelector('#action-msg').textContent.includes('token')`, 10*time.Second)
	if n := len(jobs()); n != 0 {
		t.Fatalf("%d jobs on the ledger after a refused post", n)
	}

	// With the token the job is posted, placed and runs; its rounds show
	// up live with a loss curve; it settles and completes.
	setToken(req.APIToken)
	postJob := func(rounds int) ledger.JobID {
		t.Helper()
		before := len(jobs())
		if err := chromedp.Do(browser,
			chromedp.SetValue(chromedp.CSS(`#post-form [name="rounds"]`), fmt.Sprint(rounds)),
			chromedp.SetValue(chromedp.CSS(`#post-form [name="inner_steps"]`), "8"),
		); err != nil {
			t.Fatal(err)
		}
		click("#post-btn")
		waitFor("job posted", `document.querySelector('#action-msg').textContent.startsWith('posted job')`, 30*time.Second)
		list := jobs()
		if len(list) != before+1 {
			t.Fatalf("%d jobs on the ledger, want %d", len(list), before+1)
		}
		id := list[0].ID // newest first
		waitFor("job listed", fmt.Sprintf(`document.querySelector('#job-title').textContent.includes(%q)`, id), 10*time.Second)
		return id
	}
	postJob(6)
	waitFor("placement explained", `document.querySelectorAll('#placement-table tbody tr.chosen').length === 2`, 10*time.Second)
	waitFor("rounds live on the loss curve", `document.querySelectorAll('#loss-chart circle.eval').length >= 2`, 90*time.Second)
	waitFor("job completed", `document.querySelector('#job-state').textContent === 'completed'`, 90*time.Second)
	waitFor("every round paid", `document.querySelectorAll('#rounds-table tbody tr').length === 6 && !document.querySelector('#rounds-table').textContent.includes('settles later')`, 10*time.Second)

	// The workers serve the model they trained; this node fetches and
	// serves it too (a token action), then answers a prompt with it.
	waitFor("model served by the workers", `document.querySelector('#models-table button') !== null`, 20*time.Second)
	click("#models-table button")
	waitFor("model served here", `document.querySelector('#models-table').textContent.includes('served here')`, 30*time.Second)
	click("#prompt-btn")
	waitFor("completion", `(t => t.length > 'The sun'.length && !t.startsWith('refused'))(document.querySelector('#prompt-out').textContent)`, 30*time.Second)
	shoot(t, browser, "dashboard-job.png", "#jobs")
	shoot(t, browser, "dashboard-full.png", "")
	shoot(t, browser, "dashboard.png", "viewport")

	// Cancelling: refused without the token (the job runs on), done with it.
	id := postJob(200)
	setToken("")
	click("#cancel-btn")
	waitFor("cancel refused", `document.querySelector('#action-msg').textContent.startsWith('cancel refused')`, 10*time.Second)
	if j, err := req.Chain.Job(ctx, id); err != nil || !j.Open() {
		t.Fatalf("job after a refused cancel: %+v, %v", j.State, err)
	}
	setToken(req.APIToken)
	click("#cancel-btn")
	waitFor("cancelled", `document.querySelector('#action-msg').textContent.startsWith('cancelled job')`, 20*time.Second)
	waitFor("state shown", `document.querySelector('#job-state').textContent === 'cancelled'`, 10*time.Second)
	if j, err := req.Chain.Job(ctx, id); err != nil || j.State != ledger.JobCancelled {
		t.Fatalf("job after cancel: %+v, %v", j.State, err)
	}
	waitFor("supply still holds", `document.querySelector('#supply-ok').textContent === 'holds'`, 10*time.Second)
}

// screenshots: with it, the browser test writes its screenshots to
// docs/img (go test ./web -run Browser -screenshots); without it they go
// to the test's temporary directory, so a test run leaves the tree clean.
var screenshots = flag.Bool("screenshots", false, "write the dashboard screenshots to docs/img")

// shoot saves a PNG of the whole page (sel ""), of its top as a window
// shows it (sel "viewport") or of one element.
func shoot(t *testing.T, browser context.Context, name, sel string) {
	t.Helper()
	var action chromedp.Action[[]byte]
	switch sel {
	case "":
		action = chromedp.FullScreenshot(100)
	case "viewport":
		if _, err := chromedp.Run(browser, chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`)); err != nil {
			t.Fatal(err)
		}
		action = chromedp.CaptureScreenshot()
	default:
		action = chromedp.Screenshot(chromedp.CSS(sel))
	}
	png, err := chromedp.Run(browser, action)
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.TempDir(), name)
	if *screenshots {
		path = filepath.Join("..", "docs", "img", name)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved %s (%d bytes)", path, len(png))
}
