package jobs

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/chain"
	"github.com/gridmind/gridmind/ledger"
)

func TestExcludedFromReadsTheLedgersEvidence(t *testing.T) {
	const self, honest, cheat, rejoined = gridmind.NodeID("self"), gridmind.NodeID("honest"), gridmind.NodeID("cheat"), gridmind.NodeID("rejoined")
	leases := []ledger.Lease{
		{Provider: self, StartHeight: 1},
		{Provider: honest, StartHeight: 1},
		{Provider: cheat, StartHeight: 1, EndHeight: 9},
		{Provider: rejoined, StartHeight: 1, EndHeight: 4},
		{Provider: rejoined, StartHeight: 5},
	}
	open := ledger.Job{ID: "j", State: ledger.JobRunning, Leases: leases}
	got := excludedFrom(open, self)
	if len(got) != 1 || got[cheat] != 9 {
		t.Errorf("open job: %v, want only the cheater at height 9", got)
	}
	if got := excludedFrom(open, cheat); got[cheat] != 0 {
		t.Errorf("a worker bans itself: %v", got)
	}
	closed := open
	closed.State = ledger.JobCompleted
	closed.Leases = []ledger.Lease{{Provider: honest, StartHeight: 1, EndHeight: 20}}
	if got := excludedFrom(closed, self); len(got) != 0 {
		t.Errorf("a closed job's ended leases are no evidence: %v", got)
	}
}

// jobLedger serves one job whose record the test changes; it counts reads.
type jobLedger struct {
	mu    sync.Mutex
	job   ledger.Job
	reads chan struct{}
}

func (l *jobLedger) Job(ctx context.Context, id ledger.JobID) (ledger.Job, error) {
	l.mu.Lock()
	j := l.job
	j.Leases = slices.Clone(j.Leases) // a ledger query decodes a fresh copy
	l.mu.Unlock()
	select {
	case l.reads <- struct{}{}:
	case <-ctx.Done():
	}
	return j, nil
}
func (l *jobLedger) Jobs(context.Context, ledger.JobFilter) ([]ledger.Job, error) { return nil, nil }
func (l *jobLedger) Status(context.Context) (*chain.Status, error)                { return nil, nil }
func (l *jobLedger) Params(context.Context) (ledger.Params, error)                { return ledger.Params{}, nil }

// workerRecorder records what the job's watcher asks of the worker; its
// Leave ends the worker's context, as a worker finishing its round does.
type workerRecorder struct {
	bans   chan gridmind.NodeID
	leave  chan struct{}
	cancel context.CancelFunc
}

func (w *workerRecorder) Ban(peer gridmind.NodeID, _ string) { w.bans <- peer }
func (w *workerRecorder) Leave()                             { close(w.leave); w.cancel() }

// The job's one watcher bans each peer the ledger excludes once, and stops
// the worker once its own lease ends.
func TestWatchJobBansTheExcludedAndStopsAtTheLeasesEnd(t *testing.T) {
	const self, cheat = gridmind.NodeID("self"), gridmind.NodeID("cheat")
	l := &jobLedger{reads: make(chan struct{}), job: ledger.Job{ID: "j", State: ledger.JobRunning,
		Leases: []ledger.Lease{{Provider: self, StartHeight: 1}, {Provider: cheat, StartHeight: 1}}}}
	p := &Provider{Ledger: l, LeaseCheckEvery: time.Millisecond, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &workerRecorder{bans: make(chan gridmind.NodeID, 4), leave: make(chan struct{}), cancel: cancel}
	p.setWorker("j", w)
	done := make(chan struct{})
	go func() { defer close(done); p.watchJob(ctx, cancel, "j", self) }()
	<-l.reads
	<-l.reads // two reads of an honest record: nobody banned
	select {
	case peer := <-w.bans:
		t.Fatalf("banned %s before any evidence", peer)
	default:
	}
	l.mu.Lock()
	l.job.Leases[1].EndHeight = 12 // a fraud proof excluded it
	l.mu.Unlock()
	<-l.reads
	<-l.reads // the read after the change has been acted on
	select {
	case peer := <-w.bans:
		if peer != cheat {
			t.Fatalf("banned %s, want the cheater", peer)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the excluded peer was not banned")
	}
	<-l.reads
	<-l.reads
	if len(w.bans) != 0 {
		t.Errorf("banned again: %s", <-w.bans)
	}
	select {
	case <-w.leave:
		t.Fatal("asked to leave while leased on a running job")
	default:
	}

	l.mu.Lock()
	l.job.Leases[0].EndHeight = 20 // the job's end ended self's lease too
	l.job.State = ledger.JobCompleted
	l.mu.Unlock()
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case <-l.reads: // each read blocks until the test takes it
		case <-done:
			break wait
		case <-deadline:
			t.Fatal("the watcher did not stop the worker after its lease ended")
		}
	}
	select {
	case <-w.leave:
	default:
		t.Error("stopped without asking the worker to leave at the round's end")
	}
	if ctx.Err() == nil {
		t.Error("the worker's context was not cancelled")
	}
}

func TestAuditKeepFitsTheBudget(t *testing.T) {
	for _, tc := range []struct{ params, want int }{
		{0, 6}, {1_000, 256}, {224_000, 74}, {10_000_000, 6},
	} {
		if got := auditKeep(tc.params); got != tc.want {
			t.Errorf("auditKeep(%d) = %d, want %d", tc.params, got, tc.want)
		}
	}
}
