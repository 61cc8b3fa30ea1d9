package preview

import (
	"fmt"
	"io"
	"sync"

	"github.com/odcr-autocancel/odcr-autocancel/report"
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
		fmt.Fprintf(w, "\r\x1b[K%s %s/%s reservations", step, report.Thousands(done), report.Thousands(total))
	}
	clear = func() {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, "\r\x1b[K")
	}
	return progress, clear
}
