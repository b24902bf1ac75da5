package main

// The guard against the store's two unistore defects (guard.go), on an in-process
// unistore engine: each defect triggered on purpose on the engine as it ships (so a
// TiDB bump that fixes one fails here and the guard can go), then the guard's answer,
// unary and through a BatchCommands stream on loopback as TiDB sends them.

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pingcap/kvproto/pkg/kvrpcpb"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/config"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/server"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/tikv"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// engine is an in-process unistore with one bootstrapped region and the request
// context that addresses it.
func engine(t *testing.T) (*tikv.Server, *kvrpcpb.Context) {
	t.Helper()
	conf := config.DefaultConf
	conf.Engine.DBPath = t.TempDir()
	conf.Engine.ValueThreshold = 0
	conf.Engine.VolatileMode = true
	conf.Engine.SyncWrite = false
	conf.Server.Raft = false
	svr, rm, _, err := server.NewMock(&conf, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svr.Stop)
	storeID, regionID, peerID := rm.AllocID(), rm.AllocID(), rm.AllocID()
	epoch := &metapb.RegionEpoch{ConfVer: 1, Version: 1}
	peer := &metapb.Peer{Id: peerID, StoreId: storeID}
	if err := rm.Bootstrap([]*metapb.Store{{Id: storeID, Address: "store"}},
		&metapb.Region{Id: regionID, RegionEpoch: epoch, Peers: []*metapb.Peer{peer}}); err != nil {
		t.Fatal(err)
	}
	return svr, &kvrpcpb.Context{RegionId: regionID, RegionEpoch: epoch, Peer: peer}
}

func now() uint64 {
	physical, logical := tikv.GetTS()
	return uint64(physical)<<18 + uint64(logical)
}

// constrainedPrewrite is a pessimistic prewrite of key whose for_update_ts
// constraint names a pessimistic lock that was never taken (as one rolled back).
func constrainedPrewrite(rpc *kvrpcpb.Context, key string) *kvrpcpb.PrewriteRequest {
	ts := now()
	return &kvrpcpb.PrewriteRequest{
		Context:            rpc,
		Mutations:          []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: []byte(key), Value: []byte("v")}},
		PrimaryLock:        []byte(key),
		StartVersion:       ts,
		ForUpdateTs:        ts,
		LockTtl:            3000,
		PessimisticActions: []kvrpcpb.PrewriteRequest_PessimisticAction{kvrpcpb.PrewriteRequest_DO_PESSIMISTIC_CHECK},
		ForUpdateTsConstraints: []*kvrpcpb.PrewriteRequest_ForUpdateTSConstraint{
			{Index: 0, ExpectedForUpdateTs: ts}},
	}
}

// onePCPrewrite is an optimistic prewrite asking for 1PC and async commit.
func onePCPrewrite(rpc *kvrpcpb.Context, key string) *kvrpcpb.PrewriteRequest {
	return &kvrpcpb.PrewriteRequest{
		Context:        rpc,
		Mutations:      []*kvrpcpb.Mutation{{Op: kvrpcpb.Op_Put, Key: []byte(key), Value: []byte("v")}},
		PrimaryLock:    []byte(key),
		StartVersion:   now(),
		LockTtl:        3000,
		TxnSize:        1,
		TryOnePc:       true,
		UseAsyncCommit: true,
	}
}

func abortOf(resp *kvrpcpb.PrewriteResponse) string {
	if len(resp.GetErrors()) != 1 {
		return ""
	}
	return resp.GetErrors()[0].GetAbort()
}

func TestTheEngineDereferencesAMissingPessimisticLock(t *testing.T) {
	svr, rpc := engine(t)
	defer func() {
		if recover() == nil {
			t.Fatal("unistore answered a constrained prewrite of a missing lock: its defect is gone, " +
				"and so is the reason for guardedPrewrite's recover")
		}
	}()
	_, _ = svr.KvPrewrite(context.Background(), constrainedPrewrite(rpc, "k1"))
}

func TestTheGuardAnswersLockNotFoundAndTheEngineGoesOn(t *testing.T) {
	svr, rpc := engine(t)
	resp, err := guardedPrewrite(context.Background(), svr, constrainedPrewrite(rpc, "k1"))
	if err != nil || abortOf(resp) != lockNotFound {
		t.Fatalf("want %q, got %v, %v", lockNotFound, resp, err)
	}
	// the latches the panicking prewrite held are free: the same key prewrites
	resp, err = guardedPrewrite(context.Background(), svr, onePCPrewrite(rpc, "k1"))
	if err != nil || len(resp.GetErrors()) != 0 || resp.GetRegionError() != nil {
		t.Fatalf("the key after the guarded panic: %v, %v", resp, err)
	}
}

// gatedPD is the mock PD whose next timestamp, once armed, is handed out and then
// held: the prewrite that asked for it waits, its commit ts already chosen.
type gatedPD struct {
	*tikv.MockPD
	armed   atomic.Bool
	taken   chan uint64
	release chan struct{}
}

