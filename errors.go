package gridmind

import (
	"errors"
	"fmt"
)

// Kind classifies an error so that the CLI can map it to an exit code and
// the HTTP API to a status, without string matching.
type Kind uint8

const (
	KindOther        Kind = iota // unclassified
	KindInvalid                  // bad input: flags, config, request, message
	KindNotFound                 // no such account, job, model, peer
	KindConflict                 // already exists, wrong state, nonce reused
	KindUnauthorized             // bad signature, wrong key
	KindUnavailable              // peer or validator unreachable, timed out
	KindInsufficient             // not enough funds or stake
	KindInternal                 // a bug or a broken invariant
)

var kindNames = [...]string{"other", "invalid", "not found", "conflict", "unauthorized", "unavailable", "insufficient", "internal"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is an error with a kind and the operation that failed.
type Error struct {
	Kind Kind
	Op   string // what was being done, e.g. "config.load"
	Err  error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a kinded error; msg is formatted with args like fmt.Errorf, so %w works.
func E(kind Kind, op string, format string, args ...any) error {
	return &Error{Kind: kind, Op: op, Err: fmt.Errorf(format, args...)}
}

// KindOf returns the kind of the outermost kinded error in err's chain.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		if e.Kind == KindOther {
			return KindOf(e.Err)
		}
		return e.Kind
	}
	return KindOther
}

// ExitCode maps an error to a process exit status (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	switch KindOf(err) {
	case KindInvalid:
		return 2
	case KindNotFound:
		return 3
	case KindConflict:
		return 4
	case KindUnauthorized:
		return 5
	case KindUnavailable:
		return 6
	case KindInsufficient:
		return 7
	case KindInternal:
		return 70
	default:
		return 1
	}
}
