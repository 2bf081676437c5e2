package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-kv/strata/internal/replicaid"
	"github.com/strata-kv/strata/transport/transportpb"
)

// errSnapshotHandled ends the body pipe when the handler returned before
// reading the whole body.
var errSnapshotHandled = errors.New("transport: snapshot handler returned")

// SendSnapshot streams env (a MsgSnap) and then body, in chunks of
// Config.SnapshotChunkSize each compressed with zstd, to env.Msg.To. It blocks
// until the receiver's HandleSnapshot returned and returns its error, a gRPC
// status error (wrapped). ctx bounds the whole transfer.
func (t *GRPC) SendSnapshot(ctx context.Context, env Envelope, body io.Reader) (err error) {
	to := replicaid.Node(env.Msg.GetTo())
	defer func() {
		if err != nil {
			t.stats.snapshotsSendFailed.Add(1)
			err = fmt.Errorf("transport: snapshot to node %d: %w", to, err)
		} else {
			t.stats.snapshotsSent.Add(1)
		}
	}()
	if env.Msg == nil {
		return errors.New("nil message")
	}
	p, err := t.peer(to)
	if err != nil {
		return err
	}
	msg, err := proto.Marshal(env.Msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.client.Snapshot(ctx)
	if err != nil {
		return err
	}
	first := &transportpb.SnapshotChunk{
		From:     t.cfg.NodeID,
		To:       to,
		Envelope: &transportpb.Envelope{Group: env.Group, Message: msg},
	}
	if err := stream.Send(first); err != nil {
		return t.snapshotResult(ctx, stream, err)
	}
	buf := make([]byte, t.cfg.SnapshotChunkSize)
	for {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			// A fresh slice per chunk: gRPC may hold a sent message.
			data := t.enc.EncodeAll(buf[:n], nil)
			if err := stream.Send(&transportpb.SnapshotChunk{Data: data}); err != nil {
				return t.snapshotResult(ctx, stream, err)
			}
			t.stats.snapshotBytesSent.Add(uint64(len(data)))
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading snapshot body: %w", rerr) // cancel aborts the stream
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return callError(ctx, err)
	}
	return nil
}

// snapshotResult returns the reason a send on a snapshot stream failed: io.EOF
// means the receiver already answered, so its status is the result.
func (t *GRPC) snapshotResult(ctx context.Context, stream transportpb.Transport_SnapshotClient, err error) error {
	if err == io.EOF {
		_, err = stream.CloseAndRecv()
		if err == nil {
			return nil // the handler accepted without reading everything
		}
	}
	return callError(ctx, err)
}

// Snapshot receives one snapshot. The handler runs on its own goroutine and
// reads the decompressed body from a pipe that this goroutine fills; the
// handler's error is the call's status.
func (s *server) Snapshot(stream transportpb.Transport_SnapshotServer) (err error) {
	t := s.t
	defer func() {
		if err != nil {
			t.stats.snapshotsRecvFailed.Add(1)
		} else {
			t.stats.snapshotsReceived.Add(1)
		}
	}()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetTo() != t.cfg.NodeID {
		return status.Errorf(codes.FailedPrecondition,
			"transport: snapshot for node %d reached node %d", first.GetTo(), t.cfg.NodeID)
	}
	msg := new(raftpb.Message)
	if err := proto.Unmarshal(first.GetEnvelope().GetMessage(), msg); err != nil || first.GetEnvelope() == nil {
		t.stats.malformed.Add(1)
		return status.Error(codes.InvalidArgument, "transport: snapshot without a valid envelope")
	}
	env := Envelope{Group: first.GetEnvelope().GetGroup(), Msg: msg}

	pr, pw := io.Pipe()
	handled := make(chan error, 1)
	go func() { // owned by this call, which waits for it below
		err := t.cfg.Handler.HandleSnapshot(stream.Context(), env, pr)
		pr.CloseWithError(errSnapshotHandled)
		handled <- err
	}()

	var buf []byte
	for {
		chunk, rerr := stream.Recv()
		if rerr == io.EOF {
			pw.Close()
			break
		}
		if rerr != nil {
			pw.CloseWithError(rerr)
			<-handled
			return rerr
		}
		buf, rerr = t.dec.DecodeAll(chunk.GetData(), buf[:0])
		if rerr != nil {
			t.stats.malformed.Add(1)
			pw.CloseWithError(fmt.Errorf("transport: corrupt snapshot chunk: %w", rerr))
			<-handled
			return status.Errorf(codes.InvalidArgument, "transport: corrupt snapshot chunk: %v", rerr)
		}
		// Write returns once the handler has read all of buf, so buf can be
		// reused; it fails once the handler has returned.
		if _, werr := pw.Write(buf); werr != nil {
			break
		}
	}
	if herr := <-handled; herr != nil {
		return toStatus(herr)
	}
	return stream.SendAndClose(&transportpb.SnapshotAck{})
}
