package kvpb

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/strata-kv/strata/api"
	"google.golang.org/protobuf/proto"
)

// Limits on one batch.
const (
	// MaxBatchRequests is the most requests of one batch (and so the most
	// mutations of one replicated command).
	MaxBatchRequests = 10_000
	// MaxBatchBytes is the largest encoded batch: the public API's 32 MiB of
	// keys and values (strata.MaxBatchSize) plus 1 MiB of framing, which is
	// also what a node's client port accepts, well below the transport's
	// 64 MiB message limit.
	MaxBatchBytes = 33 << 20
)

var (
	// ErrBadBatch reports a batch or node request that is not well formed;
	// sending it again cannot succeed.
	ErrBadBatch = errors.New("kvpb: malformed request")
	// ErrBadResponse reports a response that does not answer its request.
	ErrBadResponse = errors.New("kvpb: malformed response")
)

// Validate checks that ba is well formed: it has between 1 and
// MaxBatchRequests requests of known methods and is at most MaxBatchBytes
// encoded (else an error wrapping ErrRequestTooLarge); its read level is
// known; keys are set; set scan ends are after their starts; a request
// flagged IsAlone (every admin request) is alone; system requests are not
// mixed with others; and each request's arguments make sense (else an
// error wrapping ErrBadBatch). It does not check the header's shard or
// generation: that is the replica's job.
func Validate(ba *BatchRequest) error {
	if ba == nil {
		return fmt.Errorf("%w: no batch", ErrBadBatch)
	}
	if n := len(ba.Requests); n > MaxBatchRequests {
		return fmt.Errorf("%w: %d requests in a batch, limit %d", ErrRequestTooLarge, n, MaxBatchRequests)
	}
	if n := proto.Size(ba); n > MaxBatchBytes {
		return fmt.Errorf("%w: batch of %d bytes, limit %d", ErrRequestTooLarge, n, MaxBatchBytes)
	}
	if l := ba.GetHeader().GetReadLevel(); api.ReadLevel_name[int32(l)] == "" {
		return fmt.Errorf("%w: unknown read level %d", ErrBadBatch, l)
	}
	return validateRequests(ba.Requests)
}

// validateRequests checks reqs as Validate does, but for their size.
func validateRequests(reqs []*RequestUnion) error {
	if len(reqs) == 0 {
		return fmt.Errorf("%w: no requests", ErrBadBatch)
	}
	system := 0
	for i, r := range reqs {
		m := MethodOf(r)
		if m == Unknown {
			return fmt.Errorf("%w: request %d: no request, or one of an unknown kind", ErrBadBatch, i)
		}
		if err := validateRequest(m, r); err != nil {
			return fmt.Errorf("%w: request %d (%v): %w", ErrBadBatch, i, m, err)
		}
		f := m.Flags()
		if f.Has(IsAlone) && len(reqs) > 1 {
			return fmt.Errorf("%w: request %d (%v) must be alone in its batch, which has %d", ErrBadBatch, i, m, len(reqs))
		}
		if f.Has(IsSystem) {
			system++
		}
	}
	if system != 0 && system != len(reqs) {
		return fmt.Errorf("%w: %d system requests mixed with %d others", ErrBadBatch, system, len(reqs)-system)
	}
	return nil
}

var (
	errEmptyKey = errors.New("empty key")
	errNoNode   = errors.New("no node ID")
)

