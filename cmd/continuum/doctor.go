package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/continuum-grid/continuum/api"
	"github.com/continuum-grid/continuum/api/paths"
	"github.com/continuum-grid/continuum/ipc/client"
	flag "github.com/spf13/pflag"
	bolt "go.etcd.io/bbolt"
)

// errDoctorFailed makes continuum doctor exit non-zero after it printed its
// lines; the lines already say what failed and the fix.
var errDoctorFailed = errors.New("doctor: at least one check failed")

// check is one line of continuum doctor: ok, warn or fail, what was seen,
// and the fix when it is not ok.
type check struct {
	Status string `json:"status"`
	Name   string `json:"name"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

var doctorCommand = &command{
	name:    "doctor",
	summary: "check the set-up: paths, permissions, socket, state file, llama.cpp libraries, GPU",
	help: `Checks what continuumd needs and prints one line per check, ok, warn or fail,
with the fix for each that is not ok. Exits non-zero when any check fails.
The first thing to run when something does not work.`,
	example: "continuum doctor\ncontinuum doctor --llama-lib-dir .cache/llama/cpu -o json",
	maxArgs: 0,
	flags: func(fs *flag.FlagSet) action {
		stateDir := fs.String("state-dir", paths.StateDir(), "continuumd's state folder")
		libDir := fs.String("llama-lib-dir", defaultLibDir(), "folder of the llama.cpp libraries continuumd uses (default $CONTINUUM_LLAMA_LIB_DIR, else ./.cache/llama/cpu)")
		return func(ctx context.Context, e *env, _ []string) error {
			cs := doctorChecks(ctx, e, *stateDir, *libDir)
			failed := false
			for _, c := range cs {
				failed = failed || c.Status == "fail"
			}
			if e.jsonOut() {
				if err := printJSON(e.stdout, cs, false); err != nil {
					return err
				}
			} else {
				for _, c := range cs {
					fmt.Fprintf(e.stdout, "%-4s  %-16s %s\n", c.Status, c.Name, c.Detail)
					if c.Fix != "" {
						fmt.Fprintf(e.stdout, "      %-16s fix: %s\n", "", c.Fix)
					}
				}
			}
			if failed {
				return errDoctorFailed
			}
			return nil
		}
	},
}

func doctorChecks(ctx context.Context, e *env, stateDir, libDir string) []check {
	var cs []check
	add := func(status, name, detail, fix string) {
		cs = append(cs, check{Status: status, Name: name, Detail: detail, Fix: fix})
	}
	sock := e.socketPath()
	sockDir := filepath.Dir(sock)

	// Paths and permissions: continuumd refuses a socket folder others can enter.
	if err := paths.CheckPrivate(sockDir); err != nil && !os.IsNotExist(errors.Unwrap(err)) {
		add("fail", "socket folder", err.Error(), fmt.Sprintf("chmod 700 %s", sockDir))
	} else if err != nil {
		add("warn", "socket folder", sockDir+" does not exist (continuumd makes it at start)", "start continuumd: systemctl --user start continuumd.socket, or make run")
	} else {
		add("ok", "socket folder", sockDir+" is private", "")
	}
	if st, err := os.Stat(sock); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			add("fail", "socket file", sock+" is not a socket", "remove it: rm "+sock)
		} else if st.Mode().Perm()&0o077 != 0 {
			add("fail", "socket file", fmt.Sprintf("%s has mode %04o; others may connect", sock, st.Mode().Perm()), "chmod 600 "+sock+" (continuumd makes it 0600; systemd: SocketMode=0600)")
		} else {
			add("ok", "socket file", fmt.Sprintf("%s mode %04o", sock, st.Mode().Perm()), "")
		}
	}
	// Socket reachable; then what only the daemon can tell: its state file
	// as it reads it, and its peers.
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var live *client.Client
	if c, err := client.Dial(dctx, sock); err != nil {
		add("fail", "daemon", err.Error(), "start it: systemctl --user start continuumd.socket, or make run")
	} else {
		defer c.Close()
		info, err := c.Info(dctx)
		if err != nil {
			add("fail", "daemon", "kernel/info failed: "+err.Error(), "see continuumd's log: journalctl --user -u continuumd")
		} else {
			add("ok", "daemon", fmt.Sprintf("continuumd %s answers at %s", info.Version, sock), "")
			live = c
		}
	}
	// State folder and file.
	if err := paths.CheckPrivate(stateDir); err != nil && !os.IsNotExist(errors.Unwrap(err)) {
		add("fail", "state folder", err.Error(), "chmod 700 "+stateDir)
	} else if err != nil {
		add("warn", "state folder", stateDir+" does not exist yet (continuumd makes it at the first start)", "")
	} else if st, err := os.Stat(filepath.Join(stateDir, paths.StateFile)); err != nil {
		add("warn", "state file", "no "+paths.StateFile+" in "+stateDir+" yet", "")
	} else if st.Size() == 0 {
		add("fail", "state file", filepath.Join(stateDir, paths.StateFile)+" is empty", "move it aside; continuumd makes a new one")
	} else if live != nil {
		add("ok", "state file", fmt.Sprintf("%s, %d bytes", filepath.Join(stateDir, paths.StateFile), st.Size()), "")
	} else {
		cs = append(cs, checkStateFile(filepath.Join(stateDir, paths.StateFile), st.Size()))
	}
	if live != nil {
		cs = append(cs, daemonChecks(dctx, live)...)
	}
	// llama.cpp libraries, and which backend they bring.
	need := []string{"libllama*.so*", "libggml.*", "libggml-base.so*"}
	var missing []string
	for _, pat := range need {
		if m, _ := filepath.Glob(filepath.Join(libDir, pat)); len(m) == 0 {
			missing = append(missing, pat)
		}
	}
	switch {
	case !isDirPath(libDir):
		add("fail", "llama.cpp libs", "no folder "+libDir, "make llama-libs (CPU) or make llama-libs-cuda, or pass --llama-lib-dir to continuumd")
	case len(missing) > 0:
		add("fail", "llama.cpp libs", fmt.Sprintf("%s lacks %v", libDir, missing), "make llama-libs (CPU) or make llama-libs-cuda")
	default:
		add("ok", "llama.cpp libs", "found in "+libDir, "")
		if m, _ := filepath.Glob(filepath.Join(libDir, "libggml-cuda*.so*")); len(m) > 0 {
			add("ok", "GPU backend", filepath.Base(m[0]), "")
		} else {
			add("warn", "GPU backend", "none in "+libDir+": inference answers gpu_unavailable unless continuumd runs with --allow-cpu", "make llama-libs-cuda (needs an NVIDIA driver), or --allow-cpu for development")
		}
	}
	return cs
}

// daemonChecks asks the running daemon about its state file (log/stats
// reads it: the file answers and the log is not refusing what it receives)
// and each trusted peer (grid/peers: the link up, or why not, with the fix).
func daemonChecks(ctx context.Context, c *client.Client) []check {
	var cs []check
	add := func(status, name, detail, fix string) {
		cs = append(cs, check{Status: status, Name: name, Detail: detail, Fix: fix})
	}
	var st api.LogStats
	if err := c.Call(ctx, api.MethodLogStats, nil, &st); err != nil {
		add("fail", "state (daemon)", "log/stats failed: "+errText(err), "see continuumd's log: journalctl --user -u continuumd; stop it and run continuum log compact to rewrite the file")
	} else if st.ForkedOrigins > 0 {
		add("warn", "state (daemon)", fmt.Sprintf("the log reads (%d events, %s); %d origins were caught signing two histories", st.Events, humanBytes(uint64(max(st.FileBytes, 0))), st.ForkedOrigins), "see continuum log stats and docs/GRID.md on forks; untrust a peer that keeps forking")
	} else {
		add("ok", "state (daemon)", fmt.Sprintf("the log reads: %d events in %d channels, %s file", st.Events, len(st.Channels), humanBytes(uint64(max(st.FileBytes, 0)))), "")
	}
	var ps api.PeersResult
	if err := c.Call(ctx, api.MethodGridPeers, api.Empty{}, &ps); err != nil {
		add("warn", "peers", "grid/peers failed: "+errText(err), "see continuumd's log")
		return cs
	}
	if len(ps.Peers) == 0 {
		add("ok", "peers", "no trusted peers", "")
		return cs
	}
	for _, p := range ps.Peers {
		name := "peer " + shortID(p.PeerID)
		switch {
		case p.State == "up":
			add("ok", name, fmt.Sprintf("link up (%s), %.2fms", p.Circle, p.RTTMs), "")
		case len(p.Addrs) == 0:
			add("warn", name, fmt.Sprintf("no link and no address to dial (%s); it links when it dials here", p.Circle), "on the peer: continuum grid trust "+shortID(p.PeerID)+"… with --addr of this install, or here: continuum grid trust PEER --addr HOST:PORT")
		default:
			why := p.LastError
			if why == "" {
				why = "no link yet"
			}
			add("fail", name, fmt.Sprintf("%s at %s: %s", p.State, strings.Join(p.Addrs, ","), why), peerFix(p))
		}
	}
	return cs
}

// peerFix is the likely fix for a peer whose link is not up, from the
// reason the grid gave.
func peerFix(p api.GridPeer) string {
	e := strings.ToLower(p.LastError)
	switch {
	case strings.Contains(e, "timeout") || strings.Contains(e, "no recent network activity") || strings.Contains(e, "refused") || strings.Contains(e, "unreachable"):
		return "check that continuumd runs there with --listen-quic on " + strings.Join(p.Addrs, ",") + " and that UDP reaches it (firewall)"
	case strings.Contains(e, "trust") || strings.Contains(e, "untrusted") || strings.Contains(e, "unknown peer"):
		return "the peer does not trust this install: on it, continuum grid invite, then here continuum grid join TOKEN"
	case strings.Contains(e, "peer id") || strings.Contains(e, "pinned") || strings.Contains(e, "key"):
		return "another install answers at that address: check the address, or trust the right peer id again"
	}
	return "see continuum grid peers and continuumd's log on both sides"
}

func isDirPath(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// defaultLibDir is continuumd's default --llama-lib-dir as far as a client can
// tell it: $CONTINUUM_LLAMA_LIB_DIR, else .cache/llama/cpu here. The CLI may
// not import inference (arch_test.go), so this repeats the first two steps of
// inference.DefaultLibDir; a daemon started elsewhere is checked with
// --llama-lib-dir.
func defaultLibDir() string {
	d := os.Getenv("CONTINUUM_LLAMA_LIB_DIR")
	if d == "" {
		d = filepath.Join(".cache", "llama", "cpu")
	}
	if abs, err := filepath.Abs(d); err == nil {
		return abs
	}
	return d
}

// checkStateFile looks into the state file while no daemon answers (a
// running one holds its lock, and log/stats covers it then): it must open
// as a bbolt file, read-only, and pass bbolt's page consistency check.
func checkStateFile(path string, size int64) check {
	name := "state file"
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		return check{Status: "warn", Name: name, Detail: path + " is locked by another process, but no continuumd answers on the socket", Fix: "look for a stuck continuumd (pgrep -a continuumd) and stop it, or check that --socket matches the daemon's"}
	}
	if err != nil {
		return check{Status: "fail", Name: name, Detail: fmt.Sprintf("%s does not open as a bbolt file: %v", path, err), Fix: "move it aside (mv " + path + " " + path + ".broken); continuumd makes a new one, and trusted peers replicate back what they hold"}
	}
	defer db.Close()
	var problems []string
	err = db.View(func(tx *bolt.Tx) error {
		for perr := range tx.Check() {
			if len(problems) < 3 {
				problems = append(problems, perr.Error())
			}
		}
		return nil
	})
	if err == nil && len(problems) > 0 {
		err = errors.New(strings.Join(problems, "; "))
	}
	if err != nil {
		return check{Status: "fail", Name: name, Detail: fmt.Sprintf("%s fails bbolt's consistency check: %v", path, err), Fix: "with continuumd stopped: continuum log compact (rewrites the file), or move it aside and let peers replicate back"}
	}
	return check{Status: "ok", Name: name, Detail: fmt.Sprintf("%s, %d bytes, opens and passes bbolt's consistency check", path, size)}
}
