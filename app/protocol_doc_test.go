package app

import (
	"os"
	"strings"
	"testing"

	"github.com/gridmind/gridmind/diloco"
	"github.com/gridmind/gridmind/jobs"
	"github.com/gridmind/gridmind/node"
	"github.com/gridmind/gridmind/p2p"
	"github.com/gridmind/gridmind/serve"
)

// TestProtocolIDsAreDocumented: every topic and stream protocol a node
// speaks is in docs/PROTOCOL.md, so a new or renamed one cannot ship
// undocumented.
func TestProtocolIDsAreDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, id := range []string{
		node.PresenceTopic, ProtocolModel, ProtocolInferAudit, serve.Protocol, jobs.ProtocolJob, jobs.ProtocolReport, jobs.ProtocolAudit,
		diloco.ProtocolControl, diloco.ProtocolAllReduce, diloco.ProtocolState,
		strings.Replace(diloco.TopicName("JOB"), "JOB", "<job>", 1), p2p.DHTPrefix + "/kad/1.0.0",
	} {
		if !strings.Contains(doc, "`"+id+"`") {
			t.Errorf("docs/PROTOCOL.md does not document %s", id)
		}
	}
}
