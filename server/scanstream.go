package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strata-kv/strata"
	"github.com/strata-kv/strata/api"
	"google.golang.org/grpc"
)

// StreamMessageBytes bounds the keys and values of one ScanStream message
// (one pair more may go over it, as for Scan).
const StreamMessageBytes = 1 << 20

// errSendTimeout ends a stream whose client took no message within the
// send timeout.
var errSendTimeout = errors.New("server: send timeout")

// ScanStream answers a scan as a stream of pages of StreamMessageBytes,
// all read at one snapshot. It reads the next page while the last one is
// sent, so a stream holds at most three pages: the one read, the one being
// sent and the one gRPC has queued for the connection. A client that takes
// no message for the send timeout ends the stream.
func (k kvService) ScanStream(req *api.ScanRequest, stream grpc.ServerStreamingServer[api.ScanResponse]) error {
	start := time.Now()
	if g := k.s.streams; g != nil {
		g.Inc()
	}
	send := newStreamSender(stream, k.s.sendTimeout, func() {
		if g := k.s.streams; g != nil {
			g.Dec()
		}
	})
	defer send.close()
	ctx := stream.Context()
	snap, err := k.s.snapshot(ctx, req.GetTimestamp())
	if err != nil {
		return k.s.finish("ScanStream", start, err)
	}
	defer snap.Close()
	from, limit := req.GetStart(), int(req.GetLimit())
	for {
		kvs, resume, err := snap.ScanPage(ctx, from, req.End, limit, StreamMessageBytes, req.GetKeysOnly())
		if err != nil {
			return k.s.finish("ScanStream", start, err)
		}
		if err := send.send(ctx, scanResponse(kvs, snap.Timestamp(), resume)); err != nil {
			return k.s.finish("ScanStream", start, err)
		}
		if resume == nil {
			return k.s.finish("ScanStream", start, send.wait(ctx))
		}
		from = resume
		if limit > 0 {
			limit -= len(kvs)
		}
	}
}

// A streamSender sends the messages of one server stream from a goroutine
// of its own, one at a time, so that the handler reads the next message
// while the last one is sent, and can give up on a send that the client's
// flow control blocks (it stopped reading): gRPC's Send takes no context
// or deadline.
//
// The stream owns the goroutine: it ends when its last Send returns after
// close. A Send still blocked when the handler gives up returns once the
// handler has returned, because gRPC then ends the stream, which fails
// the send (grpc-go cancels the stream to unblock sends on other
// goroutines).
type streamSender struct {
	timeout time.Duration
	msgs    chan *api.ScanResponse // to the goroutine; buffered 1, closed by close
	results chan error             // from the goroutine, one per message; buffered 1
	// pending: a message was handed over and its result not yet taken.
	// At most one is, so neither channel ever blocks its sender.
	pending bool
}

// newStreamSender starts the goroutine sending on stream; done is called
// when it ends.
func newStreamSender(stream grpc.ServerStreamingServer[api.ScanResponse], timeout time.Duration, done func()) *streamSender {
	s := &streamSender{timeout: timeout, msgs: make(chan *api.ScanResponse, 1), results: make(chan error, 1)}
	go func() {
		defer done()
		for m := range s.msgs {
			s.results <- stream.Send(m)
		}
	}()
	return s
}

// send hands m to the goroutine once the message before it is sent; it
// returns that message's failure, if any.
func (s *streamSender) send(ctx context.Context, m *api.ScanResponse) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.msgs <- m
	s.pending = true
	return nil
}

// wait waits until the message handed over last (if any) is sent, at most
// the send timeout.
func (s *streamSender) wait(ctx context.Context) error {
	if !s.pending {
		return nil
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case err := <-s.results:
		s.pending = false
		return err
	case <-t.C:
		return fmt.Errorf("%w: the client took no message for %v", errSendTimeout, s.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close lets the goroutine end once its last send returns; it does not
// wait for that.
func (s *streamSender) close() { close(s.msgs) }

// scanResponse is the api form of one page of a scan at ts.
func scanResponse(kvs []strata.KV, ts strata.Timestamp, resume []byte) *api.ScanResponse {
	resp := &api.ScanResponse{Kvs: make([]*api.KeyValue, len(kvs)), Timestamp: uint64(ts), ResumeKey: resume}
	for i, kv := range kvs {
		resp.Kvs[i] = &api.KeyValue{Key: kv.Key, Value: kv.Value}
	}
	return resp
}
