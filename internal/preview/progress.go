package preview

import (
	"fmt"
	"io"
	"sync"
)

// Progress returns a progress callback for handler.Handler.Progress that
// shows how far a run is on one line of a terminal, rewritten in place
// ("measured 12,300/50,000 reservations"), and a func that clears the line
// at the end. Give it a terminal only (IsTerminal): it writes carriage
// returns and an erase-line sequence.
func Progress(w io.Writer) (progress func(step string, done, total int), clear func()) {
	var mu sync.Mutex
	progress = func(step string, done, total int) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "\r\x1b[K%s %s/%s reservations", step, thousands(done), thousands(total))
	}
	clear = func() {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, "\r\x1b[K")
	}
	return progress, clear
}

// thousands renders n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
