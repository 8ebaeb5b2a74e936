package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/gridmind/gridmind"
)

// APITokenFile is the name of the HTTP API's bearer token inside a home.
// Whoever can read it may spend the node's money through its API, so it
// is written with mode 0600 and refused when others can read it.
const APITokenFile = "api.token"

// minTokenLen refuses a hand-written token too short to resist guessing.
const minTokenLen = 32

// NewAPIToken returns a fresh random token (256 bits, hex).
func NewAPIToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// EnsureAPIToken returns the home's API token, creating the file (mode
// 0600, atomically) when the home has none. created says whether it did.
func EnsureAPIToken(home string) (token string, created bool, err error) {
	token, err = LoadAPIToken(home)
	if err == nil {
		return token, false, nil
	}
	if gridmind.KindOf(err) != gridmind.KindNotFound {
		return "", false, err
	}
	if token, err = NewAPIToken(); err != nil {
		return "", false, err
	}
	path := filepath.Join(home, APITokenFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", false, gridmind.E(gridmind.KindInvalid, "api token", "writing %s: %w", tmp, err)
	}
	// Link, not rename: two processes creating it at once must agree on
	// one token, so the second keeps the first's file.
	if err := os.Link(tmp, path); err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, os.ErrExist) {
			token, err = LoadAPIToken(home)
			return token, false, err
		}
		return "", false, gridmind.E(gridmind.KindInvalid, "api token", "%w", err)
	}
	_ = os.Remove(tmp)
	return token, true, nil
}

// LoadAPIToken reads <home>/api.token. It is an error of kind NotFound
// when the file does not exist and Unauthorized when others may read it.
func LoadAPIToken(home string) (string, error) {
	path := filepath.Join(home, APITokenFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", gridmind.E(gridmind.KindNotFound, "api token", "%s does not exist; run `gridmind init --home %s` or start the node once", path, home)
	}
	if err != nil {
		return "", gridmind.E(gridmind.KindInvalid, "api token", "%w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return "", gridmind.E(gridmind.KindUnauthorized, "api token", "%s is readable by others (mode %o); run chmod 600 %s", path, st.Mode().Perm(), path)
	}
	token := strings.TrimSpace(string(data))
	if len(token) < minTokenLen || strings.ContainsAny(token, " \t\r\n") {
		return "", gridmind.E(gridmind.KindInvalid, "api token", "%s must hold one token of at least %d characters", path, minTokenLen)
	}
	return token, nil
}

// APIAddrFile holds the address a running node's API listens on, written at
// start and removed at a clean stop, so that the CLI in the same home finds
// the node even when it was started with --http on another port.
const APIAddrFile = "api.addr"

// WriteAPIAddr records a running node's API address in its home.
func WriteAPIAddr(home, addr string) error {
	return os.WriteFile(filepath.Join(home, APIAddrFile), []byte(addr+"\n"), 0o644)
}

// RemoveAPIAddr removes the record written by WriteAPIAddr.
func RemoveAPIAddr(home string) {
	_ = os.Remove(filepath.Join(home, APIAddrFile))
}

// LoadAPIAddr is the address recorded by WriteAPIAddr, or "" if none.
func LoadAPIAddr(home string) string {
	b, err := os.ReadFile(filepath.Join(home, APIAddrFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
