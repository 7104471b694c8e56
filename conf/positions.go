package conf

import (
	"strconv"
	"strings"
)

// The TOML decoder does not say where keys are, so we find out ourselves:
// scanPositions walks the source (which the decoder has already accepted, so
// it is valid TOML) and records the line of every table header and of every
// key set in a table, by its concrete path. Concrete paths count elements of
// arrays of tables, so the second [[channel]]'s name is
// pathKey("channel", "1", "name") and a [[channel.channel]] below it is
// pathKey("channel", "1", "channel", "0"). Keys inside inline tables are not
// recorded; lookups fall back to the enclosing key (see near).

// sep separates the parts of a concrete path; it cannot occur in a bare key and
// is unlikely in a quoted one.
const sep = "\x1f"

func pathKey(parts ...string) string { return strings.Join(parts, sep) }

type positions struct {
	lines     map[string]int            // concrete path -> line
	tableKeys map[string]map[string]int // concrete table path -> local key ("a.b" for dotted) -> line
}

// line returns the line recorded for path p, or 0.
func (p positions) line(path string) int { return p.lines[path] }

// near returns the line of path or, failing that, of its nearest recorded
// ancestor, or 0.
func (p positions) near(path string) int {
	for {
		if l, ok := p.lines[path]; ok {
			return l
		}
		i := strings.LastIndex(path, sep)
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// keysUnder returns a copy of the key lines of the table at path.
func (p positions) keysUnder(path string) map[string]int {
	m := make(map[string]int, len(p.tableKeys[path]))
	for k, l := range p.tableKeys[path] {
		m[k] = l
	}
	return m
}

func scanPositions(data []byte) positions {
	s := &scanner{src: data, line: 1}
	pos := positions{lines: map[string]int{}, tableKeys: map[string]map[string]int{}}
	arrays := map[string]int{} // concrete path of an array of tables -> elements so far
	var table []string         // concrete path of the current table; nil = root

	record := func(path []string, line int) {
		k := pathKey(path...)
		if _, ok := pos.lines[k]; !ok {
			pos.lines[k] = line
		}
	}

	for s.i < len(s.src) {
		s.skipSpace()
		if s.i >= len(s.src) {
			break
		}
		switch c := s.src[s.i]; {
		case c == '\n':
			s.i++
			s.line++
		case c == '\r':
			s.i++
		case c == '#':
			s.skipComment()
		case c == '[':
			line := s.line
			isArray := s.i+1 < len(s.src) && s.src[s.i+1] == '['
			if isArray {
				s.i += 2
			} else {
				s.i++
			}
			parts := s.key()
			s.skipLine() // the closing bracket(s) and any comment
			var concrete []string
			for n, part := range parts {
				concrete = append(concrete, part)
				k := pathKey(concrete...)
				if n == len(parts)-1 && isArray {
					record(concrete, line) // the array itself: its first header
					cnt := arrays[k]
					arrays[k] = cnt + 1
					concrete = append(concrete, strconv.Itoa(cnt))
				} else if cnt, ok := arrays[k]; ok {
					concrete = append(concrete, strconv.Itoa(cnt-1))
				}
			}
			record(concrete, line)
			table = concrete
		default:
			line := s.line
			parts := s.key()
			s.skipSpace()
			if s.i < len(s.src) && s.src[s.i] == '=' {
				s.i++
				s.skipValue()
			} else {
				s.skipLine() // not valid TOML; cannot happen after the decoder accepted it
			}
			if len(parts) == 0 {
				continue
			}
			full := append(append([]string{}, table...), parts...)
			for n := len(table) + 1; n <= len(full); n++ {
				record(full[:n], line)
			}
			tk := pathKey(table...)
			if pos.tableKeys[tk] == nil {
				pos.tableKeys[tk] = map[string]int{}
			}
			pos.tableKeys[tk][strings.Join(parts, ".")] = line
		}
	}
	return pos
}

type scanner struct {
	src  []byte
	i    int
	line int
}

func (s *scanner) skipSpace() {
	for s.i < len(s.src) && (s.src[s.i] == ' ' || s.src[s.i] == '\t') {
		s.i++
	}
}

// skipComment skips to the end of the line, leaving the newline.
func (s *scanner) skipComment() {
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		s.i++
	}
}

// skipLine skips past the next newline.
func (s *scanner) skipLine() {
	s.skipComment()
	if s.i < len(s.src) {
		s.i++
		s.line++
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// key reads a possibly dotted, possibly quoted key and stops after it (and
// any whitespace), before '=', ']' or whatever follows.
func (s *scanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		if s.i >= len(s.src) {
			return parts
		}
		switch c := s.src[s.i]; {
		case c == '"':
			start := s.i
			s.i++
			for s.i < len(s.src) && s.src[s.i] != '"' && s.src[s.i] != '\n' {
				if s.src[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			if s.i < len(s.src) && s.src[s.i] == '"' {
				s.i++
			}
			raw := string(s.src[start:s.i])
			if u, err := strconv.Unquote(raw); err == nil {
				parts = append(parts, u)
			} else {
				parts = append(parts, strings.Trim(raw, `"`))
			}
		case c == '\'':
			s.i++
			start := s.i
			for s.i < len(s.src) && s.src[s.i] != '\'' && s.src[s.i] != '\n' {
				s.i++
			}
			parts = append(parts, string(s.src[start:s.i]))
			if s.i < len(s.src) && s.src[s.i] == '\'' {
				s.i++
			}
		case isBare(c):
			start := s.i
			for s.i < len(s.src) && isBare(s.src[s.i]) {
				s.i++
			}
			parts = append(parts, string(s.src[start:s.i]))
		default:
			return parts
		}
		s.skipSpace()
		if s.i < len(s.src) && s.src[s.i] == '.' {
			s.i++
			continue
		}
		return parts
	}
}

// skipValue skips a value and the rest of its (last) line, including
// multi-line strings and arrays or inline tables spanning lines.
func (s *scanner) skipValue() {
	depth := 0
	for s.i < len(s.src) {
		c := s.src[s.i]
		switch {
		case c == '\n':
			s.i++
			s.line++
			if depth <= 0 {
				return
			}
		case c == '#':
			s.skipComment()
		case c == '"' || c == '\'':
			s.skipString(c)
		case c == '[' || c == '{':
			depth++
			s.i++
		case c == ']' || c == '}':
			depth--
			s.i++
		default:
			s.i++
		}
	}
}

// skipString skips a string starting at s.i, delimited by q (" or ').
func (s *scanner) skipString(q byte) {
	multi := s.i+2 < len(s.src) && s.src[s.i+1] == q && s.src[s.i+2] == q
	if multi {
		s.i += 3
		for s.i < len(s.src) {
			c := s.src[s.i]
			switch {
			case c == '\\' && q == '"':
				s.i++
				if s.i < len(s.src) && s.src[s.i] == '\n' {
					s.line++
				}
				s.i++
			case c == '\n':
				s.line++
				s.i++
			case c == q && s.i+2 < len(s.src) && s.src[s.i+1] == q && s.src[s.i+2] == q:
				s.i += 3
				// Up to two more quotes belong to the string's content.
				for n := 0; n < 2 && s.i < len(s.src) && s.src[s.i] == q; n++ {
					s.i++
				}
				return
			default:
				s.i++
			}
		}
		return
	}
	s.i++
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		c := s.src[s.i]
		if c == '\\' && q == '"' {
			s.i += 2
			continue
		}
		s.i++
		if c == q {
			return
		}
	}
}
