//go:build tools

// Package tools pins the real tidb-server main package so `go mod tidy` keeps
// every module it needs (built with `go build github.com/pingcap/tidb/cmd/tidb-server`).
package tools

import _ "github.com/pingcap/tidb/cmd/tidb-server"
