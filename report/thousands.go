package report

import "strconv"

// Thousands writes n with comma thousands separators: 1,234. The
// notification, the organization's message and the terminal's progress
// line all count this way.
func Thousands(n int) string {
	if n < 0 {
		return "-" + Thousands(-n)
	}
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
