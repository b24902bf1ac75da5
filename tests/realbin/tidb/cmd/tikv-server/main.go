// Command tikv-server is this project's TiKV-protocol store for the real-binary
// test cluster: TiDB v7.5.0's own unistore engine
// (github.com/pingcap/tidb/pkg/store/mockstore/unistore) served over TiKV's gRPC
// API and registered with a real PD, so a real tidb-server runs with
// --store=tikv against it.
//
// It is NOT TiKV: one store, no raft, no replication, no import (SST) service.
// It takes the tikv-server flags the plugin passes (the real image's command
// line) so the plugin starts it exactly like pingcap/tikv.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/pingcap/kvproto/pkg/deadlock"
	"github.com/pingcap/kvproto/pkg/metapb"
	"github.com/pingcap/kvproto/pkg/pdpb"
	"github.com/pingcap/kvproto/pkg/tikvpb"
	"github.com/pingcap/log"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/config"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/pd"
	"github.com/pingcap/tidb/pkg/store/mockstore/unistore/server"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Set by -ldflags -X at build time (build.sh).
var (
	// StoreVersion is what the store reports to PD and on -V: the TiKV release
	// whose protocol this unistore speaks (the TiDB module's release).
	StoreVersion = "7.5.0"
	// GitHash is the TiDB module commit the unistore engine comes from.
	GitHash = "None"
)

// flags are the subset of TiKV's command line the plugin (and TiUP) pass.
type flags struct {
	addr, advertiseAddr, statusAddr, advertiseStatusAddr string
	pd, dataDir, configPath, logFile, logLevel, labels   string
	capacity                                             string
	version                                              bool
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("tikv-server", flag.ContinueOnError)
	str := func(p *string, def, usage string, names ...string) {
		for _, n := range names {
			fs.StringVar(p, n, def, usage)
		}
	}
	str(&f.addr, "127.0.0.1:20160", "listening address", "addr", "A")
	str(&f.advertiseAddr, "", "advertised address (default: --addr)", "advertise-addr")
	str(&f.statusAddr, "127.0.0.1:20180", "status (HTTP) listening address", "status-addr")
	str(&f.advertiseStatusAddr, "", "advertised status address", "advertise-status-addr")
	str(&f.pd, "127.0.0.1:2379", "PD endpoints, comma separated", "pd", "pd-endpoints")
	str(&f.dataDir, "/tmp/tikv/store", "data directory", "data-dir", "s")
	str(&f.configPath, "", "TiKV config file (TOML)", "config", "C")
	str(&f.logFile, "", "log file (default: stderr)", "log-file", "f")
	str(&f.logLevel, "info", "log level", "log-level", "L")
	str(&f.labels, "", "store labels k=v,k=v", "labels")
	str(&f.capacity, "", "store capacity (accepted, not enforced)", "capacity")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.version, "V", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if f.advertiseAddr == "" {
		f.advertiseAddr = f.addr
	}
	if f.advertiseStatusAddr == "" {
		f.advertiseStatusAddr = f.statusAddr
	}
	return f, nil
}

// tikvConfig holds the few keys of a TiKV TOML config this store honours; the
// rest of the file (rocksdb, raftdb, block cache ...) is parsed and ignored.
type tikvConfig struct {
	LogLevel string `toml:"log-level"`
	Log      struct {
		Level string `toml:"level"`
	} `toml:"log"`
	Raw map[string]any `toml:"-"`
}

func loadConfig(path string) (*tikvConfig, error) {
	c := &tikvConfig{}
	if path == "" {
		return c, nil
	}
	if _, err := toml.DecodeFile(path, c); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := toml.DecodeFile(path, &c.Raw); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// versionedPD stamps what TiKV puts in its store record on every one sent to PD
// (version, git hash, status and peer address, start time, deploy path = the
// binary's directory): unistore sends only id and address, which PD reads as
// version 1.0.0.
type versionedPD struct {
	pd.Client
	peerAddr   string
	statusAddr string
	deployPath string
	labels     []*metapb.StoreLabel
	start      int64
}

func (v *versionedPD) stamp(s *metapb.Store) *metapb.Store {
	out := *s
	out.Version = StoreVersion
	out.GitHash = GitHash
	out.StatusAddress = v.statusAddr
	out.StartTimestamp = v.start
	out.PeerAddress = v.peerAddr
	out.DeployPath = v.deployPath
	if len(v.labels) > 0 {
		out.Labels = v.labels
	}
	return &out
}

func (v *versionedPD) PutStore(ctx context.Context, s *metapb.Store) error {
	return v.Client.PutStore(ctx, v.stamp(s))
}

// Bootstrap fails when PD refuses it (another store bootstrapped the cluster first):
// unistore would otherwise go on with regions of its own in someone else's cluster.
func (v *versionedPD) Bootstrap(ctx context.Context, s *metapb.Store, r *metapb.Region) (*pdpb.BootstrapResponse, error) {
	resp, err := v.Client.Bootstrap(ctx, v.stamp(s), r)
	if err == nil && resp.GetHeader().GetError() != nil {
		return resp, fmt.Errorf("PD refused to bootstrap the cluster with this store (%s): "+
			"this unistore store serves a cluster alone; start one tikv per cluster",
			resp.GetHeader().GetError().String())
	}
	return resp, err
}

func parseLabels(text string) ([]*metapb.StoreLabel, error) {
	var out []*metapb.StoreLabel
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not key=value", part)
		}
		out = append(out, &metapb.StoreLabel{Key: k, Value: v})
	}
	return out, nil
}

