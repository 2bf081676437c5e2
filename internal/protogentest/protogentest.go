// Package protogentest checks, in tests, that checked-in protobuf code is
// what its .proto file generates today. It is for tests only and must not
// be imported by production code.
package protogentest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CheckCurrent regenerates the Go code of proto (a file in the test's
// working directory) into a temporary directory and fails the test for each
// of generated that differs from the checked-in file. It skips when protoc
// or its Go plugins are not installed.
func CheckCurrent(t *testing.T, proto string, generated ...string) {
	t.Helper()
	CheckCurrentIncludes(t, nil, proto, generated...)
}

// CheckCurrentIncludes is CheckCurrent for a proto that imports files from
// other directories: protoc searches the working directory, then includes
// (paths relative to the working directory), as a go:generate line with
// "-I. -I<include>..." does.
func CheckCurrentIncludes(t *testing.T, includes []string, proto string, generated ...string) {
	t.Helper()
	for _, tool := range []string{"protoc", "protoc-gen-go", "protoc-gen-go-grpc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not on PATH", tool)
		}
	}
	dir := t.TempDir()
	var args []string
	if len(includes) > 0 {
		args = append(args, "-I.")
		for _, inc := range includes {
			args = append(args, "-I"+inc)
		}
	}
	args = append(args,
		"--go_out="+dir, "--go_opt=paths=source_relative",
		"--go-grpc_out="+dir, "--go-grpc_opt=paths=source_relative",
		proto)
	cmd := exec.Command("protoc", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, out)
	}
	for _, name := range generated {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run make proto (it regenerates %s)", name, strings.TrimSuffix(proto, ".proto"))
		}
	}
}
