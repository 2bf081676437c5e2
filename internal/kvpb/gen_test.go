package kvpb

import (
	"testing"

	"github.com/strata-kv/strata/internal/protogentest"
)

// TestGeneratedCodeIsCurrent checks the checked-in Go code against
// kvpb.proto; it is skipped when the code generators are not installed.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protogentest.CheckCurrentIncludes(t, []string{"../../api"}, "kvpb.proto", "kvpb.pb.go")
}

// TestImportResolves checks that kvpb.proto's import of strata.proto names
// the file package api registers, so the descriptor links to it rather
// than to a placeholder.
func TestImportResolves(t *testing.T) {
	imps := File_kvpb_proto.Imports()
	if imps.Len() != 1 {
		t.Fatalf("kvpb.proto has %d imports, want 1", imps.Len())
	}
	if imp := imps.Get(0); imp.IsPlaceholder() || imp.Package() != "strata.v1" {
		t.Fatalf("import %q resolves to a placeholder or package %q", imp.Path(), imp.Package())
	}
}