func (p *gatedPD) GetTS(ctx context.Context) (int64, int64, error) {
	physical, logical, err := p.MockPD.GetTS(ctx)
	if p.armed.CompareAndSwap(true, false) {
		p.taken <- uint64(physical)<<18 + uint64(logical)
		select { // held until released; never for ever (a test that waits on none fails)
		case <-p.release:
		case <-time.After(10 * time.Second):
		}
	}
	return physical, logical, err
}

// gatedEngine is a unistore engine (as the store runs it: server.New over a PD
// client) whose timestamps come from a gatedPD, and the context of key's region.
func gatedEngine(t *testing.T, key string) (*tikv.Server, *gatedPD, *kvrpcpb.Context) {
	t.Helper()
	conf := config.DefaultConf
	conf.Engine.DBPath = t.TempDir()
	conf.Engine.VolatileMode = true
	conf.Server.Raft = false
	_, rm, mock, err := server.NewMock(&conf, 1) // its region manager is the PD's memory
	if err != nil {
		t.Fatal(err)
	}
	pd := &gatedPD{MockPD: mock, taken: make(chan uint64, 1), release: make(chan struct{})}
	conf2 := conf
	conf2.Engine.DBPath = t.TempDir()
	svr, err := server.New(&conf2, pd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svr.Stop)
	region, peer, _, _ := rm.GetRegionByKey([]byte(key))
	if region == nil {
		t.Fatal("no region for", key)
	}
	rpc := &kvrpcpb.Context{RegionId: region.Id, RegionEpoch: region.RegionEpoch, Peer: peer}
	// the store split its first region at start-up: take the epoch it answers with
	get, err := svr.KvGet(context.Background(), &kvrpcpb.GetRequest{Context: rpc, Key: []byte(key), Version: now()})
	if err != nil {
		t.Fatal(err)
	}
	if stale := get.GetRegionError().GetEpochNotMatch(); stale != nil {
		for _, r := range stale.GetCurrentRegions() {
			if r.Id == region.Id {
				rpc.RegionEpoch = r.RegionEpoch
			}
		}
	}
	return svr, pd, rpc
}

func read(t *testing.T, svr *tikv.Server, rpc *kvrpcpb.Context, key string, ts uint64) *kvrpcpb.GetResponse {
	t.Helper()
	get, err := svr.KvGet(context.Background(), &kvrpcpb.GetRequest{Context: rpc, Key: []byte(key), Version: ts})
	if err != nil || get.GetRegionError() != nil {
		t.Fatalf("read %s at %d: %v, %v", key, ts, get, err)
	}
	return get
}

func TestTheEngineCommitsByOnePCWithATimestampTakenBeforeItsWrite(t *testing.T) {
	svr, pd, rpc := gatedEngine(t, "k1")
	first := onePCPrewrite(rpc, "k1")
	first.Mutations[0].Value = []byte("v1")
	if resp, err := svr.KvPrewrite(context.Background(), first); err != nil || resp.GetOnePcCommitTs() == 0 {
		t.Fatalf("the engine no longer commits by 1PC (the guard's first reason is gone?): %v, %v", resp, err)
	}
	// a second 1PC write of k1 takes its commit ts and is held before its write ...
	second := onePCPrewrite(rpc, "k1")
	second.Mutations[0].Value = []byte("v2")
	pd.armed.Store(true)
	done := make(chan *kvrpcpb.PrewriteResponse, 1)
	go func() {
		resp, _ := svr.KvPrewrite(context.Background(), second)
		done <- resp
	}()
	commitTS := <-pd.taken
	// ... a reader whose ts is above that commit ts reads k1: no lock, the old value
	readTS := now()
	before := read(t, svr, rpc, "k1", readTS)
	close(pd.release)
	resp := <-done
	after := read(t, svr, rpc, "k1", readTS)
	if resp.GetOnePcCommitTs() != commitTS || commitTS >= readTS {
		t.Fatalf("want a 1PC commit at %d below the read ts %d, got %v", commitTS, readTS, resp)
	}
	// the same snapshot (readTS) saw v1, then v2: a write committed below a read it missed
	if string(before.GetValue()) != "v1" || before.GetError() != nil || string(after.GetValue()) != "v2" {
		t.Fatalf("the engine's snapshot at %d held: before %v, after %v (the defect is gone?)",
			readTS, before, after)
	}
}

func TestTheGuardsPrewriteTakesNoTimestampAndLeavesALockAReaderMeets(t *testing.T) {
	svr, pd, rpc := gatedEngine(t, "k1")
	pd.armed.Store(true) // a timestamp taken is seen (and held 10 s)
	req := onePCPrewrite(rpc, "k1")
	resp, err := guardedPrewrite(context.Background(), svr, req)
	if err != nil || len(resp.GetErrors()) != 0 || resp.GetOnePcCommitTs() != 0 {
		t.Fatalf("guarded prewrite: %v, %v", resp, err)
	}
	if !pd.armed.Load() {
		t.Fatal("the guarded prewrite took a timestamp (its commit ts is the client's, after every lock)")
	}
	if lock := read(t, svr, rpc, "k1", now()).GetError().GetLocked(); lock == nil {
		t.Fatal("a reader after the guarded prewrite did not meet its lock")
	}
}

