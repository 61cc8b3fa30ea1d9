package policy

import (
	"fmt"
	"slices"
	"time"
)

// The lifecycle of an idle reservation lives in tags on the reservation, so
// that the function needs no database and the owners see it in the console:
//
//	idle, no mark ──mark──▶ marked (idle-since, cancel-after)
//	marked, still idle, before cancel-after ──▶ kept in-grace
//	marked, still idle, cancel-after passed ──▶ cancelled (budget, re-check, dry-run probe)
//	marked, no longer idle (used, protected, snoozed, ...) ──unmark──▶ no mark
//	snooze-until in the future (or unreadable) ──▶ kept snoozed, not marked
//
// A mark counts only when the function wrote it: each carries a signature
// tag, an HMAC made by a KMS key only the function may use, over the
// account, region, reservation id, instance count and the mark's values
// (package marks builds the message). The run checks it before the policy
// reads the mark (Reservation.MarkCheck).
const (
	TagIdleSince   = "odcr-autocancel:idle-since"
	TagCancelAfter = "odcr-autocancel:cancel-after"
	TagSnoozeUntil = "odcr-autocancel:snooze-until"
	// TagMarkSignature signs the idle mark; TagRightsizeSignature the
	// shrink's mark.
	TagMarkSignature      = "odcr-autocancel:mark-signature"
	TagRightsizeSignature = "odcr-autocancel:rightsize-signature"
)

// MarkCheck is what a run learned of a mark's signature.
type MarkCheck uint8

const (
	// MarkUnchecked: not checked (no mark, or a preview without the key,
	// which reads marks as written and never acts).
	MarkUnchecked MarkCheck = iota
	// MarkSigned: the signature holds for this reservation as it is now
	// (its id, its instance count) and the mark's values.
	MarkSigned
	// MarkForged: no signature, or one that does not hold: written by
	// someone else, copied from another reservation, or made when the
	// reservation had another size. Not a mark.
	MarkForged
	// MarkUnverifiable: the signature could not be checked (KMS refused or
	// did not answer). The reservation is neither acted on nor marked
	// again.
	MarkUnverifiable
)

// markTrust says how Grace may use a mark that is present, given its check:
// read it (trusted), treat it as absent (forged), or keep the reservation
// untouched (unverifiable).
func markTrust(s Settings, c MarkCheck) (trusted, unverifiable bool) {
	switch {
	case !s.SignedMarks:
		return true, false
	case c == MarkSigned:
		return true, false
	case c == MarkUnverifiable:
		return false, true
	}
	return false, false
}

// forgedNote is what a detail adds when a mark present was not a mark.
const forgedNote = " (its previous mark was not signed by this function for this reservation at this size)"

// IdleMark is when a reservation was first seen idle and when its grace period
// ends, as the tags record them.
type IdleMark struct {
	IdleSince   time.Time `json:"idleSince"`
	CancelAfter time.Time `json:"cancelAfter"`
}

// Tags renders the mark as the two tag values (RFC 3339, UTC, seconds).
func (m IdleMark) Tags() map[string]string {
	return map[string]string{
		TagIdleSince:   m.IdleSince.UTC().Format(time.RFC3339),
		TagCancelAfter: m.CancelAfter.UTC().Format(time.RFC3339),
	}
}

// Marked tells whether the reservation carries either mark tag, readable or
// not.
func (r Reservation) Marked() bool {
	_, a := tagKey(r.Tags, TagIdleSince)
	_, b := tagKey(r.Tags, TagCancelAfter)
	return a || b
}

// tagValue reads a tag whatever the case of its key (IAM matches tag keys
// without regard to case; EC2 keeps them as written).
func tagValue(tags map[string]string, key string) string {
	k, _ := tagKey(tags, key)
	return tags[k]
}

// readMark reads the mark tags. A mark that cannot be read, or that does not
// make sense (idle since after now, grace ending before it began), is no
// mark: the reservation is marked again from now, never cancelled on a
// guessed date.
func readMark(r Reservation, now time.Time) (IdleMark, bool) {
	since, err1 := time.Parse(time.RFC3339, tagValue(r.Tags, TagIdleSince))
	after, err2 := time.Parse(time.RFC3339, tagValue(r.Tags, TagCancelAfter))
	if err1 != nil || err2 != nil || since.After(now) || after.Before(since) {
		return IdleMark{}, false
	}
	return IdleMark{IdleSince: since, CancelAfter: after}, true
}

// due is when a mark allows the cancel: its cancel-after, but never before
// the grace period deployed now has passed since it was first seen idle (a
// grace lengthened after marking is honoured; a cancel-after edited earlier
// by hand is not).
func (m IdleMark) due(grace time.Duration) time.Time {
	return maxTime(m.CancelAfter, m.IdleSince.Add(grace))
}

// graceObserved tells whether the mark's final grace (its due time less
// the grace period; for a plain mark, idle-since) lies inside this run's
// metric window, which reaches back s.Lookback from now: only then did this
// run see the reservation idle through all of it. A grace begun before the
// window (runs failed, were paused, or the schedule changed) was partly
// never measured. It returns the grace's start.
func (m IdleMark) graceObserved(s Settings, now time.Time) (time.Time, bool) {
	start := m.due(s.Grace).Add(-s.Grace)
	return start, !start.Before(now.Add(-s.Lookback))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readSnooze reads snooze-until: RFC 3339, or a date (YYYY-MM-DD), which
// snoozes through the whole of that day in UTC. ok is false when the tag is
// set but unreadable.
func readSnooze(v string) (until time.Time, ok bool) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.AddDate(0, 0, 1), true
	}
	return time.Time{}, false
}

