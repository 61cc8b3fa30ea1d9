//go:build unix

package preview

import (
	"os"

	"golang.org/x/sys/unix"
)

// TerminalWidth is the width of the terminal f is, in characters: 0 when
// f is not a terminal or the width cannot be read.
func TerminalWidth(f *os.File) int {
	if !IsTerminal(f) {
		return 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}
