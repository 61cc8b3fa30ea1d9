//go:build race

package fakeaws_test

// raceEnabled: the race detector slows the bench-scale test tenfold.
const raceEnabled = true