// snooze applies the snooze tag: a person asked to keep the reservation
// until a date. An unreadable value keeps it too: fail safe.
func snooze(d Decision, r Reservation, now time.Time) (Decision, bool) {
	key, ok := tagKey(r.Tags, TagSnoozeUntil)
	if !ok {
		return d, false
	}
	v := r.Tags[key]
	d.Facts.SnoozeUntil = v
	until, readable := readSnooze(v)
	switch {
	case !readable:
		d.Facts.SnoozeInvalid = true
		return keep(d, ReasonSnoozed, fmt.Sprintf("%s=%s is not a date (RFC 3339 or YYYY-MM-DD): kept as snoozed until it is fixed or removed", TagSnoozeUntil, quote(v))), true
	case now.Before(until):
		return keep(d, ReasonSnoozed, "snoozed until "+until.UTC().Format(time.RFC3339)), true
	}
	return d, false // the snooze has ended
}

// unmarkReasons are the reasons for which a kept reservation is no longer an
// idle one: its mark is removed, and a later idle sighting starts a new
// grace period. A reservation kept for want of data, for the run-wide rules
// or because it is gone keeps its mark: nothing says it is not idle.
var unmarkReasons = []Reason{
	ReasonSharedOut, ReasonInCommitment, ReasonFleetMember, ReasonInterruptible,
	ReasonProtected, ReasonSnoozed, ReasonMissingRequiredTag, ReasonExcludedInstanceType,
	ReasonExcludedZone, ReasonInUse, ReasonUtilized, ReasonTargetedByStopped, ReasonReferenced,
}

// Grace applies the grace period to a decision that went through every
// rule: an idle reservation without a (readable) mark is marked, one whose
// grace has not passed is kept in-grace, and one whose grace has passed stays
// a cancel. A kept reservation that carries a mark and is no longer idle is
// unmarked. With no grace period (s.Grace 0) idle reservations are cancelled
// on their first sighting, as without the lifecycle.
func Grace(s Settings, d Decision, r Reservation, now time.Time) Decision {
	if d.Action == Modify {
		return graceModify(s, d, r, now)
	}
	if d.Action == Keep {
		if (r.Marked() || r.RightsizeMarked()) && slices.Contains(unmarkReasons, d.Reason) {
			d.Action = Unmark
		}
		return d
	}
	if !d.Candidate() || d.Stage != StageChecked || d.Reason != ReasonIdle {
		return d
	}
	trusted, unverifiable := markTrust(s, r.MarkCheck)
	if s.Grace > 0 && r.Marked() && unverifiable {
		return keep(d, ReasonMarkUnverified, "idle and marked, but its mark's signature could not be checked: not acted on until a run can check it")
	}
	m, ok := readMark(r, now)
	ok = ok && trusted
	if ok {
		d.Mark = &m
	}
	if held, ok := holdUntilEnd(s, d, r, m, ok, now); ok {
		return held
	}
	if s.Grace <= 0 {
		return d
	}
	if !ok {
		m = IdleMark{IdleSince: now, CancelAfter: now.Add(s.Grace)}
		d.Mark = &m
		d.Action = Mark
		d.Detail = "idle: marked, may be cancelled after " + m.CancelAfter.UTC().Format(time.RFC3339)
		switch {
		case r.Marked() && !trusted:
			d.Detail += forgedNote
		case r.Marked():
			d.Detail += " (its previous mark could not be read)"
		}
		return d
	}
	if due := m.due(s.Grace); now.Before(due) {
		return keep(d, ReasonInGrace, fmt.Sprintf("idle since %s, may be cancelled after %s",
			m.IdleSince.UTC().Format(time.RFC3339), due.UTC().Format(time.RFC3339)))
	}
	if start, ok := m.graceObserved(s, now); !ok {
		m = IdleMark{IdleSince: now, CancelAfter: now.Add(s.Grace)}
		d.Mark = &m
		d.Action = Mark
		d.Detail = fmt.Sprintf("idle: marked again, may be cancelled after %s (its grace began %s, before this run's window began %s: part of it was never measured)",
			m.CancelAfter.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339), now.Add(-s.Lookback).UTC().Format(time.RFC3339))
		return d
	}
	d.Detail = fmt.Sprintf("idle since %s; its grace period ended %s",
		m.IdleSince.UTC().Format(time.RFC3339), m.due(s.Grace).UTC().Format(time.RFC3339))
	return d
}

// recheckMark is the lifecycle's part of the re-check before a cancel: with
// a grace period, the reservation described again must still carry a mark
// whose grace has passed (a mark removed or moved during the run wins).
func recheckMark(s Settings, fresh Reservation, now time.Time) (string, bool) {
	if s.Grace <= 0 {
		return "", true
	}
	m, ok := readMark(fresh, now)
	trusted, _ := markTrust(s, fresh.MarkCheck)
	switch {
	case !ok || !trusted:
		return "its mark was removed or changed", false
	case now.Before(m.due(s.Grace)):
		return "its mark now allows no cancel before " + m.due(s.Grace).UTC().Format(time.RFC3339), false
	}
	return "", true
}
