//go:build tools

// Package tools pins the real pd-server main package so `go mod tidy` keeps
// every module it needs (built with `go build github.com/tikv/pd/cmd/pd-server`).
package tools

import _ "github.com/tikv/pd/cmd/pd-server"
