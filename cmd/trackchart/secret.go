package main

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// mask replaces a password wherever trackchart prints one.
const mask = "xxxxx"

var (
	quotedPassword = regexp.MustCompile(`password\s*=\s*'(?:[^'\\]|\\.)*'`)
	plainPassword  = regexp.MustCompile(`password\s*=\s*[^'\s]\S*`)
	// urlUserinfo is the user:password@ of a URL, also of one that net/url cannot parse.
	urlUserinfo = regexp.MustCompile(`^(postgres(?:ql)?://[^:/@]*):[^@]*@`)
)

// redactDSN returns dsn with its password masked: the password of a URL's user information, a
// password= query parameter, or a keyword/value password. It leaves the rest as it is, so that
// the user can still tell which server is meant.
func redactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), mask)
			}
			if q := u.Query(); q.Has("password") {
				q.Set("password", mask)
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
		dsn = urlUserinfo.ReplaceAllString(dsn, "${1}:"+mask+"@")
	}
	dsn = quotedPassword.ReplaceAllLiteralString(dsn, "password="+mask)
	return plainPassword.ReplaceAllLiteralString(dsn, "password="+mask)
}

// secrets returns the strings no output may contain when connecting with dsn: the password pgx
// will send (from the DSN, PGPASSWORD or the password file) and the password as written in the
// DSN, also percent-encoded. It returns none for an empty password.
func secrets(dsn string) []string {
	var out []string
	add := func(s string) {
		if s == "" {
			return
		}
		out = append(out, s)
		if e := url.QueryEscape(s); e != s {
			out = append(out, e)
		}
		if e := url.PathEscape(s); e != s {
			out = append(out, e)
		}
	}
	if cfg, err := pgconn.ParseConfig(dsn); err == nil {
		add(cfg.Password)
	}
	if m := urlUserinfo.FindStringSubmatch(dsn); m != nil {
		pw := strings.TrimSuffix(strings.TrimPrefix(m[0], m[1]+":"), "@")
		add(pw)
		if u, err := url.PathUnescape(pw); err == nil {
			add(u)
		}
	}
	for _, m := range plainPassword.FindAllString(dsn, -1) {
		add(strings.TrimSpace(m[strings.IndexByte(m, '=')+1:]))
	}
	return out
}

// scrub replaces every secret in s with the mask. Secrets shorter than minSecret are replaced only
// where a DSN would hold them, since replacing every "ab" would mangle the message; those are
// masked by redactDSN where the DSN is printed.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecret {
			s = strings.ReplaceAll(s, sec, mask)
		} else {
			s = strings.ReplaceAll(s, ":"+sec+"@", ":"+mask+"@")
			s = strings.ReplaceAll(s, "password="+sec, "password="+mask)
		}
	}
	return s
}

const minSecret = 4
