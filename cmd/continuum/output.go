package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// newTable returns a tabwriter for human-readable columns; call Flush.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

// table prints a header and rows as aligned columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := newTable(w)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i := range r {
			r[i] = oneLine(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fields prints "key: value" lines, aligned.
func fields(w io.Writer, kv ...string) error {
	tw := newTable(w)
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[i], oneLine(kv[i+1]))
	}
	return tw.Flush()
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\t\r\n") {
		return s
	}
	return strings.NewReplacer("\t", " ", "\r", " ", "\n", " ").Replace(s)
}

// printJSON writes v as one JSON document: indented, or compact when
// compact is set (one object per line for streams).
func printJSON(w io.Writer, v any, compact bool) error {
	b, err := marshalJSON(v, !compact)
	if err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// compactJSON is v as one line of JSON, for table cells and stream lines.
func compactJSON(v any) string {
	b, err := marshalJSON(v, false)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// clock formats unix milliseconds as local wall time for stream lines.
func clock(ms int64) string {
	if ms == 0 {
		return time.Now().Format("15:04:05.000")
	}
	return time.UnixMilli(ms).Format("15:04:05.000")
}
