package scrub // import "github.com/trackhq/track/processor/sampler/internal/scrub"

import (
	"math"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/trackhq/track/processor/sampler/internal/tally"
	"github.com/trackhq/track/processor/sampler/internal/validate"
)

var patternReplacements = [tally.NumPatterns]string{
	"[REDACTED:email]", "[REDACTED:card]", "[REDACTED:token]", "[REDACTED:ip]",
}

// customPattern is a compiled custom_patterns entry.
type customPattern struct {
	name        string
	re          *regexp.Regexp
	replacement string
}

// Scrubber redacts PII found inside string values. It is safe for concurrent use.
type Scrubber struct {
	email, card, token, ip bool
	custom                 []customPattern
}

func New(cfg *Config) (*Scrubber, error) {
	s := &Scrubber{
		email: cfg.Patterns.Email,
		card:  cfg.Patterns.CardNumber,
		token: cfg.Patterns.Token,
		ip:    cfg.Patterns.IP,
	}
	for _, p := range cfg.CustomPatterns {
		re, err := regexp.Compile(p.Regex)
		if err != nil {
			return nil, err
		}
		s.custom = append(s.custom, customPattern{name: p.Name, re: re, replacement: "[REDACTED:" + p.Name + "]"})
	}
	return s, nil
}

// ScrubString returns v with every match of the enabled patterns replaced, and whether anything
// changed. It counts matches into c. Clean input costs a few byte scans and no allocation.
func (s *Scrubber) ScrubString(v string, c *tally.Counts) (string, bool) {
	return s.ScrubRepair(v, false, c)
}

// ScrubRepair is ScrubString that, when repair is set, also makes the result storable
// (repairString). The byte scan that decides which patterns can match also finds NUL bytes and
// non-ASCII bytes, so an ASCII value without NUL costs no second pass. No pattern matches NUL or a
// non-ASCII byte, so repairing after scrubbing finds what repairing before would.
func (s *Scrubber) ScrubRepair(v string, repair bool, c *tally.Counts) (string, bool) {
	out := v
	var n int
	// One pass over the bytes decides which scanners can possibly match.
	var classes uint8
	digits := 0
	token := false
	for i := 0; i < len(v); i++ {
		cl := byteClass[v[i]]
		if cl == 0 {
			continue
		}
		classes |= cl
		switch {
		case cl&clDigit != 0:
			digits++
		case cl&clJ != 0: // the end of "eyJ"
			token = token || i >= 2 && v[i-1] == 'y' && v[i-2] == 'e'
		case cl&clR != 0: // the end of "bearer", any case
			token = token || i >= 5 && v[i-1]|0x20 == 'e' && v[i-2]|0x20 == 'r' && v[i-3]|0x20 == 'a' &&
				v[i-4]|0x20 == 'e' && v[i-5]|0x20 == 'b'
		}
	}
	if s.token && token {
		if out, n = redactTokens(out); n > 0 {
			c.Redacted[tally.PatToken] += int64(n)
		}
	}
	if s.email && classes&clAt != 0 {
		if out, n = redactEmails(out); n > 0 {
			c.Redacted[tally.PatEmail] += int64(n)
		}
	}
	if s.card && digits >= minCardDigits {
		if out, n = RedactCards(out); n > 0 {
			c.Redacted[tally.PatCard] += int64(n)
		}
	}
	if s.ip && classes&(clDot|clColon) != 0 && (digits > 0 || classes&clColon != 0) {
		if out, n = redactIPs(out); n > 0 {
			c.Redacted[tally.PatIP] += int64(n)
		}
	}
	for i := range s.custom {
		p := &s.custom[i]
		if !p.re.MatchString(out) {
			continue
		}
		n := 0
		out = p.re.ReplaceAllStringFunc(out, func(string) string {
			n++
			return p.replacement
		})
		c.AddCustom(i, int64(n))
	}
	if repair && classes&(clNUL|clHigh) != 0 {
		out = validate.RepairString(out, c) // valid non-ASCII text comes back as it is
	}
	return out, len(out) != len(v) || out != v
}

