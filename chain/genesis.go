package chain

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/ledger"
)

// NodeSettings are a validator's local settings, kept next to its keys in
// <home>/config/gridmind.json. InitGenesis writes them; StartNode reads them.
type NodeSettings struct {
	Moniker         string   `json:"moniker"`
	P2PListen       string   `json:"p2p_listen"` // host:port, 127.0.0.1 for local chains
	RPCListen       string   `json:"rpc_listen"` // host:port
	PersistentPeers []string `json:"persistent_peers,omitempty"`
	// Pex turns on peer exchange (off for local chains that list their peers).
	Pex                       bool     `json:"pex,omitempty"`
	TimeoutCommit             Duration `json:"timeout_commit"`
	TimeoutPropose            Duration `json:"timeout_propose"`
	CreateEmptyBlocks         bool     `json:"create_empty_blocks"`
	CreateEmptyBlocksInterval Duration `json:"create_empty_blocks_interval,omitempty"`
	MempoolSize               int      `json:"mempool_size"`
}

// Duration is a time.Duration written as "100ms" in JSON.
type Duration time.Duration

// MarshalText prints the duration as Go does ("1.5s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration ("100ms").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// DefaultNodeSettings suit a chain of a few validators on one machine or a
// LAN: 100 ms between blocks; CometBFT's 3 s to wait for a proposal (a
// busy proposer of a big block needs it; a dead one costs it once per
// round it should have led).
func DefaultNodeSettings() NodeSettings {
	return NodeSettings{
		P2PListen: "127.0.0.1:26656", RPCListen: "127.0.0.1:26657",
		TimeoutCommit: Duration(100 * time.Millisecond), TimeoutPropose: Duration(3 * time.Second),
		CreateEmptyBlocks: true, MempoolSize: 50_000,
	}
}

// ValidatorSpec describes one validator of a new chain.
type ValidatorSpec struct {
	Name string // moniker and home directory name; default "validator-<i>"
	// Key is the validator's consensus key and ledger account (normally
	// the node's gridmind identity key). Nil: a new key is generated and
	// kept only in the validator's home.
	Key   ed25519.PrivateKey
	Power int64  // voting power; default 10
	Home  string // default <Dir>/<Name>
	// Ports on 127.0.0.1; 0 takes BasePort + 2i (p2p) and BasePort + 2i + 1 (rpc).
	P2PPort, RPCPort int
	// Host the validator listens on and is reached at; default 127.0.0.1.
	Host string
}

// GenesisOptions describe a new chain.
type GenesisOptions struct {
	ChainID    string
	Dir        string // where validator homes go, and network.json
	Validators []ValidatorSpec
	Accounts   []ledger.GenesisAccount // funded at genesis
	// Params are the ledger rules; nil means ledger.DefaultParams() with the
	// validators' accounts as slashers.
	Params      *ledger.Params
	GenesisTime time.Time // zero: now
	BasePort    int       // default 26656
	// Settings is the template for every validator's NodeSettings; the
	// zero value means DefaultNodeSettings(). Listen addresses and peers
	// are filled in per validator.
	Settings NodeSettings
}

// ValidatorInfo is one validator of a network, as InitGenesis made it.
type ValidatorInfo struct {
	Name             string          `json:"name"`
	Home             string          `json:"home"`
	Account          gridmind.NodeID `json:"account"`
	ConsensusAddress string          `json:"consensus_address"`
	P2PID            string          `json:"p2p_id"`
	P2PAddr          string          `json:"p2p_addr"` // host:port
	RPCAddr          string          `json:"rpc_addr"` // http://host:port
}

// Network is a chain made by InitGenesis: its id and validators. It is
// saved as <Dir>/network.json.
type Network struct {
	ChainID    string          `json:"chain_id"`
	Validators []ValidatorInfo `json:"validators"`
}

// RPCAddrs lists the validators' RPC addresses, for NewClient.
func (n *Network) RPCAddrs() []string {
	out := make([]string, len(n.Validators))
	for i, v := range n.Validators {
		out[i] = v.RPCAddr
	}
	return out
}

