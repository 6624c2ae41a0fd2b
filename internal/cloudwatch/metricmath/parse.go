// Package metricmath parses and evaluates CloudWatch metric math
// expressions (the Expression of a MetricDataQuery) over time series.
//
// Values are scalars (S), time series (TS) and arrays of time series (TS[]).
// A time series is sparse: it has values only at the period-aligned
// timestamps where data exists. The evaluation follows the CloudWatch user
// guide ("Using metric math"):
//
//   - arithmetic (+ - * / ^, unary -) works on S, TS and TS[] operands; two
//     time series combine over the union of their timestamps, a missing value
//     counting as 0; a data point whose result would divide by zero (or is
//     otherwise not a finite number) is dropped;
//   - comparisons (== != < <= > >=) and logical operators (AND &&, OR ||)
//     give 1 or 0, also over the union with missing values as 0;
//   - IF(condition, trueValue[, falseValue]) has the documented per-syntax
//     rules for missing points;
//   - SUM, AVG, MIN, MAX, STDDEV of a TS give a scalar, of a TS[] a TS (point
//     by point; AVG counts a missing value as 0, the others skip it);
//   - FILL(TS|TS[], S|TS|REPEAT|LINEAR) fills the missing points of the
//     query's grid (REPEAT carries the last value forward, LINEAR
//     interpolates between two values; neither invents values before the
//     first or, for LINEAR, after the last data point);
//   - METRICS(["filter"]) is every MetricStat query of the request (whose Id
//     contains filter);
//   - also ABS, CEIL, FLOOR, LOG, LOG10, DIFF, DIFF_TIME, RATE, RUNNING_SUM,
//     DATAPOINT_COUNT, METRIC_COUNT, FIRST, LAST, REMOVE_EMPTY, TIME_SERIES,
//     PERIOD, and the grid functions EPOCH, MINUTE, HOUR, DAY, DATE, MONTH,
//     YEAR.
//
// SEARCH, SORT, SLICE, ANOMALY_DETECTION_BAND, INSIGHT_RULE_METRIC,
// SERVICE_QUOTA and the other functions are reported as unsupported.
package metricmath

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Node is a parsed expression.
type Node interface{ node() }

type (
	numLit  struct{ v float64 }
	strLit  struct{ s string }
	ident   struct{ name string } // a query id (starts with a lowercase letter)
	keyword struct{ name string } // REPEAT, LINEAR, ASC, DESC... as a function argument
	unary   struct{ x Node }      // unary minus
	binary  struct {
		op   string
		l, r Node
	}
	call struct {
		fn   string
		args []Node
	}
	array struct{ elems []Node }
)

func (numLit) node()  {}
func (strLit) node()  {}
func (ident) node()   {}
func (keyword) node() {}
func (unary) node()   {}
func (binary) node()  {}
func (call) node()    {}
func (array) node()   {}

// SyntaxError is a parse error with its byte offset.
type SyntaxError struct {
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error at position %d: %s", e.Pos, e.Msg)
}

// MaxLength is the longest expression accepted (the API's limit).
const MaxLength = 2048

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 100

// Parse parses a metric math expression.
func Parse(src string) (Node, error) {
	if len(src) > MaxLength {
		return nil, &SyntaxError{Pos: MaxLength, Msg: fmt.Sprintf("the expression is longer than %d characters", MaxLength)}
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
	}
	return n, nil
}

// Refs returns the query ids n refers to, and whether it calls METRICS()
// (which depends on every MetricStat query).
func Refs(n Node) (ids []string, usesMetrics bool) {
	seen := map[string]bool{}
	var walk func(Node)
	walk = func(n Node) {
		switch n := n.(type) {
		case ident:
			if !seen[n.name] {
				seen[n.name] = true
				ids = append(ids, n.name)
			}
		case unary:
			walk(n.x)
		case binary:
			walk(n.l)
			walk(n.r)
		case call:
			if n.fn == "METRICS" {
				usesMetrics = true
			}
			for _, a := range n.args {
				walk(a)
			}
		case array:
			for _, e := range n.elems {
				walk(e)
			}
		}
	}
	walk(n)
	return ids, usesMetrics
}

type tokKind int

const (
	tEOF tokKind = iota
	tNum
	tStr
	tIdent // lowercase-initial id
	tUpper // uppercase word: function or keyword
	tOp
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
)

type token struct {
	kind tokKind
	text string
	pos  int
	num  float64
}

