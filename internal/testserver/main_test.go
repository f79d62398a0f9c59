package testserver_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

// bin is the jobstream command, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "jobstream-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if bin, err = testserver.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return dbtest.Main(testserver.LeakCheck(m))
}