// Homes lists the validators' home directories, for StartNode.
func (n *Network) Homes() []string {
	out := make([]string, len(n.Validators))
	for i, v := range n.Validators {
		out[i] = v.Home
	}
	return out
}

// ManifestFile is the name of the network description InitGenesis writes.
const ManifestFile = "network.json"

// LoadNetwork reads the network.json that InitGenesis wrote into dir.
func LoadNetwork(dir string) (*Network, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, gridmind.E(gridmind.KindNotFound, "chain.load-network", "%w", err)
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, "chain.load-network", "%s: %w", ManifestFile, err)
	}
	return &n, nil
}

// InitGenesis creates a chain: for each validator a home directory with
// its consensus key, node key, settings and the shared genesis document
// (whose app_state is the ledger genesis). It refuses to overwrite an
// existing home. Used by `gridmind chain init`, devnet and demo.
func InitGenesis(opts GenesisOptions) (*Network, error) {
	const op = "chain.init-genesis"
	if opts.ChainID == "" || len(opts.ChainID) > ledger.MaxChainIDBytes {
		return nil, gridmind.E(gridmind.KindInvalid, op, "chain id must have 1 to %d bytes", ledger.MaxChainIDBytes)
	}
	if len(opts.Validators) == 0 {
		return nil, gridmind.E(gridmind.KindInvalid, op, "a chain needs at least one validator")
	}
	if opts.BasePort == 0 {
		opts.BasePort = 26656
	}
	if opts.GenesisTime.IsZero() {
		opts.GenesisTime = time.Now().UTC().Truncate(time.Second)
	}
	tmpl := opts.Settings
	if tmpl.TimeoutCommit == 0 && tmpl.MempoolSize == 0 {
		tmpl = DefaultNodeSettings()
	}

	type prepared struct {
		spec    ValidatorSpec
		info    ValidatorInfo
		privKey cmted25519.PrivKey
		nodeKey *p2p.NodeKey
	}
	var vals []prepared
	names := map[string]bool{}
	for i, spec := range opts.Validators {
		if spec.Name == "" {
			spec.Name = fmt.Sprintf("validator-%d", i)
		}
		if names[spec.Name] {
			return nil, gridmind.E(gridmind.KindInvalid, op, "validator name %q used twice", spec.Name)
		}
		names[spec.Name] = true
		if spec.Power == 0 {
			spec.Power = 10
		}
		if spec.Home == "" {
			if opts.Dir == "" {
				return nil, gridmind.E(gridmind.KindInvalid, op, "validator %s has no home and no Dir is set", spec.Name)
			}
			spec.Home = filepath.Join(opts.Dir, spec.Name)
		}
		if spec.Host == "" {
			spec.Host = "127.0.0.1"
		}
		if spec.P2PPort == 0 {
			spec.P2PPort = opts.BasePort + 2*i
		}
		if spec.RPCPort == 0 {
			spec.RPCPort = opts.BasePort + 2*i + 1
		}
		if _, err := os.Stat(filepath.Join(spec.Home, "config", "genesis.json")); err == nil {
			return nil, gridmind.E(gridmind.KindConflict, op, "%s already holds a chain; remove it first", spec.Home)
		}
		var priv cmted25519.PrivKey
		if spec.Key != nil {
			if len(spec.Key) != ed25519.PrivateKeySize {
				return nil, gridmind.E(gridmind.KindInvalid, op, "validator %s: not an ed25519 private key", spec.Name)
			}
			priv = cmted25519.PrivKey(append([]byte(nil), spec.Key...))
		} else {
			priv = cmted25519.GenPrivKey()
		}
		nodeKey := &p2p.NodeKey{PrivKey: cmted25519.GenPrivKey()}
		pub := priv.PubKey()
		vals = append(vals, prepared{
			spec: spec, privKey: priv, nodeKey: nodeKey,
			info: ValidatorInfo{
				Name: spec.Name, Home: spec.Home,
				Account:          gridmind.NodeIDFromPublicKey(ed25519.PublicKey(pub.Bytes())),
				ConsensusAddress: pub.Address().String(),
				P2PID:            string(nodeKey.ID()),
				P2PAddr:          fmt.Sprintf("%s:%d", spec.Host, spec.P2PPort),
				RPCAddr:          fmt.Sprintf("http://%s:%d", spec.Host, spec.RPCPort),
			},
		})
	}

	g := ledger.Genesis{ChainID: opts.ChainID, Accounts: opts.Accounts}
	if opts.Params != nil {
		g.Params = *opts.Params
	} else {
		g.Params = ledger.DefaultParams()
		for _, v := range vals {
			g.Params.Slashers = append(g.Params.Slashers, v.info.Account)
		}
	}
	for _, v := range vals {
		g.Validators = append(g.Validators, ledger.Validator{Address: v.info.ConsensusAddress, Account: v.info.Account})
	}
	// Check the ledger accepts this genesis before writing anything.
	if _, err := ledger.NewState(g, ledger.Options{}); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "%w", err)
	}
	appState, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	params := cmttypes.DefaultConsensusParams()
	params.Block.MaxBytes = 8 << 20 // ≈ 50,000 transfers; blocks are cut by time long before
	doc := &cmttypes.GenesisDoc{
		GenesisTime: opts.GenesisTime, ChainID: opts.ChainID, InitialHeight: 1,
		ConsensusParams: params, AppState: appState,
	}
	for _, v := range vals {
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{
			Address: v.privKey.PubKey().Address(), PubKey: v.privKey.PubKey(), Power: v.spec.Power, Name: v.spec.Name,
		})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, op, "genesis: %w", err)
	}

	net := &Network{ChainID: opts.ChainID}
	for i, v := range vals {
		settings := tmpl
		settings.Moniker = v.spec.Name
		settings.P2PListen = v.info.P2PAddr
		settings.RPCListen = strings.TrimPrefix(v.info.RPCAddr, "http://")
		settings.PersistentPeers = nil
		for j, peer := range vals {
			if j != i {
				settings.PersistentPeers = append(settings.PersistentPeers, peer.info.P2PID+"@"+peer.info.P2PAddr)
			}
		}
		if err := writeHome(v.spec.Home, doc, v.privKey, v.nodeKey, settings); err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "validator %s: %w", v.spec.Name, err)
		}
		net.Validators = append(net.Validators, v.info)
	}
	if opts.Dir != "" {
		b, _ := json.MarshalIndent(net, "", "  ")
		if err := os.WriteFile(filepath.Join(opts.Dir, ManifestFile), b, 0o644); err != nil {
			return nil, gridmind.E(gridmind.KindInternal, op, "%w", err)
		}
	}
	return net, nil
}

