package handler

import (
	"fmt"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// AuditLogger is the name of the logger that writes the audit trail: the
// start of a run, every decision, the plan, every cancel outcome and how the
// run ended. Its lines carry "logger":"audit" and are written whatever the
// log level.
const AuditLogger = "audit"

// NewLogger returns the JSON logger of the function: one object per line with
// a "level" key and an RFC 3339 "timestamp", which Lambda's log-level
// filtering understands, and no sampling, so no decision line is ever dropped.
//
// level filters every line except those of the audit logger
// (log.Named(AuditLogger) and its children), which are written at any level: a scheduled run's
// report is thrown away, so its audit lines are its only record.
func NewLogger(level string, out zapcore.WriteSyncer) (*zap.Logger, error) {
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
	return name == AuditLogger || strings.HasPrefix(name, AuditLogger+".")
}
