package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
	"github.com/vmihailenco/msgpack/v5"
)

// Methods continuum status uses when kernel/info lists them: built by other
// parts of the project, so the CLI names them here rather than in api/
// until they land there.
const (
	methodPersonaList  = "persona/list"
	methodContractList = "contract/list"
)

// statusPeersShown bounds how many peers the text output names, so the
// summary stays on one screen; --json lists them all.
const statusPeersShown = 6

// statusReport is what continuum status prints; --json prints it as is.
// The parts whose method the daemon does not have are absent; a part whose
// call failed carries the error instead of its numbers.
type statusReport struct {
	Version     string  `json:"version"`
	Protocol    int     `json:"protocol"`
	PeerID      string  `json:"peerId"`
	Socket      string  `json:"socket"`
	UptimeSecs  float64 `json:"uptimeSeconds"`
	Connections struct {
		Open  uint64 `json:"open"`
		Total uint64 `json:"total"`
	} `json:"connections"`
	Subscriptions int            `json:"subscriptions"`
	Classes       *statusClasses `json:"classes,omitempty"`
	Log           *statusLog     `json:"log,omitempty"`
	Models        *statusModels  `json:"models,omitempty"`
	Peers         *statusPeers   `json:"peers,omitempty"`
	Personas      *statusCount   `json:"personas,omitempty"`
	Contracts     *statusCount   `json:"contracts,omitempty"`
}

type statusClasses struct {
	Count     int    `json:"count"`
	Broadcast int    `json:"broadcast"`
	Error     string `json:"error,omitempty"`
}

type statusLog struct {
	FileBytes int64  `json:"fileBytes"`
	Events    uint64 `json:"events"`
	Channels  int    `json:"channels"`
	Head      uint64 `json:"head"`
	Error     string `json:"error,omitempty"`
}

type statusModels struct {
	Loaded []statusModel `json:"loaded"`
	Error  string        `json:"error,omitempty"`
}

type statusModel struct {
	Name   string `json:"name"`
	Active int    `json:"active"`
	Queued int    `json:"queued"`
}

type statusPeers struct {
	Up    int          `json:"up"`
	Total int          `json:"total"`
	Peers []statusPeer `json:"peers"`
	Error string       `json:"error,omitempty"`
}

type statusPeer struct {
	PeerID string  `json:"peerId"`
	State  string  `json:"state"`
	RTTMs  float64 `json:"rttMs,omitempty"`
}

// statusCount is a list method's answer, counted, and by state when its
// entries have one (contracts: open, awarded, …).
type statusCount struct {
	Count   int            `json:"count"`
	ByState map[string]int `json:"byState,omitempty"`
	Error   string         `json:"error,omitempty"`
}

var statusCommand = &command{
	name:    "status",
	summary: "one-screen summary: version, uptime, connections, classes, log, models, peers",
	help: `Asks the daemon what it is doing and prints one line each: version and peer
id, uptime, client connections, declared classes (and how many are broadcast),
the log (state file size, events, channels), loaded models, grid peers (up of
trusted, with round trips), and personas and contracts where the daemon has
them. It reads kernel/info, kernel/metrics, events/list-classes, log/stats,
inference/models and grid/peers (and persona/list, contract/list when
kernel/info lists them). A part that fails says so on its line; the others are
still shown. --json prints the same as one document.`,
	example: "continuum status\ncontinuum status --json | jq .peers",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		return func(ctx context.Context, e *env, _ []string) error {
			return e.withClient(ctx, func(ctx context.Context, c *client.Client) error {
				r, err := collectStatus(ctx, c)
				if err != nil {
					return err
				}
				r.Socket = e.socketPath()
				if e.jsonOut() {
					return printJSON(e.stdout, r, false)
				}
				return fields(e.stdout, r.lines()...)
			})
		}
	},
}

// collectStatus asks the daemon for every part. kernel/info and
// kernel/metrics must answer (they are the kernel's own); the other parts
// are filled or carry their error.
func collectStatus(ctx context.Context, c *client.Client) (*statusReport, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	r := &statusReport{Version: info.Version, Protocol: info.Protocol, PeerID: info.PeerID}
	has := map[string]bool{}
	for _, m := range info.Methods {
		has[m.Name] = true
	}
	var m api.Metrics
	if err := c.Call(ctx, api.MethodKernelMetrics, nil, &m); err != nil {
		return nil, err
	}
	r.UptimeSecs = m.UptimeSeconds
	r.Connections.Open, r.Connections.Total = m.Connections.Open, m.Connections.Total
	r.Subscriptions = m.Subscriptions

	if has[api.MethodListClasses] {
		r.Classes = &statusClasses{}
		if cs, err := c.ListClasses(ctx); err != nil {
			r.Classes.Error = errText(err)
		} else {
			r.Classes.Count = len(cs)
			for _, cl := range cs {
				if cl.Broadcast {
					r.Classes.Broadcast++
				}
			}
		}
	}
	if has[api.MethodLogStats] {
		r.Log = &statusLog{}
		var st api.LogStats
		if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
			r.Log.Error = errText(err)
		} else {
			r.Log.FileBytes, r.Log.Events, r.Log.Channels, r.Log.Head = st.FileBytes, st.Events, len(st.Channels), st.Head
		}
	}
	if has[api.MethodInferenceModels] {
		r.Models = &statusModels{Loaded: []statusModel{}}
		var ms []api.LoadedModel
		if err := c.Call(ctx, api.MethodInferenceModels, nil, &ms); err != nil {
			r.Models.Error = errText(err)
		} else {
			for _, lm := range ms {
				r.Models.Loaded = append(r.Models.Loaded, statusModel{Name: lm.Name, Active: lm.Active, Queued: lm.Queued})
			}
		}
	}
	if has[api.MethodGridPeers] {
		r.Peers = &statusPeers{Peers: []statusPeer{}}
		var ps api.PeersResult
		if err := c.Call(ctx, api.MethodGridPeers, api.Empty{}, &ps); err != nil {
			r.Peers.Error = errText(err)
		} else {
			r.Peers.Total = len(ps.Peers)
			for _, p := range ps.Peers {
				sp := statusPeer{PeerID: p.PeerID, State: p.State}
				if p.State == "up" {
					r.Peers.Up++
					sp.RTTMs = p.RTTMs
				}
				r.Peers.Peers = append(r.Peers.Peers, sp)
			}
		}
	}
	if has[methodPersonaList] {
		r.Personas = countList(ctx, c, methodPersonaList)
	}
	if has[methodContractList] {
		r.Contracts = countList(ctx, c, methodContractList)
	}
	return r, nil
}

