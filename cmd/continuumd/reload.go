package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/continuum-grid/continuum/kernel/airc"
)

// reloadable is what SIGHUP may change without a restart, read from the
// --config file: one "key = value" a line, '#' starts a comment. Only keys
// listed here are accepted, so a typo is an error rather than ignored.
type reloadable struct {
	LogLevel string // "log-level": debug, info, warn or error; "" keeps the current
	// The retention keys, each replacing its flag when present (nil when
	// absent): "retain-count" (--retain-count), "retain-age" (--retain-age)
	// and "retain", one line per channel rule (the --retain flags, all of
	// them, when there is at least one line).
	RetainCount *int
	RetainAge   *string
	Retain      []string
}

// reloadableKeys names the keys for error messages.
const reloadableKeys = "log-level, retain-count, retain-age, retain"

// retentionFlags are the retention flags continuumd was started with.
type retentionFlags struct {
	count int
	age   string
	rules []string
}

// retention is what is in force given the flags and the file: the file's
// keys win over the flags, key by key, so the answer depends on the two
// alone, never on what an earlier SIGHUP set.
func (r reloadable) retention(f retentionFlags) (airc.Retention, map[string]airc.Retention, error) {
	if r.RetainCount != nil {
		f.count = *r.RetainCount
	}
	if r.RetainAge != nil {
		f.age = *r.RetainAge
	}
	if r.Retain != nil {
		f.rules = r.Retain
	}
	return retentionConfig(f.count, f.age, f.rules)
}

// readReloadable parses the --config file. The error names the line.
func readReloadable(path string) (reloadable, error) {
	var r reloadable
	f, err := os.Open(path)
	if err != nil {
		return r, fmt.Errorf("--config: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return r, fmt.Errorf("--config %s:%d: want key = value, got %q", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "log-level":
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(v)); err != nil {
				return r, fmt.Errorf("--config %s:%d: log-level %q: want debug, info, warn or error", path, n, v)
			}
			r.LogLevel = v
		case "retain-count":
			c, err := strconv.ParseUint(v, 10, 31)
			if err != nil {
				return r, fmt.Errorf("--config %s:%d: retain-count %q: want a whole number, 0 for no limit", path, n, v)
			}
			ci := int(c)
			r.RetainCount = &ci
		case "retain-age":
			if v != "" {
				if _, err := parseAge(v); err != nil {
					return r, fmt.Errorf("--config %s:%d: retain-age: %v", path, n, err)
				}
			}
			r.RetainAge = &v
		case "retain":
			if _, _, err := parseRetainRule(v); err != nil {
				return r, fmt.Errorf("--config %s:%d: %v", path, n, err)
			}
			r.Retain = append(r.Retain, v)
		default:
			return r, fmt.Errorf("--config %s:%d: unknown key %q (reloadable: %s)", path, n, k, reloadableKeys)
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("--config %s: %w", path, err)
	}
	if _, _, err := r.retention(retentionFlags{}); err != nil { // a channel given twice
		return r, fmt.Errorf("--config %s: %v", path, err)
	}
	return r, nil
}

// apply sets what r holds and logs what changed, or that nothing did: the
// log level, and the retention rules of log (from the flags and r). The
// line is written while the lower of the old and new levels is in force, at
// that level, so it is seen whichever way the level moved.
func (r reloadable) apply(level *slog.LevelVar, logger *slog.Logger, config string, log *airc.Log, flags retentionFlags) {
	old := level.Level()
	nw := old
	if r.LogLevel != "" {
		_ = nw.UnmarshalText([]byte(r.LogLevel)) // checked by readReloadable
	}
	attrs := []any{"config", config}
	if nw != old {
		attrs = append(attrs, "log_level", nw.String(), "was", old.String())
	}
	def, per, err := r.retention(flags)
	if err != nil { // checked by readReloadable; flags by run at start
		logger.Error("SIGHUP: settings kept", "reason", err.Error())
		return
	}
	oldDef, oldPer := log.RetentionRules()
	if now, was := retentionString(def, per), retentionString(oldDef, oldPer); now != was {
		log.SetRetention(def, per)
		attrs = append(attrs, "retention", now, "retention_was", was)
	}
	if len(attrs) == 2 {
		logger.Info("SIGHUP: settings unchanged", "config", config)
		return
	}
	say := func(at slog.Level) {
		logger.Log(context.Background(), at, "SIGHUP: settings reloaded", attrs...)
	}
	if nw < old {
		level.Set(nw)
		say(nw)
	} else {
		say(old)
		level.Set(nw)
	}
}

// retentionString describes retention rules for the log, the same rules
// always the same way: "count=N age=D" for the default, then
// "CHANNEL:count=N,age=D" per channel, sorted; "none" for no limit.
func retentionString(def airc.Retention, per map[string]airc.Retention) string {
	one := func(r airc.Retention) string {
		if r.MaxCount <= 0 && r.MaxAge <= 0 {
			return "none"
		}
		var parts []string
		if r.MaxCount > 0 {
			parts = append(parts, "count="+strconv.Itoa(r.MaxCount))
		}
		if r.MaxAge > 0 {
			parts = append(parts, "age="+r.MaxAge.String())
		}
		return strings.Join(parts, ",")
	}
	out := []string{"default:" + one(def)}
	for _, ch := range slices.Sorted(maps.Keys(per)) {
		out = append(out, ch+":"+one(per[ch]))
	}
	return strings.Join(out, " ")
}
