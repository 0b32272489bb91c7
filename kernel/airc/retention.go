package airc

import (
	"context"
	"encoding/binary"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"
)

// retentionChunk bounds the deletions of one retention transaction, so a
// large backlog is trimmed in steps instead of one transaction that holds the
// writer lock (and so every append) for long.
const retentionChunk = 4096

func (l *Log) retentionConfigured() bool {
	l.retMu.RLock()
	defer l.retMu.RUnlock()
	if !l.opts.DefaultRetention.zero() {
		return true
	}
	for _, r := range l.opts.Retention {
		if !r.zero() {
			return true
		}
	}
	return false
}

func (l *Log) ruleFor(channel string) Retention {
	l.retMu.RLock()
	defer l.retMu.RUnlock()
	if r, ok := l.opts.Retention[channel]; ok {
		return r
	}
	return l.opts.DefaultRetention
}

// startRetention starts the background pass unless it runs already, the log
// is closed, or RetentionInterval < 0 (the caller runs ApplyRetention).
func (l *Log) startRetention() {
	if l.opts.RetentionInterval < 0 {
		return
	}
	every := l.opts.RetentionInterval
	if every == 0 {
		every = time.Minute
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.stopRet != nil {
		return
	}
	l.stopRet, l.retDone = make(chan struct{}), make(chan struct{})
	go l.retentionLoop(every, l.stopRet)
}

// SetRetention replaces the retention rules (what Options.Retention and
// Options.DefaultRetention gave at Open) and runs a pass soon, so that new
// limits apply now rather than one interval later. A log opened without
// rules starts its background pass here. Events already dropped stay
// dropped when limits are raised.
func (l *Log) SetRetention(def Retention, per map[string]Retention) {
	l.retMu.Lock()
	l.opts.DefaultRetention, l.opts.Retention = def, maps.Clone(per)
	l.retMu.Unlock()
	if !l.retentionConfigured() {
		return
	}
	l.startRetention()
	select {
	case l.kickRet <- struct{}{}:
	default: // a pass is due already
	}
}

// RetentionRules returns the rules in force: the default and per channel.
func (l *Log) RetentionRules() (Retention, map[string]Retention) {
	l.retMu.RLock()
	defer l.retMu.RUnlock()
	return l.opts.DefaultRetention, maps.Clone(l.opts.Retention)
}

func (l *Log) retentionLoop(every time.Duration, stop <-chan struct{}) {
	defer close(l.retDone)
	t := time.NewTicker(every)
	defer t.Stop()
	// The first pass runs at once, so that limits given to a restarted
	// daemon apply now rather than one interval later; it runs here, off
	// Open's path, so a large first pass does not delay the start.
	for first := true; ; first = false {
		if !first {
			select {
			case <-stop:
				return
			case <-t.C:
			case <-l.kickRet:
			}
		}
		if _, err := l.ApplyRetention(); err != nil {
			l.log.Warn("airc: retention pass failed; will retry", "err", err)
		}
	}
}

// ApplyRetention drops, in every channel with a rule, the oldest events
// (transcript order) beyond MaxCount and those whose ts is older than MaxAge,
// and returns how many it dropped. It walks each channel from its oldest
// event and stops at the first one it keeps. The (origin, id) and chain
// indexes stay, so a dropped event that a peer sends again is a duplicate,
// not new. The background pass calls it every RetentionInterval.
func (l *Log) ApplyRetention() (int, error) {
	if !l.retentionConfigured() {
		return 0, nil
	}
	// Retention walks the transcript: the newest entries must be in it.
	if err := l.syncIndex(context.Background()); err != nil {
		return 0, err
	}
	total := 0
	for {
		n := 0
		err := l.db.Update(func(tx *bolt.Tx) error {
			var err error
			n, err = l.retainOnce(tx)
			return err
		})
		if err != nil {
			return total, unavailable("retention", err)
		}
		total += n
		if n < retentionChunk {
			return total, nil
		}
	}
}

func (l *Log) retainOnce(tx *bolt.Tx) (int, error) {
	type victim struct {
		tkey []byte
		seq  []byte
	}
	var (
		events   = tx.Bucket(bEvents)
		chans    = tx.Bucket(bChannels)
		now      = l.now().UnixMilli()
		budget   = retentionChunk
		dropped  = 0
		channels [][]byte
	)
	if err := chans.ForEach(func(k, _ []byte) error {
		channels = append(channels, append([]byte(nil), k...))
		return nil
	}); err != nil {
		return 0, err
	}
	for _, ch := range channels {
		rule := l.ruleFor(string(ch))
		sub := tx.Bucket(bTranscript).Bucket(ch)
		if rule.zero() || sub == nil || budget == 0 {
			continue
		}
		cnt := decodeCounters(chans.Get(ch))
		excess := uint64(0)
		if rule.MaxCount > 0 && cnt.events > uint64(rule.MaxCount) {
			excess = cnt.events - uint64(rule.MaxCount)
		}
		cutoff := int64(-1 << 63)
		if rule.MaxAge > 0 {
			cutoff = now - rule.MaxAge.Milliseconds()
		}
		// Collect first, delete after: deleting under a bbolt cursor makes
		// it skip the following key.
		var vs []victim
		c := sub.Cursor()
		for k, v := c.First(); k != nil && budget > 0; k, v = c.Next() {
			ts := int64(binary.BigEndian.Uint64(v[8:16]))
			if uint64(len(vs)) >= excess && ts >= cutoff {
				break
			}
			vs = append(vs, victim{append([]byte(nil), k...), append([]byte(nil), v[:8]...)})
			budget--
		}
		for _, v := range vs {
			if raw := events.Get(v.seq); raw != nil {
				cnt.bytes -= min(cnt.bytes, uint64(len(raw)))
				if err := events.Delete(v.seq); err != nil {
					return dropped, err
				}
			}
			if err := sub.Delete(v.tkey); err != nil {
				return dropped, err
			}
			cnt.events -= min(cnt.events, 1)
			dropped++
		}
		if len(vs) > 0 {
			if err := chans.Put(ch, cnt.encode()); err != nil {
				return dropped, err
			}
		}
	}
	return dropped, nil
}
