package policy

import "strings"

// globEscape before * or ? in a pattern makes it a literal character (the
// ${*} and ${?} policy variables); policy documents cannot contain it.
const globEscape = 0

// globMatch reports whether s matches pattern, where * matches any run of
// characters (including none) and ? exactly one. It is linear in practice
// (the classic greedy algorithm with a single backtrack point).
func globMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p+1 < len(pattern) && pattern[p] == globEscape:
			if pattern[p+1] != s[i] {
				if star < 0 {
					return false
				}
				p = star + 1
				mark++
				i = mark
				continue
			}
			p += 2
			i++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// hasWildcard reports whether a pattern has * or ?.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			return true
		}
	}
	return false
}

// lower is strings.ToLower for ASCII (action names and condition keys are
// ASCII; anything else is left as is), without allocating when s is
// already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// glob is a compiled wildcard pattern. Patterns with only * wildcards (the
// usual ARN and action patterns) match by literal segments with
// strings.Index, which is much faster than character-by-character
// backtracking; patterns with ? or escapes fall back to globMatch.
type glob struct {
	raw     string
	exact   bool     // no wildcard: s must equal raw
	complex bool     // has ? or an escape: use globMatch
	prefix  string   // literal text before the first *
	suffix  string   // literal text after the last *
	middle  []string // literal segments between the stars
}

func compileGlob(pattern string) glob {
	g := glob{raw: pattern}
	switch {
	case strings.IndexByte(pattern, '*') < 0 && strings.IndexByte(pattern, '?') < 0 && strings.IndexByte(pattern, globEscape) < 0:
		g.exact = true
		return g
	case strings.IndexByte(pattern, '?') >= 0 || strings.IndexByte(pattern, globEscape) >= 0:
		g.complex = true
		return g
	}
	parts := strings.Split(pattern, "*")
	g.prefix, g.suffix = parts[0], parts[len(parts)-1]
	for _, m := range parts[1 : len(parts)-1] {
		if m != "" {
			g.middle = append(g.middle, m)
		}
	}
	return g
}

func (g *glob) match(s string) bool {
	switch {
	case g.exact:
		return s == g.raw
	case g.complex:
		return globMatch(g.raw, s)
	}
	if len(s) < len(g.prefix)+len(g.suffix) || !strings.HasPrefix(s, g.prefix) || !strings.HasSuffix(s, g.suffix) {
		return false
	}
	s = s[len(g.prefix) : len(s)-len(g.suffix)]
	for _, m := range g.middle {
		i := strings.Index(s, m)
		if i < 0 {
			return false
		}
		s = s[i+len(m):]
	}
	return true
}
