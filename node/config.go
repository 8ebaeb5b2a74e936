package node

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/gridmind/gridmind"
	"github.com/gridmind/gridmind/energy"
)

// Config is a node's configuration, read from <home>/config.yaml.
type Config struct {
	// Listen are libp2p multiaddrs to listen on.
	Listen []string `yaml:"listen"`
	// Bootstrap are full multiaddrs (with /p2p/<id>) of peers to join through.
	Bootstrap []string `yaml:"bootstrap"`
	// HTTP is the address of the JSON API and /metrics ("" disables it).
	HTTP string `yaml:"http"`
	// LoopbackOnly keeps every connection on 127.0.0.1 (devnet, demo, tests).
	LoopbackOnly bool `yaml:"loopback_only"`
	// Price is what this provider asks per work unit (one GFLOP of measured
	// work), in GRID ("0.00002") or µGRID ("20u").
	Price string `yaml:"price"`
	// Region is a coarse location used by placement filters ("eu-west").
	Region string `yaml:"region"`
	// Heartbeat is how often the node announces itself.
	Heartbeat Duration `yaml:"heartbeat"`
	// PeerTimeout is how long a silent peer stays in the table.
	PeerTimeout Duration `yaml:"peer_timeout"`
	// Energy describes the node's power supply.
	Energy EnergyConfig `yaml:"energy"`
	// Limits bound the resources the network layer may use.
	Limits LimitsConfig `yaml:"limits"`
	// Chain says where the ledger is.
	Chain ChainConfig `yaml:"chain"`
	// Provider says whether this node offers its compute on the market.
	Provider ProviderConfig `yaml:"provider"`
	// Inference bounds what inference forwarded to other nodes, which this
	// node's wallet pays for, may buy.
	Inference InferenceConfig `yaml:"inference"`
}

// InferenceConfig caps the inference this node buys from other nodes with
// its wallet. Zero fields take the defaults (DefaultInference).
type InferenceConfig struct {
	// SpendPeriod is the window the caps count over (a fixed window that
	// starts when the first request of the period arrives).
	SpendPeriod Duration `yaml:"spend_period"`
	// MaxTokens caps the tokens (prompt + max_tokens) bought from other
	// nodes per period, all callers together; the wallet pays each server
	// tokens × its registered price / 100.
	MaxTokens int64 `yaml:"max_tokens"`
	// MaxTokensPerCaller caps one caller per period: the request's OpenAI
	// "user" field, else the client's address.
	MaxTokensPerCaller int64 `yaml:"max_tokens_per_caller"`
}

// DefaultInference is the spending cap of a node whose config sets none.
var DefaultInference = InferenceConfig{SpendPeriod: Duration(time.Hour), MaxTokens: 1_000_000, MaxTokensPerCaller: 200_000}

// WithDefaults fills zero fields from DefaultInference.
func (c InferenceConfig) WithDefaults() InferenceConfig {
	if c.SpendPeriod <= 0 {
		c.SpendPeriod = DefaultInference.SpendPeriod
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = DefaultInference.MaxTokens
	}
	if c.MaxTokensPerCaller <= 0 {
		c.MaxTokensPerCaller = min(DefaultInference.MaxTokensPerCaller, c.MaxTokens)
	}
	return c
}

// ProviderConfig controls this node's market offer.
type ProviderConfig struct {
	// Enabled registers the node's offer on the ledger at start and accepts leases.
	Enabled bool `yaml:"enabled"`
	// Stake is the stake (GRID) the node keeps bonded; it is topped up from the balance at start.
	Stake string `yaml:"stake"`
	// AttestEvery is the uptime epoch: how often the node attests its
	// peers' heartbeats on the ledger (0 turns attestation off).
	AttestEvery Duration `yaml:"attest_every"`
}

// EnergyConfig is the node's energy profile; see energy.Profile for the model.
type EnergyConfig struct {
	Zone           string  `yaml:"zone"`           // grid zone of the carbon trace, e.g. "GB"
	UTCOffsetMin   int     `yaml:"utc_offset_min"` // the site's local standard time
	Southern       bool    `yaml:"southern"`       // southern hemisphere: seasons shifted
	SolarPeakKW    float64 `yaml:"solar_peak_kw"`  // 0 for none
	SolarTrace     string  `yaml:"solar_trace"`    // "almeria", "turin" or "utrecht"
	BatteryKWh     float64 `yaml:"battery_kwh"`    // 0 for none
	BatteryPct     float64 `yaml:"battery_initial_pct"`
	HouseholdScale float64 `yaml:"household_scale"` // multiplier on the shipped household load trace (0 for none)
	IdleWatts      float64 `yaml:"idle_watts"`
	BusyWatts      float64 `yaml:"busy_watts"`
}