// ScrubNonString checks an integer, a double or a bytes value the way a string is checked.
//   - An integer, or a double with an integral value below 1e19, whose decimal digits form a card
//     number (see IsCardNumber) becomes the string "[REDACTED:card]". Custom patterns are matched
//     against its decimal form (with its sign), and a match turns it into the redacted string.
//   - Bytes are scrubbed as text and stay bytes.
//
// Other values are left alone. Integers below 10^12 cost one comparison when no custom pattern is
// configured.
func (s *Scrubber) ScrubNonString(v pcommon.Value, c *tally.Counts) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n := v.Int()
		u := uint64(n)
		if n < 0 {
			u = uint64(-(n + 1)) + 1 // |n|, also for math.MinInt64
		}
		s.scrubInteger(v, u, n < 0, c)
	case pcommon.ValueTypeDouble:
		d := v.Double()
		if math.Abs(d) >= 1e19 || d != math.Trunc(d) { // also NaN and ±Inf
			return
		}
		s.scrubInteger(v, uint64(math.Abs(d)), d < 0, c)
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		if len(raw) < 2 { // no pattern matches fewer than two bytes
			return
		}
		if out, changed := s.ScrubString(string(raw), c); changed {
			v.SetEmptyBytes().FromRaw([]byte(out))
		}
	}
}

// MayMatchInt reports whether ScrubNonString can change the integer n: it has at least 13 digits
// (a card number), or custom patterns are configured.
func (s *Scrubber) MayMatchInt(n int64) bool {
	return n >= 1e12 || n <= -1e12 || len(s.custom) > 0
}

// MayMatchDouble is MayMatchInt for a double.
func (s *Scrubber) MayMatchDouble(d float64) bool {
	return d >= 1e12 || d <= -1e12 || len(s.custom) > 0
}

// scrubInteger redacts the integer value v, whose absolute value is u.
func (s *Scrubber) scrubInteger(v pcommon.Value, u uint64, negative bool, c *tally.Counts) {
	if len(s.custom) == 0 {
		if s.card && IsCardNumber(u) {
			v.SetStr(patternReplacements[tally.PatCard])
			c.Redacted[tally.PatCard]++
		}
		return
	}
	var buf [24]byte
	b := buf[:0]
	if negative {
		b = append(b, '-')
	}
	if out, changed := s.ScrubString(string(strconv.AppendUint(b, u, 10)), c); changed {
		v.SetStr(out)
	}
}

// IsCardNumber reports whether the decimal digits of u form a payment card number by the rule
// RedactCards applies to digit runs in strings: 13 to 19 digits, a first digit from 2 to 6 (the
// major networks' ranges, which spares 13-digit epoch-millisecond timestamps), and a valid Luhn
// check digit (ISO/IEC 7812-1, annex B).
func IsCardNumber(u uint64) bool {
	if u < 1e12 || u >= 1e19 {
		return false
	}
	first := u
	for first >= 10 {
		first /= 10
	}
	if first < 2 || first > 6 {
		return false
	}
	sum, double := 0, false
	for ; u > 0; u /= 10 {
		sum += luhnDigit(int(u%10), double)
		double = !double
	}
	return sum%10 == 0
}

// luhnDigit returns what the digit d adds to a Luhn sum: d, or 2d less 9 when it is doubled and
// 2d > 9.
func luhnDigit(d int, double bool) int {
	if double {
		d *= 2
		if d > 9 {
			d -= 9
		}
	}
	return d
}

// Cut shortens the scrubbed text s to at most n bytes at a UTF-8 boundary. A cut can shorten the
// number s ends with, and a prefix of a number that is not a card number (a run of more than 19
// digits, or a Luhn-invalid one) can be one: when the shortened number reads as a card number, it
// is dropped whole. It is safe on a nil Scrubber (no card pattern).
func (s *Scrubber) Cut(str string, n int) string {
	out := validate.TruncateUTF8(str, n)
	if len(out) == len(str) {
		return out
	}
	return s.DropCardTail(out)
}

// DropCardTail returns out without the number it ends with when that number reads as a card
// number; out is the beginning of a scrubbed text.
func (s *Scrubber) DropCardTail(out string) string {
	if s == nil || !s.card {
		return out
	}
	if start := trailingNumber(out); start < len(out) {
		if _, found := RedactCards(out[start:]); found > 0 {
			out = out[:start]
		}
	}
	return out
}

// trailingNumber returns where the number that s ends with starts, as RedactCards reads numbers
// (digit groups joined by single spaces or dashes, a trailing separator included), or len(s) when s
// does not end with one.
func trailingNumber(s string) int {
	i := len(s)
	if i > 0 && (s[i-1] == ' ' || s[i-1] == '-') {
		i--
	}
	start := len(s)
	for {
		j := i
		for j > 0 && isDigit(s[j-1]) {
			j--
		}
		if j == i {
			return start
		}
		start, i = j, j
		if i >= 2 && (s[i-1] == ' ' || s[i-1] == '-') && isDigit(s[i-2]) {
			i--
			continue
		}
		return start
	}
}

