package dilocotest

import (
	"crypto/ed25519"
	"io"

	"github.com/gridmind/gridmind"
)

// Keys draws k workers' signing keys, and their ids, from rng: a harness
// seeds rng so that a run's workers (and so its leaders and reducers) are
// the same on every run.
func Keys(rng io.Reader, k int) ([]ed25519.PrivateKey, []gridmind.NodeID) {
	keys := make([]ed25519.PrivateKey, k)
	ids := make([]gridmind.NodeID, k)
	for i := range keys {
		pub, priv, _ := ed25519.GenerateKey(rng)
		keys[i], ids[i] = priv, gridmind.NodeIDFromPublicKey(pub)
	}
	return keys, ids
}

// Trainers makes k trainers with newTrainer. The returned closeAll closes
// every trainer made, and is to be called on success and on error alike.
func Trainers(k int, newTrainer func() (gridmind.Trainer, error)) (trainers []gridmind.Trainer, closeAll func(), err error) {
	trainers = make([]gridmind.Trainer, 0, k)
	closeAll = func() {
		for _, t := range trainers {
			_ = t.Close()
		}
	}
	for range k {
		t, err := newTrainer()
		if err != nil {
			return nil, closeAll, err
		}
		trainers = append(trainers, t)
	}
	return trainers, closeAll, nil
}
