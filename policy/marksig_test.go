package policy

import (
	"strings"
	"testing"
	"time"
)

// signedSettings: 72 hours of grace, marks count only when signed.
func signedSettings() Settings {
	s := graceSettings()
	s.SignedMarks = true
	return s
}

// A backdated mark someone wrote by hand, copied from another reservation,
// or made when the reservation had another size is no mark: the
// reservation is marked again from now, with a full grace, never cancelled.
func TestForgedMarkIsNoMark(t *testing.T) {
	s := signedSettings()
	backdated := marked(idle("cr-71000000000000000"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	for _, check := range []MarkCheck{MarkForged, MarkUnchecked} {
		r := backdated
		r.MarkCheck = check
		d := lifecycle(s, r, fullData(0), none())
		if d.Action != Mark || d.Mark == nil || !d.Mark.IdleSince.Equal(now) || !d.Mark.CancelAfter.Equal(now.Add(72*time.Hour)) {
			t.Fatalf("check %d: %s/%s mark %+v, want marked again from now", check, d.Action, d.Reason, d.Mark)
		}
		if !strings.Contains(d.Detail, "not signed by this function") {
			t.Errorf("check %d: detail %q does not say why the mark did not count", check, d.Detail)
		}
	}
	// The same mark, signed: cancelled once its grace has passed.
	r := backdated
	r.MarkCheck = MarkSigned
	if d := lifecycle(s, r, fullData(0), none()); d.Action != Cancel {
		t.Fatalf("signed mark: %s/%s %q, want cancel", d.Action, d.Reason, d.Detail)
	}
}

// A mark whose signature could not be checked (KMS refused or did not
// answer) keeps the reservation as it is: neither acted on nor marked again.
func TestUnverifiableMarkIsNotActedOn(t *testing.T) {
	s := signedSettings()
	r := marked(idle("cr-72000000000000000"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	r.MarkCheck = MarkUnverifiable
	d := lifecycle(s, r, fullData(0), none())
	if d.Action != Keep || d.Reason != ReasonMarkUnverified {
		t.Fatalf("%s/%s, want keep mark-unverified", d.Action, d.Reason)
	}
	// An unverifiable shrink mark alike.
	rs := rightsizeSettings()
	rs.Grace, rs.SignedMarks = 72*time.Hour, true
	big := sized(10, 0)
	big.Tags = RightsizeTags(IdleMark{IdleSince: now.Add(-100 * time.Hour), CancelAfter: now.Add(-28 * time.Hour)}, 5)
	big.RightsizeMarkCheck = MarkUnverifiable
	if d := Grace(rs, shrink(rs, big, 4, none()), big, now); d.Action != Keep || d.Reason != ReasonMarkUnverified {
		t.Fatalf("shrink: %s/%s, want keep mark-unverified", d.Action, d.Reason)
	}
}

// A shrink announced as 10 to 5 and signed at 10 instances does not run
// after the owner enlarged the reservation (the signature no longer holds
// at its new size: MarkForged): it is announced again from now.
func TestShrinkMarkOfAnotherSizeIsNoMark(t *testing.T) {
	s := rightsizeSettings()
	s.Grace, s.SignedMarks = 72*time.Hour, true
	r := sized(50, 0)
	r.Tags = RightsizeTags(IdleMark{IdleSince: now.Add(-100 * time.Hour), CancelAfter: now.Add(-28 * time.Hour)}, 5)
	r.RightsizeMarkCheck = MarkForged
	d := Grace(s, shrink(s, r, 4, none()), r, now)
	if d.Action != Mark || d.Mark == nil || !d.Mark.IdleSince.Equal(now) {
		t.Fatalf("%s/%s %+v, want marked again from now", d.Action, d.Reason, d.Mark)
	}
	r.RightsizeMarkCheck = MarkSigned
	if d := Grace(s, shrink(s, r, 4, none()), r, now); d.Action != Modify {
		t.Fatalf("signed: %s/%s, want the shrink", d.Action, d.Reason)
	}
}

// A preview without the key (SignedMarks unset) reads marks as written:
// it shows what a run would do, and never acts (it is a dry run).
func TestPreviewWithoutKeyReadsMarks(t *testing.T) {
	s := graceSettings()
	r := marked(idle("cr-73000000000000000"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	if d := lifecycle(s, r, fullData(0), none()); d.Action != Cancel {
		t.Fatalf("%s/%s, want cancel in the preview", d.Action, d.Reason)
	}
}

// Right before acting, the mark described again must still be the signed
// one: a mark rewritten during the run (check not carried over) wins.
func TestRecheckWantsTheSignedMark(t *testing.T) {
	s := signedSettings()
	r := marked(idle("cr-74000000000000000"), now.Add(-100*time.Hour), now.Add(-28*time.Hour))
	r.MarkCheck = MarkSigned
	d := lifecycle(s, r, fullData(0), none())
	if d.Action != Cancel {
		t.Fatalf("evaluated: %s", d.Action)
	}
	fresh := r
	if got := Recheck(s, d, &fresh, now); got.Action != Cancel {
		t.Fatalf("unchanged: %s/%s", got.Action, got.Reason)
	}
	fresh.MarkCheck = MarkUnchecked
	if got := Recheck(s, d, &fresh, now); got.Action != Keep || got.Reason != ReasonChangedSinceEvaluated {
		t.Fatalf("mark rewritten: %s/%s, want changed-since-evaluation", got.Action, got.Reason)
	}
}

// IAM reads tag keys without regard to case: a mark key in another case is
// a mark present (not signed, so no mark; marked again, and unmarked).
func TestMarkKeysInAnyCase(t *testing.T) {
	r := idle("cr-75000000000000000")
	r.Tags = map[string]string{"ODCR-AutoCancel:Idle-Since": now.Add(-100 * time.Hour).Format(time.RFC3339)}
	if !r.Marked() {
		t.Fatal("an idle-since key in another case is not seen as a mark")
	}
	r.Tags = map[string]string{"Odcr-Autocancel:Rightsize-To": "5"}
	if !r.RightsizeMarked() {
		t.Fatal("a rightsize-to key in another case is not seen as a shrink mark")
	}
	used := marked(idle("cr-76000000000000000"), now.Add(-time.Hour), now.Add(71*time.Hour))
	used.Tags = map[string]string{"ODCR-AUTOCANCEL:CANCEL-AFTER": now.Format(time.RFC3339)}
	if d := lifecycle(signedSettings(), used, fullData(1), none()); d.Action != Unmark {
		t.Fatalf("used, mark key in another case: %s, want unmark", d.Action)
	}
}
