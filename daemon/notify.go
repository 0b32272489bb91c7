package daemon

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// NotifyReady tells systemd (Type=notify) that the daemon is serving, by
// sending READY=1 to $NOTIFY_SOCKET. It does nothing outside systemd. Call it
// only once Start returned: the socket then accepts, so a unit ordered
// After=continuumd.service finds it serving.
func NotifyReady() error { return sdNotify("READY=1") }

// NotifyStopping tells systemd the daemon is draining.
func NotifyStopping() error { return sdNotify("STOPPING=1") }

// WatchdogInterval is the keepalive period systemd asked for: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, or 0 when no watchdog is
// set or $WATCHDOG_PID names another process.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		if pid, err := strconv.Atoi(p); err != nil || pid != os.Getpid() {
			return 0
		}
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// RunWatchdog sends WATCHDOG=1 every WatchdogInterval until ctx ends, from
// the goroutine that calls it. alive, when not nil, is asked before each ping:
// a daemon whose serving loop is stuck stops pinging and systemd restarts it.
// It returns at once when no watchdog is set.
func RunWatchdog(ctx context.Context, alive func() bool) {
	every := WatchdogInterval()
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive == nil || alive() {
				_ = sdNotify("WATCHDOG=1")
			}
		}
	}
}

// sdNotify sends one datagram to $NOTIFY_SOCKET (a path, or an abstract name
// starting with '@'), the sd_notify(3) protocol without libsystemd.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract socket
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}
