package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// The load generators share the two cores with the collector and Postgres, so they must cost
// little: each worker encodes its request once and, before every send, only rewrites the
// timestamps in the encoded bytes (fixed64 fields, so their width never changes). Every request
// on the wire is then exactly what proto.Marshal would give for the same message with those
// timestamps: same points, same series, fresh times, no two requests alike.

// stampSlot is where one timestamp sits in an encoded request, and how it is derived from the
// send time: now + offset.
type stampSlot struct {
	at     int // byte offset of the 8 little-endian bytes
	offset int64
}

// encodedRequest is one worker's encoded request and its timestamp slots.
type encodedRequest struct {
	buf   []byte
	slots []stampSlot
	// values, for a cumulative load, are the byte offsets of every point's as_int (sfixed64): each
	// send carries acked+1, so the stream totals end at the number of acknowledged sends.
	values []int
	acked  int64
}

// stampSentinel marks timestamp i of a message before it is encoded: a value no real field of
// the load takes, so that its 8 bytes can be found in the encoding.
func stampSentinel(i int) uint64 { return 0x7e57_0000_0000_0000 | uint64(i) }

// encodeWithStamps encodes msg, whose timestamps the caller has set to stampSentinel(0),
// stampSentinel(1), ... in encoding order, and returns it with a slot per sentinel: the slot of
// sentinel i gets now + offsets[i] at each send. tag is checked in front of every sentinel.
func encodeWithStamps(t testing.TB, msg proto.Message, offsets []int64, tags ...byte) *encodedRequest {
	t.Helper()
	buf, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	require.NoError(t, err)
	r := &encodedRequest{buf: buf, slots: make([]stampSlot, len(offsets))}
	pos := 0
	var sentinel [8]byte
	for i, off := range offsets {
		binary.LittleEndian.PutUint64(sentinel[:], stampSentinel(i))
		at := bytes.Index(buf[pos:], sentinel[:])
		require.GreaterOrEqual(t, at, 1, "timestamp %d not found in the encoded request", i)
		at += pos
		require.Contains(t, tags, buf[at-1], "timestamp %d is not behind one of the expected field tags", i)
		r.slots[i] = stampSlot{at: at, offset: off}
		pos = at + 8
	}
	return r
}

// stamp writes timestamps relative to now into the encoded request.
func (r *encodedRequest) stamp(now time.Time) {
	base := now.UnixNano()
	for _, s := range r.slots {
		binary.LittleEndian.PutUint64(r.buf[s.at:], uint64(base+s.offset))
	}
}

// setValues writes v into every value slot.
func (r *encodedRequest) setValues(v int64) {
	for _, at := range r.values {
		binary.LittleEndian.PutUint64(r.buf[at:], uint64(v))
	}
}

// rawCodec sends an encodedRequest's bytes as they are and ignores the response's content (an
// OTLP Export response only carries partial_success, which the load never triggers).
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.(*encodedRequest).buf, nil }
func (rawCodec) Unmarshal([]byte, any) error   { return nil }
func (rawCodec) Name() string                  { return "proto" }

// sendEncoded sends from loadWorkers clients for d to the OTLP/gRPC method, each worker its own
// request built by build(worker) with fresh timestamps every time, retrying a refused request
// (a full queue) as a sender would. It returns the items (points, events) the collector
// acknowledged, given items per request.
func sendEncoded(b *testing.B, endpoint, method string, items int, d time.Duration, build func(worker int) *encodedRequest) int64 {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	defer conn.Close()
	reqs := make([]*encodedRequest, loadWorkers)
	for w := range reqs {
		reqs[w] = build(w)
	}
	var acked atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range loadWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := reqs[w]
			var resp struct{}
			for time.Now().Before(deadline) {
				req.stamp(time.Now())
				req.setValues(req.acked + 1)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := conn.Invoke(ctx, method, req, &resp, grpc.ForceCodec(rawCodec{}))
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acked.Add(int64(items))
				req.acked++
			}
		}()
	}
	wg.Wait()
	return acked.Load()
}

func TestEncodeWithStamps(t *testing.T) {
	for w := range 2 {
		r := encodedLoadRequest(t, w)
		now := time.Unix(1_800_000_000, 0)
		r.stamp(now)
		got := loadRequest(w)
		require.NoError(t, proto.Unmarshal(r.buf, got))
		want := loadRequest(w)
		i := 0
		for _, m := range want.ResourceMetrics[0].ScopeMetrics[0].Metrics {
			for _, p := range m.GetSum().DataPoints {
				p.StartTimeUnixNano = uint64(now.UnixNano()) - uint64(time.Second)
				p.TimeUnixNano = uint64(now.UnixNano()) + uint64(i)
				i++
			}
		}
		require.Equal(t, loadPointsPerReq, i)
		require.True(t, proto.Equal(want, got), fmt.Sprintf("worker %d: the stamped request differs", w))

		e := encodedEventRequest(t, w)
		e.stamp(now)
		wantLogs, records := eventRequest(w)
		for i, rec := range records {
			rec.TimeUnixNano = uint64(now.UnixNano()) + uint64(i)
			rec.ObservedTimeUnixNano = rec.TimeUnixNano
		}
		gotLogs, _ := eventRequest(w)
		require.NoError(t, proto.Unmarshal(e.buf, gotLogs))
		require.True(t, proto.Equal(wantLogs, gotLogs), fmt.Sprintf("worker %d: the stamped event request differs", w))
	}
}
