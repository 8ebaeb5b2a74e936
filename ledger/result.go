package ledger

import (
	"fmt"

	"github.com/gridmind/gridmind"
)

// Code is a transaction result code. Zero is success; the others tell a
// client why a transaction was refused. The numbers are part of the chain's
// results and never change meaning.
type Code uint32

// Result codes.
const (
	CodeOK           Code = 0
	CodeMalformed    Code = 1  // cannot be decoded, or a field is out of range
	CodeWrongChain   Code = 2  // signed for another chain
	CodeBadSignature Code = 3  // signature does not match the sender
	CodeBadNonce     Code = 4  // nonce already used or out of order
	CodeInsufficient Code = 5  // not enough balance, stake or escrow
	CodeNotFound     Code = 6  // no such account, job, provider or receipt
	CodeUnauthorized Code = 7  // sender may not do this
	CodeConflict     Code = 8  // wrong state: already exists, already settled, ...
	CodeInvalid      Code = 9  // well-formed but not allowed now
	CodeInternal     Code = 10 // a bug; the block is refused
)

var codeNames = [...]string{"ok", "malformed", "wrong chain", "bad signature", "bad nonce",
	"insufficient funds", "not found", "unauthorized", "conflict", "invalid", "internal"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return fmt.Sprintf("code(%d)", uint32(c))
}

// Kind maps the code to the error kind of the root package, which the CLI
// turns into an exit code and the HTTP API into a status.
func (c Code) Kind() gridmind.Kind {
	switch c {
	case CodeOK:
		return gridmind.KindOther
	case CodeMalformed, CodeInvalid, CodeWrongChain:
		return gridmind.KindInvalid
	case CodeBadSignature, CodeUnauthorized:
		return gridmind.KindUnauthorized
	case CodeBadNonce, CodeConflict:
		return gridmind.KindConflict
	case CodeInsufficient:
		return gridmind.KindInsufficient
	case CodeNotFound:
		return gridmind.KindNotFound
	default:
		return gridmind.KindInternal
	}
}

// TxError is why a transaction was refused: a code and a message meant for
// the person who sent it.
type TxError struct {
	Code Code
	Msg  string
}

func (e *TxError) Error() string { return "ledger: " + e.Code.String() + ": " + e.Msg }

// Kinded returns the error as a root-package error with a kind.
func (e *TxError) Kinded(op string) error { return gridmind.E(e.Code.Kind(), op, "%w", e) }

func reject(code Code, format string, args ...any) *TxError {
	return &TxError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a *TxError, CodeOK for nil and CodeInternal
// for anything else.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	if te, ok := err.(*TxError); ok {
		return te.Code
	}
	return CodeInternal
}

// Event is one change to one account made by a transaction; chain/ keeps
// them as the account's history. Amount is always positive; Kind says which
// way it went.
type Event struct {
	Account      gridmind.NodeID `json:"account"`
	Kind         string          `json:"kind"` // e.g. "sent", "received", "staked", "escrowed", "paid", "refunded"
	Amount       gridmind.Amount `json:"amount,omitempty"`
	Counterparty gridmind.NodeID `json:"counterparty,omitempty"`
	Job          JobID           `json:"job,omitempty"`
}

// TxResult is the outcome of applying one transaction.
type TxResult struct {
	Code   Code    `json:"code"`
	Log    string  `json:"log,omitempty"` // why it was refused
	Data   []byte  `json:"data,omitempty"`
	Events []Event `json:"events,omitempty"`
}

// Err returns nil for success, else the *TxError.
func (r TxResult) Err() error {
	if r.Code == CodeOK {
		return nil
	}
	return &TxError{Code: r.Code, Msg: r.Log}
}
