package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// reloadable is what SIGHUP may change without a restart, read from the
// --config file: one "key = value" a line, '#' starts a comment. Only keys
// listed here are accepted, so a typo is an error rather than ignored.
type reloadable struct {
	LogLevel string // "log-level": debug, info, warn or error; "" keeps the current
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
		default:
			return r, fmt.Errorf("--config %s:%d: unknown key %q (reloadable: log-level)", path, n, k)
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("--config %s: %w", path, err)
	}
	return r, nil
}

// apply sets what r holds and logs what changed, or that nothing did. The
// line is written while the lower of the old and new levels is in force, at
// that level, so it is seen whichever way the level moved.
func (r reloadable) apply(level *slog.LevelVar, logger *slog.Logger, config string) {
	old := level.Level()
	nw := old
	if r.LogLevel != "" {
		_ = nw.UnmarshalText([]byte(r.LogLevel)) // checked by readReloadable
	}
	if nw == old {
		logger.Info("SIGHUP: settings unchanged", "config", config)
		return
	}
	say := func(at slog.Level) {
		logger.Log(context.Background(), at, "SIGHUP: settings reloaded", "config", config, "log_level", nw.String(), "was", old.String())
	}
	if nw < old {
		level.Set(nw)
		say(nw)
	} else {
		say(old)
		level.Set(nw)
	}
}
