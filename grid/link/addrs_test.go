package link

import (
	"net"
	"slices"
	"testing"
)

// What a hello makes this install dial: never a loopback address of
// another host (it would reach a daemon here, maybe another peer's, and
// redial the wrong one forever), the dialled address first.
func TestDialAddrs(t *testing.T) {
	udp := func(s string) net.Addr { a, _ := net.ResolveUDPAddr("udp", s); return a }
	wildcard := []string{"127.0.0.1:7946", "10.0.0.5:7946", "[::1]:7946", "0.0.0.0:7946", "192.168.1.9:7946", "bad"}
	cases := []struct {
		name       string
		advertised []string
		remote     net.Addr
		outgoing   bool
		want       []string
	}{
		{"another host, dialled", wildcard, udp("10.0.0.5:7946"), true, []string{"10.0.0.5:7946", "192.168.1.9:7946"}},
		{"another host, it dialled us", wildcard, udp("10.0.0.5:50211"), false, []string{"10.0.0.5:7946", "192.168.1.9:7946"}},
		{"this host", []string{"127.0.0.1:7000"}, udp("127.0.0.1:7000"), true, []string{"127.0.0.1:7000"}},
		{"this host, new port", []string{"127.0.0.1:7001"}, udp("127.0.0.1:40000"), false, []string{"127.0.0.1:7001"}},
		{"only loopback from afar", []string{"127.0.0.1:7946"}, udp("10.0.0.5:50211"), false, nil},
	}
	for _, tc := range cases {
		if got := dialAddrs(tc.advertised, tc.remote, tc.outgoing); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	many := make([]string, 20)
	for i := range many {
		many[i] = net.JoinHostPort("10.1.0."+string(rune('1'+i%9)), "7"+string(rune('0'+i%10))+"00")
	}
	if got := dialAddrs(many, udp("10.1.0.1:7000"), false); len(got) > maxLearnedAddrs {
		t.Fatalf("%d addresses learned from one hello", len(got))
	}
}