// Profile converts the config to the energy model's profile.
func (e EnergyConfig) Profile() energy.Profile {
	p := energy.Profile{
		Zone: e.Zone, UTCOffsetMinutes: e.UTCOffsetMin, Southern: e.Southern,
		SolarPeakKW: e.SolarPeakKW, SolarTrace: e.SolarTrace,
		BatteryKWh: e.BatteryKWh, BatteryInitialPct: e.BatteryPct,
		LoadScale: e.HouseholdScale, IdleWatts: e.IdleWatts, BusyWatts: e.BusyWatts,
	}
	if e.HouseholdScale > 0 {
		p.LoadTrace = "sceaux"
	}
	return p
}

// EnergyConfigFrom converts an energy profile to its config form.
func EnergyConfigFrom(p energy.Profile) EnergyConfig {
	return EnergyConfig{
		Zone: p.Zone, UTCOffsetMin: p.UTCOffsetMinutes, Southern: p.Southern,
		SolarPeakKW: p.SolarPeakKW, SolarTrace: p.SolarTrace,
		BatteryKWh: p.BatteryKWh, BatteryPct: p.BatteryInitialPct,
		HouseholdScale: p.LoadScale, IdleWatts: p.IdleWatts, BusyWatts: p.BusyWatts,
	}
}

// LimitsConfig bounds connections and streams.
type LimitsConfig struct {
	ConnLow            int `yaml:"conn_low"`
	ConnHigh           int `yaml:"conn_high"`
	StreamsPerPeer     int `yaml:"streams_per_peer"`
	StreamsPerProtocol int `yaml:"streams_per_protocol"`
}

// ChainConfig lists validator RPC endpoints (fail-over in order) and, for a
// validator, where its CometBFT home is.
type ChainConfig struct {
	RPC       []string `yaml:"rpc"`
	Validator bool     `yaml:"validator"`
	Home      string   `yaml:"home"` // default <home>/chain
}

// Duration is a time.Duration that reads and writes as "5s" in YAML.
type Duration time.Duration

