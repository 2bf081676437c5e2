package transport

import (
	"context"
	"errors"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/transport/transportpb"
)

// server implements the inbound side of the Transport service.
type server struct {
	transportpb.UnimplementedTransportServer
	t *GRPC
}

// Raft receives one peer's stream of batches and hands each batch to the
// handler. Malformed envelopes are dropped and counted; a stream addressed to
// another node is refused.
func (s *server) Raft(stream transportpb.Transport_RaftServer) error {
	t := s.t
	for {
		batch, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&transportpb.RaftStreamEnd{})
		}
		if err != nil {
			return err
		}
		if batch.GetTo() != t.cfg.NodeID {
			t.stats.malformed.Add(uint64(len(batch.GetEnvelopes())))
			return status.Errorf(codes.FailedPrecondition,
				"transport: stream for node %d reached node %d", batch.GetTo(), t.cfg.NodeID)
		}
		envs, bad := decodeBatch(t.cfg.NodeID, batch)
		t.stats.malformed.Add(uint64(bad))
		t.stats.batchesReceived.Add(1)
		if len(envs) == 0 {
			continue
		}
		t.stats.messagesReceived.Add(uint64(len(envs)))
		for _, e := range batch.GetEnvelopes() {
			t.stats.bytesReceived.Add(uint64(len(e.GetMessage())))
		}
		t.cfg.Handler.HandleMessages(batch.GetFrom(), envs)
	}
}

// decodeBatch decodes the envelopes of batch for node self. It drops (and
// counts as bad) envelopes that do not decode, or whose message is not from
// the batch's sender to self; a batch without a sender is all bad.
func decodeBatch(self uint64, batch *transportpb.RaftBatch) (envs []Envelope, bad int) {
	from := batch.GetFrom()
	if from == 0 {
		return nil, len(batch.GetEnvelopes())
	}
	envs = make([]Envelope, 0, len(batch.GetEnvelopes()))
	for _, e := range batch.GetEnvelopes() {
		m := new(raftpb.Message)
		if err := proto.Unmarshal(e.GetMessage(), m); err != nil || replicaid.Node(m.GetTo()) != self || replicaid.Node(m.GetFrom()) != from {
			bad++
			continue
		}
		envs = append(envs, Envelope{Group: e.GetGroup(), Msg: m})
	}
	return envs, bad
}

// Forward serves a forwarded request with the handler.
func (s *server) Forward(ctx context.Context, req *transportpb.ForwardRequest) (*transportpb.ForwardResponse, error) {
	t := s.t
	if req.GetTo() != t.cfg.NodeID {
		return nil, status.Errorf(codes.FailedPrecondition,
			"transport: forward for node %d reached node %d", req.GetTo(), t.cfg.NodeID)
	}
	t.stats.forwardsReceived.Add(1)
	if t.cfg.Forward == nil {
		return nil, status.Errorf(codes.Unimplemented, "transport: node %d serves no forwarded requests", t.cfg.NodeID)
	}
	resp, err := t.cfg.Forward.HandleForward(ctx, req.GetRequest())
	if err != nil {
		return nil, toStatus(err)
	}
	return &transportpb.ForwardResponse{Response: resp}, nil
}

// toStatus turns a handler error into a gRPC status error: status errors and
// context errors keep their code, anything else becomes codes.Unknown.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unknown, err.Error())
}
