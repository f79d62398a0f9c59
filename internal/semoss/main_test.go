package semoss_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "jobstream-semoss-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return dbtest.Main(testserver.LeakCheck(m))
}

var (
	binDir    string
	buildOnce sync.Once
	bin       string
	buildErr  error
)

// jobstreamBin returns the jobstream command, built on first use, for the
// tests that run it as a real server process.
func jobstreamBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { bin, buildErr = testserver.Build(binDir) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}
