package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridmind/gridmind"
)

// KeyFile is the name of the node's private key inside its home.
const KeyFile = "node.key"

// InitResult says what Init did.
type InitResult struct {
	ID            gridmind.NodeID
	KeyCreated    bool
	ConfigCreated bool
	TokenCreated  bool // <home>/api.token was written
	Home          string
}

// Init prepares a home directory: an ed25519 key (mode 0600), the HTTP
// API's bearer token (mode 0600) and a commented config. An existing key is kept unless force is set, and an
// existing config is never overwritten, so running it twice is safe.
func Init(home string, force bool, cfg *Config) (InitResult, error) {
	res := InitResult{Home: home}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return res, gridmind.E(gridmind.KindInvalid, "init", "cannot create home %s: %w", home, err)
	}
	keyPath := filepath.Join(home, KeyFile)
	if _, err := os.Stat(keyPath); err == nil && !force {
		key, err := LoadKey(home)
		if err != nil {
			return res, err
		}
		res.ID = gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	} else {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return res, err
		}
		if err := WriteKey(home, key); err != nil {
			return res, err
		}
		res.KeyCreated = true
		res.ID = gridmind.NodeIDFromPublicKey(key.Public().(ed25519.PublicKey))
	}
	cfgPath := filepath.Join(home, ConfigFile)
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		c := DefaultConfig()
		if cfg != nil {
			c = *cfg
		}
		if err := c.Validate(); err != nil {
			return res, err
		}
		if err := WriteConfig(home, c); err != nil {
			return res, gridmind.E(gridmind.KindInvalid, "init", "writing %s: %w", cfgPath, err)
		}
		res.ConfigCreated = true
	}
	_, created, err := EnsureAPIToken(home)
	if err != nil {
		return res, err
	}
	res.TokenCreated = created
	return res, nil
}

// WriteKey stores key's seed as hex in <home>/node.key with mode 0600,
// atomically, so a crash never leaves half a key.
func WriteKey(home string, key ed25519.PrivateKey) error {
	path := filepath.Join(home, KeyFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
		return gridmind.E(gridmind.KindInvalid, "key", "writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return gridmind.E(gridmind.KindInvalid, "key", "%w", err)
	}
	return nil
}

// LoadKey reads <home>/node.key.
func LoadKey(home string) (ed25519.PrivateKey, error) {
	path := filepath.Join(home, KeyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, gridmind.E(gridmind.KindNotFound, "key", "%s does not exist; run `gridmind init --home %s`", path, home)
	}
	if err != nil {
		return nil, gridmind.E(gridmind.KindInvalid, "key", "%w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, gridmind.E(gridmind.KindUnauthorized, "key", "%s is readable by others (mode %o); run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, gridmind.E(gridmind.KindInvalid, "key", "%s is not a hex ed25519 seed of %d bytes", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// KeyFromSeedString derives a key deterministically from a string; the
// demo and devnet use it so their identities are stable across runs.
func KeyFromSeedString(s string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("gridmind/dev-key/" + s))
	return ed25519.NewKeyFromSeed(seed[:])
}
