package shard

import (
	"reflect"
	"testing"
)

func TestPlanUpReplication(t *testing.T) {
	ds := []Descriptor{
		{ID: 2, Replicas: []uint64{1, 2, 3}},
		{ID: 3, Replicas: []uint64{1, 2}},    // one short
		{ID: 4, Replicas: []uint64{1}},       // two short
		{ID: 5, Replicas: []uint64{2, 3, 4}}, // full
	}
	got := PlanUpReplication(ds, []uint64{1, 2, 3, 4}, 3)
	// Loads before: 1→3, 2→3, 3→2, 4→1. Shard 3 takes node 4 (least
	// loaded); shard 4 then takes 3 and 4 (loads 2 and 2 beat 3).
	want := []Move{{Shard: 3, Node: 4}, {Shard: 4, Node: 3}, {Shard: 4, Node: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	// Too few candidates: add what can be added, never a duplicate.
	got = PlanUpReplication([]Descriptor{{ID: 2, Replicas: []uint64{1}}}, []uint64{1, 2}, 3)
	if !reflect.DeepEqual(got, []Move{{Shard: 2, Node: 2}}) {
		t.Fatalf("plan with two candidates = %v", got)
	}
	if got := PlanUpReplication(ds[:1], []uint64{1, 2, 3}, 3); len(got) != 0 {
		t.Fatalf("a full shard got moves %v", got)
	}
}
