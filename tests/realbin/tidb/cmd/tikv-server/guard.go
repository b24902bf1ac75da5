package main

// Two defects of TiDB v7.5.0's unistore engine that real TiKV does not have, kept
// out of the store's answers at its gRPC edge (the engine's source is a fetched
// module: it is not patched, its answers are).
//
//  1. Async commit and 1PC without TiKV's memory lock. unistore's prewrite takes
//     min_commit_ts (the 1PC commit ts) from a fresh PD timestamp *before* its locks
//     or writes are visible (mvcc.go prewriteMutations: "TODO add memory lock for
//     async commit protocol"); TiKV puts the keys in its in-memory lock table first
//     and takes max(max_ts + 1, ...) over every read ts it has served. So on unistore
//     a reader whose ts is above that commit ts can read the key before the write
//     lands, then see no conflict when it writes: TiDB's txn ADD INDEX backfill read
//     a row's old `c` that way while a sysbench UPDATE committed by 1PC, and left an
//     index entry for the old value (ADMIN CHECK TABLE: 8223, one entry too many).
//     The store answers every prewrite as plain two-phase commit instead, which is
//     what TiKV answers when it cannot do async commit (min_commit_ts 0, 1PC commit
//     ts 0); client-go falls back to normal 2PC, whose commit ts TiDB takes only after
//     every lock is in place.
//  2. A nil dereference that kills the store: a pessimistic prewrite whose
//     for_update_ts constraint (TiDB's fair locking) names a key whose pessimistic
//     lock is gone (rolled back by a resolver after its TTL ran out under a fault)
//     panics in prewritePessimistic instead of answering "pessimistic lock not
//     found", the answer the same prewrite gets without the constraint (and TiKV's
//     PessimisticLockNotFound).
//
// And one gap: calls unistore leaves unimplemented panic ("unimplemented"), and a
// panic in a gRPC handler ends the store. TiDB sends one whenever a user reads
// information_schema.data_lock_waits (GetLockWaitInfo), as the plugin's diagnostics
// do; the guard answers such a call Unimplemented, so the read fails and the store
// stays up.

import (
	"context"
	"runtime"
	"strings"
	"sync"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/pingcap/log"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// batchCommands is the one streaming method that carries prewrites.
const batchCommands = "/tikvpb.Tikv/BatchCommands"

// lockNotFound is unistore's own answer to a pessimistic prewrite whose lock is gone.
const lockNotFound = "pessimistic lock not found"

// prewriter is the engine's prewrite (unistore's *tikv.Server).
type prewriter interface {
	KvPrewrite(context.Context, *kvrpcpb.PrewriteRequest) (*kvrpcpb.PrewriteResponse, error)
}

// twoPhaseOnly turns a prewrite that asks for async commit or 1PC into a plain one.
func twoPhaseOnly(req *kvrpcpb.PrewriteRequest) {
	req.UseAsyncCommit = false
	req.TryOnePc = false
	req.Secondaries = nil
}

// guardedPrewrite is the engine's prewrite with both defects kept out of its answer.
func guardedPrewrite(ctx context.Context, engine prewriter, req *kvrpcpb.PrewriteRequest) (
	resp *kvrpcpb.PrewriteResponse, err error) {
	twoPhaseOnly(req)
	if len(req.GetForUpdateTsConstraints()) > 0 {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if e, ok := r.(runtime.Error); !ok || !strings.Contains(e.Error(), "nil pointer dereference") {
				panic(r)
			}
			log.Warn("prewrite with a for_update_ts constraint on a key whose pessimistic lock is gone: "+
				"answered "+lockNotFound+" (unistore v7.5 dereferences the missing lock)",
				zap.Uint64("start-ts", req.GetStartVersion()))
			resp, err = &kvrpcpb.PrewriteResponse{Errors: []*kvrpcpb.KeyError{{Abort: lockNotFound}}}, nil
		}()
	}
	return engine.KvPrewrite(ctx, req)
}

// unimplemented is what unistore panics with where it implements no answer.
const unimplemented = "unimplemented"

// unaryGuard sends a unary KvPrewrite through guardedPrewrite, and answers a call the
// engine does not implement Unimplemented instead of dying of its panic.
func unaryGuard(engine prewriter) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (
		resp any, err error) {
		if p, ok := req.(*kvrpcpb.PrewriteRequest); ok {
			return guardedPrewrite(ctx, engine, p)
		}
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if msg, ok := r.(string); !ok || msg != unimplemented {
				panic(r)
			}
			log.Warn("a call unistore does not implement: answered Unimplemented",
				zap.String("method", info.FullMethod))
			resp, err = nil, status.Errorf(codes.Unimplemented, "%s: not implemented by this store",
				info.FullMethod)
		}()
		return handler(ctx, req)
	}
}

// streamGuard takes the prewrites out of every BatchCommands request (TiDB's usual
// path) and answers them through guardedPrewrite on the same stream; the engine's
// batch handler, which calls its own prewrite, never sees them.
func streamGuard(engine prewriter) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if info.FullMethod != batchCommands {
			return handler(srv, ss)
		}
		g := &batchGuard{ServerStream: ss, engine: engine}
		err := handler(srv, g)
		g.close() // no send after the stream's handler has returned
		return err
	}
}

// batchGuard is a BatchCommands stream whose prewrites are answered by the guard.
type batchGuard struct {
	grpc.ServerStream
	engine   prewriter
	send     sync.Mutex // the engine's sender and the guard's share the stream
	state    sync.Mutex // closed and inflight.Add: no Add may race close's Wait
	closed   bool
	inflight sync.WaitGroup
}

// close waits for the guard's answers in flight; a prewrite received later gets none
// (the stream is over: the client sends it again on another).
func (g *batchGuard) close() {
	g.state.Lock()
	g.closed = true
	g.state.Unlock()
	g.inflight.Wait()
}

// start counts one answer in flight, unless the stream is over.
func (g *batchGuard) start() bool {
	g.state.Lock()
	defer g.state.Unlock()
	if g.closed {
		return false
	}
	g.inflight.Add(1)
	return true
}

func (g *batchGuard) SendMsg(m any) error {
	g.send.Lock()
	defer g.send.Unlock()
	return g.ServerStream.SendMsg(m)
}

func (g *batchGuard) RecvMsg(m any) error {
	if err := g.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	batch, ok := m.(*tikvpb.BatchCommandsRequest)
	if !ok {
		return nil
	}
	keep := 0
	for i, r := range batch.Requests {
		id := batch.RequestIds[i]
		if p := r.GetPrewrite(); p != nil {
			if g.start() {
				go g.prewrite(id, p)
			}
			continue
		}
		batch.Requests[keep], batch.RequestIds[keep] = r, id
		keep++
	}
	batch.Requests, batch.RequestIds = batch.Requests[:keep], batch.RequestIds[:keep]
	return nil
}

func (g *batchGuard) prewrite(id uint64, req *kvrpcpb.PrewriteRequest) {
	defer g.inflight.Done()
	resp, err := guardedPrewrite(g.Context(), g.engine, req)
	if err != nil { // as the engine's batch handler: no answer, the client times the request out
		log.Warn("prewrite in a batch failed", zap.Error(err))
		return
	}
	_ = g.SendMsg(&tikvpb.BatchCommandsResponse{
		Responses: []*tikvpb.BatchCommandsResponse_Response{
			{Cmd: &tikvpb.BatchCommandsResponse_Response_Prewrite{Prewrite: resp}}},
		RequestIds: []uint64{id},
	})
}
