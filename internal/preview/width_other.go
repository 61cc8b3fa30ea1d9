//go:build !unix

package preview

import "os"

// TerminalWidth is the width of the terminal f is, in characters: 0 here,
// where it is not read (COLUMNS still sets it).
func TerminalWidth(f *os.File) int { return 0 }
