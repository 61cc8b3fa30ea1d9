//go:build !race

package fakeaws_test

const raceEnabled = false
