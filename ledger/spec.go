package ledger

import (
	"fmt"
	"unicode/utf8"

	"github.com/gridmind/gridmind"
)

// Offers and job specs live in the root package as plain structs; these
// are their wire encodings and the shape checks the ledger applies.

func encodeOffer(e *encoder, o *gridmind.Offer) {
	e.varint(int64(o.Hardware.CPUCores))
	e.uvarint(o.Hardware.MemoryBytes)
	e.uvarint(uint64(len(o.Hardware.GPUs)))
	for _, g := range o.Hardware.GPUs {
		e.str(g.Name)
		e.uvarint(g.MemoryBytes)
	}
	e.uvarint(o.ThroughputMFLOPS)
	e.uvarint(uint64(o.PricePerUnit))
	e.str(o.Region)
	e.str(o.EnergyZone)
	e.str(o.EnergyProfile)
}

func decodeOffer(d *decoder, o *gridmind.Offer) {
	o.Hardware.CPUCores = d.integer("cpu cores")
	o.Hardware.MemoryBytes = d.uvarint("memory")
	n := d.count("gpus", maxListLen)
	if n > 0 && d.err == nil {
		o.Hardware.GPUs = make([]gridmind.GPU, n)
		for i := range o.Hardware.GPUs {
			o.Hardware.GPUs[i].Name = d.str("gpu name", maxShortString)
			o.Hardware.GPUs[i].MemoryBytes = d.uvarint("gpu memory")
		}
	}
	o.ThroughputMFLOPS = d.uvarint("throughput")
	o.PricePerUnit = d.amount("price")
	o.Region = d.str("region", maxShortString)
	o.EnergyZone = d.str("energy zone", maxShortString)
	o.EnergyProfile = d.str("energy profile", maxShortString)
}

func checkString(what string, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%s of %d bytes, at most %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	return nil
}

func checkOffer(o *gridmind.Offer) error {
	if o.Hardware.CPUCores < 0 || o.Hardware.CPUCores > 1<<20 {
		return fmt.Errorf("offer: %d cpu cores", o.Hardware.CPUCores)
	}
	if len(o.Hardware.GPUs) > maxListLen {
		return fmt.Errorf("offer: %d gpus, at most %d", len(o.Hardware.GPUs), maxListLen)
	}
	for _, g := range o.Hardware.GPUs {
		if err := checkString("offer: gpu name", g.Name, maxShortString); err != nil {
			return err
		}
	}
	for _, f := range []struct{ what, s string }{
		{"offer: region", o.Region}, {"offer: energy zone", o.EnergyZone}, {"offer: energy profile", o.EnergyProfile},
	} {
		if err := checkString(f.what, f.s, maxShortString); err != nil {
			return err
		}
	}
	return nil
}

// Bounds on job specs; they keep every derived quantity inside 64 bits.
const (
	MaxWorkers = 1024
	MaxRounds  = 1_000_000
)

func encodeStrings(e *encoder, list []string) {
	e.uvarint(uint64(len(list)))
	for _, s := range list {
		e.str(s)
	}
}

func decodeStrings(d *decoder, what string) []string {
	n := d.count(what, maxListLen)
	if n == 0 || d.err != nil {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.str(what, maxShortString)
	}
	return out
}

func encodeSpec(e *encoder, s *gridmind.JobSpec) {
	e.str(s.Name)
	e.str(s.Model)
	e.varint(int64(s.Workers))
	e.varint(int64(s.Rounds))
	e.varint(int64(s.InnerSteps))
	e.uvarint(s.MinMemoryBytes)
	e.uvarint(s.MinThroughputMFLOPS)
	e.uvarint(uint64(s.MaxPricePerUnit))
	e.uvarint(uint64(s.Budget))
	e.varint(s.DeadlineUnix)
	encodeStrings(e, s.RegionsAllowed)
	encodeStrings(e, s.RegionsExcluded)
	e.varint(int64(s.GreenPreference))
	e.varint(int64(s.MinReputation))
	e.uvarint(uint64(s.MinStake))
	e.varint(s.Seed)
	e.str(s.Codec)
	e.str(s.Combine)
	e.str(s.Screen)
	e.varint(int64(s.MinParticipants))
}

func decodeSpec(d *decoder, s *gridmind.JobSpec) {
	s.Name = d.str("name", maxNameBytes)
	s.Model = d.str("model", maxShortString)
	s.Workers = d.integer("workers")
	s.Rounds = d.integer("rounds")
	s.InnerSteps = d.integer("inner steps")
	s.MinMemoryBytes = d.uvarint("min memory")
	s.MinThroughputMFLOPS = d.uvarint("min throughput")
	s.MaxPricePerUnit = d.amount("max price")
	s.Budget = d.amount("budget")
	s.DeadlineUnix = d.varint("deadline")
	s.RegionsAllowed = decodeStrings(d, "regions allowed")
	s.RegionsExcluded = decodeStrings(d, "regions excluded")
	s.GreenPreference = d.integer("green preference")
	s.MinReputation = d.integer("min reputation")
	s.MinStake = d.amount("min stake")
	s.Seed = d.varint("seed")
	s.Codec = d.str("codec", maxShortString)
	s.Combine = d.str("combine rule", maxShortString)
	s.Screen = d.str("screen", maxShortString)
	s.MinParticipants = d.integer("min participants")
}

func checkSpec(s *gridmind.JobSpec) error {
	if err := checkString("job name", s.Name, maxNameBytes); err != nil {
		return err
	}
	if err := checkString("job model", s.Model, maxShortString); err != nil {
		return err
	}
	for _, f := range []struct{ what, v string }{{"codec", s.Codec}, {"combine rule", s.Combine}, {"screen", s.Screen}} {
		if err := checkString(f.what, f.v, maxShortString); err != nil {
			return err
		}
	}
	switch {
	case s.Workers < 1 || s.Workers > MaxWorkers:
		return fmt.Errorf("job wants %d workers, want 1 to %d", s.Workers, MaxWorkers)
	case s.Rounds < 1 || s.Rounds > MaxRounds:
		return fmt.Errorf("job has %d rounds, want 1 to %d", s.Rounds, MaxRounds)
	case s.InnerSteps < 0:
		return fmt.Errorf("job has %d inner steps", s.InnerSteps)
	case s.Budget == 0:
		return fmt.Errorf("job budget must be positive")
	case s.DeadlineUnix < 0:
		return fmt.Errorf("job deadline %d is negative", s.DeadlineUnix)
	case s.GreenPreference < 0 || s.GreenPreference > 100:
		return fmt.Errorf("green preference %d, want 0 to 100", s.GreenPreference)
	case s.MinReputation < 0 || s.MinReputation > 100:
		return fmt.Errorf("min reputation %d, want 0 to 100", s.MinReputation)
	case s.MinParticipants < 0 || s.MinParticipants > s.Workers:
		return fmt.Errorf("min participants %d, want 0 to the %d workers", s.MinParticipants, s.Workers)
	case len(s.RegionsAllowed) > maxListLen || len(s.RegionsExcluded) > maxListLen:
		return fmt.Errorf("at most %d regions", maxListLen)
	}
	for _, r := range append(append([]string(nil), s.RegionsAllowed...), s.RegionsExcluded...) {
		if err := checkString("region", r, maxShortString); err != nil {
			return err
		}
	}
	return nil
}
