package kvpb

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/strata-kv/strata/api"
	"google.golang.org/protobuf/proto"
)

func getReq(k string) *RequestUnion {
	return &RequestUnion{Value: &RequestUnion_Get{Get: &api.GetRequest{Key: []byte(k)}}}
}

func putReq(k, v string) *RequestUnion {
	return &RequestUnion{Value: &RequestUnion_Put{Put: &api.PutRequest{Key: []byte(k), Value: []byte(v)}}}
}

func scanReq(start string, end []byte) *RequestUnion {
	return &RequestUnion{Value: &RequestUnion_Scan{Scan: &api.ScanRequest{Start: []byte(start), End: end}}}
}

func sysPutReq(k string) *RequestUnion {
	return &RequestUnion{Value: &RequestUnion_SystemPut{SystemPut: &SystemPutRequest{Key: []byte(k)}}}
}

func batch(reqs ...*RequestUnion) *BatchRequest {
	return &BatchRequest{Header: &Header{ShardId: 2}, Requests: reqs}
}

func TestValidate(t *testing.T) {
	transfer := &RequestUnion{Value: &RequestUnion_TransferLeader{TransferLeader: &TransferLeaderRequest{NodeId: 2}}}
	gc := &RequestUnion{Value: &RequestUnion_Gc{Gc: &GCRequest{Threshold: 5, MaxVersions: 10}}}
	many := make([]*RequestUnion, MaxBatchRequests+1)
	for i := range many {
		many[i] = putReq("k", "")
	}
	big := strings.Repeat("v", MaxBatchBytes/4)
	for _, tc := range []struct {
		name string
		ba   *BatchRequest
		want error  // nil: valid
		text string // in the error's text
	}{
		{"get", batch(getReq("a")), nil, ""},
		{"reads and writes", batch(getReq("a"), putReq("b", "v"), scanReq("", nil)), nil, ""},
		{"scan empty start bounded", batch(scanReq("", []byte("z"))), nil, ""},
		{"system", batch(sysPutReq("shard/x"), sysPutReq("shard/y")), nil, ""},
		{"admin alone", batch(transfer), nil, ""},
		{"gc alone", batch(gc), nil, ""},
		{"progress of node 0", batch(&RequestUnion{Value: &RequestUnion_Progress{Progress: &ProgressRequest{}}}), nil, ""},
		{"tso limit", batch(&RequestUnion{Value: &RequestUnion_TsoLimit{TsoLimit: &TSOLimitRequest{Limit: 7}}}), nil, ""},
		{"get timestamp", batch(&RequestUnion{Value: &RequestUnion_GetTimestamp{GetTimestamp: &GetTimestampRequest{Count: MaxTimestampCount}}}), nil, ""},
		{"no header", &BatchRequest{Requests: []*RequestUnion{getReq("a")}}, nil, ""},

		{"nil", nil, ErrBadBatch, "no batch"},
		{"empty", batch(), ErrBadBatch, "no requests"},
		{"unset case", batch(getReq("a"), &RequestUnion{}), ErrBadBatch, "request 1: no request"},
		{"empty get key", batch(getReq("")), ErrBadBatch, "request 0 (Get): empty key"},
		{"empty put key", batch(putReq("", "v")), ErrBadBatch, "empty key"},
		{"empty delete key", batch(&RequestUnion{Value: &RequestUnion_Delete{Delete: &api.DeleteRequest{}}}), ErrBadBatch, "empty key"},
		{"empty cas key", batch(&RequestUnion{Value: &RequestUnion_Cas{Cas: &api.CompareAndSwapRequest{}}}), ErrBadBatch, "empty key"},
		{"empty system key", batch(sysPutReq("")), ErrBadBatch, "empty key"},
		{"scan end before start", batch(scanReq("b", []byte("a"))), ErrBadBatch, "not after start"},
		{"scan end at start", batch(scanReq("b", []byte("b"))), ErrBadBatch, "not after start"},
		{"scan empty end", batch(scanReq("", []byte{})), ErrBadBatch, "not after start"},
		{"system scan end before start", batch(&RequestUnion{Value: &RequestUnion_SystemScan{
			SystemScan: &SystemScanRequest{Start: []byte("b"), End: []byte("a")}}}), ErrBadBatch, "not after start"},
		{"read level on the get", batch(&RequestUnion{Value: &RequestUnion_Get{Get: &api.GetRequest{
			Key: []byte("a"), ReadLevel: api.ReadLevel_READ_LEVEL_SERIALIZABLE}}}), ErrBadBatch, "belongs in the header"},
		{"unknown read level", &BatchRequest{Header: &Header{ReadLevel: 9}, Requests: []*RequestUnion{getReq("a")}}, ErrBadBatch, "read level 9"},
		{"admin with another", batch(getReq("a"), transfer), ErrBadBatch, "must be alone"},
		{"gc with another", batch(gc, putReq("a", "")), ErrBadBatch, "must be alone"},
		{"two admin", batch(transfer, transfer), ErrBadBatch, "must be alone"},
		{"system mixed", batch(sysPutReq("s"), putReq("a", "")), ErrBadBatch, "1 system requests mixed with 1 others"},
		{"gc threshold 0", batch(&RequestUnion{Value: &RequestUnion_Gc{Gc: &GCRequest{MaxVersions: 1}}}), ErrBadBatch, "threshold 0"},
		{"gc max_versions 0", batch(&RequestUnion{Value: &RequestUnion_Gc{Gc: &GCRequest{Threshold: 1}}}), ErrBadBatch, "max_versions 0"},
		{"tso limit 0", batch(&RequestUnion{Value: &RequestUnion_TsoLimit{TsoLimit: &TSOLimitRequest{}}}), ErrBadBatch, "limit 0"},
		{"no timestamps", batch(&RequestUnion{Value: &RequestUnion_GetTimestamp{GetTimestamp: &GetTimestampRequest{}}}), ErrBadBatch, "count 0"},
		{"too many timestamps", batch(&RequestUnion{Value: &RequestUnion_GetTimestamp{
			GetTimestamp: &GetTimestampRequest{Count: MaxTimestampCount + 1}}}), ErrBadBatch, "count 65537"},
		{"get timestamp with another", batch(&RequestUnion{Value: &RequestUnion_GetTimestamp{
			GetTimestamp: &GetTimestampRequest{Count: 1}}}, getReq("a")), ErrBadBatch, "must be alone"},
		{"change without type", batch(&RequestUnion{Value: &RequestUnion_ChangeReplicas{
			ChangeReplicas: &ChangeReplicasRequest{NodeId: 2}}}), ErrBadBatch, "change type 0"},
		{"change of unknown type", batch(&RequestUnion{Value: &RequestUnion_ChangeReplicas{
			ChangeReplicas: &ChangeReplicasRequest{Type: 7, NodeId: 2}}}), ErrBadBatch, "change type 7"},
		{"change without node", batch(&RequestUnion{Value: &RequestUnion_ChangeReplicas{
			ChangeReplicas: &ChangeReplicasRequest{Type: ChangeReplicasType_CHANGE_REPLICAS_TYPE_REMOVE}}}), ErrBadBatch, "no node ID"},
		{"transfer without node", batch(&RequestUnion{Value: &RequestUnion_TransferLeader{
			TransferLeader: &TransferLeaderRequest{}}}), ErrBadBatch, "no node ID"},
		{"too many", batch(many...), ErrRequestTooLarge, "10001 requests"},
		{"too many bytes", batch(putReq("a", big), putReq("b", big), putReq("c", big), putReq("d", big), putReq("e", big)),
			ErrRequestTooLarge, "limit 34603008"},
	} {
		err := Validate(tc.ba)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		case tc.want != nil && !strings.Contains(err.Error(), tc.text):
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.text)
		}
	}
}

