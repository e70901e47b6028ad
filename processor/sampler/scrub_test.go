package sampler

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allPatterns() *scrubber {
	return &scrubber{email: true, card: true, token: true, ip: true}
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
			got, _ := redactCards(tt.in)
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
	var c counts
	out, changed := s.scrubString("GET /api/v1/users?page=2 200 12ms", &c)
	assert.False(t, changed)
	assert.Equal(t, "GET /api/v1/users?page=2 200 12ms", out)
	assert.Equal(t, counts{}, c)

	out, changed = s.scrubString("a@b.io paid 4111111111111111 from 1.2.3.4 with Bearer abcdefghijklmnopqrst", &c)
	assert.True(t, changed)
	assert.Equal(t, "[REDACTED:email] paid [REDACTED:card] from [REDACTED:ip] with Bearer [REDACTED:token]", out)
	assert.Equal(t, [numPatterns]int64{1, 1, 1, 1}, c.redacted)
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
	s := &scrubber{email: true, card: true, token: true}
	var c counts
	out, changed := s.scrubString(trace, &c)
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
	assert.Equal(t, int64(2), c.redacted[patEmail])
	assert.Equal(t, int64(1), c.redacted[patCard])
	assert.Equal(t, int64(1), c.redacted[patToken])
}

func TestCustomPatterns(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Scrub.CustomPatterns = []CustomPattern{{Name: "order", Regex: `ORD-[0-9]{6}`}}
	s, err := newScrubber(&cfg.Scrub)
	require.NoError(t, err)
	var c counts
	out, changed := s.scrubString("refund ORD-123456 and ORD-654321", &c)
	assert.True(t, changed)
	assert.Equal(t, "refund [REDACTED:order] and [REDACTED:order]", out)
	assert.Equal(t, []int64{2}, c.custom)
}

func TestTruncateUTF8(t *testing.T) {
	assert.Equal(t, "abc", truncateUTF8("abcdef", 3))
	assert.Equal(t, "ab", truncateUTF8("abé", 3)) // é is two bytes
	assert.Equal(t, "héllo", truncateUTF8("héllo", 10))
	assert.Equal(t, "", truncateUTF8("€", 2))
}

func TestWordMatcher(t *testing.T) {
	m := newWordMatcher(defaultDenyKeys)
	for _, k := range []string{
		"password", "db.password", "userPassword", "http.request.header.authorization", "Cookie", "set-cookie",
		"user.email", "x-api-key", "apiKey", "card_number", "payment.card.pan", "ssn", "auth_token", "client.secret",
	} {
		assert.True(t, m.match(k), k)
	}
	for _, k := range []string{
		"user.id", "gen_ai.usage.input_tokens", "company", "span.kind", "http.route", "service.name", "cardinality", "passwordless",
	} {
		assert.False(t, m.match(k), k)
	}
}
