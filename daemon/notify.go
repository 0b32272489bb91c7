package daemon

import (
	"net"
	"os"
)

// NotifyReady tells systemd (Type=notify) that the daemon is serving, by
// sending READY=1 to $NOTIFY_SOCKET. It does nothing outside systemd.
func NotifyReady() error { return sdNotify("READY=1") }

// NotifyStopping tells systemd the daemon is draining.
func NotifyStopping() error { return sdNotify("STOPPING=1") }

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
