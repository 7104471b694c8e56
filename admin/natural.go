package admin

import (
	"cmp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// naturalCompare orders names as people read them: runs of digits by
// their value (load2 before load10, load02 beside load2), everything else
// rune by rune without regard to case. Names that differ only in case or
// leading zeros are ordered byte-wise, so that the order is total and a
// sorted list does not reshuffle from one update to the next.
//
// Letters are compared by code point after lowercasing, not by a
// language's collation: "Ärger" sorts after "Zorn". Good enough for a
// list of names an operator scans; a collation table is not worth a
// dependency here.
func naturalCompare(a, b string) int {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if isDigit(a[i]) && isDigit(b[j]) {
			ea, eb := digitsEnd(a, i), digitsEnd(b, j)
			if c := compareNumbers(a[i:ea], b[j:eb]); c != 0 {
				return c
			}
			i, j = ea, eb
			continue
		}
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, nb := utf8.DecodeRuneInString(b[j:])
		if c := cmp.Compare(unicode.ToLower(ra), unicode.ToLower(rb)); c != 0 {
			return c
		}
		i, j = i+na, j+nb
	}
	switch {
	case i < len(a):
		return 1
	case j < len(b):
		return -1
	}
	return strings.Compare(a, b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitsEnd(s string, i int) int {
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// compareNumbers compares two runs of ASCII digits by value, however long
// they are (no overflow): without leading zeros, the longer is larger.
func compareNumbers(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}
