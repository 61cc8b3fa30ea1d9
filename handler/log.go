package handler

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/odcr-autocancel/odcr-autocancel/internal/auditlog"
)

// AuditLogger is the name of the logger that writes the audit trail: the
// start of a run, every decision, the plan, every cancel outcome and how the
// run ended. Its lines carry "logger":"audit" and are written whatever the
// log level (package auditlog).
const AuditLogger = auditlog.Name

// NewLogger returns the JSON logger of the function (auditlog.New).
func NewLogger(level string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	return auditlog.New(level, out)
}