func TestTheGuardPrewritesByTwoPhaseCommit(t *testing.T) {
	svr, rpc := engine(t)
	req := onePCPrewrite(rpc, "k1")
	req.Secondaries = [][]byte{[]byte("k2")}
	resp, err := guardedPrewrite(context.Background(), svr, req)
	if err != nil || len(resp.GetErrors()) != 0 {
		t.Fatalf("prewrite: %v, %v", resp, err)
	}
	if resp.GetOnePcCommitTs() != 0 || resp.GetMinCommitTs() != 0 {
		t.Fatalf("want TiKV's fallback answer (no 1PC commit ts, no min commit ts), got %v", resp)
	}
	// the key holds a plain lock of the prewriting transaction: a later read meets it
	get, err := svr.KvGet(context.Background(), &kvrpcpb.GetRequest{Context: rpc, Key: []byte("k1"), Version: now()})
	if err != nil {
		t.Fatal(err)
	}
	lock := get.GetError().GetLocked()
	if lock == nil || lock.GetLockVersion() != req.StartVersion || lock.GetUseAsyncCommit() {
		t.Fatalf("want a 2PC lock of start ts %d, got %v", req.StartVersion, get)
	}
}

// serve is the engine behind the guard on loopback, as the store serves it, and a client.
func serve(t *testing.T, svr *tikv.Server) tikvpb.TikvClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.UnaryInterceptor(unaryGuard(svr)), grpc.StreamInterceptor(streamGuard(svr)))
	tikvpb.RegisterTikvServer(gs, svr)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.Dial(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return tikvpb.NewTikvClient(conn)
}

func TestAnUnimplementedCallIsAnsweredAndTheStoreGoesOn(t *testing.T) {
	svr, rpc := engine(t)
	func() { // the engine as it ships: a panic, which ends a gRPC server's process
		defer func() {
			if r := recover(); r != unimplemented {
				t.Fatalf("unistore's GetLockWaitInfo: want its %q panic, got %v (the guard can go)",
					unimplemented, r)
			}
		}()
		_, _ = svr.GetLockWaitInfo(context.Background(), &kvrpcpb.GetLockWaitInfoRequest{})
	}()
	client := serve(t, svr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := client.GetLockWaitInfo(ctx, &kvrpcpb.GetLockWaitInfoRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetLockWaitInfo through the guard: want Unimplemented, got %v", err)
	}
	get, err := client.KvGet(ctx, &kvrpcpb.GetRequest{Context: rpc, Key: []byte("k"), Version: now()})
	if err != nil || get.GetError() != nil {
		t.Fatalf("the store after the call: %v, %v", get, err)
	}
}

func TestBatchCommandsPrewritesGoThroughTheGuard(t *testing.T) {
	svr, rpc := engine(t)
	client := serve(t, svr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	unary, err := client.KvPrewrite(ctx, constrainedPrewrite(rpc, "u1"))
	if err != nil || abortOf(unary) != lockNotFound {
		t.Fatalf("unary: want %q, got %v, %v", lockNotFound, unary, err)
	}

	stream, err := client.BatchCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch := &tikvpb.BatchCommandsRequest{
		Requests: []*tikvpb.BatchCommandsRequest_Request{
			{Cmd: &tikvpb.BatchCommandsRequest_Request_Get{Get: &kvrpcpb.GetRequest{
				Context: rpc, Key: []byte("b0"), Version: now()}}},
			{Cmd: &tikvpb.BatchCommandsRequest_Request_Prewrite{Prewrite: constrainedPrewrite(rpc, "b1")}},
			{Cmd: &tikvpb.BatchCommandsRequest_Request_Prewrite{Prewrite: onePCPrewrite(rpc, "b2")}},
		},
		RequestIds: []uint64{10, 11, 12},
	}
	if err := stream.Send(batch); err != nil {
		t.Fatal(err)
	}
	got := map[uint64]*tikvpb.BatchCommandsResponse_Response{}
	for len(got) < 3 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d answers: %v", len(got), err)
		}
		for i, id := range resp.GetRequestIds() {
			got[id] = resp.GetResponses()[i]
		}
	}
	if got[10].GetGet() == nil || got[10].GetGet().GetError() != nil {
		t.Fatalf("the engine's own answer to a get: %v", got[10])
	}
	if abortOf(got[11].GetPrewrite()) != lockNotFound {
		t.Fatalf("constrained prewrite in a batch: %v", got[11])
	}
	if p := got[12].GetPrewrite(); p == nil || len(p.GetErrors()) != 0 || p.GetOnePcCommitTs() != 0 {
		t.Fatalf("1PC prewrite in a batch: want a 2PC answer, got %v", got[12])
	}
	_ = stream.CloseSend()
}

func TestNoAnswerStartsAfterTheStreamIsOver(t *testing.T) {
	g := &batchGuard{}
	if !g.start() {
		t.Fatal("an open stream refused an answer")
	}
	g.inflight.Done()
	g.close()
	if g.start() {
		t.Fatal("an answer started after close: it would send on a finished stream")
	}
}
