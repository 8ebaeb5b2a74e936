package trainlocal

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridmind/gridmind/gomlx"
)

func TestLocalJobTrainsAndAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("trains the MLP on three libp2p workers (~20 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	data := filepath.Join(dir, "text.txt")
	// A small user corpus, as --data would give: repetitive text is quick to learn.
	os.WriteFile(data, []byte(strings.Repeat("the quick brown fox jumps over the lazy dog.\n", 400)), 0o644)
	var out bytes.Buffer
	res, err := Run(ctx, Options{Workers: 3, Rounds: 3, InnerSteps: 15, Model: "mlp", BatchSize: 32, Data: data, Seed: 5, SaveModel: filepath.Join(dir, "model.bin"), Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !res.Identical || len(res.Losses) != 3 {
		t.Fatalf("workers disagree or rounds missing: %+v\n%s", res, out.String())
	}
	if last := res.Losses[len(res.Losses)-1]; !(last < res.StartLoss-1) {
		t.Fatalf("loss %.3f → %.3f", res.StartLoss, last)
	}
	m, err := gomlx.New(gomlx.Config{Kind: "mlp", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	f, err := os.Open(filepath.Join(dir, "model.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := m.Load(f); err != nil {
		t.Fatalf("saved model does not load: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Workers: 0, Rounds: 1, InnerSteps: 1, Model: "mlp"},
		{Workers: 2, Rounds: 1, InnerSteps: 1, Model: "rnn"},
		{Workers: 2, Rounds: 1, InnerSteps: 1, Model: "mlp", Combiner: "max"},
		{Workers: 2, Rounds: 1, InnerSteps: 1, Model: "mlp", Data: "/does/not/exist"},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
