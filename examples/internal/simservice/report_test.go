package simservice

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/trackhq/track/track"
)

func TestReportRoundTrips(t *testing.T) {
	login := NewReport("login-service", track.Statistics{PointsExported: 12, ExportFailures: 1, EventsExported: 3})
	login.Counted = map[string]int64{"new-signup": 7, "new-login": 40}
	signup := NewReport("web-signup", track.Statistics{EventsExported: 900, EventsDropped: 2})
	signup.Reached = []StepCount{{"signup_start", 100}, {"signup_profile", 80}, {"signup_complete", 31}}
	backfill := Report{Service: "backfill", Minutes: 30, Counted: map[string]int64{"card-checked": 54000}}
	for _, r := range []Report{login, signup, backfill} {
		t.Run(r.Service, func(t *testing.T) {
			var out, people bytes.Buffer
			require.NoError(t, r.Write(&out, &people))
			got, err := ReadReport(out.Bytes())
			require.NoError(t, err)
			assert.Equal(t, r, got, "the JSON line decodes to the report")
			assert.Equal(t, 1, bytes.Count(out.Bytes(), []byte("\n")), "one line on stdout")
			assert.Equal(t, r.String()+"\n", people.String())
			for name, n := range r.Counted {
				assert.Contains(t, people.String(), " "+name+"="+strconv.FormatInt(n, 10))
			}
			for _, s := range r.Reached {
				assert.Contains(t, people.String(), " "+s.Step+"="+strconv.FormatInt(s.Visitors, 10))
			}
		})
	}
}

func TestReadReportTakesTheLastLine(t *testing.T) {
	out := []byte("starting\n{\"service\":\"old\"}\n\n{\"service\":\"login-service\",\"counted\":{\"new-signup\":3}}\n\n")
	r, err := ReadReport(out)
	require.NoError(t, err)
	assert.Equal(t, "login-service", r.Service)
	assert.Equal(t, int64(3), r.Counted["new-signup"])
}

func TestReadReportRefuses(t *testing.T) {
	for name, out := range map[string]string{
		"empty":      "",
		"blank":      "\n  \n",
		"not JSON":   "{\"service\":\"x\"}\nlogin-service: counted new-signup=3\n",
		"no service": "{\"counted\":{\"a\":1}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadReport([]byte(out))
			assert.Error(t, err)
		})
	}
}