// validateRequest checks the arguments of r, a request of method m: its
// keys as kvpb.proto declares them (see Span), then the rules of those
// methods whose other arguments have any.
func validateRequest(m Method, r *RequestUnion) error {
	if err := methods.checkKeys(m, caseRequest(m, r)); err != nil {
		return err
	}
	switch v := r.Value.(type) {
	case *RequestUnion_Get:
		if v.Get.GetReadLevel() != api.ReadLevel_READ_LEVEL_LINEARIZABLE {
			return errors.New("read_level is set on the request; it belongs in the header")
		}
		if v.Get.GetTimestamp() != 0 {
			return errors.New("timestamp is set on the request; it belongs in the header")
		}
	case *RequestUnion_Scan:
		if v.Scan.GetTimestamp() != 0 {
			return errors.New("timestamp is set on the request; it belongs in the header")
		}
	case *RequestUnion_Gc:
		if v.Gc.GetThreshold() == 0 {
			return errors.New("threshold 0")
		}
		if v.Gc.GetMaxVersions() == 0 {
			return errors.New("max_versions 0")
		}
	case *RequestUnion_TsoLimit:
		if v.TsoLimit.GetLimit() == 0 {
			return errors.New("limit 0")
		}
	case *RequestUnion_GetTimestamp:
		if n := v.GetTimestamp.GetCount(); n < 1 || n > MaxTimestampCount {
			return fmt.Errorf("count %d outside [1, %d]", n, MaxTimestampCount)
		}
	case *RequestUnion_ChangeReplicas:
		t := v.ChangeReplicas.GetType()
		if t == ChangeReplicasType_CHANGE_REPLICAS_TYPE_UNSPECIFIED || ChangeReplicasType_name[int32(t)] == "" {
			return fmt.Errorf("change type %d", t)
		}
		if v.ChangeReplicas.GetNodeId() == 0 {
			return errNoNode
		}
	case *RequestUnion_TransferLeader:
		if v.TransferLeader.GetNodeId() == 0 {
			return errNoNode
		}
	}
	return nil
}

func key(k []byte) error {
	if len(k) == 0 {
		return errEmptyKey
	}
	return nil
}

// span checks [start, end); a nil end is unbounded.
func span(start, end []byte) error {
	if end != nil && bytes.Compare(end, start) <= 0 {
		return fmt.Errorf("end %q is not after start %q", end, start)
	}
	return nil
}

// ValidateResponse checks that br answers ba (which Validate accepted):
// either br has an error and no responses, or one response per request, in
// order, each of its request's method. A write whose response fails this
// check may have been applied.
func ValidateResponse(ba *BatchRequest, br *BatchResponse) error {
	if br == nil {
		return fmt.Errorf("%w: no response", ErrBadResponse)
	}
	if br.Error != nil {
		if len(br.Responses) != 0 {
			return fmt.Errorf("%w: an error and %d responses", ErrBadResponse, len(br.Responses))
		}
		return nil
	}
	if len(br.Responses) != len(ba.GetRequests()) {
		return fmt.Errorf("%w: %d responses to %d requests", ErrBadResponse, len(br.Responses), len(ba.GetRequests()))
	}
	for i, r := range br.Responses {
		if got, want := ResponseMethodOf(r), MethodOf(ba.Requests[i]); got != want || got == Unknown {
			return fmt.Errorf("%w: response %d is %v, to a %v request", ErrBadResponse, i, got, want)
		}
	}
	return nil
}

// ValidateNodeRequest checks that r is well formed: addressed to a node,
// of a known kind, with its arguments.
func ValidateNodeRequest(r *NodeRequest) error {
	if r.GetNodeId() == 0 {
		return fmt.Errorf("%w: node request: %w", ErrBadBatch, errNoNode)
	}
	switch v := r.Value.(type) {
	case *NodeRequest_CreateReplica:
		if err := ValidateDescriptor(v.CreateReplica.GetShard()); err != nil {
			return fmt.Errorf("%w: create replica: %w", ErrBadBatch, err)
		}
	case *NodeRequest_Directory:
	case *NodeRequest_ReplicaState:
		if v.ReplicaState.GetShardId() == 0 {
			return fmt.Errorf("%w: replica state: no shard", ErrBadBatch)
		}
	default:
		return fmt.Errorf("%w: node request: no request, or one of an unknown kind", ErrBadBatch)
	}
	return nil
}

// ValidateDescriptor checks that d is a descriptor: a shard ID, a non-empty
// range, and distinct non-zero replicas.
func ValidateDescriptor(d *ShardDescriptor) error {
	if d.GetId() == 0 {
		return errors.New("descriptor without a shard ID")
	}
	if err := span(d.GetStart(), d.GetEnd()); err != nil {
		return fmt.Errorf("shard %d: %w", d.GetId(), err)
	}
	seen := make(map[uint64]bool, len(d.GetReplicas()))
	for _, n := range d.GetReplicas() {
		if n == 0 || seen[n] {
			return fmt.Errorf("shard %d: replica %d zero or repeated", d.GetId(), n)
		}
		seen[n] = true
	}
	return nil
}