func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (d *Duration) UnmarshalYAML(v *yaml.Node) error {
	p, err := time.ParseDuration(v.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 5s or 1m", v.Line, v.Value)
	}
	*d = Duration(p)
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// DefaultConfig is what `gridmind init` writes.
func DefaultConfig() Config {
	return Config{
		Listen:      []string{"/ip4/0.0.0.0/tcp/4201", "/ip4/0.0.0.0/udp/4201/quic-v1"},
		HTTP:        "127.0.0.1:7070",
		Price:       "20u",
		Region:      "unknown",
		Heartbeat:   Duration(3 * time.Second),
		PeerTimeout: Duration(15 * time.Second),
		Energy:      EnergyConfig{Zone: "GB", IdleWatts: 30, BusyWatts: 120},
		Limits:      LimitsConfig{ConnLow: 64, ConnHigh: 192, StreamsPerPeer: 64, StreamsPerProtocol: 1024},
		Provider:    ProviderConfig{Enabled: true, Stake: "10", AttestEvery: Duration(time.Minute)},
		Inference:   DefaultInference,
	}
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return gridmind.E(gridmind.KindInvalid, "config", "%s: %s", field, fmt.Sprintf(format, args...))
	}
	if len(c.Listen) == 0 {
		return bad("listen", "at least one address is needed, e.g. /ip4/0.0.0.0/tcp/4201")
	}
	for i, a := range c.Listen {
		if !strings.HasPrefix(a, "/ip4/") && !strings.HasPrefix(a, "/ip6/") {
			return bad(fmt.Sprintf("listen[%d]", i), "%q is not a multiaddr like /ip4/0.0.0.0/tcp/4201", a)
		}
	}
	for i, a := range c.Bootstrap {
		if !strings.HasPrefix(a, "/") || !strings.Contains(a, "/p2p/") {
			return bad(fmt.Sprintf("bootstrap[%d]", i), "%q must be a full multiaddr ending in /p2p/<peer id>", a)
		}
	}
	if c.HTTP != "" {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			return bad("http", "%q is not host:port", c.HTTP)
		}
	}
	if _, err := gridmind.ParseAmount(c.Price); err != nil {
		return bad("price", "%v", err)
	}
	if c.Heartbeat.Std() < 100*time.Millisecond || c.Heartbeat.Std() > time.Hour {
		return bad("heartbeat", "%s is outside 100ms..1h", c.Heartbeat.Std())
	}
	if c.PeerTimeout.Std() < 2*c.Heartbeat.Std() {
		return bad("peer_timeout", "%s must be at least twice the heartbeat (%s)", c.PeerTimeout.Std(), c.Heartbeat.Std())
	}
	e := c.Energy
	switch {
	case e.IdleWatts < 0 || e.BusyWatts <= 0 || e.BusyWatts < e.IdleWatts:
		return bad("energy.busy_watts", "busy (%v) must be > 0 and ≥ idle_watts (%v) ≥ 0", e.BusyWatts, e.IdleWatts)
	case e.SolarPeakKW < 0:
		return bad("energy.solar_peak_kw", "%v must be ≥ 0", e.SolarPeakKW)
	case e.BatteryKWh < 0:
		return bad("energy.battery_kwh", "%v must be ≥ 0", e.BatteryKWh)
	case e.HouseholdScale < 0:
		return bad("energy.household_scale", "%v must be ≥ 0", e.HouseholdScale)
	}
	if p := c.Energy.Profile(); p.Validate() != nil {
		err := p.Validate()
		return bad("energy", "%v", err)
	}
	if c.Limits.ConnLow <= 0 || c.Limits.ConnHigh < c.Limits.ConnLow {
		return bad("limits.conn_high", "need 0 < conn_low (%d) ≤ conn_high (%d)", c.Limits.ConnLow, c.Limits.ConnHigh)
	}
	if c.Limits.StreamsPerPeer <= 0 || c.Limits.StreamsPerProtocol <= 0 {
		return bad("limits", "streams_per_peer and streams_per_protocol must be > 0")
	}
	if c.Provider.Stake != "" {
		if _, err := gridmind.ParseAmount(c.Provider.Stake); err != nil {
			return bad("provider.stake", "%v", err)
		}
	}
	if e := c.Provider.AttestEvery.Std(); e != 0 && e < 2*c.Heartbeat.Std() {
		return bad("provider.attest_every", "%s must be 0 or at least twice the heartbeat (%s)", e, c.Heartbeat.Std())
	}
	if in := c.Inference; in.SpendPeriod < 0 || in.MaxTokens < 0 || in.MaxTokensPerCaller < 0 {
		return bad("inference", "spend_period, max_tokens and max_tokens_per_caller must be ≥ 0")
	} else if in.MaxTokens > 0 && in.MaxTokensPerCaller > in.MaxTokens {
		return bad("inference.max_tokens_per_caller", "%d exceeds max_tokens (%d)", in.MaxTokensPerCaller, in.MaxTokens)
	}
	for i, r := range c.Chain.RPC {
		if !strings.HasPrefix(r, "http://") && !strings.HasPrefix(r, "https://") && !strings.HasPrefix(r, "tcp://") {
			return bad(fmt.Sprintf("chain.rpc[%d]", i), "%q must start with http:// or tcp://", r)
		}
	}
	return nil
}

// StakeAmount is the configured provider stake.
func (c Config) StakeAmount() gridmind.Amount {
	a, _ := gridmind.ParseAmount(c.Provider.Stake)
	return a
}

// PriceAmount is the configured price in µGRID per work unit (GFLOP).
func (c Config) PriceAmount() gridmind.Amount {
	a, _ := gridmind.ParseAmount(c.Price)
	return a
}

// ConfigFile is the config's file name inside a home directory.
const ConfigFile = "config.yaml"

