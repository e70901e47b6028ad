package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// table is a query result as text, laid out the way psql's aligned format does: headers centred,
// numbers right-aligned, text left-aligned, columns separated by " | ", and a row count.
type table struct {
	headers []string
	numeric []bool
	rows    [][]string
}

// readTable reads every row of rows, which must come from the simple protocol (text values).
func readTable(rows pgx.Rows) (table, error) {
	defer rows.Close()
	var t table
	for _, f := range rows.FieldDescriptions() {
		t.headers = append(t.headers, f.Name)
		switch f.DataTypeOID {
		case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.NumericOID, pgtype.Float4OID, pgtype.Float8OID:
			t.numeric = append(t.numeric, true)
		default:
			t.numeric = append(t.numeric, false)
		}
	}
	for rows.Next() {
		raw := rows.RawValues()
		row := make([]string, len(raw))
		for i, v := range raw {
			row[i] = string(v) // NULL prints as an empty cell, as in psql
		}
		t.rows = append(t.rows, row)
	}
	return t, rows.Err()
}

func (t table) print(w io.Writer) {
	widths := make([]int, len(t.headers))
	for i, h := range t.headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range t.rows {
		for i, v := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(v))
		}
	}
	pad := func(s string, width int, right bool) string {
		n := width - utf8.RuneCountInString(s)
		if right {
			return strings.Repeat(" ", n) + s
		}
		return s + strings.Repeat(" ", n)
	}
	cells := make([]string, len(t.headers))
	for i, h := range t.headers {
		left := (widths[i] - utf8.RuneCountInString(h)) / 2
		cells[i] = pad(strings.Repeat(" ", left)+h, widths[i], false)
	}
	fmt.Fprintln(w, strings.TrimRight(" "+strings.Join(cells, " | "), " "))
	for i := range cells {
		cells[i] = strings.Repeat("-", widths[i])
	}
	fmt.Fprintln(w, "-"+strings.Join(cells, "-+-")+"-")
	for _, row := range t.rows {
		for i, v := range row {
			cells[i] = pad(v, widths[i], t.numeric[i])
		}
		fmt.Fprintln(w, strings.TrimRight(" "+strings.Join(cells, " | "), " "))
	}
	if len(t.rows) == 1 {
		fmt.Fprintln(w, "(1 row)")
	} else {
		fmt.Fprintf(w, "(%d rows)\n", len(t.rows))
	}
}
