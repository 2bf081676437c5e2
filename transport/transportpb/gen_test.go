package transportpb

import (
	"testing"

	"github.com/strata-kv/strata/internal/protogentest"
)

// TestGeneratedCodeIsCurrent checks the checked-in Go code against
// transport.proto; it is skipped when the code generators are not installed.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protogentest.CheckCurrent(t, "transport.proto", "transport.pb.go", "transport_grpc.pb.go")
}
