package linearizability

import (
	"strings"
	"testing"
)

func TestCheckHandWritten(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    History
		want Verdict
	}{
		{name: "empty", h: nil, want: Ok},
		{
			name: "sequential put get",
			h:    History{put(0, "x", "1", 0, 10), get(0, "x", val("1"), 20, 30)},
			want: Ok,
		},
		{
			name: "stale read",
			h: History{
				put(0, "x", "1", 0, 10),
				put(0, "x", "2", 20, 30),
				get(1, "x", val("1"), 40, 50),
			},
			want: Illegal,
		},
		{
			name: "lost write",
			h:    History{put(0, "x", "1", 0, 10), get(1, "x", nil, 20, 30)},
			want: Illegal,
		},
		{
			name: "read of a value never written",
			h:    History{get(0, "x", val("1"), 0, 10)},
			want: Illegal,
		},
		{
			name: "cas succeeds against a value that was never there",
			h: History{
				put(0, "x", "1", 0, 10),
				cas(1, "x", val("5"), "6", true, 20, 30),
			},
			want: Illegal,
		},
		{
			name: "cas expecting absent succeeds on a present key",
			h: History{
				put(0, "x", "1", 0, 10),
				cas(1, "x", nil, "2", true, 20, 30),
			},
			want: Illegal,
		},
		{
			name: "cas fails although the value matched",
			h: History{
				put(0, "x", "1", 0, 10),
				cas(1, "x", val("1"), "2", false, 20, 30),
			},
			want: Illegal,
		},
		{
			name: "cas on absent key",
			h: History{
				cas(0, "x", nil, "1", true, 0, 10),
				cas(0, "x", nil, "2", false, 20, 30),
				cas(0, "x", val("1"), "3", true, 40, 50),
				get(1, "x", val("3"), 60, 70),
			},
			want: Ok,
		},
		{
			name: "empty value is not absent",
			h:    History{put(0, "x", "", 0, 10), get(1, "x", nil, 20, 30)},
			want: Illegal,
		},
		{
			name: "absent is not the empty value",
			h:    History{get(0, "x", val(""), 0, 10)},
			want: Illegal,
		},
		{
			name: "empty value and cas against it",
			h: History{
				put(0, "x", "", 0, 10),
				get(1, "x", val(""), 20, 30),
				cas(1, "x", val(""), "1", true, 40, 50),
			},
			want: Ok,
		},
		{
			name: "read after delete sees the old value",
			h: History{
				put(0, "x", "1", 0, 10),
				del(0, "x", 20, 30),
				get(1, "x", val("1"), 40, 50),
			},
			want: Illegal,
		},
		{
			name: "delete then absent",
			h: History{
				put(0, "x", "1", 0, 10),
				del(0, "x", 20, 30),
				get(1, "x", nil, 40, 50),
			},
			want: Ok,
		},
		{
			name: "concurrent overlapping ops",
			h: History{
				put(0, "x", "1", 0, 100),
				get(1, "x", nil, 10, 20),
				get(1, "x", val("1"), 30, 40),
				put(2, "x", "2", 35, 90),
				get(1, "x", val("2"), 50, 60),
				get(3, "x", val("2"), 45, 95), // reads 2 whichever put wins
				cas(3, "x", val("2"), "3", true, 96, 120),
				get(1, "x", val("2"), 97, 110), // before the cas
				get(0, "x", val("3"), 115, 130),
			},
			want: Ok,
		},
		{
			name: "overlapping reads disagree on order",
			h: History{
				put(0, "x", "1", 0, 100),
				put(1, "x", "2", 0, 100),
				get(2, "x", val("1"), 10, 20),
				get(2, "x", val("2"), 30, 40),
				get(3, "x", val("2"), 10, 20),
				get(3, "x", val("1"), 30, 40),
			},
			want: Illegal,
		},
		{
			name: "independent keys",
			h: History{
				put(0, "x", "1", 0, 10),
				put(1, "y", "1", 0, 10),
				get(0, "y", val("1"), 20, 30),
				get(1, "x", val("1"), 20, 30),
			},
			want: Ok,
		},
		{
			name: "one bad key among good ones",
			h: History{
				put(0, "x", "1", 0, 10),
				put(1, "y", "1", 0, 10),
				get(0, "y", val("1"), 20, 30),
				get(1, "x", nil, 20, 30),
			},
			want: Illegal,
		},
		{
			name: "ambiguous put took effect",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(put(1, "x", "2", 20, 30)),
				get(2, "x", val("2"), 40, 50),
			},
			want: Ok,
		},
		{
			name: "ambiguous put did not take effect",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(put(1, "x", "2", 20, 30)),
				get(2, "x", val("1"), 40, 50),
			},
			want: Ok,
		},
		{
			name: "ambiguous put took effect long after the client gave up",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(put(1, "x", "2", 20, 30)),
				get(2, "x", val("1"), 40, 50),
				get(2, "x", val("2"), 1000, 1010),
			},
			want: Ok,
		},
		{
			name: "ambiguous put cannot take effect before its call",
			h: History{
				put(0, "x", "1", 0, 10),
				get(2, "x", val("2"), 20, 30),
				ambiguous(put(1, "x", "2", 40, 50)),
			},
			want: Illegal,
		},
		{
			name: "ambiguous put takes effect once",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(put(1, "x", "2", 20, 30)),
				get(2, "x", val("2"), 40, 50),
				get(2, "x", val("1"), 60, 70),
			},
			want: Illegal,
		},
		{
			name: "ambiguous delete took effect",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(del(1, "x", 20, 30)),
				get(2, "x", val("1"), 40, 50),
				get(2, "x", nil, 60, 70),
			},
			want: Ok,
		},
		{
			name: "ambiguous cas took effect",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(cas(1, "x", val("1"), "2", false, 20, 30)),
				get(2, "x", val("2"), 40, 50),
			},
			want: Ok,
		},
		{
			name: "ambiguous cas did not take effect",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(cas(1, "x", val("1"), "2", false, 20, 30)),
				get(2, "x", val("1"), 40, 50),
			},
			want: Ok,
		},
		{
			name: "ambiguous cas cannot apply against a mismatched value",
			h: History{
				put(0, "x", "1", 0, 10),
				ambiguous(cas(1, "x", val("7"), "2", false, 20, 30)),
				get(2, "x", val("2"), 40, 50),
			},
			want: Illegal,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(tc.h, CheckOptions{})
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s\n%s", res.Verdict, tc.want, res.Summary)
			}
			if res.Verdict == Illegal && res.Summary == "" {
				t.Fatalf("Illegal without a summary")
			}
			t.Log(res)
		})
	}
}

