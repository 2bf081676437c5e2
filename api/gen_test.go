package api

import (
	"testing"

	"github.com/strata-kv/strata/internal/protogentest"
)

// TestGeneratedCodeIsCurrent checks the checked-in Go code against
// strata.proto; it is skipped when the code generators are not installed.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protogentest.CheckCurrent(t, "strata.proto", "strata.pb.go", "strata_grpc.pb.go")
}
