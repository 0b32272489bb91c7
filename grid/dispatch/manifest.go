package dispatch

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
)

// ManifestSchema is the schemaVersion of the presence classes.
const ManifestSchema = "1"

// classes are the presence classes, declared at start: broadcast on global,
// so every trusted peer gets them through replication.
var classes = []api.ClassConfig{
	{Name: api.EventPeerManifest, Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: ManifestSchema, OnUnknownSchema: api.SchemaWarn,
		Description: "an install's manifest (offers, wants, hardware, load), re-sent on change and as a heartbeat; sender: grid"},
	{Name: api.EventCapabilityWithdrawn, Broadcast: true, Channel: api.ChannelGlobal, SchemaVersion: ManifestSchema, OnUnknownSchema: api.SchemaWarn,
		Description: "an offer an install no longer serves; sender: grid"},
}

// Sender is the sender of the grid's own events.
const Sender = "grid"

// offersNow builds this install's offers: its clients' grid commands and,
// for each loaded model, inference/generate with capability llm:NAME.
func (d *Dispatcher) offersNow(ctx context.Context) []api.Offer {
	pol := d.policy.Load()
	if pol.Publish.NoOffers {
		return []api.Offer{}
	}
	offers := []api.Offer{}
	for _, c := range d.k.GridCommands() {
		o := api.Offer{Capability: c.Capability, Command: c.Name, Idempotent: c.Idempotent}
		if c.Terms != nil {
			o.Terms = *c.Terms
		}
		offers = append(offers, o)
	}
	var models []api.LoadedModel
	if d.k.Provides(api.MethodInferenceModels) {
		if res, err := d.self.Handle(ctx, api.MethodInferenceModels, nil); err == nil {
			_ = api.Assign(&models, res)
		}
	}
	for _, m := range models {
		offers = append(offers, api.Offer{Capability: "llm:" + m.Name, Command: api.MethodInferenceGenerate, Idempotent: true})
	}
	for i := range offers {
		if offers[i].Terms.MaxConcurrent == 0 {
			offers[i].Terms.MaxConcurrent = pol.Inbound.MaxConcurrentJobs
		}
	}
	slices.SortFunc(offers, func(a, b api.Offer) int {
		if c := strings.Compare(a.Capability, b.Capability); c != 0 {
			return c
		}
		return strings.Compare(a.Command, b.Command)
	})
	return offers
}

func (d *Dispatcher) manifest(offers []api.Offer, now time.Time) api.Manifest {
	pol := d.policy.Load()
	m := api.Manifest{
		PeerID: d.me, DisplayName: pol.Publish.DisplayName, Addrs: []string{}, Offers: offers,
		Wants: append([]string{}, pol.Publish.Wants...), Load: d.load(),
		AdvertisedAtMs: now.UnixMilli(), ExpiresAtMs: now.Add(d.opts.Gone).UnixMilli(),
	}
	if !pol.Publish.NoAddrs {
		m.Addrs = append(m.Addrs, d.links.Addrs()...)
	}
	if !pol.Publish.NoHardware {
		m.Hardware = api.Hardware{CPUCores: runtime.NumCPU(), MemoryGB: memoryGB()}
	}
	return m
}

// load is the share of the inbound limit in use, 0 to 1.
func (d *Dispatcher) load() float64 {
	d.mu.Lock()
	n := len(d.jobs)
	d.mu.Unlock()
	max := d.policy.Load().Inbound.MaxConcurrentJobs
	if max <= 0 {
		return 0
	}
	return min(float64(n)/float64(max), 1)
}

