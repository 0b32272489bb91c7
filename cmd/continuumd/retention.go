package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/kernel/airc"
)

// parseAge reads a retention age: a Go duration (36h, 90m) or a whole number
// of days (30d), since ages of weeks are the common case and Go durations
// stop at hours.
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("age %q: want a duration such as 36h or a number of days such as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("age %q: want a duration such as 36h or a number of days such as 30d", s)
	}
	return d, nil
}

// parseRetainRule reads one --retain value: CHANNEL=count:N,age:DUR (either
// part may be left out), or CHANNEL=none to keep everything on CHANNEL
// whatever the defaults say. A per-channel rule replaces the defaults for
// that channel rather than merging with them, so what a channel keeps is
// readable from its own flag.
func parseRetainRule(s string) (string, airc.Retention, error) {
	channel, spec, ok := strings.Cut(s, "=")
	channel = strings.TrimSpace(channel)
	if !ok || channel == "" || strings.TrimSpace(spec) == "" {
		return "", airc.Retention{}, fmt.Errorf("--retain %q: want CHANNEL=count:N,age:DUR or CHANNEL=none", s)
	}
	var r airc.Retention
	if strings.TrimSpace(spec) == "none" {
		return channel, r, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || seen[key] {
			return "", airc.Retention{}, fmt.Errorf("--retain %q: %q is not count:N or age:DUR (each at most once)", s, part)
		}
		seen[key] = true
		switch key {
		case "count":
			n, err := strconv.ParseUint(val, 10, 31)
			if err != nil {
				return "", airc.Retention{}, fmt.Errorf("--retain %q: count %q is not a non-negative number", s, val)
			}
			r.MaxCount = int(n)
		case "age":
			d, err := parseAge(val)
			if err != nil {
				return "", airc.Retention{}, fmt.Errorf("--retain %q: %v", s, err)
			}
			r.MaxAge = d
		default:
			return "", airc.Retention{}, fmt.Errorf("--retain %q: unknown limit %q (count or age)", s, key)
		}
	}
	return channel, r, nil
}

// retentionConfig turns the retention flags into the kernel's settings.
func retentionConfig(count int, age string, rules []string) (airc.Retention, map[string]airc.Retention, error) {
	var def airc.Retention
	if count < 0 {
		return def, nil, fmt.Errorf("--retain-count %d: must not be negative", count)
	}
	def.MaxCount = count
	if age != "" {
		d, err := parseAge(age)
		if err != nil {
			return def, nil, fmt.Errorf("--retain-age: %v", err)
		}
		def.MaxAge = d
	}
	var per map[string]airc.Retention
	for _, s := range rules {
		ch, r, err := parseRetainRule(s)
		if err != nil {
			return def, nil, err
		}
		if _, dup := per[ch]; dup {
			return def, nil, fmt.Errorf("--retain: channel %q is given twice", ch)
		}
		if per == nil {
			per = map[string]airc.Retention{}
		}
		per[ch] = r
	}
	return def, per, nil
}
