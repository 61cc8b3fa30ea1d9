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
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