func TestValidateResponse(t *testing.T) {
	ba := batch(getReq("a"), putReq("b", ""))
	ok := &BatchResponse{Responses: []*ResponseUnion{
		{Value: &ResponseUnion_Get{Get: &api.GetResponse{}}},
		{Value: &ResponseUnion_Put{Put: &api.PutResponse{}}},
	}}
	if err := ValidateResponse(ba, ok); err != nil {
		t.Fatal(err)
	}
	if err := ValidateResponse(ba, &BatchResponse{Error: ErrorOf(ErrAmbiguous)}); err != nil {
		t.Fatal(err)
	}
	for name, br := range map[string]*BatchResponse{
		"nil":            nil,
		"error and more": {Error: ErrorOf(ErrAmbiguous), Responses: ok.Responses},
		"too few":        {Responses: ok.Responses[:1]},
		"swapped":        {Responses: []*ResponseUnion{ok.Responses[1], ok.Responses[0]}},
		"unset":          {Responses: []*ResponseUnion{ok.Responses[0], {}}},
	} {
		if err := ValidateResponse(ba, br); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestValidateNodeRequest(t *testing.T) {
	d := &ShardDescriptor{Id: 2, Start: []byte("a"), End: []byte("b"), Replicas: []uint64{1, 2}}
	create := func(d *ShardDescriptor) *NodeRequest {
		return &NodeRequest{NodeId: 1, Value: &NodeRequest_CreateReplica{CreateReplica: &CreateReplicaRequest{Shard: d}}}
	}
	if err := ValidateNodeRequest(create(d)); err != nil {
		t.Fatal(err)
	}
	if err := ValidateNodeRequest(&NodeRequest{NodeId: 1, Value: &NodeRequest_Directory{}}); err != nil {
		t.Fatal(err)
	}
	unbounded := &ShardDescriptor{Id: 2, Start: []byte("a")}
	if err := ValidateNodeRequest(create(unbounded)); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*NodeRequest{
		"nil":           nil,
		"no node":       {Value: &NodeRequest_Directory{}},
		"no case":       {NodeId: 1},
		"no descriptor": create(nil),
		"no shard ID":   create(&ShardDescriptor{Start: []byte("a")}),
		"empty range":   create(&ShardDescriptor{Id: 2, Start: []byte("b"), End: []byte("b")}),
		"zero replica":  create(&ShardDescriptor{Id: 2, Replicas: []uint64{0}}),
		"repeated":      create(&ShardDescriptor{Id: 2, Replicas: []uint64{3, 3}}),
	} {
		if err := ValidateNodeRequest(r); !errors.Is(err, ErrBadBatch) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEndPresence checks what the model relies on for scan ends and
// descriptor ends: an unset optional bytes field decodes as nil
// (unbounded) and a set empty one as non-nil.
func TestEndPresence(t *testing.T) {
	for _, end := range [][]byte{nil, {}, []byte("z")} {
		b, err := proto.Marshal(&ShardDescriptor{Id: 1, End: end})
		if err != nil {
			t.Fatal(err)
		}
		var d ShardDescriptor
		if err := proto.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		if (d.End == nil) != (end == nil) || !bytes.Equal(d.End, end) {
			t.Errorf("end %q came back as %q (nil %v)", end, d.End, d.End == nil)
		}
	}
}

func FuzzBatchRequest(f *testing.F) {
	for _, ba := range []*BatchRequest{
		batch(getReq("a"), putReq("b", "v"), scanReq("a", []byte("c"))),
		batch(sysPutReq("s")),
		batch(&RequestUnion{Value: &RequestUnion_ChangeReplicas{ChangeReplicas: &ChangeReplicasRequest{Type: 1, NodeId: 2}}}),
		{Header: &Header{ShardId: 1, ShardGeneration: 2, Timestamp: 3, ReadLevel: 1, MaxKeys: 4, MaxBytes: 5}},
	} {
		b, _ := proto.Marshal(ba)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ba BatchRequest
		if proto.Unmarshal(b, &ba) != nil {
			return
		}
		err := Validate(&ba)
		if err != nil && !errors.Is(err, ErrBadBatch) && !errors.Is(err, ErrRequestTooLarge) {
			t.Fatalf("Validate: unclassified error %v", err)
		}
		again, merr := proto.Marshal(&ba)
		if merr != nil {
			t.Fatal(merr)
		}
		var ba2 BatchRequest
		if err := proto.Unmarshal(again, &ba2); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(&ba, &ba2) {
			t.Fatal("not equal after a round trip")
		}
		if err2 := Validate(&ba2); (err == nil) != (err2 == nil) {
			t.Fatalf("Validate changed its mind after a round trip: %v, then %v", err, err2)
		}
		if err != nil {
			return
		}
		// A valid batch has known methods whose flags obey the rules.
		for _, r := range ba.Requests {
			if MethodOf(r) == Unknown {
				t.Fatal("valid batch with an unknown request")
			}
		}
		if ba.IsAdmin() && len(ba.Requests) != 1 {
			t.Fatal("valid batch with an admin request not alone")
		}
	})
}

func FuzzBatchResponse(f *testing.F) {
	ba := batch(getReq("a"), scanReq("a", nil))
	for _, br := range []*BatchResponse{
		{Responses: []*ResponseUnion{
			{Value: &ResponseUnion_Get{Get: &api.GetResponse{Found: true, Value: []byte("v")}}},
			{Value: &ResponseUnion_Scan{Scan: &ScanResponse{Kvs: []*api.KeyValue{{Key: []byte("a")}}, ResumeKey: []byte("b")}}},
		}, Timestamp: 7},
		{Error: ErrorOf(&ShardMismatchError{Descriptors: []*ShardDescriptor{{Id: 2}}})},
	} {
		b, _ := proto.Marshal(br)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var br BatchResponse
		if proto.Unmarshal(b, &br) != nil {
			return
		}
		if err := ValidateResponse(ba, &br); err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if br.Error == nil && len(br.Responses) != len(ba.Requests) {
			t.Fatal("valid response with the wrong count")
		}
		_ = br.GetError().Err()
	})
}

func FuzzNodeRequest(f *testing.F) {
	for _, r := range []*NodeRequest{
		{NodeId: 1, Value: &NodeRequest_Directory{Directory: &DirectoryRequest{}}},
		{NodeId: 2, Value: &NodeRequest_CreateReplica{CreateReplica: &CreateReplicaRequest{
			Shard: &ShardDescriptor{Id: 3, Generation: 1, Start: []byte("a"), End: []byte("b"), Replicas: []uint64{1, 2}}}}},
	} {
		b, _ := proto.Marshal(r)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r NodeRequest
		if proto.Unmarshal(b, &r) != nil {
			return
		}
		if err := ValidateNodeRequest(&r); err != nil && !errors.Is(err, ErrBadBatch) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}
