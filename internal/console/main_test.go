package console_test

import (
	"os"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestMain(m *testing.M) {
	os.Exit(dbtest.Main(testserver.LeakCheck(afterTests{m})))
}

// afterTests stops the servers and the browser the tests shared once they
// have all run, before the leak check and before the database is dropped.
type afterTests struct{ m *testing.M }

func (a afterTests) Run() int {
	code := a.m.Run()
	shutdown()
	return code
}