// publishLoop sends the manifest at start, whenever the offers or the
// policy change (checked on every kick and every Check interval), and as a
// heartbeat. An install that trusts no peer publishes nothing: there is
// nobody to tell, and a standalone log stays free of presence events.
func (d *Dispatcher) publishLoop() {
	defer d.wg.Done()
	tick := time.NewTicker(d.opts.Check)
	defer tick.Stop()
	var last []api.Offer
	var lastSent time.Time
	first, declared := true, false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		offers := d.offersNow(ctx)
		now := time.Now()
		if len(d.trust.List()) > 0 && !declared {
			declared = d.declare(ctx)
		}
		if declared && (first || !slices.Equal(offers, last) || now.Sub(lastSent) >= d.opts.Heartbeat) {
			for _, o := range last {
				if !slices.ContainsFunc(offers, func(n api.Offer) bool { return n.Capability == o.Capability && n.Command == o.Command }) {
					d.emit(ctx, api.EventCapabilityWithdrawn, api.CapabilityWithdrawn{PeerID: d.me, Capability: o.Capability, Command: o.Command, AtMs: now.UnixMilli()})
				}
			}
			if d.emit(ctx, api.EventPeerManifest, d.manifest(offers, now)) {
				d.count("manifest.sent")
				last, lastSent, first = offers, now, false
			}
		}
		cancel()
		select {
		case <-d.closing:
			return
		case <-d.kick:
		case <-tick.C:
		}
	}
}

// declare declares the presence classes, once there is a peer to publish to.
func (d *Dispatcher) declare(ctx context.Context) bool {
	for _, c := range classes {
		if _, err := d.self.Handle(ctx, api.MethodDeclareClass, api.ValueParams{V: c}); err != nil {
			d.log.Warn("cannot declare a presence class", "class", c.Name, "err", err)
			return false
		}
	}
	return true
}

func (d *Dispatcher) emit(ctx context.Context, class string, payload any) bool {
	if _, err := d.k.Emit(ctx, Sender, api.EmitParams{Name: class, Payload: payload}); err != nil {
		d.log.Warn("cannot publish", "class", class, "err", err)
		return false
	}
	return true
}

// followLoop reads the log from the start and then as it grows, keeping
// the index from the peers' presence events. It peeks at each stored
// envelope's class and decodes only presence events, so following a busy
// log costs a header read per event.
func (d *Dispatcher) followLoop() {
	defer d.wg.Done()
	const batch = 512
	var pos uint64
	for {
		changed := d.k.Committed()
		var found []api.Event
		read := 0
		last, err := d.k.Log().ReadEncoded(pos, batch, func(_ uint64, env []byte) error {
			read++
			keys, err := api.PeekEvent(env)
			if err != nil {
				return nil
			}
			if c := string(keys.Class); c != api.EventPeerManifest && c != api.EventCapabilityWithdrawn {
				return nil
			}
			// env belongs to the read transaction: decode a copy.
			ev, err := api.ShareEncodedKeys(bytes.Clone(env), keys).Event()
			if err == nil {
				found = append(found, *ev)
			}
			return nil
		})
		if err != nil {
			d.log.Warn("cannot read the log for manifests", "err", err)
		} else {
			pos = last
		}
		for i := range found {
			d.take(&found[i])
		}
		if err == nil && read == batch {
			continue
		}
		select {
		case <-d.closing:
			return
		case <-changed:
		case <-time.After(time.Second): // after a failed read, try again
		}
	}
}

// take puts a peer's presence event into the index.
func (d *Dispatcher) take(ev *api.Event) {
	if ev.Origin == d.me {
		return
	}
	switch ev.Class {
	case api.EventPeerManifest:
		var m api.Manifest
		if err := ev.DecodePayload(&m); err != nil || m.PeerID != ev.Origin {
			// Signed by its origin, so only the origin may speak for itself.
			d.log.Warn("manifest ignored", "origin", ev.Origin, "peerId", m.PeerID, "err", err)
			d.count("manifest.ignored")
			return
		}
		d.ix.put(m, time.Now())
		d.count("manifest.received")
	case api.EventCapabilityWithdrawn:
		var w api.CapabilityWithdrawn
		if err := ev.DecodePayload(&w); err == nil && w.PeerID == ev.Origin {
			d.ix.withdraw(w)
		}
	}
}

// memoryGB reads MemTotal from /proc/meminfo (0 where there is none).
func memoryGB() float64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return float64(int(kb/1024/1024*10)) / 10
		}
	}
	return 0
}

// machineLoad is the 1-minute load average per core (0 where unknown).
func machineLoad() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v / float64(runtime.NumCPU())
}
