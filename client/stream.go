package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"time"

	"github.com/strata-kv/strata/api"
	"github.com/strata-kv/strata/txn/tso"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ScanOptions tune All. The zero value reads every pair with its value at
// a timestamp taken when the scan begins.
type ScanOptions struct {
	// Limit is the most pairs yielded; 0 means no limit.
	Limit int
	// KeysOnly leaves the values out (each KV's Value is nil).
	KeysOnly bool
	// Timestamp, if set, reads the range as it was at that past timestamp.
	Timestamp tso.Timestamp
}

// All yields the keys in [start, end) and their values, in key order (a
// nil end means no upper bound), every shard read at one timestamp. Unlike
// Scan it never holds the whole range: it reads one ScanStream, whose node
// sends about 1 MiB at a time and reads ahead only a little, so a large
// range costs bounded memory on both sides, and a slow loop body slows the
// scan down rather than filling memory.
//
// The stream goes to one endpoint, which gathers every shard's part
// itself. If it breaks, All resumes from the last key yielded, at the same
// timestamp, on the next endpoint (up to Config.MaxRetries). Each message
// must arrive within Config.RequestTimeout; ctx bounds the whole scan. An
// error is yielded once, last.
//
//	for kv, err := range c.All(ctx, []byte("user/"), []byte("user0"), client.ScanOptions{}) { ... }
func (c *Client) All(ctx context.Context, start, end []byte, o ScanOptions) iter.Seq2[KV, error] {
	return func(yield func(KV, error) bool) {
		req := &api.ScanRequest{Start: start, End: end, KeysOnly: o.KeysOnly, Timestamp: uint64(o.Timestamp)}
		left := o.Limit // pairs still wanted, if o.Limit > 0
		stopped := false
		err := c.invoke(ctx, callOpts{method: "ScanStream", stream: true}, func(ctx context.Context, cc *grpc.ClientConn) error {
			if o.Limit > 0 {
				req.Limit = uint32(min(left, math.MaxUint32))
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			st, err := api.NewKVClient(cc).ScanStream(ctx, req)
			if err != nil {
				return err
			}
			for {
				resp, err := c.recv(st, cancel)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				req.Timestamp = resp.GetTimestamp()
				for _, kv := range resp.GetKvs() {
					v := kv.GetValue()
					if v == nil && !o.KeysOnly {
						v = []byte{}
					}
					if !yield(KV{Key: kv.GetKey(), Value: v}, nil) {
						stopped = true
						return nil
					}
					left--
				}
				// A retry resumes after what was yielded.
				if len(resp.GetResumeKey()) == 0 || (o.Limit > 0 && left <= 0) {
					return nil
				}
				req.Start = resp.GetResumeKey()
			}
		})
		if err != nil && !stopped {
			yield(KV{}, err)
		}
	}
}

// recv receives one message of st within RequestTimeout: past it, it
// cancels the stream and fails with Unavailable (the node stopped
// sending; the caller tries the next endpoint).
func (c *Client) recv(st grpc.ServerStreamingClient[api.ScanResponse], cancel context.CancelFunc) (*api.ScanResponse, error) {
	t := time.AfterFunc(c.cfg.RequestTimeout, cancel)
	resp, err := st.Recv()
	if !t.Stop() {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("no message within %v", c.cfg.RequestTimeout))
	}
	return resp, err
}
