package kvpb

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/strata-kv/strata/internal/protogentest"
)

// TestGeneratedCodeIsCurrent checks the checked-in Go code against
// kvpb.proto; it is skipped when the code generators are not installed.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	protogentest.CheckCurrentIncludes(t, []string{"../../api"}, "kvpb.proto", "kvpb.pb.go")
}

// TestImportResolves checks that kvpb.proto's imports (strata.proto, and
// descriptor.proto for the flags option) name the files their Go packages
// register, so the descriptor links to them rather than to placeholders.
func TestImportResolves(t *testing.T) {
	want := map[string]protoreflect.FullName{
		"strata.proto":                     "strata.v1",
		"google/protobuf/descriptor.proto": "google.protobuf",
	}
	imps := File_kvpb_proto.Imports()
	if imps.Len() != len(want) {
		t.Fatalf("kvpb.proto has %d imports, want %d", imps.Len(), len(want))
	}
	for i := 0; i < imps.Len(); i++ {
		if imp := imps.Get(i); imp.IsPlaceholder() || imp.Package() != want[imp.Path()] {
			t.Errorf("import %q resolves to a placeholder or package %q", imp.Path(), imp.Package())
		}
	}
}
