package testserver

import (
	"fmt"
	"net/http"
	"os"

	"go.uber.org/goleak"
)

// LeakCheck wraps a test package's m so that, after its tests pass, any
// goroutine still running (a listener, worker, pool or HTTP connection a
// test forgot to stop) fails the package. Use it in TestMain:
//
//	os.Exit(dbtest.Main(testserver.LeakCheck(m)))
func LeakCheck(m interface{ Run() int }) interface{ Run() int } { return leakCheck{m} }

type leakCheck struct{ m interface{ Run() int } }

func (l leakCheck) Run() int {
	code := l.m.Run()
	if code != 0 {
		return code
	}
	// Keep-alive connections of clients that used the default transport
	// are not leaks of the code under test.
	http.DefaultClient.CloseIdleConnections()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests:\n%v\n", err)
		return 1
	}
	return 0
}
