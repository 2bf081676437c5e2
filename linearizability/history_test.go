package linearizability

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	h := History{
		put(0, "x", "1", 0, 10),
		put(1, "x", "", 5, 15),
		get(2, "x", nil, 20, 30),
		get(2, "x", val(""), 31, 32),
		get(2, "y z", val("ü\n\"q\""), 33, 34),
		del(0, "x", 40, 50),
		cas(1, "x", nil, "2", true, 60, 70),
		cas(1, "x", val(""), "3", false, 80, 90),
		ambiguous(cas(1, "x", val("2"), "4", false, 100, 110)),
		ambiguous(put(3, "x", "5", 120, 130)),
	}
	path := filepath.Join(t.TempDir(), "history.json")
	if err := h.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, h) {
		t.Fatalf("round trip changed the history:\ngot  %+v\nwant %+v", got, h)
	}
	if a, b := Check(h, CheckOptions{}), Check(got, CheckOptions{}); a.Verdict != b.Verdict {
		t.Fatalf("verdict changed: %s then %s", a.Verdict, b.Verdict)
	}
}

func TestSaveRejectsInvalidUTF8(t *testing.T) {
	h := History{put(0, "x", "\xff", 0, 10)}
	if err := h.Save(filepath.Join(t.TempDir(), "h.json")); err == nil {
		t.Fatal("saved a value JSON cannot carry")
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"version": `{"version": 99, "ops": []}`,
		"kind":    `{"version": 1, "ops": [{"client": 0, "input": {"kind": "scan", "key": "x"}, "call": 0, "return": 1}]}`,
		"time":    `{"version": 1, "ops": [{"client": 0, "input": {"kind": "get", "key": "x"}, "call": 5, "return": 1}]}`,
		"json":    `{"version": 1, "ops": [`,
	} {
		path := filepath.Join(dir, name+".json")
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), "linearizability: load") {
			t.Errorf("%s: got error %v", name, err)
		}
	}
}