// Byte classes for the one-pass prefilter of ScrubString.
const (
	clDigit uint8 = 1 << iota
	clAt
	clJ     // 'J', as in the "eyJ" that starts every JWT
	clR     // 'r' or 'R', as in "Bearer"
	clDot   // '.'
	clColon // ':'
	clNUL   // a NUL byte: the string needs repair
	clHigh  // a byte of a multi-byte (or invalid) UTF-8 sequence: the string may need repair
)

var byteClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	t['@'] = clAt
	t['J'] = clJ
	t['r'], t['R'] = clR, clR
	t['.'] = clDot
	t[':'] = clColon
	t[0] = clNUL
	for c := 0x80; c <= 0xff; c++ {
		t[c] = clHigh
	}
	return t
}()

// rewriter builds a copy of src with spans replaced; it allocates only on the first replacement.
type rewriter struct {
	src  string
	buf  []byte
	last int
	n    int
}

func (r *rewriter) replace(start, end int, repl string) {
	if r.buf == nil {
		r.buf = make([]byte, 0, len(r.src)+len(repl))
	}
	r.buf = append(r.buf, r.src[r.last:start]...)
	r.buf = append(r.buf, repl...)
	r.last = end
	r.n++
}

func (r *rewriter) result() (string, int) {
	if r.n == 0 {
		return r.src, 0
	}
	r.buf = append(r.buf, r.src[r.last:]...)
	return string(r.buf), r.n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// ---- email addresses ----

func isLocalChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '\''
}

func isDomainChar(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// redactEmails replaces local@domain.tld, where the top-level domain has at least two letters.
func redactEmails(s string) (string, int) {
	if strings.IndexByte(s, '@') < 0 {
		return s, 0
	}
	r := rewriter{src: s}
	i := 0
	for i < len(s) {
		at := strings.IndexByte(s[i:], '@')
		if at < 0 {
			break
		}
		at += i
		l := at
		for l > r.last && isLocalChar(s[l-1]) {
			l--
		}
		for l < at && s[l] == '.' {
			l++
		}
		d := at + 1
		for d < len(s) && isDomainChar(s[d]) {
			d++
		}
		for d > at+1 && (s[d-1] == '.' || s[d-1] == '-') {
			d--
		}
		dot := strings.LastIndexByte(s[at+1:d], '.')
		if l < at && dot > 0 && validTLD(s[at+1+dot+1:d]) {
			r.replace(l, d, patternReplacements[tally.PatEmail])
			i = d
			continue
		}
		i = at + 1
	}
	return r.result()
}

func validTLD(t string) bool {
	if len(t) < 2 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !isAlpha(t[i]) {
			return false
		}
	}
	return true
}

// ---- payment card numbers ----

// minCardDigits and maxCardDigits bound the length of a card number (ISO/IEC 7812).
const (
	minCardDigits = 13
	maxCardDigits = 19
)

func countDigitsAtLeast(s string, n int) bool {
	c := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			c++
			if c >= n {
				return true
			}
		}
	}
	return false
}

// luhnValid reports whether the digits in s (other bytes are skipped) pass the Luhn check.
func luhnValid(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		c := s[i]
		if !isDigit(c) {
			continue
		}
		sum += luhnDigit(int(c-'0'), double)
		double = !double
	}
	return sum%10 == 0
}

type digitGroup struct{ start, end int }

// RedactCards replaces payment card numbers: 13 to 19 digits, in groups separated by single spaces
// or dashes, starting with 2 to 6 (the major networks' ranges) and passing the Luhn check. Digit runs
// longer than 19 digits without separators (order ids, timestamps in ns) are left alone.
func RedactCards(s string) (string, int) {
	if !countDigitsAtLeast(s, minCardDigits) {
		return s, 0
	}
	r := rewriter{src: s}
	var groups [24]digitGroup
	i := 0
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		ng := 0
		j := i
		for {
			st := j
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			groups[ng] = digitGroup{st, j}
			ng++
			if ng < len(groups) && j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
				j++
				continue
			}
			break
		}
		for g := 0; g < ng; {
			best := -1
			digits := 0
			if c := s[groups[g].start]; c >= '2' && c <= '6' {
				for h := g; h < ng; h++ {
					digits += groups[h].end - groups[h].start
					if digits > maxCardDigits {
						break
					}
					if digits >= minCardDigits && luhnValid(s[groups[g].start:groups[h].end]) {
						best = h
					}
				}
			}
			if best < 0 {
				g++
				continue
			}
			r.replace(groups[g].start, groups[best].end, patternReplacements[tally.PatCard])
			g = best + 1
		}
		i = j
	}
	return r.result()
}

// ---- bearer tokens and JWTs ----

