package kernel

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/continuum-grid/continuum/api"
)

// A client id names the program behind the connection, so a sender in the
// durable log still says who it was after the daemon restarts.
func TestClientID(t *testing.T) {
	self := processName(os.Getpid())
	if self == "" {
		t.Skip("no /proc on this system")
	}
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		caller api.Caller
		want   string
	}{
		{api.Caller{Transport: "unix", PID: os.Getpid()}, self + ":" + pid + "/c6"},
		{api.Caller{Transport: "inproc", PID: -1}, self + ":" + pid + "/c6"},
		{api.Caller{Transport: "ws", PID: -1}, "ws/c6"},
		{api.Caller{PID: -1}, "c6"},
		// A process that is gone by now: its pid still says something.
		{api.Caller{Transport: "unix", PID: 1 << 30}, "pid" + strconv.Itoa(1<<30) + "/c6"},
	} {
		if got := clientID(tc.caller, 6); got != tc.want {
			t.Errorf("clientID(%+v) = %q, want %q", tc.caller, got, tc.want)
		}
	}
	if strings.ContainsAny(self, " \n/:") {
		t.Errorf("process name %q carries separators", self)
	}
}