// connectPD retries for as long as a TiKV would: the plugin starts stores after
// PD answers, but PD's leader may still be settling.
func connectPD(endpoints []string, deadline time.Duration) (pd.Client, error) {
	stop := time.Now().Add(deadline)
	for {
		c, err := pd.NewClient(endpoints, "tikv-server")
		if err == nil {
			return c, nil
		}
		if time.Now().After(stop) {
			return nil, err
		}
		log.Warn("PD not reachable yet, retrying", zap.Strings("pd", endpoints), zap.Error(err))
		time.Sleep(time.Second)
	}
}

func statusMux(f *flags, raw map[string]any) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("/metrics", promhttp.Handler())
	mux.HandleFunc("/config", func(w http.ResponseWriter, _ *http.Request) {
		cfg := map[string]any{}
		for k, v := range raw {
			cfg[k] = v
		}
		cfg["server"] = map[string]any{
			"addr": f.addr, "advertise-addr": f.advertiseAddr,
			"status-addr": f.statusAddr, "advertise-status-addr": f.advertiseStatusAddr,
		}
		cfg["storage"] = map[string]any{"data-dir": f.dataDir, "engine": "unistore"}
		cfg["pd"] = map[string]any{"endpoints": strings.Split(f.pd, ",")}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(cfg)
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func versionText() string {
	return fmt.Sprintf("TiKV\nRelease Version:   %s\nEdition:           Community\n"+
		"Git Commit Hash:   %s\nStorage engine:    unistore (pytest-tidb-ha test store, not TiKV)\n",
		StoreVersion, GitHash)
}

func run(args []string) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	if f.version {
		fmt.Print(versionText())
		return nil
	}
	tc, err := loadConfig(f.configPath)
	if err != nil {
		return err
	}
	level := f.logLevel
	if tc.Log.Level != "" {
		level = tc.Log.Level
	} else if tc.LogLevel != "" {
		level = tc.LogLevel
	}
	logCfg := &log.Config{Level: level, File: log.FileLogConfig{Filename: f.logFile}}
	lg, props, err := log.InitLogger(logCfg)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	log.ReplaceGlobals(lg, props)
	labels, err := parseLabels(f.labels)
	if err != nil {
		return err
	}
	log.Info("Welcome to the pytest-tidb-ha unistore store (TiKV protocol, not TiKV)",
		zap.String("release-version", StoreVersion), zap.String("git-hash", GitHash),
		zap.String("addr", f.addr), zap.String("advertise-addr", f.advertiseAddr),
		zap.String("pd", f.pd), zap.String("data-dir", f.dataDir))

	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return err
	}
	conf := config.DefaultConf
	conf.Server.Raft = false
	conf.Server.StoreAddr = f.advertiseAddr
	conf.Server.StatusAddr = f.advertiseStatusAddr
	conf.Server.PDAddr = f.pd
	conf.Server.LogfilePath = f.logFile
	conf.Engine.DBPath = filepath.Clean(f.dataDir)
	// Small test machines: keep badger's memory and files modest.
	conf.Engine.MaxMemTableSize = 16 << 20
	conf.Engine.VlogFileSize = 64 << 20
	conf.Engine.NumCompactors = 1

	endpoints := strings.Split(f.pd, ",")
	raw, err := connectPD(endpoints, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("PD %v: %w", endpoints, err)
	}
	deployPath := "/"
	if exe, err := os.Executable(); err == nil {
		deployPath = filepath.Dir(exe)
	}
	// One store per cluster: a fresh unistore would bootstrap a cluster of its own
	// and cannot join one (no raft, no replicas). Refuse instead of corrupting it.
	if _, err := os.Stat(filepath.Join(f.dataDir, "kv")); os.IsNotExist(err) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		booted, err := raw.IsBootstrapped(ctx)
		cancel()
		if err == nil && booted {
			return errors.New("the cluster already has a store: this unistore store serves " +
				"a cluster alone (one store, no raft); start one tikv per cluster")
		}
	}
	pdClient := &versionedPD{Client: raw, peerAddr: f.advertiseAddr, statusAddr: f.advertiseStatusAddr,
		deployPath: deployPath, labels: labels, start: time.Now().Unix()}

	// Listen before registering: PD hands our address to TiDB as soon as we PutStore.
	lis, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	statusLis, err := net.Listen("tcp", f.statusAddr)
	if err != nil {
		return err
	}
	store, err := server.New(&conf, pdClient)
	if err != nil {
		return fmt.Errorf("unistore: %w", err)
	}
	grpcServer := grpc.NewServer(
		grpc.MaxRecvMsgSize(1<<30), grpc.MaxSendMsgSize(1<<30),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 10 * time.Second, Timeout: 3 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(unaryGuard(store)), grpc.StreamInterceptor(streamGuard(store)),
	)
	tikvpb.RegisterTikvServer(grpcServer, store)
	deadlock.RegisterDeadlockServer(grpcServer, store)
	status := &http.Server{Handler: statusMux(f, tc.Raw), ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- grpcServer.Serve(lis) }()
	go func() { errc <- status.Serve(statusLis) }()
	log.Info("TiKV-protocol store is ready to serve", zap.String("addr", f.addr),
		zap.String("status-addr", f.statusAddr))

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	select {
	case sig := <-sigs:
		log.Info("shutting down", zap.Stringer("signal", sig))
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", zap.Error(err))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = status.Shutdown(ctx)
	grpcServer.Stop()
	store.Stop()
	raw.Close()
	_ = log.Sync()
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tikv-server:", err)
		os.Exit(1)
	}
}
