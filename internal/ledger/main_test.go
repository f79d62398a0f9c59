package ledger_test

import (
	"os"
	"testing"

	"github.com/jobstream/jobstream/internal/dbtest"
	"github.com/jobstream/jobstream/internal/testserver"
)

func TestMain(m *testing.M) {
	os.Exit(dbtest.Main(testserver.LeakCheck(m)))
}
