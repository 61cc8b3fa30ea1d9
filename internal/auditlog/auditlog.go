// Package auditlog is the function's logger: JSON lines that Lambda's
// log-level filtering understands, with an audit trail written at every
// level, and audit lines whose id lists never pass CloudWatch Logs' event
// limit (long lists go on lines of their own, no id dropped).
package auditlog

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Name is the name of the logger that writes the audit trail: the
// start of a run, every decision, the plan, every cancel outcome and how the
// run ended. Its lines carry "logger":"audit" and are written whatever the
// log level.
const Name = "audit"

// New returns the JSON logger of the function: one object per line with
// a "level" key and an RFC 3339 "timestamp", which Lambda's log-level
// filtering understands, and no sampling, so no decision line is ever dropped.
//
// level filters every line except those of the audit logger
// (log.Named(Name) and its children), which are written at any level: a scheduled run's
// report is thrown away, so its audit lines are its only record.
func New(level string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{
		TimeKey:        "timestamp",
		LevelKey:       "level",
		NameKey:        "logger",
		MessageKey:     "msg",
		CallerKey:      zapcore.OmitKey,
		StacktraceKey:  zapcore.OmitKey,
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeName:     zapcore.FullNameEncoder,
	})
	// The inner core is open to every level; auditCore decides.
	inner := zapcore.NewCore(enc, out, zapcore.DebugLevel)
	return zap.New(auditCore{Core: inner, level: lvl}), nil
}

// auditCore writes the entries of the audit logger whatever their level and
// filters the others by level.
type auditCore struct {
	zapcore.Core
	level zapcore.LevelEnabler
}

// Enabled is true at every level: zap asks it before it knows the logger's
// name, and an audit entry may come at any level. Check decides.
func (c auditCore) Enabled(zapcore.Level) bool { return true }

func (c auditCore) With(fields []zapcore.Field) zapcore.Core {
	return auditCore{Core: c.Core.With(fields), level: c.level}
}

func (c auditCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if isAudit(e.LoggerName) || c.level.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func isAudit(name string) bool {
	return name == Name || strings.HasPrefix(name, Name+".")
}

// Bounds of the lists an audit line carries. CloudWatch Logs takes events
// of at most 256 KB (a longer line is cut, and the ids at its end lost): a
// list up to maxInlineListBytes of JSON stays on its line, a longer one is
// written in parts of at most maxPartBytes on lines of their own, so that
// a line with every list at its bound stays well under the limit and no id
// is ever dropped.
const (
	maxInlineListBytes = 16 << 10
	maxPartBytes       = 128 << 10
)

// Lists gathers the lists of one audit line (Msg): the line gets each
// list inline, or, for a long one, its count and number of parts; the
// parts are written by flush, after the line, as "<msg> (list part)" lines
// with the list's name, the part's number and the ids.
type Lists struct {
	Audit *zap.Logger
	Msg   string
	parts []func()
}

// ListField is the field of a list on the line, and queues its parts when
// it is too long to stay there.
func ListField[T any](l *Lists, key string, items []T) zap.Field {
	var chunks [][]T
	size, start, total := 0, 0, 0
	for i, it := range items {
		b, _ := json.Marshal(it) // items are ids and plain structs: they marshal
		n := len(b) + 1
		total += n
		if size+n > maxPartBytes && i > start {
			chunks = append(chunks, items[start:i])
			start, size = i, 0
		}
		size += n
	}
	if total <= maxInlineListBytes {
		return zap.Any(key, items)
	}
	chunks = append(chunks, items[start:])
	for i, c := range chunks {
		l.parts = append(l.parts, func() {
			l.Audit.Info(l.Msg+" (list part)", zap.String("list", key), zap.Int("part", i+1), zap.Int("parts", len(chunks)),
				zap.Int("count", len(items)), zap.Any(key, c))
		})
	}
	return zap.Dict(key, zap.Int("count", len(items)), zap.Int("parts", len(chunks)))
}

// Flush writes the parts of the long lists, in order.
func (l *Lists) Flush() {
	for _, p := range l.parts {
		p()
	}
}
