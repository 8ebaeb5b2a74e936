package diloco

import (
	"testing"
	"time"

	"github.com/gridmind/gridmind/train"
)

func FuzzOpenControl(f *testing.F) {
	keys, ids := testKeys(11, 2)
	now := time.Unix(1_800_000_000, 0)
	good, _ := newSigner(keys[0], "job", now).seal(train.Message{Type: train.MsgAnnounce, From: ids[0], Round: 2, Participants: ids}, now)
	f.Add(good)
	f.Add([]byte(`{"type":"train","from":"x","seq":1,"time":0,"body":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o := newOpener("job", ids)
		m, err := o.open(data, now)
		if err == nil && (m.From != ids[0] && m.From != ids[1] || m.Bulk()) {
			t.Fatalf("accepted %s from %s", m.Type, m.From.Short())
		}
	})
}
