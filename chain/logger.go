package chain

import (
	"context"
	"log/slog"

	cmtlog "github.com/cometbft/cometbft/libs/log"
)

// cometLogger sends CometBFT's logs to slog. CometBFT is chatty: its Info
// lines (every block, every vote) become Debug, its Debug lines go below
// that, and its Error lines become Warn, because most are about peers
// coming and going rather than about this node.
type cometLogger struct{ l *slog.Logger }

var _ cmtlog.Logger = cometLogger{}

func newCometLogger(l *slog.Logger) cmtlog.Logger {
	return cometLogger{l: l.With("component", "cometbft")}
}

const levelTrace = slog.LevelDebug - 4

func (c cometLogger) log(level slog.Level, msg string, keyvals []any) {
	if !c.l.Enabled(context.Background(), level) {
		return
	}
	c.l.Log(context.Background(), level, msg, keyvals...)
}

func (c cometLogger) Debug(msg string, keyvals ...any) { c.log(levelTrace, msg, keyvals) }
func (c cometLogger) Info(msg string, keyvals ...any)  { c.log(slog.LevelDebug, msg, keyvals) }
func (c cometLogger) Error(msg string, keyvals ...any) { c.log(slog.LevelWarn, msg, keyvals) }
func (c cometLogger) With(keyvals ...any) cmtlog.Logger {
	return cometLogger{l: c.l.With(keyvals...)}
}
