package scrub

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/processor/sampler/internal/tally"
)

func allPatterns() *Scrubber {
	return &Scrubber{email: true, card: true, token: true, ip: true}
}

func TestRedactEmails(t *testing.T) {
	tests := []struct{ in, want string }{
		{"no email here", "no email here"},
		{"mail alice@example.com now", "mail [REDACTED:email] now"},
		{"<Bob.Smith+tag@mail.example.co.uk>", "<[REDACTED:email]>"},
		{"a@b", "a@b"},
		{"user@localhost", "user@localhost"},
		{"x@y.c", "x@y.c"},
		{"@example.com", "@example.com"},
		{"two: a@x.io, b@y.io.", "two: [REDACTED:email], [REDACTED:email]."},
		{"x@y@example.com", "x@[REDACTED:email]"},
		{"trailing dot .bob@example.org.", "trailing dot .[REDACTED:email]."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _ := redactEmails(tt.in)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRedactCardsLuhn(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"visa", "card 4111111111111111 ok", "card [REDACTED:card] ok"},
		{"visa with spaces", "4111 1111 1111 1111", "[REDACTED:card]"},
		{"mastercard with dashes", "pay 5555-5555-5555-4444.", "pay [REDACTED:card]."},
		{"amex 15 digits", "amex 378282246310005", "amex [REDACTED:card]"},
		{"visa 13 digits", "old visa 4222222222222", "old visa [REDACTED:card]"},
		{"19 digits luhn invalid", "6011000990139424123", "6011000990139424123"},
		{"19 digits unionpay", "pan 6221260000000000001", "pan [REDACTED:card]"},
		{"epoch millis luhn valid", "ts=1700000000004", "ts=1700000000004"},
		{"luhn invalid", "order 4111111111111112", "order 4111111111111112"},
		{"luhn invalid grouped", "4111 1111 1111 1112", "4111 1111 1111 1112"},
		{"order id 20 digits", "order 41111111111111110000", "order 41111111111111110000"},
		{"too short", "411111111111", "411111111111"},
		{"epoch millis", "ts=1700000000007", "ts=1700000000007"},
		{"card after other digits", "qty 12 card 4111 1111 1111 1111 end", "qty 12 card [REDACTED:card] end"},
		{"card glued to group", "1234 4111111111111111", "1234 [REDACTED:card]"},
		{"double space breaks", "4111  1111 1111 1111", "4111  1111 1111 1111"},
		{"two cards", "4111111111111111,5555555555554444", "[REDACTED:card],[REDACTED:card]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := RedactCards(tt.in)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLuhnValid(t *testing.T) {
	for _, s := range []string{"4111111111111111", "5555555555554444", "378282246310005", "79927398713", "4111-1111-1111-1111"} {
		assert.True(t, luhnValid(s), s)
	}
	for _, s := range []string{"4111111111111112", "79927398710", "1234567812345678"} {
		assert.False(t, luhnValid(s), s)
	}
}

func TestRedactTokens(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	tests := []struct{ name, in, want string }{
		{"bearer header", "Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer [REDACTED:token]"},
		{"lower bearer", "bearer abcdefghijklmnop1234==", "bearer [REDACTED:token]"},
		{"upper bearer", "BEARER abcdefghijklmnop1234", "BEARER [REDACTED:token]"},
		{"prose", "the bearer of bad news", "the bearer of bad news"},
		{"short credential", "Bearer abc", "Bearer abc"},
		{"jwt alone", jwt, "[REDACTED:token]"},
		{"jwt in text", "token=" + jwt + "; path=/", "token=[REDACTED:token]; path=/"},
		{"bearer jwt", "Bearer " + jwt, "Bearer [REDACTED:token]"},
		{"not a jwt", "eyJust kidding", "eyJust kidding"},
		{"jwt inside word", "xeyJhbGci.eyJzdWIi.abc", "xeyJhbGci.eyJzdWIi.abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := redactTokens(tt.in)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRedactIPs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"client 192.168.1.20 connected", "client [REDACTED:ip] connected"},
		{"peer 10.0.0.1:8080", "peer [REDACTED:ip]:8080"},
		{"v6 2001:db8::8a2e:370:7334 end", "v6 [REDACTED:ip] end"},
		{"full fe80:0:0:0:202:b3ff:fe1e:8329", "full [REDACTED:ip]"},
		{"time 12:30:45", "time 12:30:45"},
		{"version 1.2.3", "version 1.2.3"},
		{"bad 300.1.1.1", "bad 300.1.1.1"},
		{"ends 8.8.8.8.", "ends [REDACTED:ip]."},
		{"word cafe:face:bad", "word cafe:face:bad"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, _ := redactIPs(tt.in)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestScrubStringCountsAndNoChange(t *testing.T) {
	s := allPatterns()
	var c tally.Counts
	out, changed := s.ScrubString("GET /api/v1/users?page=2 200 12ms", &c)
	assert.False(t, changed)
	assert.Equal(t, "GET /api/v1/users?page=2 200 12ms", out)
	assert.Equal(t, tally.Counts{}, c)

	out, changed = s.ScrubString("a@b.io paid 4111111111111111 from 1.2.3.4 with Bearer abcdefghijklmnopqrst", &c)
	assert.True(t, changed)
	assert.Equal(t, "[REDACTED:email] paid [REDACTED:card] from [REDACTED:ip] with Bearer [REDACTED:token]", out)
	assert.Equal(t, [tally.NumPatterns]int64{1, 1, 1, 1}, c.Redacted)
}

func TestScrubStackTrace(t *testing.T) {
	trace := strings.Join([]string{
		"panic: charge failed for alice@example.com: card 4111 1111 1111 1111 declined",
		"",
		"goroutine 1 [running]:",
		"main.charge({0xc000012345, 0x10}, {0x4111111111111112})",
		"\t/app/pay.go:42 +0x1d",
		"main.handler(0xc00001e0c0) Authorization: Bearer sk_live_abcdefghijklmnopqrstu",
		"\t/app/http.go:17 +0x3a",
		"caused by: java.lang.IllegalStateException: user=bob@corp.example.org",
		"\tat com.example.Pay.charge(Pay.java:120)",
	}, "\n")
	s := &Scrubber{email: true, card: true, token: true}
	var c tally.Counts
	out, changed := s.ScrubString(trace, &c)
	require.True(t, changed)
	assert.NotContains(t, out, "alice@example.com")
	assert.NotContains(t, out, "bob@corp.example.org")
	assert.NotContains(t, out, "4111 1111 1111 1111")
	assert.NotContains(t, out, "sk_live_abcdefghijklmnopqrstu")
	// The Luhn-invalid argument and the code locations survive.
	assert.Contains(t, out, "0x4111111111111112")
	assert.Contains(t, out, "/app/pay.go:42 +0x1d")
	assert.Contains(t, out, "at com.example.Pay.charge(Pay.java:120)")
	assert.Equal(t, strings.Count(trace, "\n"), strings.Count(out, "\n"))
	assert.Equal(t, int64(2), c.Redacted[tally.PatEmail])
	assert.Equal(t, int64(1), c.Redacted[tally.PatCard])
	assert.Equal(t, int64(1), c.Redacted[tally.PatToken])
}

func TestCustomPatterns(t *testing.T) {
	cfg := Default()
	cfg.CustomPatterns = []CustomPattern{{Name: "order", Regex: `ORD-[0-9]{6}`}}
	s, err := New(&cfg)
	require.NoError(t, err)
	var c tally.Counts
	out, changed := s.ScrubString("refund ORD-123456 and ORD-654321", &c)
	assert.True(t, changed)
	assert.Equal(t, "refund [REDACTED:order] and [REDACTED:order]", out)
	assert.Equal(t, []int64{2}, c.Custom)
}

func TestWordMatcher(t *testing.T) {
	m := NewWordMatcher(DefaultDenyKeys)
	for _, k := range []string{
		"password", "db.password", "userPassword", "http.request.header.authorization", "Cookie", "set-cookie",
		"user.email", "x-api-key", "apiKey", "card_number", "payment.card.pan", "ssn", "auth_token", "client.secret",
	} {
		assert.True(t, m.Match(k), k)
	}
	for _, k := range []string{
		"user.id", "gen_ai.usage.input_tokens", "company", "span.kind", "http.route", "service.name", "cardinality", "passwordless",
	} {
		assert.False(t, m.Match(k), k)
	}
}

// FuzzIsCardNumber checks that an integer is a card number exactly when its decimal form is one
// for the string pattern.
func FuzzIsCardNumber(f *testing.F) {
	for _, u := range []uint64{0, 4111111111111111, 4111111111111112, 1700000000004, 4222222222222, 6221260000000000001, 9999999999999999999, math.MaxUint64} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, u uint64) {
		out, n := RedactCards(strconv.FormatUint(u, 10))
		assert.Equal(t, n > 0 && out == "[REDACTED:card]", IsCardNumber(u), "%d", u)
	})
}

func TestCutDropsCardTail(t *testing.T) {
	sc := allPatterns()
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		// 22 digits are not a card; their first 16 are.
		{"a longer number cut into a card", "order 4111111111111111000000", 22, "order "},
		{"a grouped number cut into a card", "ref 4111 1111 1111 11112", 23, "ref "},
		{"a number cut into no card", "order 1234567890123456789012", 16, "order 1234567890"},
		{"a cut after a separator", "ref 1234 5678 9", 14, "ref 1234 5678 "},
		{"no number at the cut", "hello world", 5, "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, n := RedactCards(tc.in)
			require.Zero(t, n, "the input itself holds no card")
			assert.Equal(t, tc.want, sc.Cut(tc.in, tc.n))
		})
	}
}

// FuzzScrubString checks that scrubbing never panics and that its output is a fixed point: nothing
// left in it matches a pattern.
func FuzzScrubString(f *testing.F) {
	for _, s := range []string{"", "a@b@c.de@@x.io", "4111-1111-1111-1111-4111-1111-1111-1111", strings.Repeat("1 ", 60),
		"bearer\t\t" + strings.Repeat("x", 20), "eyJ.eyJ.", "10.0.0.1:8080 fe80::1 ::ffff:1.2.3.4 :::: 1.2.3.4.5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		sc := &Scrubber{email: true, card: true, token: true, ip: true}
		var c tally.Counts
		out, _ := sc.ScrubString(in, &c)
		again, changed := sc.ScrubString(out, &c)
		require.False(t, changed, "second pass changed %q into %q", out, again)
	})
}

func TestMatchJoined(t *testing.T) {
	m := NewWordMatcher([]string{"geo.location", "location.lat", "city"})
	assert.True(t, m.MatchJoined("geo", "location"))
	assert.True(t, m.MatchJoined("client.geo", "location"))
	assert.True(t, m.MatchJoined("location", "lat"))
	assert.True(t, m.MatchJoined("user", "city"))
	assert.True(t, m.MatchJoined("", "city"))
	assert.False(t, m.MatchJoined("page", "location"))
	assert.False(t, m.MatchJoined("geo", ""))
	assert.False(t, m.MatchJoined("geo", "country"))
	assert.Zero(t, testing.AllocsPerRun(100, func() { m.MatchJoined("client.geo", "location") }))
}

var sink int

// benchStackBody is the stack trace of the processor's log benchmarks: an email, a card number and
// a bearer token.
const benchStackBody = "java.lang.IllegalStateException: payment failed for alice@example.com\n" +
	"\tat com.shop.Pay.charge(Pay.java:120) card=4111 1111 1111 1111\n" +
	"\tat com.shop.Api.post(Api.java:88) Authorization: Bearer abcdefghijklmnopqrstuvwxyz\n" +
	"\tat java.base/java.lang.Thread.run(Thread.java:1583)"

// BenchmarkScrubString measures the value scanner on a clean value and on one full of PII.
func BenchmarkScrubString(b *testing.B) {
	sc := &Scrubber{email: true, card: true, token: true}
	for _, tc := range []struct{ name, in string }{
		{"clean", "/api/v1/orders/{id} GET 200 eu-west-1"},
		{"stacktrace", benchStackBody},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var c tally.Counts
				for pb.Next() {
					out, _ := sc.ScrubString(tc.in, &c)
					sink += len(out) & 1
				}
			})
		})
	}
}
