package handler

import (
	"errors"
	"fmt"
	"strings"

	"github.com/odcr-autocancel/odcr-autocancel/report"
)

// ErrRunFailed marks a run that completed its report but must show as a
// failed invocation: a cancel failed, was not attempted, or the run aborted.
// errors.Is(err, ErrRunFailed) holds for every *RunFailedError.
var ErrRunFailed = errors.New("run failed")

// RunFailedError is the error of such a run. Its message lists what failed,
// since a failed invocation's caller gets the error, not the report; its type
// name is what Lambda reports as the errorType.
type RunFailedError struct {
	Aborted string
	// Failures are the cancels that failed; ShrinkFailures the shrinks.
	Failures       []report.Failure
	ShrinkFailures []report.Failure
	NotAttempted   []string
	// TagFailures are marks or unmarks that could not be written.
	TagFailures []report.Failure
	// Notify is why the notification could not be sent, if it was not.
	Notify string
}

// maxListed bounds the reservations named in an error message.
const maxListed = 20

func (e *RunFailedError) Error() string {
	if e.Aborted != "" {
		msg := "run failed: aborted: " + e.Aborted
		if e.Notify != "" {
			msg += "; notification not sent: " + e.Notify
		}
		return msg
	}
	codes := func(fs []report.Failure) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.ReservationID + ": " + f.Code
		}
		return out
	}
	msg := fmt.Sprintf("run failed: %d cancels failed%s", len(e.Failures), listed(codes(e.Failures)))
	if len(e.ShrinkFailures) > 0 {
		msg += fmt.Sprintf(", %d shrinks failed%s", len(e.ShrinkFailures), listed(codes(e.ShrinkFailures)))
	}
	msg += fmt.Sprintf(", %d not attempted before the deadline%s", len(e.NotAttempted), listed(e.NotAttempted))
	if len(e.TagFailures) > 0 {
		msg += fmt.Sprintf(", %d tag changes failed%s", len(e.TagFailures), listed(codes(e.TagFailures)))
	}
	if e.Notify != "" {
		msg += ", notification not sent: " + e.Notify
	}
	return msg
}

// listed renders " (a, b, c and N more)", or nothing for no items.
func listed(items []string) string {
	if len(items) == 0 {
		return ""
	}
	s := strings.Join(items[:min(len(items), maxListed)], ", ")
	if len(items) > maxListed {
		s += fmt.Sprintf(" and %d more", len(items)-maxListed)
	}
	return " (" + s + ")"
}

func (e *RunFailedError) Is(target error) bool { return target == ErrRunFailed }

// ReadError is the error of a run that could not read what it needs (the
// caller's identity, the reservations, their sharing): nothing was
// changed. Its type name is what Lambda reports as the errorType, and so
// what the organization's summary shows for the target.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }
