package testnet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"time"

	"github.com/gridmind/gridmind"
)

// FakeGenerator is a small deterministic serve.Generator for tests and the
// in-memory benchmark, without a trained model: the i-th token is a letter chosen by
// hashing (prompt, seed, i), so every replica produces the same text for
// the same request, like a real model with a fixed seed on one machine
// type. It takes TokenDelay per token, honouring ctx.
type FakeGenerator struct {
	TokenDelay time.Duration
	// StopAfter, if positive, ends the text after that many tokens
	// (finish reason "stop") when max_tokens is larger.
	StopAfter int
}

// FakeText is the text FakeGenerator produces, computed without delay.
func FakeText(prompt string, seed int64, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(fakeToken(prompt, seed, i))
	}
	return b.String()
}

const fakeAlphabet = "abcdefghijklmnopqrstuvwxyz     .,"

func fakeToken(prompt string, seed int64, i int) string {
	var buf [16]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(seed))
	binary.BigEndian.PutUint64(buf[8:], uint64(i))
	h := sha256.New()
	h.Write([]byte(prompt))
	h.Write(buf[:])
	sum := h.Sum(nil)
	return string(fakeAlphabet[int(sum[0])%len(fakeAlphabet)])
}

// Generate implements serve.Generator.
func (f FakeGenerator) Generate(ctx context.Context, prompt string, opts gridmind.GenerateOptions) (string, error) {
	n := opts.MaxTokens
	if f.StopAfter > 0 && f.StopAfter < n {
		n = f.StopAfter
	}
	var timer *time.Timer
	if f.TokenDelay > 0 {
		timer = time.NewTimer(f.TokenDelay)
		defer timer.Stop()
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		if timer != nil {
			// Simulated compute time, not synchronisation.
			if i > 0 {
				timer.Reset(f.TokenDelay)
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-timer.C:
			}
		} else if err := ctx.Err(); err != nil {
			return "", err
		}
		tok := fakeToken(prompt, opts.Seed, i)
		b.WriteString(tok)
		if opts.OnToken != nil {
			if err := opts.OnToken(tok); err != nil {
				return "", err
			}
		}
	}
	return b.String(), nil
}
