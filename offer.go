package gridmind

// GPU is one accelerator a node offers.
type GPU struct {
	Name        string `json:"name" yaml:"name"`
	MemoryBytes uint64 `json:"memory_bytes" yaml:"memory_bytes"`
}

// Hardware is what a node has to offer.
type Hardware struct {
	CPUCores    int    `json:"cpu_cores" yaml:"cpu_cores"`
	MemoryBytes uint64 `json:"memory_bytes" yaml:"memory_bytes"`
	GPUs        []GPU  `json:"gpus,omitempty" yaml:"gpus,omitempty"`
}

// WorkUnitFLOP is what a price is quoted per: one GFLOP (10^9 floating
// point operations) of measured work. Training receipts count work in it.
const WorkUnitFLOP = 1e9

// Offer is a provider's standing offer as registered on the ledger. All
// fields are integers or strings so the ledger stays deterministic.
type Offer struct {
	Node             NodeID   `json:"node" yaml:"node"`
	Hardware         Hardware `json:"hardware" yaml:"hardware"`
	ThroughputMFLOPS uint64   `json:"throughput_mflops" yaml:"throughput_mflops"`               // measured by the built-in benchmark
	PricePerUnit     Amount   `json:"price_per_unit" yaml:"price_per_unit"`                     // µGRID per WorkUnitFLOP of work
	Region           string   `json:"region" yaml:"region"`                                     // e.g. "eu-west"
	EnergyZone       string   `json:"energy_zone" yaml:"energy_zone"`                           // grid zone id, e.g. "GB"
	EnergyProfile    string   `json:"energy_profile,omitempty" yaml:"energy_profile,omitempty"` // hash of the energy profile document
}

// EnergyState is a node's live energy situation, carried in heartbeats.
type EnergyState struct {
	Zone            string  `json:"zone,omitempty"`
	SolarWatts      float64 `json:"solar_w"`
	LoadWatts       float64 `json:"load_w"`      // household or site load, device excluded
	DeviceWatts     float64 `json:"device_w"`    // the compute device's draw now
	SurplusWatts    float64 `json:"surplus_w"`   // solar + battery available beyond load
	BatteryPercent  float64 `json:"battery_pct"` // 0..100, 0 when no battery
	CarbonGPerKWh   float64 `json:"carbon_g_per_kwh"`
	ForecastSurplus float64 `json:"forecast_surplus_wh,omitempty"` // surplus energy expected over the next hours
	PowerSource     string  `json:"power_source,omitempty"`        // "nvml", "rapl" or "config": where device watts come from
}

// ServedModel is a model a node serves, with its live load.
type ServedModel struct {
	Hash         string  `json:"hash"`
	QueueLength  int     `json:"queue"`
	LatencyP50Ms float64 `json:"p50_ms"`
	LatencyP95Ms float64 `json:"p95_ms"`
	ErrorRate    float64 `json:"error_rate"`
}

// Heartbeat is what a node says about itself on the presence topic every
// few seconds, inside a signed Envelope.
type Heartbeat struct {
	Version          string        `json:"version"`
	Addrs            []string      `json:"addrs,omitempty"`
	Hardware         Hardware      `json:"hardware"`
	ThroughputGFLOPS float64       `json:"throughput_gflops"`
	PricePerUnit     Amount        `json:"price_per_unit"`
	Region           string        `json:"region,omitempty"`
	Validator        bool          `json:"validator,omitempty"`
	RPC              string        `json:"rpc,omitempty"` // a validator's ledger RPC address
	Energy           EnergyState   `json:"energy"`
	Serving          []ServedModel `json:"serving,omitempty"`
	Busy             bool          `json:"busy,omitempty"`
}

// JobSpec is what a requester asks for. It is stored on the ledger with the
// job, so it holds only integers and strings.
type JobSpec struct {
	Name                string   `json:"name" yaml:"name"`
	Model               string   `json:"model" yaml:"model"` // "mlp" or "transformer"
	Workers             int      `json:"workers" yaml:"workers"`
	Rounds              int      `json:"rounds" yaml:"rounds"`
	InnerSteps          int      `json:"inner_steps" yaml:"inner_steps"`
	MinMemoryBytes      uint64   `json:"min_memory_bytes,omitempty" yaml:"min_memory_bytes,omitempty"`
	MinThroughputMFLOPS uint64   `json:"min_throughput_mflops,omitempty" yaml:"min_throughput_mflops,omitempty"`
	MaxPricePerUnit     Amount   `json:"max_price_per_unit,omitempty" yaml:"max_price_per_unit,omitempty"`
	Budget              Amount   `json:"budget" yaml:"budget"`
	DeadlineUnix        int64    `json:"deadline_unix,omitempty" yaml:"deadline_unix,omitempty"`
	RegionsAllowed      []string `json:"regions_allowed,omitempty" yaml:"regions_allowed,omitempty"`
	RegionsExcluded     []string `json:"regions_excluded,omitempty" yaml:"regions_excluded,omitempty"`
	GreenPreference     int      `json:"green_preference,omitempty" yaml:"green_preference,omitempty"` // 0..100: how much clean energy counts in ranking
	MinReputation       int      `json:"min_reputation,omitempty" yaml:"min_reputation,omitempty"`     // 0..100
	MinStake            Amount   `json:"min_stake,omitempty" yaml:"min_stake,omitempty"`
	Seed                int64    `json:"seed,omitempty" yaml:"seed,omitempty"`
	// The training rules every worker enforces, covered by the spec's place
	// on the ledger. Empty means the network default (robust): int8,
	// centered clipping, the default screen, and at least half the workers.
	Codec           string `json:"codec,omitempty" yaml:"codec,omitempty"`                       // "int8", "int4", "float32" or "topk:K:BITS"
	Combine         string `json:"combine,omitempty" yaml:"combine,omitempty"`                   // "mean", "median", "trimmed-mean:F", "centered-clip:N"
	Screen          string `json:"screen,omitempty" yaml:"screen,omitempty"`                     // "default", "off" or "max-norm=3,min-norm=0.25,min-cosine=0.1,margin=0.3"
	MinParticipants int    `json:"min_participants,omitempty" yaml:"min_participants,omitempty"` // fewest contributors a round needs to be paid in full
	// Overlap makes the workers train round r+1 while round r's all-reduce
	// runs (diloco's Config.Overlap). It changes when they compute, not
	// what they are paid for or how their work is checked, so it travels
	// in the job's announcement and is not written on the ledger.
	Overlap bool `json:"overlap,omitempty" yaml:"overlap,omitempty"`
	// ElasticSteps lets a worker that would wait for the round's slowest
	// train on, up to half as many steps again (diloco's
	// Config.MaxInnerSteps); it commits to the steps it ran and auditors
	// re-run them. Like Overlap it changes when workers compute, not what
	// they are paid for (a round's pay is for H steps), so it travels in
	// the announcement and is not written on the ledger.
	ElasticSteps bool `json:"elastic_steps,omitempty" yaml:"elastic_steps,omitempty"`
}
