// Package depswarm pins the heavy dependencies in go.mod while the packages that use them are written.
package depswarm

import (
	_ "github.com/cometbft/cometbft/node"
	_ "github.com/cometbft/cometbft/privval"
	_ "github.com/cometbft/cometbft/rpc/client/http"
	_ "github.com/cometbft/cometbft/rpc/client/local"
	_ "github.com/gomlx/gomlx/backends/simplego"
	_ "github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	_ "github.com/gomlx/gomlx/pkg/ml/layers"
	_ "github.com/gomlx/gomlx/pkg/ml/train"
	_ "github.com/gomlx/gomlx/pkg/ml/train/losses"
	_ "github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	_ "github.com/libp2p/go-libp2p"
	_ "github.com/libp2p/go-libp2p-kad-dht"
	_ "github.com/libp2p/go-libp2p-pubsub"
	_ "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	_ "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	_ "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	_ "github.com/libp2p/go-libp2p/p2p/transport/quic"
	_ "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "gopkg.in/yaml.v3"
)