func lex(src string) ([]token, error) {
	var out []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && src[k] >= '0' && src[k] <= '9' {
					j = k
					for j < len(src) && src[j] >= '0' && src[j] <= '9' {
						j++
					}
				}
			}
			v, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil {
				return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("bad number %q", src[i:j])}
			}
			out = append(out, token{kind: tNum, text: src[i:j], pos: i, num: v})
			i = j
		case c == '"' || c == '\'':
			j := i + 1
			for j < len(src) && src[j] != c {
				j++
			}
			if j >= len(src) {
				return nil, &SyntaxError{Pos: i, Msg: "unterminated string"}
			}
			out = append(out, token{kind: tStr, text: src[i+1 : j], pos: i})
			i = j + 1
		case c == '_' || c < 0x80 && unicode.IsLetter(rune(c)):
			j := i
			for j < len(src) && (src[j] == '_' || src[j] < 0x80 && (unicode.IsLetter(rune(src[j])) || unicode.IsDigit(rune(src[j])))) {
				j++
			}
			w := src[i:j]
			k := tUpper
			if w[0] >= 'a' && w[0] <= 'z' {
				k = tIdent
			}
			out = append(out, token{kind: k, text: w, pos: i})
			i = j
		case c == '(':
			out = append(out, token{kind: tLParen, text: "(", pos: i})
			i++
		case c == ')':
			out = append(out, token{kind: tRParen, text: ")", pos: i})
			i++
		case c == '[':
			out = append(out, token{kind: tLBrack, text: "[", pos: i})
			i++
		case c == ']':
			out = append(out, token{kind: tRBrack, text: "]", pos: i})
			i++
		case c == ',':
			out = append(out, token{kind: tComma, text: ",", pos: i})
			i++
		default:
			op := ""
			for _, cand := range []string{"==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "^", "<", ">"} {
				if strings.HasPrefix(src[i:], cand) {
					op = cand
					break
				}
			}
			if op == "" {
				return nil, &SyntaxError{Pos: i, Msg: fmt.Sprintf("unexpected character %q", src[i:i+1])}
			}
			out = append(out, token{kind: tOp, text: op, pos: i})
			i += len(op)
		}
	}
	return append(out, token{kind: tEOF, pos: len(src)}), nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

// isOp reports whether the next token is one of the binary operators ops
// (logical keywords AND/OR count as && and ||).
func (p *parser) opIn(ops ...string) (string, bool) {
	t := p.peek()
	text := t.text
	if t.kind == tUpper && (text == "AND" || text == "OR") {
		text = map[string]string{"AND": "&&", "OR": "||"}[text]
	} else if t.kind != tOp {
		return "", false
	}
	for _, o := range ops {
		if o == text {
			return o, true
		}
	}
	return "", false
}

// Precedence, lowest first.
var levels = [][]string{
	{"||"},
	{"&&"},
	{"==", "!=", "<", "<=", ">", ">="},
	{"+", "-"},
	{"*", "/"},
}

func (p *parser) expr(depth int) (Node, error) {
	if depth > maxDepth {
		return nil, &SyntaxError{Pos: p.peek().pos, Msg: "expression nested too deeply"}
	}
	return p.level(0, depth)
}

func (p *parser) level(l, depth int) (Node, error) {
	if l == len(levels) {
		return p.unaryExpr(depth)
	}
	left, err := p.level(l+1, depth)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.opIn(levels[l]...)
		if !ok {
			return left, nil
		}
		p.next()
		right, err := p.level(l+1, depth)
		if err != nil {
			return nil, err
		}
		left = binary{op: op, l: left, r: right}
	}
}

func (p *parser) unaryExpr(depth int) (Node, error) {
	if depth > maxDepth {
		return nil, &SyntaxError{Pos: p.peek().pos, Msg: "expression nested too deeply"}
	}
	if t := p.peek(); t.kind == tOp && t.text == "-" {
		p.next()
		x, err := p.unaryExpr(depth + 1)
		if err != nil {
			return nil, err
		}
		return unary{x: x}, nil
	}
	base, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == tOp && t.text == "^" {
		p.next()
		exp, err := p.unaryExpr(depth + 1) // right-associative
		if err != nil {
			return nil, err
		}
		return binary{op: "^", l: base, r: exp}, nil
	}
	return base, nil
}

func (p *parser) primary(depth int) (Node, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return numLit{v: t.num}, nil
	case tStr:
		return strLit{s: t.text}, nil
	case tIdent:
		return ident{name: t.text}, nil
	case tUpper:
		if p.peek().kind != tLParen {
			return keyword{name: t.text}, nil
		}
		p.next()
		var args []Node
		if p.peek().kind != tRParen {
			var err error
			if args, err = p.list(depth); err != nil {
				return nil, err
			}
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &SyntaxError{Pos: c.pos, Msg: fmt.Sprintf("expected ) to close %s(", t.text)}
		}
		return call{fn: t.text, args: args}, nil
	case tLParen:
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRParen {
			return nil, &SyntaxError{Pos: c.pos, Msg: "expected )"}
		}
		return n, nil
	case tLBrack:
		elems, err := p.list(depth)
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tRBrack {
			return nil, &SyntaxError{Pos: c.pos, Msg: "expected ]"}
		}
		return array{elems: elems}, nil
	case tEOF:
		return nil, &SyntaxError{Pos: t.pos, Msg: "unexpected end of expression"}
	default:
		return nil, &SyntaxError{Pos: t.pos, Msg: fmt.Sprintf("unexpected %q", t.text)}
	}
}

// list parses one or more comma-separated expressions.
func (p *parser) list(depth int) ([]Node, error) {
	var out []Node
	for {
		e, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if p.peek().kind != tComma {
			return out, nil
		}
		p.next()
	}
}
