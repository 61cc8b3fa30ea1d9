package preview

import (
	"bytes"
	"strings"
	"testing"
)

func TestProgressRewritesOneLine(t *testing.T) {
	var b bytes.Buffer
	progress, clear := Progress(&b)
	progress("measured", 12300, 50000)
	progress("measured", 50000, 50000)
	clear()
	got := b.String()
	want := "\r\x1b[Kmeasured 12,300/50,000 reservations\r\x1b[Kmeasured 50,000/50,000 reservations\r\x1b[K"
	if got != want {
		t.Fatalf("%q\nwant %q", got, want)
	}
	if strings.Contains(got, "\n") {
		t.Fatal("a progress line ends a line")
	}
}