func TestCheckCounts(t *testing.T) {
	h := History{
		put(0, "x", "1", 0, 10),
		ambiguous(put(1, "x", "2", 20, 30)),
		get(2, "y", nil, 40, 50),
	}
	res := Check(h, CheckOptions{})
	if res.Verdict != Ok || res.Ops != 3 || res.Indeterminate != 1 || res.Partitions != 2 {
		t.Fatalf("got %+v", res)
	}
	if s := res.String(); !strings.Contains(s, "Ok: 3 ops (1 indeterminate, 1 dropped) over 2 keys") {
		t.Fatalf("String() = %q", s)
	}
}

func TestCheckSummary(t *testing.T) {
	h := History{
		put(0, "big", "1", 0, 10),
		get(1, "big", val("1"), 20, 30),
		put(0, "bad", "1", 0, 10),
		put(0, "bad", "2", 20, 30),
		get(1, "bad", val("1"), 40, 50),
		put(0, "worse", "1", 0, 10),
		put(0, "worse", "2", 20, 30),
		put(0, "worse", "3", 40, 50),
		get(1, "worse", val("1"), 60, 70),
	}
	res := Check(h, CheckOptions{})
	if res.Verdict != Illegal {
		t.Fatalf("verdict %s", res.Verdict)
	}
	for _, want := range []string{
		"2 of 3 keys not linearizable",
		`key "bad" with 3 ops`,
		`client 1   [40, 50] get("bad") -> "1"`,
	} {
		if !strings.Contains(res.Summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, res.Summary)
		}
	}
	if strings.Contains(res.Summary, "worse") {
		t.Errorf("summary should show only the smallest failing key:\n%s", res.Summary)
	}
	t.Log(res.Summary)
}

func TestStepIsPure(t *testing.T) {
	m := KVModel()
	s0 := m.Init()
	ok, s1 := m.Step(s0, Input{Kind: KindPut, Key: "x", Value: "1"}, Output{})
	if !ok || s0 != (keyState{}) || s1 != (keyState{present: true, value: "1"}) {
		t.Fatalf("put: ok=%t s0=%v s1=%v", ok, s0, s1)
	}
	if m.Hash(keyState{}) == m.Hash(keyState{present: true}) {
		t.Fatalf("absent and empty hash alike")
	}
	if got := m.DescribeOperation(Input{Kind: KindCAS, Key: "x", Value: "2"}, Output{OK: true}); got != `cas("x", absent, "2") -> true` {
		t.Fatalf("describe: %s", got)
	}
}