// LoadConfig reads and validates <home>/config.yaml. Unknown fields are
// errors, so a typo is never silently ignored.
func LoadConfig(home string) (Config, error) {
	path := filepath.Join(home, ConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Config{}, gridmind.E(gridmind.KindNotFound, "config", "%s does not exist; run `gridmind init --home %s` first", path, home)
	}
	if err != nil {
		return Config{}, gridmind.E(gridmind.KindInvalid, "config", "%w", err)
	}
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, gridmind.E(gridmind.KindInvalid, "config", "%s: %s", path, nameYAMLError(data, err))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// WriteConfig writes cfg as a commented YAML file (mode 0644).
func WriteConfig(home string, cfg Config) error {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	q := func(ss []string) string {
		if len(ss) == 0 {
			return "[]"
		}
		out, _ := yaml.Marshal(ss)
		return "\n" + indent(string(out), "  ")
	}
	w("# gridmind node configuration. Edit and restart the node; unknown keys are errors.\n\n")
	w("# libp2p listen multiaddrs (TCP and QUIC).\nlisten: %s\n", q(cfg.Listen))
	w("# Peers to join through: full multiaddrs ending in /p2p/<peer id>.\nbootstrap: %s\n", q(cfg.Bootstrap))
	w("# JSON API, Prometheus /metrics and dashboard. On 127.0.0.1 reading is open and spending or\n# changing state needs the token in api.token; on any other address every call needs it. \"\" disables.\nhttp: %q\n", cfg.HTTP)
	w("# Keep every connection on 127.0.0.1 (devnet and demo).\nloopback_only: %v\n", cfg.LoopbackOnly)
	w("# Asking price per work unit (one GFLOP of measured work): GRID (\"0.00002\") or µGRID (\"20u\").\nprice: %q\n", cfg.Price)
	w("# Coarse location for placement filters (e.g. eu-west, us-east).\nregion: %q\n", cfg.Region)
	w("# How often to announce presence, and how long a silent peer is kept.\nheartbeat: %s\npeer_timeout: %s\n", cfg.Heartbeat.Std(), cfg.PeerTimeout.Std())
	w("# Energy profile: grid zone for carbon intensity (AU-NSW, BR-SP, DE-LU, GB, KR, US-CAL-CISO,\n# US-NY-NYIS, ZA), solar plant (almeria, turin, utrecht) scaled to solar_peak_kw, battery,\n# household load (multiplier of the shipped trace) and the device's idle and busy draw.\n")
	e := cfg.Energy
	w("energy:\n  zone: %q\n  utc_offset_min: %d\n  southern: %v\n  solar_peak_kw: %v\n  solar_trace: %q\n  battery_kwh: %v\n  battery_initial_pct: %v\n  household_scale: %v\n  idle_watts: %v\n  busy_watts: %v\n",
		e.Zone, e.UTCOffsetMin, e.Southern, e.SolarPeakKW, e.SolarTrace, e.BatteryKWh, e.BatteryPct, e.HouseholdScale, e.IdleWatts, e.BusyWatts)
	w("# Resource limits of the network layer.\nlimits:\n  conn_low: %d\n  conn_high: %d\n  streams_per_peer: %d\n  streams_per_protocol: %d\n",
		cfg.Limits.ConnLow, cfg.Limits.ConnHigh, cfg.Limits.StreamsPerPeer, cfg.Limits.StreamsPerProtocol)
	w("# Ledger: validator RPC endpoints tried in order; validator: true runs one in this process.\nchain:\n  rpc: %s\n  validator: %v\n  home: %q\n", q(cfg.Chain.RPC), cfg.Chain.Validator, cfg.Chain.Home)
	w("# Market: register this node's offer on the ledger, keep this much stake bonded (GRID),\n# and attest peers' heartbeats (uptime) on the ledger this often (0s: never).\nprovider:\n  enabled: %v\n  stake: %q\n  attest_every: %s\n", cfg.Provider.Enabled, cfg.Provider.Stake, cfg.Provider.AttestEvery.Std())
	in := cfg.Inference.WithDefaults()
	w("# Inference this node forwards to other nodes is paid from its wallet: at most max_tokens\n# (prompt + completion) per spend_period for all callers, max_tokens_per_caller for one.\ninference:\n  spend_period: %s\n  max_tokens: %d\n  max_tokens_per_caller: %d\n", in.SpendPeriod.Std(), in.MaxTokens, in.MaxTokensPerCaller)
	return os.WriteFile(filepath.Join(home, ConfigFile), []byte(b.String()), 0o644)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// nameYAMLError adds the dotted key path to yaml's "line N: ..." errors, so
// the user reads "energy.busy_watts (line 12): cannot unmarshal" instead
// of a line number alone.
func nameYAMLError(data []byte, err error) string {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return err.Error()
	}
	keys := map[int]string{} // line of a key -> its dotted path
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				path := n.Content[i].Value
				if prefix != "" {
					path = prefix + "." + path
				}
				keys[n.Content[i].Line] = path
				walk(n.Content[i+1], path)
			}
		}
	}
	walk(&root, "")
	return yamlLine.ReplaceAllStringFunc(err.Error(), func(m string) string {
		line, _ := strconv.Atoi(yamlLine.FindStringSubmatch(m)[1])
		best, bestLine := "", -1
		for l, k := range keys {
			if l <= line && l > bestLine {
				best, bestLine = k, l
			}
		}
		if best == "" {
			return m
		}
		return fmt.Sprintf("%s (%s)", best, m)
	})
}
