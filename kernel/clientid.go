package kernel

import (
	"os"
	"strconv"
	"strings"

	"github.com/continuum-grid/continuum/api"
)

// clientID names a connection for everything that outlives it: the sender
// of the events it emits (kept in the durable log), the provider of the
// commands it registers, the caller its handlers see. A bare counter ("c6")
// restarts with the daemon and says nothing a week later in the log; the
// connecting program's name and pid say who it was, and the counter keeps
// two connections of one process apart:
//
//	continuum:4242/c6   a CLI process, pid 4242, this daemon's 6th connection
//	python3:977/c2      a Python client
//	embedded:88/c1      an app's in-process client (this process)
//	ws/c9               a browser page over the WebSocket listener (no pid)
//
// The name is the kernel's record of the process (/proc/PID/comm, at most 15
// bytes), read once when the connection opens; the process cannot choose it
// except by choosing its own executable name. Where it cannot be read the
// transport stands in.
func clientID(caller api.Caller, n uint64) string {
	conn := "c" + strconv.FormatUint(n, 10)
	if caller.Transport == "inproc" && caller.PID <= 0 {
		// An in-process client is this very process (an app embedding
		// the kernel), whatever credentials it was opened with.
		caller.PID = os.Getpid()
	}
	if caller.PID > 0 {
		if name := processName(caller.PID); name != "" {
			return name + ":" + strconv.Itoa(caller.PID) + "/" + conn
		}
		return "pid" + strconv.Itoa(caller.PID) + "/" + conn
	}
	if caller.Transport != "" {
		return caller.Transport + "/" + conn
	}
	return conn
}

// processName reads a process's command name, keeping only characters that
// sit well in a column and a log line.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return -1
	}, strings.TrimSpace(string(b)))
}
