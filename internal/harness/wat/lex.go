package wat

import (
	"fmt"
	"strconv"
	"strings"
)

// node is an S-expression: an atom (a keyword, a $name, a number), a
// string, or a parenthesised list.
type node struct {
	atom   string
	str    bool // atom is the decoded contents of a string literal
	list   []node
	isList bool
	line   int
}

func (n node) String() string {
	switch {
	case n.isList:
		if len(n.list) > 0 && !n.list[0].isList {
			return "(" + n.list[0].atom + " …)"
		}
		return "(…)"
	case n.str:
		return strconv.Quote(n.atom)
	}
	return n.atom
}

// head returns a list's first atom, or "".
func (n node) head() string {
	if n.isList && len(n.list) > 0 && !n.list[0].isList && !n.list[0].str {
		return n.list[0].atom
	}
	return ""
}

// maxDepth bounds how deeply lists nest.
const maxDepth = 1000

type lexer struct {
	src  string
	pos  int
	line int
}

// parse reads every top-level S-expression of src.
func parse(src string) ([]node, error) {
	l := &lexer{src: src, line: 1}
	var out []node
	for {
		if err := l.skip(); err != nil {
			return nil, err
		}
		if l.pos >= len(l.src) {
			return out, nil
		}
		n, err := l.node(0)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
}

// skip passes over white space and comments.
func (l *lexer) skip() error {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case strings.HasPrefix(l.src[l.pos:], ";;"):
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case strings.HasPrefix(l.src[l.pos:], "(;"):
			start, depth := l.line, 0
			for {
				switch {
				case l.pos >= len(l.src):
					return fmt.Errorf("line %d: block comment is not closed", start)
				case strings.HasPrefix(l.src[l.pos:], "(;"):
					depth++
					l.pos += 2
				case strings.HasPrefix(l.src[l.pos:], ";)"):
					depth--
					l.pos += 2
				default:
					if l.src[l.pos] == '\n' {
						l.line++
					}
					l.pos++
				}
				if depth == 0 {
					break
				}
			}
		default:
			return nil
		}
	}
	return nil
}

func (l *lexer) node(depth int) (node, error) {
	if depth > maxDepth {
		return node{}, fmt.Errorf("line %d: lists nest more than %d deep", l.line, maxDepth)
	}
	line := l.line
	switch c := l.src[l.pos]; c {
	case '(':
		l.pos++
		n := node{isList: true, line: line}
		for {
			if err := l.skip(); err != nil {
				return node{}, err
			}
			if l.pos >= len(l.src) {
				return node{}, fmt.Errorf("line %d: list is not closed", line)
			}
			if l.src[l.pos] == ')' {
				l.pos++
				return n, nil
			}
			child, err := l.node(depth + 1)
			if err != nil {
				return node{}, err
			}
			n.list = append(n.list, child)
		}
	case ')':
		return node{}, fmt.Errorf("line %d: unexpected )", line)
	case '"':
		s, err := l.string()
		if err != nil {
			return node{}, err
		}
		return node{atom: s, str: true, line: line}, nil
	}
	start := l.pos
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == '"' || c == ';' {
			break
		}
		l.pos++
	}
	if l.pos == start {
		return node{}, fmt.Errorf("line %d: unexpected %q", line, l.src[l.pos])
	}
	return node{atom: l.src[start:l.pos], line: line}, nil
}

// string decodes a string literal: its bytes, with the escapes \n \t \r
// \" \' \\, \hh (a hexadecimal byte) and \u{h…} (a code point, as UTF-8).
func (l *lexer) string() (string, error) {
	line := l.line
	l.pos++ // the opening quote
	var b strings.Builder
	for {
		if l.pos >= len(l.src) {
			return "", fmt.Errorf("line %d: string is not closed", line)
		}
		c := l.src[l.pos]
		switch {
		case c == '"':
			l.pos++
			return b.String(), nil
		case c == '\n':
			return "", fmt.Errorf("line %d: string has a line break", line)
		case c != '\\':
			b.WriteByte(c)
			l.pos++
			continue
		}
		l.pos++
		if l.pos >= len(l.src) {
			return "", fmt.Errorf("line %d: string is not closed", line)
		}
		e := l.src[l.pos]
		l.pos++
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '"', '\'', '\\':
			b.WriteByte(e)
		case 'u':
			end := strings.IndexByte(l.src[l.pos:], '}')
			if !strings.HasPrefix(l.src[l.pos:], "{") || end < 0 {
				return "", fmt.Errorf("line %d: bad \\u escape", line)
			}
			v, err := strconv.ParseUint(l.src[l.pos+1:l.pos+end], 16, 32)
			if err != nil || v > 0x10ffff || (v >= 0xd800 && v < 0xe000) {
				return "", fmt.Errorf("line %d: bad \\u escape %q", line, l.src[l.pos:l.pos+end+1])
			}
			b.WriteRune(rune(v))
			l.pos += end + 1
		default:
			if l.pos >= len(l.src) {
				return "", fmt.Errorf("line %d: string is not closed", line)
			}
			v, err := strconv.ParseUint(l.src[l.pos-1:l.pos+1], 16, 8)
			if err != nil {
				return "", fmt.Errorf("line %d: bad escape \\%s", line, l.src[l.pos-1:l.pos+1])
			}
			b.WriteByte(byte(v))
			l.pos++
		}
	}
}