func writeHome(home string, doc *cmttypes.GenesisDoc, priv cmted25519.PrivKey, nodeKey *p2p.NodeKey, s NodeSettings) error {
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			return err
		}
	}
	if err := doc.SaveAs(filepath.Join(home, "config", "genesis.json")); err != nil {
		return err
	}
	privval.NewFilePV(priv, filepath.Join(home, "config", "priv_validator_key.json"),
		filepath.Join(home, "data", "priv_validator_state.json")).Save()
	if err := nodeKey.SaveAs(filepath.Join(home, "config", "node_key.json")); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, "config", settingsFile), b, 0o600)
}

const settingsFile = "gridmind.json"

// LoadNodeSettings reads <home>/config/gridmind.json.
func LoadNodeSettings(home string) (NodeSettings, error) {
	b, err := os.ReadFile(filepath.Join(home, "config", settingsFile))
	if err != nil {
		return NodeSettings{}, gridmind.E(gridmind.KindNotFound, "chain.settings", "%w (run `gridmind chain init` first)", err)
	}
	var s NodeSettings
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s); err != nil {
		return NodeSettings{}, gridmind.E(gridmind.KindInvalid, "chain.settings", "%s: %w", settingsFile, err)
	}
	return s, nil
}

// parseAppState reads the ledger genesis from a genesis document's app_state.
func parseAppState(b []byte) (*ledger.Genesis, error) {
	if len(b) == 0 {
		return nil, errors.New("chain: genesis has no app_state")
	}
	var g ledger.Genesis
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&g); err != nil {
		return nil, fmt.Errorf("chain: genesis app_state: %w", err)
	}
	return &g, nil
}
