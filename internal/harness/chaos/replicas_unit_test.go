package chaos

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// TestRaftProxyPartition checks the replicas' raft proxy on real sockets:
// it forwards, it knows which replica's process dialled (here this test
// process stands for replica 0), and a partition cuts open connections
// and refuses new ones from and to the cut-off replica until the heal.
func TestRaftProxyPartition(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the proxy finds the dialling process in /proc")
	}
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write(append(sc.Bytes(), '\n'))
				}
			}()
		}
	}()
	rs := &replicaSet{isolated: map[int]bool{}, conns: map[*proxied]struct{}{}}
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r := &replica{idx: i, id: "r" + strconv.Itoa(i+1), raftPort: echo.Addr().(*net.TCPAddr).Port, proxy: ln}
		rs.reps = append(rs.reps, r)
	}
	for _, r := range rs.reps { // the list is complete: the proxies read it
		go rs.serveProxy(r)
	}
	defer func() {
		for _, r := range rs.reps {
			r.proxy.Close()
		}
	}()
	rs.reps[0].pid.Store(int64(os.Getpid())) // this process dials as replica 0
	roundTrip := func(to int) error {
		c, err := net.Dial("tcp", rs.reps[to].proxy.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second)) // an "eventually" bound: CI is loaded
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := roundTrip(1); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if n := rs.unknown.Load(); n != 0 {
		t.Fatalf("the proxy did not recognise replica 0's process (%d unknown)", n)
	}
	// An open connection from replica 0 to replica 1 is cut by the partition.
	open, err := net.Dial("tcp", rs.reps[1].proxy.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	open.Write([]byte("ping\n"))
	rd := bufio.NewReader(open)
	if _, err := rd.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	rs.partition(0)
	open.SetDeadline(time.Now().Add(30 * time.Second))
	open.Write([]byte("ping\n"))
	if _, err := rd.ReadString('\n'); err == nil {
		t.Fatal("an open connection from the cut-off replica still works")
	}
	// New connections, from replica 0 or to it, are refused.
	if err := roundTrip(1); err == nil {
		t.Fatal("replica 0 reached replica 1 across the partition")
	}
	if err := roundTrip(0); err == nil {
		t.Fatal("replica 0 was reached across the partition")
	}
	rs.heal()
	if err := roundTrip(1); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}