func isTokenChar(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

func isB64URLChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// minBearerLen is the shortest credential redacted after "Bearer", so prose ("bearer of") survives.
const minBearerLen = 16

// redactTokens replaces the credential after "Bearer " (as Bearer, bearer or BEARER) and every JWT
// (eyJ... with two dots). It jumps between candidates with strings.Index.
func redactTokens(s string) (string, int) {
	out, n := redactBearer(s, "earer")
	out, m := redactBearer(out, "EARER")
	out, k := redactJWTs(out)
	return out, n + m + k
}

func redactBearer(s, tail string) (string, int) {
	r := rewriter{src: s}
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], tail)
		if k < 0 {
			break
		}
		k += i
		i = k + len(tail)
		b := k - 1 // position of the 'b'
		if b < 0 || s[b]|0x20 != 'b' || (b > 0 && isAlnum(s[b-1])) || i >= len(s) || (s[i] != ' ' && s[i] != '\t') {
			continue
		}
		st := i
		for st < len(s) && (s[st] == ' ' || s[st] == '\t') {
			st++
		}
		end := st
		for end < len(s) && isTokenChar(s[end]) {
			end++
		}
		for end < len(s) && s[end] == '=' {
			end++
		}
		if end-st >= minBearerLen {
			r.replace(st, end, patternReplacements[tally.PatToken])
			i = end
		}
	}
	return r.result()
}

func redactJWTs(s string) (string, int) {
	r := rewriter{src: s}
	for i := 0; i < len(s); {
		k := strings.Index(s[i:], "eyJ")
		if k < 0 {
			break
		}
		k += i
		i = k + 3
		if k > 0 && isB64URLChar(s[k-1]) {
			continue
		}
		if end := jwtEnd(s, k); end > 0 {
			r.replace(k, end, patternReplacements[tally.PatToken])
			i = end
		}
	}
	return r.result()
}

// jwtEnd returns the end of a JWT starting at i (header.payload.signature, the signature possibly
// empty), or -1.
func jwtEnd(s string, i int) int {
	j := i
	for seg := 0; seg < 3; seg++ {
		st := j
		for j < len(s) && isB64URLChar(s[j]) {
			j++
		}
		if seg < 2 {
			if j-st < 4 || j >= len(s) || s[j] != '.' {
				return -1
			}
			j++
		}
	}
	return j
}

// ---- IP addresses ----

func isIPChar(c byte) bool {
	return isDigit(c) || c == '.' || c == ':' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// redactIPs replaces IPv4 addresses (with an optional :port, which is kept) and IPv6 addresses.
func redactIPs(s string) (string, int) {
	if strings.IndexByte(s, '.') < 0 && strings.IndexByte(s, ':') < 0 {
		return s, 0
	}
	r := rewriter{src: s}
	for i := 0; i < len(s); {
		if !isIPChar(s[i]) || (i > 0 && isAlnum(s[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(s) && isIPChar(s[j]) {
			j++
		}
		end := j
		for end > i && s[end-1] == '.' {
			end--
		}
		if j < len(s) && isAlnum(s[j]) {
			i = j
			continue
		}
		if n := ipv4Len(s[i:end]); n > 0 {
			r.replace(i, i+n, patternReplacements[tally.PatIP])
		} else if looksLikeIPv6(s[i:end]) {
			if _, err := netip.ParseAddr(s[i:end]); err == nil {
				r.replace(i, end, patternReplacements[tally.PatIP])
			}
		}
		i = j
	}
	return r.result()
}

// ipv4Len returns the length of the dotted-quad IPv4 address that is t, or that t starts with
// followed by ":port"; 0 otherwise.
func ipv4Len(t string) int {
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(t) || t[i] != '.' {
				return 0
			}
			i++
		}
		st, v := i, 0
		for i < len(t) && isDigit(t[i]) && i-st < 3 {
			v = v*10 + int(t[i]-'0')
			i++
		}
		if i == st || v > 255 {
			return 0
		}
	}
	if i == len(t) {
		return i
	}
	if t[i] == ':' {
		for k := i + 1; k < len(t); k++ {
			if !isDigit(t[k]) {
				return 0
			}
		}
		return i
	}
	return 0
}

// looksLikeIPv6 is a cheap shape check run before netip.ParseAddr, so that times such as 12:30:45
// cost no parse.
func looksLikeIPv6(t string) bool {
	colons := strings.Count(t, ":")
	if colons < 2 || colons > 8 {
		return false
	}
	double := strings.Count(t, "::")
	if double > 1 || (double == 0 && colons != 7 && !(colons == 6 && strings.IndexByte(t, '.') > 0)) {
		return false
	}
	return true
}
