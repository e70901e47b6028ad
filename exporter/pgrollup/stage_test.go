package pgrollup

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestAppendStagePinsFormat pins the binary COPY stream of the staging table, field by field, as
// Postgres documents it (https://www.postgresql.org/docs/15/sql-copy.html, "Binary Format"): the
// 11-byte signature, 32-bit flags and header extension length, then per tuple a 16-bit field
// count and each field as a 32-bit length and big-endian bytes, then the trailer -1.
func TestAppendStagePinsFormat(t *testing.T) {
	var res [3][]rollupRow
	res[0] = []rollupRow{{series: 7, start: pgEpoch + 60, value: 1.5}}
	res[2] = []rollupRow{{series: 1 << 40, start: pgEpoch - 86400, value: 2}}
	want := []byte("PGCOPY\n\xff\r\n\x00")
	want = append(want, 0, 0, 0, 0 /* flags */, 0, 0, 0, 0 /* extension */)
	want = append(want,
		0, 4, // fields
		0, 0, 0, 2, 0, 0, // res 0
		0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7, // series 7
		0, 0, 0, 8, 0, 0, 0, 0, 0x03, 0x93, 0x87, 0x00, // 60 s after 2000-01-01 = 60,000,000 µs
		0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, // 1.5
		0, 4,
		0, 0, 0, 2, 0, 2, // res 2
		0, 0, 0, 8, 0, 0, 1, 0, 0, 0, 0, 0, // series 2^40
		0, 0, 0, 8, 0xff, 0xff, 0xff, 0xeb, 0xe2, 0x28, 0xa0, 0x00, // one day before 2000-01-01 = -86,400,000,000 µs
		0, 0, 0, 8, 0x40, 0, 0, 0, 0, 0, 0, 0, // 2.0
		0xff, 0xff) // trailer
	assert.Equal(t, want, appendStage(nil, &res))
	// Appending reuses the buffer's start: the stream is the same after other bytes.
	assert.Equal(t, want, appendStage([]byte("old")[:0], &res))
}