// countList calls a list method whose result type the CLI does not know
// (yet) and counts its entries: the answer is a list, or a map holding one
// list (as {"personas": [...]}).
func countList(ctx context.Context, c *client.Client, method string) *statusCount {
	var raw msgpack.RawMessage
	if err := c.Call(ctx, method, api.Empty{}, &raw); err != nil {
		return &statusCount{Error: errText(err)}
	}
	v, err := decodeMsgpack(raw)
	if err != nil {
		return &statusCount{Error: err.Error()}
	}
	list, ok := v.([]any)
	if m, isMap := v.(map[string]any); isMap {
		for _, k := range sortedKeysOf(m) {
			if l, isList := m[k].([]any); isList {
				list, ok = l, true
				break
			}
		}
	}
	if !ok && v != nil {
		return &statusCount{Error: method + " answered something other than a list"}
	}
	sc := &statusCount{Count: len(list)}
	for _, it := range list {
		if m, isMap := it.(map[string]any); isMap {
			if s, isStr := m["state"].(string); isStr && s != "" {
				if sc.ByState == nil {
					sc.ByState = map[string]int{}
				}
				sc.ByState[s]++
			}
		}
	}
	return sc
}

func errText(err error) string {
	if ae, ok := err.(*api.Error); ok {
		return string(ae.Code) + ": " + ae.Message
	}
	return err.Error()
}

// lines is the text output, as key/value pairs for fields.
func (r *statusReport) lines() []string {
	kv := []string{
		"continuumd", fmt.Sprintf("%s (protocol %d) at %s", r.Version, r.Protocol, r.Socket),
		"peer id", orDash(r.PeerID),
		"uptime", (time.Duration(r.UptimeSecs) * time.Second).String(),
		"connections", fmt.Sprintf("%d open, %d since start; %d live subscriptions", r.Connections.Open, r.Connections.Total, r.Subscriptions),
	}
	if c := r.Classes; c != nil {
		kv = append(kv, "classes", orError(c.Error, fmt.Sprintf("%d declared, %d broadcast", c.Count, c.Broadcast)))
	}
	if l := r.Log; l != nil {
		kv = append(kv, "log", orError(l.Error, fmt.Sprintf("%s state file, %d events in %d channels, head seq %d", humanBytes(uint64(max(l.FileBytes, 0))), l.Events, l.Channels, l.Head)))
	}
	if m := r.Models; m != nil {
		s := "none loaded"
		if len(m.Loaded) > 0 {
			names := make([]string, len(m.Loaded))
			for i, lm := range m.Loaded {
				names[i] = fmt.Sprintf("%s (%d running, %d queued)", lm.Name, lm.Active, lm.Queued)
			}
			s = fmt.Sprintf("%d loaded: %s", len(m.Loaded), strings.Join(names, ", "))
		}
		kv = append(kv, "models", orError(m.Error, s))
	}
	if p := r.Peers; p != nil {
		s := fmt.Sprintf("%d up of %d trusted", p.Up, p.Total)
		if len(p.Peers) > 0 {
			shown := make([]string, 0, statusPeersShown+1)
			for i, sp := range p.Peers {
				if i == statusPeersShown {
					shown = append(shown, fmt.Sprintf("+%d more (continuum grid peers)", len(p.Peers)-i))
					break
				}
				if sp.State == "up" {
					shown = append(shown, fmt.Sprintf("%s %.2fms", shortID(sp.PeerID), sp.RTTMs))
				} else {
					shown = append(shown, shortID(sp.PeerID)+" "+sp.State)
				}
			}
			s += ": " + strings.Join(shown, ", ")
		}
		kv = append(kv, "peers", orError(p.Error, s))
	}
	if p := r.Personas; p != nil {
		kv = append(kv, "personas", orError(p.Error, p.text()))
	}
	if c := r.Contracts; c != nil {
		kv = append(kv, "contracts", orError(c.Error, c.text()))
	}
	return kv
}

func (c *statusCount) text() string {
	s := strconv.Itoa(c.Count)
	if len(c.ByState) > 0 {
		states := make([]string, 0, len(c.ByState))
		for st := range c.ByState {
			states = append(states, st)
		}
		sort.Strings(states)
		parts := make([]string, len(states))
		for i, st := range states {
			parts[i] = fmt.Sprintf("%d %s", c.ByState[st], st)
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func orError(err, s string) string {
	if err != "" {
		return "unavailable: " + err
	}
	return s
}
